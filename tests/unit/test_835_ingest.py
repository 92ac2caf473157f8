"""Real 835 files in: the payer's claim payments become Remittance events."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from pipeline.ingest.remit835 import remittances_from_835
from pipeline.ingest.synthetic import generate
from pipeline.kafka.codec import codec_for
from pipeline.runtime.dryrun import Failure, InProcessPipeline
from processors.adjudication.x12_835 import write_835
from processors.contracts.topics import CLAIMS_REMITTANCE, CLAIMS_SUBMITTED
from processors.refdata import load_refdata

REFDATA = load_refdata()
CREATED = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def payer_files() -> tuple[list[str], dict[str, dict[str, Any]], list[dict[str, Any]]]:
    """835 files written from the simulator's answers to 300 encounters, with the claims."""
    outputs = [
        o
        for o in InProcessPipeline(REFDATA, 2026).run_all(generate(300, 17))
        if not isinstance(o, Failure)
    ]
    claims = {o.record["claim_id"]: o.record for o in outputs if o.topic is CLAIMS_SUBMITTED}
    remits = [
        o.record
        for o in outputs
        if o.topic is CLAIMS_REMITTANCE and o.record["payer_id"] != "SELFPAY"
    ]
    files = [
        text
        for _, text in write_835(remits, REFDATA.payers, receiver_id="PRACTICE", created=CREATED)
    ]
    return files, claims, remits


def test_every_claim_payment_becomes_a_remittance_event(payer_files: Any) -> None:
    """Claims, statuses, amounts, adjustments and remarks match what the payer sent."""
    files, claims, sent = payer_files
    records = [r for text in files for r in remittances_from_835(text, claims)]
    assert len(records) == len(sent)
    by_claim = {r["claim_id"]: r for r in sent}
    codec = codec_for(CLAIMS_REMITTANCE.value_schema)
    for record in records:
        original = by_claim[record["claim_id"]]
        assert codec.decode(codec.encode(record)) == record
        assert (
            record["claim_status_code"],
            record["paid_cents"],
            record["patient_responsibility_cents"],
            record["total_charge_cents"],
        ) == (
            original["claim_status_code"],
            original["paid_cents"],
            original["patient_responsibility_cents"],
            original["total_charge_cents"],
        )
        assert record["encounter_id"] == original["encounter_id"]
        assert record["member_key"] == original["member_key"]
        assert [
            (a["group_code"], a["carc"], a["amount_cents"])
            for ln in record["lines"]
            for a in ln["adjustments"]
        ] == [
            (a["group_code"], a["carc"], a["amount_cents"])
            for ln in original["lines"]
            for a in ln["adjustments"]
        ]


def test_the_same_file_twice_gives_the_same_remittance_ids(payer_files: Any) -> None:
    """Ids come from the payer's trace, claim and control numbers."""
    files, claims, _ = payer_files
    first = [r["remittance_id"] for r in remittances_from_835(files[0], claims)]
    again = [r["remittance_id"] for r in remittances_from_835(files[0], claims)]
    assert first == again
    assert len(set(first)) == len(first)


def test_payment_for_a_claim_we_did_not_submit_keeps_its_claim_id(payer_files: Any) -> None:
    """Without our claim on file the claim id stands in for the encounter."""
    files, _, _ = payer_files
    record = remittances_from_835(files[0], {})[0]
    assert record["encounter_id"] == record["claim_id"]
    assert record["payer_profile_version"].endswith("@835")


def test_a_file_that_does_not_balance_is_refused(payer_files: Any) -> None:
    """One cent taken off a claim payment: the file is refused with the claim named."""
    files, claims, _ = payer_files
    text = files[0]
    start = text.index("CLP*")
    fields = text[start : text.index("~", start)].split("*")
    fields[4] = f"{float(fields[4]) + 0.01:.2f}"
    broken = text[:start] + "*".join(fields) + text[text.index("~", start) :]
    with pytest.raises(ValueError, match=fields[1]):
        remittances_from_835(broken, claims)


HAND_BUILT = Path(__file__).parent.parent / "fixtures" / "835" / "ppo-2026-03-20.x12"


class TestHandBuiltFile:
    """An 835 written by hand from the 005010X221A1 rules: a payment, a partial payment with a
    line denied CO-50 (N115), a reversal and its replacement (REF*F8, MOA MA01), and interest
    paid as a provider-level adjustment (PLB L6)."""

    def test_pyx12_accepts_it(self) -> None:
        """The fixture itself is a valid 835."""
        from tests.x12_checks import pyx12_accepts

        assert pyx12_accepts(HAND_BUILT)

    def test_its_claims_become_remittances(self) -> None:
        """Statuses, paid amounts, remark codes and the replaced claim's control number."""
        records = remittances_from_835(HAND_BUILT.read_text(), {})
        assert [(r["claim_status_code"], r["paid_cents"]) for r in records] == [
            ("1", 8000),
            ("1", 8000),
            ("22", -6000),
            ("1", 6800),
        ]
        partial = records[1]
        assert partial["lines"][1]["rarcs"] == ["N115"]
        assert partial["lines"][1]["adjustments"][0]["carc"] == "50"
        assert partial["lines"][0]["modifiers"] == ["25"]
        reversal, replacement = records[2], records[3]
        assert reversal["total_charge_cents"] == -10000
        assert replacement["original_payer_claim_control_number"] == "PCCN00000003"
        assert replacement["rarcs"] == ["MA01"]
        codec = codec_for(CLAIMS_REMITTANCE.value_schema)
        assert all(codec.decode(codec.encode(r)) == r for r in records)

    def test_without_its_plb_the_payment_does_not_balance(self) -> None:
        """BPR02 is the claims' total plus the $1.25 interest; drop the PLB and it is refused."""
        text = "".join(
            line
            for line in HAND_BUILT.read_text().splitlines(keepends=True)
            if not line.startswith("PLB")
        )
        text = text.replace("SE*66*", "SE*65*")
        with pytest.raises(ValueError, match="BPR02"):
            remittances_from_835(text, {})

    def test_a_denied_line_routes_to_medical_necessity(self) -> None:
        """The partial payment's CO-50 with N115 is an appeal item in the appeals queue."""
        from processors.denials.rules import route_remittance

        record = remittances_from_835(HAND_BUILT.read_text(), {})[1]
        item = route_remittance(record, REFDATA, REFDATA.payers["PPO-SIM"], CREATED)
        assert item is not None
        assert (item["category"], item["queue"]) == ("medical_necessity", "appeals")

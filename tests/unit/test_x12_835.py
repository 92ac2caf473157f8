"""X12 835 output: pyx12 accepts every interchange, payments balance, and it reads back."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest

from pipeline.ingest.synthetic import generate
from pipeline.runtime.dryrun import Failure, InProcessPipeline
from pipeline.views.exports import write_835 as export_835_files
from processors.adjudication.rules import adjudicate
from processors.adjudication.x12_835 import parse_835, routing_number, write_835
from processors.contracts.claim import corrected_claim
from processors.contracts.topics import CLAIMS_REMITTANCE, CLAIMS_SUBMITTED
from processors.contracts.x12 import amount
from processors.memberstate import MemberState
from processors.refdata import load_refdata
from tests.x12_checks import assert_envelope, pyx12_accepts, segments

REFDATA = load_refdata()
CREATED = datetime(2026, 7, 1, 6, 30, tzinfo=UTC)
Record = dict[str, Any]


def pipeline_remittances(count: int, seed: int) -> list[Record]:
    """Remittances for *count* synthetic encounters, plus reversals of some of their claims.

    Every seventh submitted claim is replaced (a reversal, then the replacement's
    own remittance) and every eleventh of the rest voided (a reversal alone),
    filed 45 days after the original, so reversals land in later payments than
    the payments they take back.
    """
    pipe = InProcessPipeline(REFDATA, seed=2026)
    outputs = [o for o in pipe.run_all(generate(count, seed)) if not isinstance(o, Failure)]
    remits = [o.record for o in outputs if o.topic is CLAIMS_REMITTANCE]
    pccn = {r["claim_id"]: r["payer_claim_control_number"] for r in remits}
    submitted = [
        o
        for o in outputs
        if o.topic is CLAIMS_SUBMITTED
        and o.record["payer_id"] != "SELFPAY"
        and o.record["claim_id"] in pccn
    ]
    corrections = []
    for i, out in enumerate(submitted):
        frequency = "7" if i % 7 == 0 else "8" if i % 11 == 0 else None
        if frequency is None:
            continue
        original = out.record
        corrected = {
            **corrected_claim(original, frequency, pccn[original["claim_id"]]),
            "created_at": original["created_at"] + timedelta(days=45),
        }
        payer = REFDATA.payers[original["payer_id"]]
        result = adjudicate(corrected, payer, MemberState.load(pipe.state, out.key), REFDATA, 2026)
        result.member_state.commit(pipe.state)
        corrections += result.remittances
    return remits + corrections


def transactions(text: str) -> list[list[list[str]]]:
    """Each ST...SE transaction of the interchange, as segments."""
    out: list[list[list[str]]] = []
    for s in segments(text):
        if s[0] == "ST":
            out.append([])
        if out and s[0] not in ("GE", "IEA"):
            out[-1].append(s)
    return out


def cents(text: str) -> int:
    """Cents of an X12 decimal."""
    return round(float(text) * 100) if text else 0


def adjustment_keys(adjustments: list[Record]) -> list[tuple[str, str, int]]:
    """(group, CARC, cents) of each adjustment, in a fixed order."""
    return sorted((a["group_code"], a["carc"], a["amount_cents"]) for a in adjustments)


@pytest.fixture(scope="module")
def remittances() -> list[Record]:
    """Several hundred remittances: paid, partly paid, denied, reversed, across every payer."""
    return pipeline_remittances(800, seed=11)


@pytest.fixture(scope="module")
def payable(remittances: list[Record]) -> list[Record]:
    """The remittances an 835 carries (self-pay left out)."""
    return [r for r in remittances if r["payer_id"] != "SELFPAY"]


@pytest.fixture(scope="module")
def files(remittances: list[Record], tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """The 835 interchanges the export writes for the sample."""
    return export_835_files(remittances, tmp_path_factory.mktemp("x12-835"), REFDATA)


def test_the_sample_covers_what_the_835_must_carry(payable: list[Record]) -> None:
    """Paid, partly paid, denied and reversed claims; remark codes; dependents; ACH and check."""
    assert len(payable) > 500
    statuses = Counter(r["claim_status_code"] for r in payable)
    assert statuses["1"] > 300
    assert statuses["4"] > 20
    assert statuses["22"] > 20
    adjustments = {
        f"{a['group_code']}-{a['carc']}"
        for r in payable
        for ln in r["lines"]
        for a in ln["adjustments"]
    }
    assert {"CO-45", "PR-1", "PR-2", "PR-3"} <= adjustments
    assert any(
        r["paid_cents"] > 0
        and any(ln["paid_cents"] == 0 and ln["charge_cents"] > 0 for ln in r["lines"])
        for r in payable
    )
    assert any(r["rarcs"] for r in payable)
    assert any(ln["rarcs"] for r in payable for ln in r["lines"])
    assert any(ln["modifiers"] for r in payable for ln in r["lines"])
    assert any(r["subscriber"] for r in payable)
    assert any(not r["subscriber"] for r in payable)
    assert {r["payment_method"] for r in payable} == {"ACH", "CHK"}
    assert {r["payer_id"] for r in payable} == {"MCR-B-SIM", "MCD-SIM", "PPO-SIM", "HMO-SIM"}
    assert {"1", "7"} <= {r["frequency_code"] for r in payable}


def test_pyx12_accepts_every_interchange(files: list[Path]) -> None:
    """Every file passes pyx12's 005010X221A1 validation with no errors."""
    assert len(files) == 4
    for path in files:
        assert pyx12_accepts(path), f"pyx12 rejected {path.name}"


def test_a_broken_interchange_is_rejected(files: list[Path], tmp_path: Path) -> None:
    """The validation can fail: a claim status code the guide does not list is an error."""
    bad = tmp_path / "bad.x12"
    text = files[0].read_text()
    start = text.index("~CLP*")
    status_at = text.index("*", text.index("*", start + 1) + 1)  # after CLP01, before CLP02
    end = text.index("*", status_at + 1)
    bad.write_text(text[: status_at + 1] + "99" + text[end:])
    assert not pyx12_accepts(bad)


def test_the_export_writes_one_interchange_per_payer(files: list[Path]) -> None:
    """One file per payer, named payer-control.x12, control numbers counting up from 1."""
    assert [p.name for p in files] == [
        "HMO-SIM-000000001.x12",
        "MCD-SIM-000000002.x12",
        "MCR-B-SIM-000000003.x12",
        "PPO-SIM-000000004.x12",
    ]
    for path in files:
        segs = segments(path.read_text())
        assert segs[1][:2] == ["GS", "HP"]
        assert segs[0][6].strip() == path.name.rsplit("-", 1)[0]  # ISA06: the payer sends it


def test_control_numbers_and_segment_counts_match(files: list[Path]) -> None:
    """ISA13 = IEA02, GS06 = GE02, GE01 = transactions, SE01 = segments from ST to SE."""
    for path in files:
        assert_envelope(segments(path.read_text()))


def test_every_payment_is_its_claim_payments_less_provider_adjustments(files: list[Path]) -> None:
    """BPR02 = sum of CLP04 - sum of PLB amounts; never negative; H exactly when it is 0."""
    for path in files:
        for trx in transactions(path.read_text()):
            bpr = next(s for s in trx if s[0] == "BPR")
            paid = sum(cents(s[4]) for s in trx if s[0] == "CLP")
            plb = sum(cents(s[i]) for s in trx if s[0] == "PLB" for i in range(4, len(s), 2))
            assert cents(bpr[2]) == paid - plb >= 0
            assert (bpr[1] == "H") == (cents(bpr[2]) == 0)
            assert bpr[4] == "NON" if bpr[1] == "H" else bpr[4] in ("ACH", "CHK")


def test_every_claim_and_line_balances_in_the_text(files: list[Path]) -> None:
    """CLP03 - claim and line CAS = CLP04, and SVC02 - the line's CAS = SVC03, in every file."""

    def adjusted(cas: list[str]) -> int:
        return sum(cents(cas[i]) for i in range(3, len(cas), 3))

    claims = 0
    for path in files:
        clp: list[str] | None = None
        claim_cas = line_cas = 0
        svc: list[str] | None = None
        for s in [*segments(path.read_text()), ["CLP"]]:
            if s[0] in ("SVC", "CLP", "SE") and svc is not None:
                assert cents(svc[2]) - line_cas == cents(svc[3]), clp
                claim_cas += line_cas
                svc, line_cas = None, 0
            if s[0] in ("CLP", "SE") and clp is not None:
                assert cents(clp[3]) - claim_cas == cents(clp[4]), clp[1]
                claims += 1
                clp, claim_cas = None, 0
            if s[0] == "CLP" and len(s) > 1:
                clp = s
            elif s[0] == "SVC":
                svc = s
            elif s[0] == "CAS" and svc is not None:
                line_cas += adjusted(s)
            elif s[0] == "CAS":
                claim_cas += adjusted(s)
    assert claims > 500


def test_round_trip_gives_back_every_claim_as_written(
    files: list[Path], payable: list[Record]
) -> None:
    """Parsing the files gives each remittance's ids, status, amounts, adjustments and RARCs."""

    def key(r: Record) -> tuple[str, str, str]:
        return r["claim_id"], r["claim_status_code"], r["payer_claim_control_number"]

    parsed = {key(r): r for path in files for r in parse_835(path.read_text())}
    assert len(parsed) == len(payable)
    for want in payable:
        got = parsed[key(want)]
        for field in (
            "total_charge_cents",
            "paid_cents",
            "patient_responsibility_cents",
            "plan_type",
            "frequency_code",
            "original_payer_claim_control_number",
            "service_date_from",
            "service_date_to",
            "payer_received_date",
            "adjudicated_date",
            "payment_trace_number",
            "payer_id",
            "member_key",
            "rendering_npi",
            "rarcs",
        ):
            assert got[field] == want[field], (field, want["claim_id"])
        assert adjustment_keys(got["claim_adjustments"]) == adjustment_keys(
            want["claim_adjustments"]
        )
        assert got["payee"]["npi"] == want["payee"]["npi"]
        assert got["payee"]["tin"] == want["payee"]["tin"]
        assert len(got["lines"]) == len(want["lines"])
        for back, line in zip(got["lines"], want["lines"], strict=True):
            for field in (
                "line_number",
                "procedure_code",
                "modifiers",
                "units",
                "charge_cents",
                "allowed_cents",
                "paid_cents",
                "rarcs",
            ):
                assert back[field] == line[field], (field, want["claim_id"])
            assert adjustment_keys(back["adjustments"]) == adjustment_keys(line["adjustments"])


def test_reversals_carry_status_22_and_the_original_amounts_negated(
    files: list[Path], payable: list[Record]
) -> None:
    """A reversal repeats the original payment, under its control number, every amount negative."""
    originals = {
        r["claim_id"]: r
        for r in payable
        if r["claim_status_code"] != "22" and r["frequency_code"] == "1"
    }
    reversals = [
        r for path in files for r in parse_835(path.read_text()) if r["claim_status_code"] == "22"
    ]
    assert len(reversals) > 20
    for rev in reversals:
        original = originals[rev["claim_id"]]
        assert rev["total_charge_cents"] == -original["total_charge_cents"] < 0
        assert rev["paid_cents"] == -original["paid_cents"]
        assert rev["payer_claim_control_number"] == original["payer_claim_control_number"]
        for back, line in zip(rev["lines"], original["lines"], strict=True):
            assert back["charge_cents"] == -line["charge_cents"]
            assert back["paid_cents"] == -line["paid_cents"]
            assert adjustment_keys(back["adjustments"]) == adjustment_keys(
                [{**a, "amount_cents": -a["amount_cents"]} for a in line["adjustments"]]
            )


def test_a_payment_of_reversals_alone_forwards_its_balance(files: list[Path]) -> None:
    """Only reversals: a BPR notification of 0 and a PLB FB of the negative claim total."""
    found = 0
    for path in files:
        for trx in transactions(path.read_text()):
            claims = [s for s in trx if s[0] == "CLP"]
            if not all(s[2] == "22" for s in claims):
                continue
            bpr = next(s for s in trx if s[0] == "BPR")
            trn = next(s for s in trx if s[0] == "TRN")
            plb = [s for s in trx if s[0] == "PLB"]
            assert bpr[1:5] == ["H", "0", "C", "NON"]
            taken_back = sum(cents(s[4]) for s in claims)
            if taken_back == 0:  # the reversal of a denial takes nothing back
                assert not plb
                continue
            found += 1
            assert len(plb) == 1
            assert plb[0][3] == f"FB:{trn[2]}"
            assert cents(plb[0][4]) == taken_back < 0
    assert found > 0


def test_a_single_void_reversal_is_written_as_a_zero_notification(payable: list[Record]) -> None:
    """One reversal on its own: BPR*H*0, PLB FB, and it reads back without a balance error."""
    reversal = next(r for r in payable if r["claim_status_code"] == "22" and r["paid_cents"] < 0)
    [(name, text)] = write_835(
        [reversal], REFDATA.payers, receiver_id="CLAIMSPIPE", created=CREATED
    )
    assert name.startswith(reversal["payer_id"])
    [trx] = transactions(text)
    assert next(s for s in trx if s[0] == "BPR")[1:3] == ["H", "0"]
    assert next(s for s in trx if s[0] == "PLB")[4] == amount(reversal["paid_cents"])
    [back] = parse_835(text)
    assert back["paid_cents"] == reversal["paid_cents"]


def test_ach_payments_carry_the_bank_elements_and_checks_do_not(files: list[Path]) -> None:
    """ACH: CCP, ABA routing numbers with valid check digits, BPR10 = TRN03; CHK: none."""
    methods: Counter[str] = Counter()
    for path in files:
        for trx in transactions(path.read_text()):
            bpr = next(s for s in trx if s[0] == "BPR")
            trn = next(s for s in trx if s[0] == "TRN")
            methods[bpr[4]] += 1
            if bpr[4] == "ACH":
                assert [bpr[5], bpr[6], bpr[8], bpr[12], bpr[14]] == ["CCP", "01", "DA", "01", "DA"]
                assert all(bpr[i] for i in (7, 9, 13, 15))
                for routing in (bpr[7], bpr[13]):
                    assert routing == routing_number_check(routing)
                assert bpr[10] == trn[3]
            else:
                assert all(e == "" for e in bpr[5:16])
            assert len(bpr) == 17
            assert len(bpr[16]) == 8
    assert set(methods) == {"ACH", "CHK", "NON"}


def routing_number_check(routing: str) -> str:
    """*routing* (nine digits) with its check digit recomputed (ABA weights 3, 7, 1)."""
    assert len(routing) == 9
    weights = (3, 7, 1, 3, 7, 1, 3, 7)
    check = -sum(int(d) * w for d, w in zip(routing[:8], weights, strict=True)) % 10
    return routing[:8] + str(check)


def test_fictitious_routing_numbers_are_stable_and_valid() -> None:
    """The same party always gets the same routing number, with a valid ABA check digit."""
    assert routing_number("PPO-SIM") == routing_number("PPO-SIM")
    assert routing_number("PPO-SIM") != routing_number("HMO-SIM")
    number = routing_number("1548732019")
    assert number.startswith("5")
    assert routing_number_check(number) == number


def test_each_payment_holds_one_payee_date_and_trace(files: list[Path]) -> None:
    """A (payer, trace, payment date) appears in exactly one transaction."""
    seen: Counter[tuple[str, str, str]] = Counter()
    for path in files:
        for trx in transactions(path.read_text()):
            bpr = next(s for s in trx if s[0] == "BPR")
            trn = next(s for s in trx if s[0] == "TRN")
            seen[(path.name, trn[2], bpr[16])] += 1
    assert set(seen.values()) == {1}


def test_self_pay_remittances_are_left_out(remittances: list[Record], files: list[Path]) -> None:
    """Self-pay answers have no payer to send them: none is written, alone or mixed."""
    self_pay = [r for r in remittances if r["payer_id"] == "SELFPAY"]
    assert self_pay
    written = {s[1] for path in files for s in segments(path.read_text()) if s[0] == "CLP"}
    assert not written & {r["claim_id"] for r in self_pay}
    assert write_835(self_pay, REFDATA.payers, receiver_id="CLAIMSPIPE", created=CREATED) == []


def test_the_same_remittances_in_any_order_give_the_same_bytes(payable: list[Record]) -> None:
    """Transactions and the claims in them are ordered by the writer, not by arrival."""
    forward = write_835(payable, REFDATA.payers, receiver_id="CLAIMSPIPE", created=CREATED)
    backward = write_835(payable[::-1], REFDATA.payers, receiver_id="CLAIMSPIPE", created=CREATED)
    assert forward == backward


def test_a_reversal_comes_before_the_replacement_it_makes_way_for(files: list[Path]) -> None:
    """Within a payment, a replaced claim's reversal is written right before the new payment.

    A replacement of a denied claim has no reversal: nothing was paid to take back.
    """
    pairs = 0
    for path in files:
        claims = parse_835(path.read_text())
        reversed_pccns = {
            c["payer_claim_control_number"] for c in claims if c["claim_status_code"] == "22"
        }
        for before, claim in pairwise(claims):
            replaced = claim["original_payer_claim_control_number"]
            if claim["claim_status_code"] != "22" and replaced in reversed_pccns:
                assert before["claim_status_code"] == "22"
                assert before["payer_claim_control_number"] == replaced
                pairs += 1
    assert pairs > 0


def test_the_writer_refuses_a_claim_that_does_not_balance(payable: list[Record]) -> None:
    """One cent more paid than charge less adjustments: ValueError naming the claim only."""
    remit = next(r for r in payable if r["subscriber"] and r["paid_cents"] > 0)
    broken = {**remit, "paid_cents": remit["paid_cents"] + 1}
    with pytest.raises(ValueError, match=remit["claim_id"]) as caught:
        write_835([broken], REFDATA.payers, receiver_id="CLAIMSPIPE", created=CREATED)
    message = str(caught.value)
    for secret in (
        remit["member_key"],
        remit["patient"]["last_name"],
        remit["subscriber"]["last_name"],
    ):
        assert secret not in message


def test_the_writer_refuses_a_line_that_does_not_balance(payable: list[Record]) -> None:
    """A line paid more than its charge less its adjustments is named with its claim."""
    remit = next(r for r in payable if r["paid_cents"] > 0)
    line = {**remit["lines"][0], "paid_cents": remit["lines"][0]["paid_cents"] + 5}
    broken = {**remit, "lines": [line, *remit["lines"][1:]], "paid_cents": remit["paid_cents"] + 5}
    with pytest.raises(ValueError, match=f"claim {remit['claim_id']} line 1"):
        write_835([broken], REFDATA.payers, receiver_id="CLAIMSPIPE", created=CREATED)


def test_the_reader_refuses_a_claim_that_does_not_balance(files: list[Path]) -> None:
    """A CLP04 changed in the text no longer matches its charge less adjustments."""
    text = files[0].read_text()
    clp = next(s for s in segments(text) if s[0] == "CLP" and cents(s[4]) > 0)
    original = "*".join(clp)
    changed = "*".join([*clp[:4], amount(cents(clp[4]) + 100), *clp[5:]])
    with pytest.raises(ValueError, match=f"claim {clp[1]}"):
        parse_835(text.replace(original, changed, 1))


def test_the_reader_refuses_a_payment_that_does_not_add_up(files: list[Path]) -> None:
    """A BPR02 that is not the claims' payments less PLB names the transaction."""
    text = files[0].read_text()
    bpr = next(s for s in segments(text) if s[0] == "BPR" and s[1] == "I")
    original = "*".join(bpr)
    changed = "*".join([*bpr[:2], amount(cents(bpr[2]) + 1), *bpr[3:]])
    with pytest.raises(ValueError, match="BPR02"):
        parse_835(text.replace(original, changed, 1))


def test_the_reader_follows_the_delimiters_the_isa_declares(files: list[Path]) -> None:
    """Other element, component and segment separators, one segment a line, read the same."""
    text = files[0].read_text()
    other = text.replace("*", "|").replace(":", ">").replace("~", "~\n")
    assert parse_835(other) == parse_835(text)

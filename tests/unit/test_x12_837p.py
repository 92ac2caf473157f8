"""X12 837P output: pyx12 accepts every interchange, and the envelopes add up."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pipeline.ingest.synthetic import generate
from pipeline.views.exports import write_837p
from processors.claims.rules import build_claim
from processors.coding.rules import code_encounter
from processors.contracts.claim import corrected_claim
from processors.contracts.x12 import amount
from processors.refdata import load_refdata
from tests.x12_checks import assert_envelope, pyx12_accepts
from tests.x12_checks import segments as split_segments

REFDATA = load_refdata()


def synthetic_claims(count: int, seed: int) -> list[dict[str, Any]]:
    """Claims the pipeline would submit for *count* synthetic encounters."""
    claims = []
    for _, event in generate(count, seed):
        coded = code_encounter(event, REFDATA).coded
        if coded is None:
            continue
        result = build_claim(coded, REFDATA)
        if not result.held:
            claims.append(result.claim)
    return claims


def replacement(claim: dict[str, Any], frequency: str) -> dict[str, Any]:
    """A replacement (7) or void (8) of *claim*, referencing the payer's control number."""
    return corrected_claim(claim, frequency, f"PCN{claim['claim_id'][1:12]}")


def segments(path: Path) -> list[list[str]]:
    """The file's segments split into elements."""
    return split_segments(path.read_text())


@pytest.fixture(scope="module")
def interchanges(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Path], list[Any]]:
    """837P files for ~700 synthetic claims plus replacements and voids."""
    claims = synthetic_claims(900, seed=21)
    claims += [replacement(c, "7") for c in claims[:25]] + [
        replacement(c, "8") for c in claims[25:35]
    ]
    out = tmp_path_factory.mktemp("x12")
    return write_837p(claims, out), claims


def test_the_sample_covers_what_the_837p_must_carry(interchanges: Any) -> None:
    """Several hundred claims: multi-line, modifiers, secondary diagnoses, every payer, 7 and 8."""
    _, claims = interchanges
    payable = [c for c in claims if c["payer_id"] != "SELFPAY"]
    assert len(payable) > 500
    assert any(len(c["lines"]) > 2 for c in payable)
    assert any(ln["modifiers"] for c in payable for ln in c["lines"])
    assert any(len(c["diagnoses"]) > 2 for c in payable)
    assert any(c["relationship"] != "18" for c in payable)
    assert {c["frequency_code"] for c in payable} == {"1", "7", "8"}
    assert {c["payer_id"] for c in payable} == {"MCR-B-SIM", "MCD-SIM", "PPO-SIM", "HMO-SIM"}


def test_pyx12_accepts_every_interchange(interchanges: Any) -> None:
    """Every file passes pyx12's 005010X222A1 validation with no errors."""
    files, _ = interchanges
    assert len(files) == 4
    for path in files:
        assert pyx12_accepts(path), f"pyx12 rejected {path.name}"


def test_a_broken_interchange_is_rejected(interchanges: Any, tmp_path: Path) -> None:
    """The validation can fail: a non-numeric charge is an error."""
    files, _ = interchanges
    bad = tmp_path / "bad.x12"
    text = files[0].read_text()
    start = text.index("~SV1*")
    charge_at = text.index("*", text.index("*", start + 1) + 1)  # after SV101, before SV102
    bad.write_text(text[: charge_at + 1] + "abc" + text[charge_at + 1 :])
    assert not pyx12_accepts(bad)


def test_control_numbers_and_segment_counts_match(interchanges: Any) -> None:
    """ISA13 = IEA02, GS06 = GE02, GE01 = transactions, SE01 = segments from ST to SE."""
    files, _ = interchanges
    for path in files:
        assert_envelope(segments(path))


def test_claim_totals_equal_the_sum_of_their_lines(interchanges: Any) -> None:
    """CLM02 equals the sum of the claim's SV102 amounts, for every claim in the files."""
    files, _ = interchanges
    for path in files:
        total, lines = None, 0.0
        for s in [*segments(path), ["CLM", "", "0"]]:
            if s[0] == "CLM":
                if total is not None:
                    assert abs(total - lines) < 0.005
                total, lines = float(s[2]), 0.0
            elif s[0] == "SV1":
                lines += float(s[2])


def test_replacements_and_voids_carry_the_payer_control_number(interchanges: Any) -> None:
    """Frequency 7 and 8 claims have REF*F8 right after their CLM."""
    files, claims = interchanges
    expected = sum(c["frequency_code"] in ("7", "8") and c["payer_id"] != "SELFPAY" for c in claims)
    found = 0
    for path in files:
        segs = segments(path)
        for i, s in enumerate(segs):
            if s[0] == "CLM" and s[5].split(":")[2] in ("7", "8"):
                assert segs[i + 1][:2] == ["REF", "F8"]
                found += 1
    assert found == expected > 0


@pytest.mark.parametrize(
    ("cents", "text"), [(17500, "175"), (1250, "12.5"), (1205, "12.05"), (0, "0"), (-300, "-3")]
)
def test_amounts_are_x12_decimals(cents: int, text: str) -> None:
    """Integer cents become X12 decimals without trailing zeros."""
    assert amount(cents) == text


def test_round_trip_837p_matches_the_claim_records(interchanges: Any) -> None:
    """Parsing the interchanges back gives every claim field by field, as written."""
    from processors.claims.x12 import parse_837p

    files, claims = interchanges
    by_id = {c["claim_id"]: c for c in claims}
    parsed = [p for f in files for p in parse_837p(f.read_text())]
    assert len(parsed) == sum(c["payer_id"] != "SELFPAY" for c in claims)
    for back in parsed:
        claim = by_id[back["claim_id"]]
        for field in (
            "total_charge_cents",
            "place_of_service",
            "frequency_code",
            "payer_claim_control_number",
            "authorization_number",
            "referral_number",
            "diagnoses",
            "member_id",
            "payer_id",
            "relationship",
            "group_number",
            "plan_type",
        ):
            assert back[field] == claim[field], (field, back["claim_id"])
        assert back["billing_provider"]["npi"] == claim["billing_provider"]["npi"]
        assert back["billing_provider"]["tin"] == claim["billing_provider"]["tin"]
        assert back["rendering_provider"]["npi"] == claim["rendering_provider"]["npi"]
        assert (back["referring_provider"] or {}).get("npi") == (
            claim["referring_provider"] or {}
        ).get("npi")
        for who in ("subscriber", "patient"):
            assert back[who]["last_name"] == claim[who]["last_name"].upper()
            assert back[who]["first_name"] == claim[who]["first_name"].upper()
            assert back[who]["birth_date"] == claim[who]["birth_date"]
            assert back[who]["sex"] == claim[who]["sex"]
        assert len(back["lines"]) == len(claim["lines"])
        for got, want in zip(back["lines"], claim["lines"], strict=True):
            for field in (
                "procedure_code",
                "modifiers",
                "charge_cents",
                "units",
                "dx_pointers",
                "service_date",
            ):
                assert got[field] == want[field], (field, back["claim_id"])

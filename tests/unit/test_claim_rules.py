"""Claim assembly and the front-end scrubber."""

from __future__ import annotations

from typing import Any

import pytest

from processors.claims.rules import build_claim
from processors.coding.rules import code_encounter
from processors.ids import claim_id_for
from processors.npi import is_valid_npi, npi_check_digit
from processors.refdata import load_refdata
from tests.builders import encounter, procedure

REFDATA = load_refdata()


def claim_for(**overrides: Any) -> Any:
    """The ClaimResult for an encounter with *overrides*."""
    coded = code_encounter(encounter(**overrides), REFDATA).coded
    assert coded is not None
    return build_claim(coded, REFDATA)


class TestNpi:
    def test_cms_example_npi_is_valid(self) -> None:
        """1234567893 is the check-digit example in the CMS NPI standard."""
        assert npi_check_digit("123456789") == 3
        assert is_valid_npi("1234567893")

    def test_a_wrong_check_digit_or_shape_is_invalid(self) -> None:
        """One digit off, nine digits, letters or a leading 3 all fail."""
        assert not is_valid_npi("1234567890")
        assert not is_valid_npi("123456789")
        assert not is_valid_npi("12345678A3")
        assert not is_valid_npi("3234567893")


class TestAssembly:
    def test_lines_are_priced_from_the_chargemaster_times_units(self) -> None:
        """99213 and two units of 36415 are charged at their chargemaster prices."""
        result = claim_for(procedures=[procedure("99213"), procedure("36415", units=2)])
        charges = [ln["charge_cents"] for ln in result.claim["lines"]]
        assert charges == [REFDATA.charges_cents["99213"], 2 * REFDATA.charges_cents["36415"]]
        assert result.claim["total_charge_cents"] == sum(charges)
        assert not result.held

    def test_claim_id_is_deterministic_per_encounter_and_frequency(self) -> None:
        """The same encounter always gets the same claim id; a replacement gets another."""
        first = claim_for().claim["claim_id"]
        assert first == claim_for().claim["claim_id"] == claim_id_for("ENC-1")
        assert claim_id_for("ENC-1", "7") != first
        assert len(first) <= 20

    def test_self_pay_bills_the_patient_account(self) -> None:
        """Without coverage the claim names SELFPAY and the patient as subscriber."""
        claim = claim_for(coverage=None).claim
        assert claim["payer_id"] == "SELFPAY"
        assert claim["member_id"] == claim["patient"]["person_id"]
        assert claim["relationship"] == "18"


class TestScrubber:
    def test_invalid_rendering_npi_is_held(self) -> None:
        """An NPI failing its check digit holds the claim for billing."""
        event = encounter()
        event["rendering_provider"]["npi"] = "1987654320"
        coded = code_encounter(event, REFDATA).coded
        assert coded is not None
        result = build_claim(coded, REFDATA)
        assert result.held
        assert [f["edit_id"] for f in result.findings] == ["SCRUB-NPI"]

    def test_unknown_payer_is_held(self) -> None:
        """A payer with no profile cannot be billed."""
        event = encounter()
        event["coverage"]["payer_id"] = "NOPE"
        coded = code_encounter(event, REFDATA).coded
        assert coded is not None
        assert [f["edit_id"] for f in build_claim(coded, REFDATA).findings] == ["SCRUB-PAYER"]

    def test_billing_provider_without_tax_id_is_held(self) -> None:
        """The 837P needs the billing provider's TIN."""
        event = encounter()
        event["billing_provider"]["tin"] = None
        coded = code_encounter(event, REFDATA).coded
        assert coded is not None
        assert [f["edit_id"] for f in build_claim(coded, REFDATA).findings] == [
            "SCRUB-BILLING-PROVIDER"
        ]


class TestScrubberRequiredFieldsAndDates:
    def test_missing_birth_date_and_member_id_are_held(self) -> None:
        """The 837P subscriber loop needs a birth date and the member id."""
        coded = code_encounter(encounter(), REFDATA).coded
        assert coded is not None
        claim = build_claim(coded, REFDATA).claim
        from processors.claims.rules import scrub

        claim["subscriber"] = {**claim["subscriber"], "birth_date": None}
        claim["member_id"] = ""
        (found,) = [f for f in scrub(claim, REFDATA) if f["edit_id"] == "SCRUB-REQUIRED"]
        assert "subscriber birth date" in found["message"]
        assert "member id" in found["message"]

    def test_service_after_the_claim_was_created_is_held(self) -> None:
        """A date of service later than the claim's creation is a hard SCRUB-DATES."""
        from datetime import UTC, datetime

        result = claim_for(received_at=datetime(2026, 3, 1, tzinfo=UTC))
        assert [f["edit_id"] for f in result.findings] == ["SCRUB-DATES"]

    def test_commercial_payer_requires_a_group_number(self) -> None:
        """The PPO profile lists group_number as required; without it the claim is held."""
        event = encounter()
        event["coverage"]["group_number"] = None
        coded = code_encounter(event, REFDATA).coded
        assert coded is not None
        assert [f["edit_id"] for f in build_claim(coded, REFDATA).findings] == [
            "SCRUB-PAYER-FIELDS"
        ]

    def test_medicare_does_not_require_a_group_number(self) -> None:
        """Medicare has no group number; its claims pass without one."""
        from tests.builders import coverage

        event = encounter(coverage=coverage("MCR-B-SIM", "1EG4TE5MK73", "MB"))
        event["coverage"]["group_number"] = None
        coded = code_encounter(event, REFDATA).coded
        assert coded is not None
        assert build_claim(coded, REFDATA).findings == []


class TestSplitting:
    def test_a_claim_past_fifty_lines_is_split_into_claims_of_fifty(self) -> None:
        """60 lines become a 50-line and a 10-line claim, each with its own id and total."""
        from processors.claims.rules import split_claim

        claim = claim_for().claim
        line = claim["lines"][0]
        claim["diagnoses"] = ["I10", "E119", "E785"]
        claim["lines"] = [
            {**line, "line_number": n, "dx_pointers": [3 if n > 50 else 1]} for n in range(1, 61)
        ]
        claim["total_charge_cents"] = 60 * line["charge_cents"]
        parts = split_claim(claim)
        assert [len(p["lines"]) for p in parts] == [50, 10]
        assert len({p["claim_id"] for p in parts}) == 2
        assert [p["total_charge_cents"] for p in parts] == [
            50 * line["charge_cents"],
            10 * line["charge_cents"],
        ]
        assert parts[1]["diagnoses"] == ["E785"]
        assert parts[1]["lines"][0]["dx_pointers"] == [1]
        assert parts[1]["lines"][0]["line_number"] == 1
        assert split_claim(claim) == parts

    def test_fifty_lines_stay_one_claim(self) -> None:
        """At the limit the claim is not split."""
        from processors.claims.rules import split_claim

        claim = claim_for().claim
        claim["lines"] = [claim["lines"][0]] * 50
        assert split_claim(claim) == [claim]


def test_corrected_claims_get_their_own_id_and_reference_the_original() -> None:
    """A replacement and a void of one claim have distinct deterministic ids and the PCN."""
    from processors.contracts.claim import corrected_claim

    original = claim_for().claim
    seven = corrected_claim(original, "7", "PCN123")
    eight = corrected_claim(original, "8", "PCN123")
    assert len({original["claim_id"], seven["claim_id"], eight["claim_id"]}) == 3
    assert seven == corrected_claim(original, "7", "PCN123")
    assert (seven["original_claim_id"], seven["payer_claim_control_number"]) == (
        original["claim_id"],
        "PCN123",
    )
    with pytest.raises(ValueError, match="7 or 8"):
        corrected_claim(original, "1", "PCN123")


def test_billing_provider_zip_must_have_nine_digits() -> None:
    """The 837P billing provider address needs the ZIP+4; five digits are held."""
    event = encounter()
    event["billing_provider"]["address"]["postal_code"] = "62701"
    coded = code_encounter(event, REFDATA).coded
    assert coded is not None
    assert [f["edit_id"] for f in build_claim(coded, REFDATA).findings] == [
        "SCRUB-BILLING-PROVIDER"
    ]


class TestEhrCharge:
    """The EHR's charge wins; the chargemaster fills only what is missing."""

    def test_without_an_ehr_charge_the_chargemaster_prices_the_line(self) -> None:
        (claim,) = claim_for(procedures=[procedure("99213")]).claims
        assert claim["lines"][0]["charge_cents"] == REFDATA.charges_cents["99213"]

    def test_an_ehr_charge_that_differs_is_billed_with_a_soft_finding(self) -> None:
        listed = REFDATA.charges_cents["99213"]
        line = {**procedure("99213"), "charge_cents": listed + 1234}
        result = claim_for(procedures=[line])
        (claim,) = result.claims
        assert claim["lines"][0]["charge_cents"] == listed + 1234
        assert claim["total_charge_cents"] == listed + 1234
        (differs,) = [f for f in claim["findings"] if f["edit_id"] == "SCRUB-CHARGE-DIFFERS"]
        assert differs["severity"] == "SOFT"
        assert f"${(listed + 1234) / 100:,.2f}" in differs["message"]

    def test_an_ehr_charge_equal_to_the_chargemaster_says_nothing(self) -> None:
        line = {**procedure("99213"), "charge_cents": REFDATA.charges_cents["99213"]}
        (claim,) = claim_for(procedures=[line]).claims
        assert not [f for f in claim["findings"] if f["edit_id"] == "SCRUB-CHARGE-DIFFERS"]

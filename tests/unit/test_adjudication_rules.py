"""The payer simulator: eligibility, filing limits, pricing and cost sharing."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest

from processors.adjudication.rules import adjudicate, is_denial, new_member_state
from processors.claims.rules import build_claim
from processors.coding.rules import code_encounter
from processors.refdata import load_refdata
from tests.builders import coverage, encounter, procedure

REFDATA = load_refdata()
PPO = REFDATA.payers["PPO-SIM"]


def claim(**overrides: Any) -> dict[str, Any]:
    """A built claim for an encounter with *overrides*."""
    coded = code_encounter(encounter(**overrides), REFDATA).coded
    assert coded is not None
    return build_claim(coded, REFDATA).claim


def carcs(remit: dict[str, Any]) -> list[tuple[str, str]]:
    """(group, CARC) of every line adjustment, in order."""
    return [(a["group_code"], a["carc"]) for ln in remit["lines"] for a in ln["adjustments"]]


def balanced(remit: dict[str, Any]) -> bool:
    """835 balancing: each line's charge = paid + adjustments."""
    return all(
        ln["charge_cents"] == ln["paid_cents"] + sum(a["amount_cents"] for a in ln["adjustments"])
        for ln in remit["lines"]
    )


class TestCostSharing:
    def test_first_visit_of_the_year_pays_copay_then_deductible(self) -> None:
        """A PPO office visit: CO-45 down to 55%, $30 copay, the rest to the deductible."""
        remit = adjudicate(claim(), PPO, new_member_state(), REFDATA).remittance
        charge = REFDATA.charges_cents["99213"]
        allowed = charge * 55 // 100
        assert carcs(remit) == [("CO", "45"), ("PR", "3"), ("PR", "1")]
        assert remit["paid_cents"] == 0
        assert remit["patient_responsibility_cents"] == allowed
        assert balanced(remit)
        assert not is_denial(remit)

    def test_once_the_deductible_is_met_coinsurance_applies(self) -> None:
        """With the $1,500 deductible met, the member owes copay plus 20%; the payer the rest."""
        state = new_member_state()
        state["years"]["2026"] = [150_000, 150_000]
        remit = adjudicate(claim(), PPO, state, REFDATA).remittance
        allowed = REFDATA.charges_cents["99213"] * 55 // 100
        coins = (allowed - 3000) * 20 // 100
        assert carcs(remit) == [("CO", "45"), ("PR", "3"), ("PR", "2")]
        assert remit["paid_cents"] == allowed - 3000 - coins
        assert balanced(remit)

    def test_out_of_pocket_maximum_caps_patient_responsibility(self) -> None:
        """A member $10 short of the $5,000 maximum owes at most $10 more."""
        state = new_member_state()
        state["years"]["2026"] = [150_000, 500_000 - 1000]
        remit = adjudicate(claim(), PPO, state, REFDATA).remittance
        assert remit["patient_responsibility_cents"] == 1000
        assert balanced(remit)

    def test_accumulators_carry_from_one_claim_to_the_next(self) -> None:
        """Two claims for one member: the second sees the deductible the first applied."""
        first = adjudicate(claim(encounter_id="E1"), PPO, new_member_state(), REFDATA)
        second = adjudicate(claim(encounter_id="E2", procedures=[procedure("80053")]), PPO,
                            first.member_state, REFDATA)
        applied = first.member_state["years"]["2026"][0]
        assert applied > 0
        assert second.member_state["years"]["2026"][0] > applied

    def test_redelivered_claim_gives_the_same_remittance(self) -> None:
        """Adjudicating the same claim again from the updated state repeats the first answer."""
        c = claim()
        first = adjudicate(c, PPO, new_member_state(), REFDATA)
        again = adjudicate(c, PPO, first.member_state, REFDATA)
        assert again.remittance == first.remittance
        assert again.member_state == first.member_state

    def test_medicare_denies_a_routine_physical_as_non_covered(self) -> None:
        """99396 under Medicare Part B is CO-49 with the benefit remark."""
        medicare = REFDATA.payers["MCR-B-SIM"]
        c = claim(procedures=[procedure("99396")], diagnoses=["Z0000"],
                  coverage=coverage("MCR-B-SIM", "1EG4TE5MK73", "MB"))
        remit = adjudicate(c, medicare, new_member_state(), REFDATA).remittance
        assert carcs(remit) == [("CO", "49")]
        assert remit["claim_status_code"] == "4"
        assert remit["lines"][0]["rarcs"] == ["N130"]


class TestDenials:
    @pytest.mark.parametrize(("overrides", "carc"), [
        ({"coverage": coverage(member_id="XX12")}, "31"),
        ({"coverage": coverage(terminated=date(2026, 2, 28))}, "27"),
        ({"coverage": coverage(effective=date(2026, 3, 3))}, "26"),
        ({"received_at": datetime(2026, 6, 1, tzinfo=UTC)}, "29"),
    ])
    def test_claim_level_denials_use_the_payers_carc(self, overrides: dict[str, Any],
                                                      carc: str) -> None:
        """Eligibility and filing-limit failures deny every line with the right CARC."""
        remit = adjudicate(claim(**overrides), PPO, new_member_state(), REFDATA).remittance
        assert remit["claim_status_code"] == "4"
        assert {c for _, c in carcs(remit)} == {carc}
        assert remit["paid_cents"] == 0
        assert balanced(remit)
        assert is_denial(remit)

    def test_filing_on_the_last_day_is_timely(self) -> None:
        """90 days after the service date is still within the PPO's 90-day limit."""
        remit = adjudicate(claim(received_at=datetime(2026, 5, 31, tzinfo=UTC)), PPO,
                           new_member_state(), REFDATA).remittance
        assert remit["claim_status_code"] == "1"

    def test_advanced_imaging_without_authorization_is_denied_197(self) -> None:
        """An MRI without a prior authorization number: line denied CO-197, visit still paid."""
        c = claim(procedures=[procedure("99213"), procedure("72148")], diagnoses=["M5450"])
        remit = adjudicate(c, PPO, new_member_state(), REFDATA).remittance
        assert remit["claim_status_code"] == "1"
        assert remit["lines"][1]["adjustments"][0]["carc"] == "197"
        assert is_denial(remit)

    def test_same_service_under_another_encounter_is_a_duplicate(self) -> None:
        """A second claim for the same member, date, clinician and codes is denied CO-18."""
        first = adjudicate(claim(encounter_id="E1"), PPO, new_member_state(), REFDATA)
        dup = adjudicate(claim(encounter_id="E2"), PPO, first.member_state, REFDATA)
        assert {c for _, c in carcs(dup.remittance)} == {"18"}

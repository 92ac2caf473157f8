"""The payer simulator: fee schedules, cost sharing, payer rules, noise and reversals."""

from __future__ import annotations

import dataclasses
import json
import shutil
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import pytest

from processors.adjudication.rules import (
    adjudicate,
    new_member_state,
    noise_category,
    service_fingerprint,
)
from processors.contracts.claim import corrected_claim
from processors.contracts.remittance import DENIED, PROCESSED_PRIMARY, REVERSAL, is_denial
from processors.ids import claim_id_for
from processors.refdata import (
    DENIAL_CATEGORIES,
    PAYERS_DIR,
    PayerProfile,
    load_payers,
    load_refdata,
)
from tests.builders import ADDRESS, coverage, procedure
from tests.builders import built_claim as claim

REFDATA = load_refdata()


def quiet(payer_id: str, **changes: Any) -> PayerProfile:
    """The shipped profile of *payer_id* without noise denials, with *changes*."""
    return dataclasses.replace(REFDATA.payers[payer_id], denial_rates={}, **changes)


PPO = quiet("PPO-SIM")
MEDICARE = quiet("MCR-B-SIM")
HMO = quiet("HMO-SIM")
MEDICARE_COVERAGE = {"coverage": coverage("MCR-B-SIM", "1EG4TE5MK73", "MB")}
OHIO = {
    "line1": "100 High St",
    "line2": None,
    "city": "Columbus",
    "state": "OH",
    "postal_code": "432151234",
}


def ohio_claim(**overrides: Any) -> dict[str, Any]:
    """A claim from a practice in Columbus, Ohio (one statewide Medicare locality)."""
    c = claim(**overrides)
    c["billing_provider"] = {**c["billing_provider"], "address": OHIO}
    return c


def carcs(remit: dict[str, Any]) -> list[tuple[str, str]]:
    """(group, CARC) of every line adjustment, in order."""
    return [(a["group_code"], a["carc"]) for ln in remit["lines"] for a in ln["adjustments"]]


def balanced(remit: dict[str, Any]) -> bool:
    """835 balancing: each line's charge = paid + adjustments, and the claim sums its lines."""
    lines_ok = all(
        ln["charge_cents"] == ln["paid_cents"] + sum(a["amount_cents"] for a in ln["adjustments"])
        for ln in remit["lines"]
    )
    return lines_ok and remit["paid_cents"] == sum(ln["paid_cents"] for ln in remit["lines"])


def dollars_to_cents(amount: Decimal) -> int:
    """Round a dollar amount to whole cents as CMS does."""
    return int(amount.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP) * 100)


# CY2026 values read from the CMS files (PPRRVU2026_Jul_nonQPP, GPCI 2026 Addendum E).
CF_2026 = Decimal("33.4009")
OHIO_GPCI = (Decimal("1.000"), Decimal("0.913"), Decimal("1.008"))
RVU_99213 = (Decimal("1.30"), Decimal("1.46"), Decimal("0.33"), Decimal("0.09"))


def pfs_99213(gpci: tuple[Decimal, Decimal, Decimal], facility: bool = False) -> int:
    """The 99213 PFS amount computed by hand from the CMS rows."""
    work, pe_nf, pe_f, mp = RVU_99213
    pe = pe_f if facility else pe_nf
    return dollars_to_cents((work * gpci[0] + pe * gpci[1] + mp * gpci[2]) * CF_2026)


class TestFeeSchedule:
    def test_medicare_pays_the_physician_fee_schedule_amount_of_the_locality(self) -> None:
        """99213 in Ohio: (work x GPCI + PE x GPCI + MP x GPCI) x CF, less the deductible."""
        remit = adjudicate(ohio_claim(**MEDICARE_COVERAGE), MEDICARE, None, REFDATA).remittance
        assert remit["lines"][0]["allowed_cents"] == pfs_99213(OHIO_GPCI) == 9097

    def test_facility_place_of_service_uses_the_facility_practice_expense(self) -> None:
        """The same visit in an outpatient hospital (POS 22) is priced with the facility PE."""
        c = ohio_claim(**MEDICARE_COVERAGE, place_of_service="22")
        remit = adjudicate(c, MEDICARE, None, REFDATA).remittance
        assert remit["lines"][0]["allowed_cents"] == pfs_99213(OHIO_GPCI, facility=True)

    def test_state_with_several_localities_is_priced_at_the_national_amount(self) -> None:
        """Illinois has four localities; without a ZIP table the national GPCI of 1.0 is used."""
        remit = adjudicate(claim(**MEDICARE_COVERAGE), MEDICARE, None, REFDATA).remittance
        assert ADDRESS["state"] == "IL"
        one = (Decimal(1), Decimal(1), Decimal(1))
        assert remit["lines"][0]["allowed_cents"] == pfs_99213(one)

    def test_clinical_lab_is_paid_from_the_lab_fee_schedule(self) -> None:
        """80053 is paid its CLFS national limit ($10.56), not from RVUs."""
        c = ohio_claim(**MEDICARE_COVERAGE, procedures=[procedure("99213"), procedure("80053")])
        remit = adjudicate(c, MEDICARE, None, REFDATA).remittance
        assert remit["lines"][1]["allowed_cents"] == 1056

    def test_drug_is_paid_at_the_asp_limit_times_units(self) -> None:
        """Four 10 mg units of J3301 at $0.844 a unit is $3.38, rounded once per line."""
        c = ohio_claim(
            **MEDICARE_COVERAGE,
            diagnoses=["M1711"],
            procedures=[procedure("20610"), procedure("J3301", units=4)],
        )
        remit = adjudicate(c, MEDICARE, None, REFDATA).remittance
        assert remit["lines"][1]["allowed_cents"] == 338

    def test_commercial_payer_allows_a_percentage_of_the_medicare_amount(self) -> None:
        """The PPO pays 122% of Medicare's 99213 amount."""
        remit = adjudicate(ohio_claim(), PPO, None, REFDATA).remittance
        assert remit["lines"][0]["allowed_cents"] == pfs_99213(OHIO_GPCI) * 122 // 100

    def test_code_no_schedule_prices_falls_back_to_a_percentage_of_charge(self) -> None:
        """G0008 has no RVUs (PFS status X): the profile's percentage of charge applies."""
        c = ohio_claim(**MEDICARE_COVERAGE, diagnoses=["Z23"], procedures=[procedure("G0008")])
        remit = adjudicate(c, MEDICARE, None, REFDATA).remittance
        charge = REFDATA.charges_cents["G0008"]
        assert (
            remit["lines"][0]["allowed_cents"] == charge * MEDICARE.allowed_percent_of_charge // 100
        )
        assert remit["lines"][0]["adjustments"][0]["rule_id"] == "FEE-PERCENT-OF-CHARGE"

    def test_allowed_amount_never_exceeds_the_charge(self) -> None:
        """Medicare pays the lesser of the charge and the fee schedule amount."""
        c = ohio_claim(**MEDICARE_COVERAGE)
        c["lines"][0]["charge_cents"] = 5000
        c["total_charge_cents"] = 5000
        remit = adjudicate(c, MEDICARE, None, REFDATA).remittance
        assert remit["lines"][0]["allowed_cents"] == 5000
        assert ("CO", "45") not in carcs(remit)


class TestCostSharing:
    def test_office_visit_costs_the_member_only_the_copay(self) -> None:
        """A PPO office visit: CO-45 to the contracted rate, $30 copay, no deductible."""
        remit = adjudicate(ohio_claim(), PPO, new_member_state(), REFDATA).remittance
        allowed = remit["lines"][0]["allowed_cents"]
        assert carcs(remit) == [("CO", "45"), ("PR", "3")]
        assert remit["paid_cents"] == allowed - 3000
        assert remit["patient_responsibility_cents"] == 3000
        assert balanced(remit)
        assert not is_denial(remit)

    def test_lab_goes_to_the_deductible_first(self) -> None:
        """A lab beside the visit: the visit's copay, then the lab's allowed amount to PR-1."""
        c = ohio_claim(procedures=[procedure("99213"), procedure("80053")])
        remit = adjudicate(c, PPO, new_member_state(), REFDATA).remittance
        lab = remit["lines"][1]
        assert [(a["group_code"], a["carc"]) for a in lab["adjustments"]][-1] == ("PR", "1")
        assert lab["paid_cents"] == 0
        assert balanced(remit)

    def test_once_the_deductible_is_met_coinsurance_applies(self) -> None:
        """With the $1,500 deductible met, the member owes 20% of the lab."""
        state = new_member_state()
        state.set_year("2026", {"deductible": 150_000, "out_of_pocket": 150_000, "uses": {}})
        c = ohio_claim(procedures=[procedure("99213"), procedure("80053")])
        lab = adjudicate(c, PPO, state, REFDATA).remittance["lines"][1]
        coins = lab["allowed_cents"] * 20 // 100
        assert [(a["carc"], a["amount_cents"]) for a in lab["adjustments"]][-1] == ("2", coins)
        assert lab["paid_cents"] == lab["allowed_cents"] - coins

    def test_medicare_takes_the_deductible_then_twenty_percent(self) -> None:
        """Part B: $283 deductible, then 20% coinsurance of what is left."""
        state = new_member_state()
        state.set_year("2026", {"deductible": 28_300 - 1000, "out_of_pocket": 0, "uses": {}})
        remit = adjudicate(ohio_claim(**MEDICARE_COVERAGE), MEDICARE, state, REFDATA).remittance
        allowed = remit["lines"][0]["allowed_cents"]
        coins = (allowed - 1000) * 20 // 100
        assert carcs(remit)[1:] == [("PR", "1"), ("PR", "2")]
        assert remit["patient_responsibility_cents"] == 1000 + coins
        assert remit["paid_cents"] == allowed - 1000 - coins

    def test_out_of_pocket_maximum_caps_patient_responsibility(self) -> None:
        """A member $10 short of the $5,000 maximum owes at most $10 more."""
        state = new_member_state()
        state.set_year("2026", {"deductible": 150_000, "out_of_pocket": 500_000 - 1000, "uses": {}})
        remit = adjudicate(ohio_claim(), PPO, state, REFDATA).remittance
        assert remit["patient_responsibility_cents"] == 1000
        assert balanced(remit)

    def test_accumulators_carry_from_one_claim_to_the_next(self) -> None:
        """Two claims for one member: the second sees the deductible the first applied."""
        first = adjudicate(
            claim(encounter_id="E1", procedures=[procedure("80053")]),
            PPO,
            new_member_state(),
            REFDATA,
        )
        second = adjudicate(
            claim(encounter_id="E2", procedures=[procedure("80061")], diagnoses=["E785"]),
            PPO,
            first.member_state,
            REFDATA,
        )
        applied = first.member_state.year("2026")["deductible"]
        assert applied > 0
        assert second.member_state.year("2026")["deductible"] > applied

    def test_redelivered_claim_gives_the_same_remittance(self) -> None:
        """Adjudicating the same claim again from the updated state repeats the first answer."""
        c = claim(procedures=[procedure("80053")])
        first = adjudicate(c, PPO, new_member_state(), REFDATA)
        again = adjudicate(c, PPO, first.member_state, REFDATA)
        assert again.remittances == first.remittances
        assert again.member_state.rows() == first.member_state.rows()

    def test_adjudicating_leaves_the_callers_state_untouched(self) -> None:
        """The state passed in is not changed; the new one is returned."""
        state = new_member_state()
        adjudicate(claim(procedures=[procedure("80053")]), PPO, state, REFDATA)
        assert state.rows() == new_member_state().rows()


class TestClaimDenials:
    @pytest.mark.parametrize(
        ("overrides", "carc"),
        [
            ({"coverage": coverage(member_id="XX12")}, "31"),
            ({"coverage": coverage(terminated=date(2026, 2, 28))}, "27"),
            ({"coverage": coverage(effective=date(2026, 3, 3))}, "26"),
            ({"received_at": datetime(2026, 6, 1, tzinfo=UTC)}, "29"),
        ],
    )
    def test_claim_level_denials_use_the_payers_carc(
        self, overrides: dict[str, Any], carc: str
    ) -> None:
        """Eligibility and filing-limit failures deny every line with the right CARC."""
        remit = adjudicate(claim(**overrides), PPO, new_member_state(), REFDATA).remittance
        assert remit["claim_status_code"] == DENIED
        assert {c for _, c in carcs(remit)} == {carc}
        assert remit["paid_cents"] == 0
        assert balanced(remit)
        assert is_denial(remit)

    def test_filing_on_the_last_day_is_timely(self) -> None:
        """90 days after the service date is still within the PPO's 90-day limit."""
        remit = adjudicate(
            claim(received_at=datetime(2026, 5, 31, tzinfo=UTC)), PPO, new_member_state(), REFDATA
        ).remittance
        assert remit["claim_status_code"] == PROCESSED_PRIMARY

    def test_same_service_under_another_encounter_is_a_duplicate(self) -> None:
        """A second claim for the same member, date, clinician and codes is denied CO-18."""
        first = adjudicate(claim(encounter_id="E1"), PPO, new_member_state(), REFDATA)
        dup = adjudicate(claim(encounter_id="E2"), PPO, first.member_state, REFDATA)
        assert {c for _, c in carcs(dup.remittance)} == {"18"}
        assert dup.remittance["rarcs"] == ["M86"]

    def test_claim_missing_a_field_the_payer_requires_is_denied_16_with_a_remark(self) -> None:
        """No group number on a PPO claim: CO-16 with MA130 (unprocessable, resubmit)."""
        c = claim()
        c["group_number"] = None
        remit = adjudicate(c, PPO, None, REFDATA).remittance
        assert {c for _, c in carcs(remit)} == {"16"}
        assert remit["rarcs"] == ["MA130"]


class TestLineRules:
    def test_medicare_denies_a_routine_physical_as_non_covered(self) -> None:
        """99396 under Medicare Part B is CO-49 with the benefit remark."""
        c = claim(procedures=[procedure("99396")], diagnoses=["Z0000"], **MEDICARE_COVERAGE)
        remit = adjudicate(c, MEDICARE, new_member_state(), REFDATA).remittance
        assert carcs(remit) == [("CO", "49")]
        assert remit["claim_status_code"] == DENIED
        assert remit["lines"][0]["rarcs"] == ["N130"]

    def test_pfs_status_n_code_is_not_covered_by_medicare(self) -> None:
        """Without the profile's own rule, PFS status N (99396) still denies: CO-96, N130."""
        payer = dataclasses.replace(MEDICARE, non_covered={})
        c = claim(procedures=[procedure("99396")], diagnoses=["Z0000"], **MEDICARE_COVERAGE)
        remit = adjudicate(c, payer, None, REFDATA).remittance
        assert carcs(remit) == [("CO", "96")]
        assert remit["lines"][0]["rarcs"] == ["N130"]

    def test_advanced_imaging_without_authorization_is_denied_197(self) -> None:
        """An MRI without a prior authorization number: line denied CO-197, visit still paid."""
        c = claim(procedures=[procedure("99213"), procedure("72148")], diagnoses=["M5450"])
        remit = adjudicate(c, PPO, new_member_state(), REFDATA).remittance
        assert remit["claim_status_code"] == PROCESSED_PRIMARY
        assert remit["lines"][1]["adjustments"][0]["carc"] == "197"
        assert is_denial(remit)

    def test_authorization_number_of_the_wrong_shape_is_denied_15(self) -> None:
        """The HMO's numbers are PA + 9 digits; anything else is CO-15 with N54."""
        hmo = coverage("HMO-SIM", "HMO123456789", "HM")
        c = claim(
            procedures=[procedure("99213"), procedure("72148")],
            diagnoses=["M5450"],
            coverage=hmo,
            authorization_number="AUTH-77",
        )
        c["group_number"] = "G1"
        line = adjudicate(c, HMO, None, REFDATA).remittance["lines"][1]
        assert (line["adjustments"][0]["carc"], line["rarcs"]) == ("15", ["N54"])
        c["authorization_number"] = "PA123456789"
        line = adjudicate(c, HMO, None, REFDATA).remittance["lines"][1]
        assert line["paid_cents"] > 0

    def test_service_that_needs_a_referral_is_denied_288_without_one(self) -> None:
        """A payer listing imaging under referral_required denies it CO-288 with no referral."""
        payer = dataclasses.replace(PPO, referral_required=("imaging",))
        c = claim(procedures=[procedure("99213"), procedure("71046")], diagnoses=["R051"])
        line = adjudicate(c, payer, None, REFDATA).remittance["lines"][1]
        assert line["adjustments"][0]["carc"] == "288"

    def test_lab_without_a_covered_diagnosis_is_not_medically_necessary(self) -> None:
        """HbA1c for fatigue alone: NCD 190.21 does not list R53.83, so CO-50 with N386."""
        c = claim(
            procedures=[procedure("99213"), procedure("83036", refs=[1])],
            diagnoses=["I10", "R5383"],
            **MEDICARE_COVERAGE,
        )
        line = adjudicate(c, MEDICARE, None, REFDATA).remittance["lines"][1]
        assert (line["adjustments"][0]["carc"], line["rarcs"]) == ("50", ["N386"])
        assert line["adjustments"][0]["rule_id"] == "COVERAGE-NCD-190.21"

    def test_lab_pointing_at_a_covered_diagnosis_is_paid(self) -> None:
        """HbA1c for type 2 diabetes (E11.9) is on the NCD 190.21 list."""
        c = claim(
            procedures=[procedure("99213"), procedure("83036", refs=[1])],
            diagnoses=["I10", "E119"],
            **MEDICARE_COVERAGE,
        )
        line = adjudicate(c, MEDICARE, None, REFDATA).remittance["lines"][1]
        assert not any(a["carc"] == "50" for a in line["adjustments"])
        assert line["allowed_cents"] == 971

    def test_coverage_list_applies_only_to_payers_that_adopt_it(self) -> None:
        """The PPO does not use the Medicare NCD lists: the same lab is priced."""
        c = claim(
            procedures=[procedure("99213"), procedure("83036", refs=[1])],
            diagnoses=["I10", "R5383"],
        )
        line = adjudicate(c, PPO, None, REFDATA).remittance["lines"][1]
        assert line["allowed_cents"] > 0

    def test_ncci_column_two_code_without_a_modifier_is_bundled_97(self) -> None:
        """96372 billed with 12001 and no distinct-service modifier: CO-97 with N20.

        Our coding stage holds such a claim; a claim coded elsewhere reaches the payer.
        """
        c = claim(
            procedures=[procedure("12001"), procedure("96372", modifiers=["XS"])],
            diagnoses=["S61411A"],
        )
        c["lines"][1]["modifiers"] = []
        remit = adjudicate(c, PPO, None, REFDATA).remittance
        line = remit["lines"][1]
        assert (line["adjustments"][0]["carc"], line["rarcs"]) == ("97", ["N20"])
        assert remit["lines"][0]["allowed_cents"] > 0

    def test_ncci_edit_passes_with_a_distinct_service_modifier(self) -> None:
        """The same pair with XS on the column 2 code is paid."""
        c = claim(
            procedures=[procedure("12001"), procedure("96372", modifiers=["XS"])],
            diagnoses=["S61411A"],
        )
        remit = adjudicate(c, PPO, None, REFDATA).remittance
        assert not any(a["carc"] == "97" for a in remit["lines"][1]["adjustments"])

    def test_second_preventive_visit_in_a_plan_year_exceeds_the_benefit(self) -> None:
        """The PPO covers one physical a year: the second is CO-119 with N130."""
        first = adjudicate(
            claim(encounter_id="E1", procedures=[procedure("99396")], diagnoses=["Z0000"]),
            PPO,
            None,
            REFDATA,
        )
        assert first.remittance["paid_cents"] > 0
        second = claim(
            encounter_id="E2",
            procedures=[procedure("99396")],
            diagnoses=["Z0000"],
            service_date=date(2026, 9, 1),
            received_at=datetime(2026, 9, 2, tzinfo=UTC),
        )
        line = adjudicate(second, PPO, first.member_state, REFDATA).remittance["lines"][0]
        assert (line["adjustments"][0]["carc"], line["rarcs"]) == ("119", ["N130"])


def claim_ids(n: int) -> list[str]:
    """*n* distinct claim ids."""
    return [f"C{i:08d}" for i in range(n)]


class TestNoise:
    @pytest.mark.parametrize("category", [c for c in DENIAL_CATEGORIES if c != "no_response"])
    def test_every_category_denies_with_its_carc(self, category: str) -> None:
        """A profile whose whole noise budget is one category denies with that category's CARC."""
        expected = {
            "eligibility": "27",
            "registration": "31",
            "coordination_of_benefits": "22",
            "missing_information": "16",
            "excluded_service": "204",
            "benefit_limit": "119",
            "authorization": "197",
            "medical_necessity": "50",
            "coding": "11",
            "bundling": "97",
            "duplicate": "18",
        }[category]
        payer = dataclasses.replace(PPO, denial_rates={category: 0.999})
        c = claim(
            procedures=[procedure("99213"), procedure("71046"), procedure("80053")],
            diagnoses=["R051"],
        )
        remit = adjudicate(c, payer, None, REFDATA, seed=1).remittance
        denied = {carc for group, carc in carcs(remit) if group == "CO" and carc != "45"}
        assert denied == {expected}
        assert is_denial(remit)
        assert balanced(remit)

    def test_a_claim_the_payer_never_answers_is_kept_awaiting_an_answer(self) -> None:
        """no_response: no remittance; the claim waits in the state with its filing date."""
        payer = dataclasses.replace(PPO, denial_rates={"no_response": 0.999})
        c = claim()
        result = adjudicate(c, payer, None, REFDATA, seed=1)
        assert result.remittances == []
        entry = result.member_state.claim(c["claim_id"])
        assert entry is not None
        assert entry["awaiting"] is not None
        assert entry["awaiting"]["filed"] == "2026-03-03"
        assert entry["answer"] is None
        again = adjudicate(c, payer, result.member_state, REFDATA, seed=1)
        assert again.remittances == []
        assert again.member_state.rows() == result.member_state.rows()

    def test_draw_depends_only_on_seed_claim_and_payer(self) -> None:
        """The same seed gives the same categories; another seed gives others."""
        payer = REFDATA.payers["PPO-SIM"]
        ids = claim_ids(2000)
        first = [noise_category(payer, 7, i) for i in ids]
        assert first == [noise_category(payer, 7, i) for i in ids]
        assert first != [noise_category(payer, 8, i) for i in ids]

    def test_categories_are_drawn_at_their_configured_rates(self) -> None:
        """Over 100,000 claims each category's share is within four standard errors of its rate."""
        payer = REFDATA.payers["PPO-SIM"]
        n = 100_000
        drawn = [noise_category(payer, 2026, i) for i in claim_ids(n)]
        for category, rate in payer.denial_rates.items():
            share = drawn.count(category) / n
            assert share == pytest.approx(rate, abs=4 * (rate * (1 - rate) / n) ** 0.5), category
        assert drawn.count(None) / len(drawn) == pytest.approx(
            1 - sum(payer.denial_rates.values()), rel=0.02
        )

    def test_profile_rejects_an_unknown_category(self) -> None:
        """A typo in denial_rates is an error naming the allowed categories."""
        with pytest.raises(ValueError, match="unknown categories"):
            dataclasses.replace(PPO, denial_rates={"eligibilty": 0.1})


class TestReversal:
    def paid_original(self) -> tuple[dict[str, Any], Any]:
        """A paid PPO claim with a lab that went to the deductible."""
        original = ohio_claim(procedures=[procedure("99213"), procedure("80053")])
        result = adjudicate(original, PPO, None, REFDATA)
        assert result.remittance["claim_status_code"] == PROCESSED_PRIMARY
        return original, result

    def test_replacement_reverses_the_original_then_pays_the_new_claim(self) -> None:
        """Frequency 7: a CLP02 22 with every amount negated, then the replacement's answer."""
        original, first = self.paid_original()
        pccn = first.remittance["payer_claim_control_number"]
        replacement = corrected_claim(original, "7", pccn)
        result = adjudicate(replacement, PPO, first.member_state, REFDATA)
        reversal, answer = result.remittances
        assert reversal["claim_status_code"] == REVERSAL
        assert reversal["claim_id"] == original["claim_id"]
        assert reversal["in_response_to"] == replacement["claim_id"]
        assert reversal["payer_claim_control_number"] == pccn
        assert reversal["paid_cents"] == -first.remittance["paid_cents"]
        assert reversal["total_charge_cents"] == -first.remittance["total_charge_cents"]
        assert balanced(reversal)
        assert not is_denial(reversal)
        assert answer["claim_id"] == replacement["claim_id"]
        assert answer["original_payer_claim_control_number"] == pccn
        assert answer["remittance_id"] != first.remittance["remittance_id"]
        assert answer["claim_status_code"] == PROCESSED_PRIMARY, "not a duplicate of itself"

    def test_reversal_gives_the_member_back_what_the_original_took(self) -> None:
        """After the replacement the year's deductible counts it once, not twice."""
        original, first = self.paid_original()
        taken = first.member_state.year("2026")["deductible"]
        assert taken > 0
        replacement = corrected_claim(original, "7", first.remittance["payer_claim_control_number"])
        result = adjudicate(replacement, PPO, first.member_state, REFDATA)
        assert result.member_state.year("2026")["deductible"] == taken

    def test_redelivered_replacement_repeats_both_remittances(self) -> None:
        """The replacement again: identical reversal and answer, accumulators unchanged."""
        original, first = self.paid_original()
        replacement = corrected_claim(original, "7", first.remittance["payer_claim_control_number"])
        once = adjudicate(replacement, PPO, first.member_state, REFDATA)
        twice = adjudicate(replacement, PPO, once.member_state, REFDATA)
        assert twice.remittances == once.remittances
        assert twice.member_state.rows() == once.member_state.rows()

    def test_void_reverses_the_original_and_pays_nothing_new(self) -> None:
        """Frequency 8: only the reversal, and the service is no longer on file."""
        original, first = self.paid_original()
        void = corrected_claim(original, "8", first.remittance["payer_claim_control_number"])
        result = adjudicate(void, PPO, first.member_state, REFDATA)
        assert [r["claim_status_code"] for r in result.remittances] == [REVERSAL]
        assert result.member_state.year("2026")["deductible"] == 0
        assert result.member_state.service(service_fingerprint(original)) is None

    def test_void_of_a_claim_the_payer_never_saw_is_denied(self) -> None:
        """Nothing to reverse: the void is denied CO-16 with MA130."""
        original = claim()
        void = corrected_claim(original, "8", "UNKNOWN")
        remit = adjudicate(void, PPO, None, REFDATA).remittance
        assert remit["claim_status_code"] == DENIED
        assert {c for _, c in carcs(remit)} == {"16"}


class TestRemittanceShape:
    def test_payment_date_is_the_received_date_plus_the_payers_turnaround(self) -> None:
        """Business time: filed 2026-03-03, PPO turnaround 10 days, paid 2026-03-13."""
        remit = adjudicate(claim(), PPO, None, REFDATA).remittance
        assert remit["payer_received_date"] == date(2026, 3, 3)
        assert remit["adjudicated_date"] == date(2026, 3, 13)

    def test_one_trace_number_per_payer_payee_and_payment_date(self) -> None:
        """Two claims paid the same day to the same practice share the EFT trace number."""
        a = adjudicate(claim(encounter_id="E1"), PPO, None, REFDATA).remittance
        b = adjudicate(claim(encounter_id="E2", diagnoses=["E785"]), PPO, None, REFDATA)
        later = adjudicate(
            claim(encounter_id="E3", received_at=datetime(2026, 3, 9, tzinfo=UTC)),
            PPO,
            None,
            REFDATA,
        ).remittance
        assert a["payment_trace_number"] == b.remittance["payment_trace_number"]
        assert a["payment_trace_number"] != later["payment_trace_number"]

    def test_remittance_carries_what_the_835_names(self) -> None:
        """Patient, payee, rendering NPI and service dates come from the claim."""
        c = claim()
        remit = adjudicate(c, PPO, None, REFDATA).remittance
        assert remit["patient"] == c["patient"]
        assert remit["payee"] == c["billing_provider"]
        assert remit["rendering_npi"] == c["rendering_provider"]["npi"]
        assert remit["service_date_from"] == c["service_date_from"]
        assert remit["subscriber"] is None


class TestMemberState:
    def test_state_keeps_only_this_plan_year_and_the_last(self) -> None:
        """A 2026 claim after 2024 and 2025 ones: the 2024 accumulators and claims are dropped."""
        state = None
        claims = []
        for year, encounter_id in ((2024, "E24"), (2025, "E25"), (2026, "E26")):
            c = claim(
                encounter_id=encounter_id,
                procedures=[procedure("80053")],
                service_date=date(year, 3, 2),
                received_at=datetime(year, 3, 3, tzinfo=UTC),
                coverage=coverage(effective=date(2024, 1, 1)),
            )
            claims.append(c)
            state = adjudicate(c, PPO, state, REFDATA).member_state
        assert state is not None
        assert sorted(state.row["years"]) == ["2025", "2026"]
        kept = {e: state.claim(claim_id_for(e)) is not None for e in ("E24", "E25", "E26")}
        assert kept == {"E24": False, "E25": True, "E26": True}
        paid_by = [state.service(service_fingerprint(c)) for c in claims]
        assert paid_by == [None, claim_id_for("E25"), claim_id_for("E26")]


class TestPayerFiles:
    def test_a_payer_is_added_by_adding_a_file(self, tmp_path: Path) -> None:
        """A new profile beside the shipped ones is loaded and adjudicates its members' claims."""
        shutil.copytree(PAYERS_DIR, tmp_path / "payers")
        profile = json.loads((PAYERS_DIR / "commercial-ppo.json").read_text())
        profile.update(
            payer_id="EPO-SIM",
            name="Regional EPO",
            member_id_pattern="^EPO[0-9]{6}$",
            fee_schedule={"basis": "medicare", "percent_of_medicare": 150},
            denial_rates={},
        )
        (tmp_path / "payers" / "regional-epo.json").write_text(json.dumps(profile))
        payers = load_payers(tmp_path / "payers")
        assert set(payers) == set(REFDATA.payers) | {"EPO-SIM"}
        c = ohio_claim(coverage=coverage("EPO-SIM", "EPO123456", "12"))
        remit = adjudicate(c, payers["EPO-SIM"], None, REFDATA).remittance
        assert remit["lines"][0]["allowed_cents"] == pfs_99213(OHIO_GPCI) * 150 // 100

    def test_a_profile_with_a_bad_field_names_the_file_and_the_field(self, tmp_path: Path) -> None:
        """A profile without its deductible fails to load with a message saying which."""
        profile = json.loads((PAYERS_DIR / "commercial-ppo.json").read_text())
        del profile["deductible_cents"]
        path = tmp_path / "broken.json"
        path.write_text(json.dumps(profile))
        with pytest.raises(ValueError, match=r"broken\.json.*deductible_cents"):
            PayerProfile.from_file(path)

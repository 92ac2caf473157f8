"""What the synthetic feed reads from the packaged reference data (procedures, MUEs, policies)."""

from __future__ import annotations

import csv
from functools import cache

from pipeline.ingest.synthetic.parameters import OFFICE_VISITS, Weighted
from pipeline.ingest.synthetic.problems import (
    AGE_CONFLICT_OF,
    EXCLUDES1_ADDITION,
    HEADER_OF,
    INVALID_FORM_OF,
    LATERALITY,
    UNCOVERED_LAB_REASON,
    WITHOUT_7TH_CHARACTER,
)
from pipeline.ingest.synthetic.scenarios import CODED_WITH, NCCI_COLUMN1_OF_EM, SCENARIOS, Scenario
from processors.refdata import (
    REFDATA_DIR,
    CoveragePolicy,
    PayerProfile,
    load_coverage_policies,
    shipped_payers,
)

# --- Reference data -------------------------------------------------------------


@cache
def _coverage_policies() -> dict[str, CoveragePolicy]:
    return load_coverage_policies()


def _policy_labs(scenario: Scenario, payer: PayerProfile) -> list[str]:
    """The scenario's codes that *payer* checks against a coverage list."""
    policies = _coverage_policies()
    return [
        s.code
        for s in scenario.services
        if s.code in policies
        and policies[s.code].policy_id in payer.coverage_policies
        and not policies[s.code].covers([UNCOVERED_LAB_REASON])
    ]


@cache
def procedure_catalogue() -> dict[str, tuple[str, int]]:
    """Category and most units per day of each code in the practice's code list."""
    with (REFDATA_DIR / "procedure_codes.csv").open(newline="") as f:
        return {
            row["code"]: (row["category"], int(row["max_units_per_day"]))
            for row in csv.DictReader(f)
        }


@cache
def unit_limits() -> dict[str, int]:
    """Most units of each listed code on one date: its CMS MUE, else the code list's limit."""
    limits = {code: units for code, (_, units) in procedure_catalogue().items()}
    with (REFDATA_DIR / "mue_practitioner.csv").open(newline="") as f:
        limits.update((row["code"], int(row["mue_units"])) for row in csv.DictReader(f))
    return limits


@cache
def _categories(scenario: Scenario) -> frozenset[str]:
    catalogue = procedure_catalogue()
    return frozenset(catalogue[s.code][0] for s in scenario.services)


@cache
def _scenarios_for(
    age: int, sex: str, conditions: tuple[str, ...], payer_key: str
) -> Weighted[Scenario]:
    """The scenarios that fit a patient, weighted."""
    return Weighted(
        (s, s.weight)
        for s in SCENARIOS
        if s.ages[0] <= age <= s.ages[1]
        and sex in s.sexes
        and (s.condition is None or s.condition in conditions)
        and (s.payers is None or payer_key in s.payers)
    )


def _needs_modifier_25(scenario: Scenario) -> bool:
    """A procedure on the day of an office visit: the visit is separately identifiable."""
    return scenario.visit in OFFICE_VISITS and bool(
        _categories(scenario) & {"minor_procedure", "injection"}
    )


def _scenario_fits(label: str, scenario: Scenario, payer: PayerProfile | None) -> bool:
    """True when *scenario* can carry the problem *label* for a patient of *payer*."""
    if label == "header_diagnosis":
        return any(code in HEADER_OF for code in scenario.diagnoses)
    if label == "invalid_diagnosis":
        return any(code in INVALID_FORM_OF for code in scenario.diagnoses)
    if label == "unknown_procedure":
        return scenario.visit in OFFICE_VISITS
    if label == "lab_not_covered_for_diagnosis":
        return payer is not None and bool(_policy_labs(scenario, payer))
    if label == "missing_authorization":
        return (
            payer is not None
            and "advanced_imaging" in _categories(scenario)
            and "advanced_imaging" in payer.authorization_required
        )
    return _coding_problem_fits(label, scenario)


@cache
def _fitting(
    scenarios: Weighted[Scenario], problem: str | None, payer_id: str | None
) -> tuple[Scenario, ...]:
    """The scenarios among *scenarios* that can carry *problem* for a member of *payer_id*."""
    payer = shipped_payers().get(payer_id) if payer_id else None
    return tuple(
        s for s in scenarios.values if problem is None or _scenario_fits(problem, s, payer)
    )


def _coding_problem_fits(label: str, scenario: Scenario) -> bool:
    """True when *scenario* has what the coding problem *label* changes."""
    diagnoses = scenario.diagnoses
    if label == "missing_7th_character":
        return any(code in WITHOUT_7TH_CHARACTER for code in diagnoses)
    if label == "manifestation_first":
        return len(diagnoses) > 1 and CODED_WITH.get(diagnoses[0], ())[:1] == diagnoses[1:2]
    if label == "excludes1_pair":
        return any(code in EXCLUDES1_ADDITION for code in diagnoses)
    if label == "diagnosis_age_conflict":
        return any(code in AGE_CONFLICT_OF for code in diagnoses)
    if label in ("invalid_modifier", "laterality_conflict"):
        return any(set(s.modifiers) & set(LATERALITY) for s in scenario.services)
    if label == "modifier_25_on_procedure":
        return bool(_categories(scenario) & {"minor_procedure", "injection"})
    if label == "em_overcoded":
        return scenario.visit in OFFICE_VISITS or scenario.problem_visit is not None
    if label == "ncci_bundled_service":
        # An E/M with an injection or vaccine administration and nothing that needs 25
        # for another reason: without 25 it is an NCCI PTP column 2 code.
        return (
            scenario.visit in OFFICE_VISITS
            and bool({s.code for s in scenario.services} & NCCI_COLUMN1_OF_EM)
            and not _categories(scenario) & {"minor_procedure", "preventive_visit"}
            and scenario.problem_visit is None
        )
    if label == "modifier_25_missing":
        return scenario.problem_visit is not None or (
            scenario.visit in OFFICE_VISITS and "minor_procedure" in _categories(scenario)
        )
    return True

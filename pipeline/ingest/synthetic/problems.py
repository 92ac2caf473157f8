"""Problems injected into a share of the synthetic encounters, at about the rate practices see."""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.ingest.synthetic.parameters import CLEAN, HMO, NON_COVERED_SERVICE, PPO

# --- Injected problems ---------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    """A data problem injected into an encounter, with its rate per encounter."""

    label: str
    rate: float
    needs_coverage: bool = False


PROBLEMS: tuple[Problem, ...] = (
    Problem("header_diagnosis", 0.03),
    Problem("invalid_diagnosis", 0.01),
    Problem("unknown_procedure", 0.01),
    Problem("units_over_max", 0.01),
    Problem("coverage_terminated", 0.03, needs_coverage=True),
    Problem("coverage_not_yet_effective", 0.01, needs_coverage=True),
    Problem("invalid_member_id", 0.02, needs_coverage=True),
    Problem("late_filing", 0.02, needs_coverage=True),
    Problem("missing_authorization", 0.015, needs_coverage=True),
    Problem("duplicate_service", 0.01, needs_coverage=True),
    Problem("lab_not_covered_for_diagnosis", 0.01, needs_coverage=True),
    Problem("invalid_npi", 0.005),
    Problem("missing_7th_character", 0.004),
    Problem("manifestation_first", 0.003),
    Problem("excludes1_pair", 0.005),
    Problem("diagnosis_age_conflict", 0.004),
    Problem("no_diagnosis", 0.003),
    Problem("malformed_procedure", 0.005),
    Problem("invalid_modifier", 0.004),
    Problem("modifier_25_on_procedure", 0.004),
    Problem("laterality_conflict", 0.003),
    Problem("em_overcoded", 0.015),
    Problem("modifier_25_missing", 0.01),
    Problem("ncci_bundled_service", 0.005),
)
PROBLEMS_BY_LABEL = {p.label: p for p in PROBLEMS}
LABELS: tuple[str, ...] = (CLEAN, NON_COVERED_SERVICE, *PROBLEMS_BY_LABEL)

# The category code a problem list holds instead of the billable code (header codes).
HEADER_OF: dict[str, str] = {
    "M5450": "M545",
    "M5459": "M545",
    "E119": "E11",
    "E1165": "E11",
    "J4520": "J45",
    "J4521": "J452",
    "J069": "J06",
    "J029": "J02",
    "E785": "E78",
    "I4891": "I48",
    "N390": "N39",
    "R079": "R07",
    "M1711": "M171",
    "M1712": "M171",
    "K219": "K21",
    "F411": "F41",
    "F329": "F32",
    "J209": "J20",
    "R519": "R51",
    "L821": "L82",
}

# A terminated commercial plan was replaced by the other one for about half of those
# patients; the registration holds the new plan as other coverage.
NEW_PLAN_SHARE = 0.5
NEW_PLAN_AFTER = {PPO: HMO, HMO: PPO}

# Other fatigue (R53.83): a reason a lab is ordered that NCD 190.21 (HbA1c) and NCD 190.23
# (lipids) do not list as covered.
UNCOVERED_LAB_REASON = "R5383"

# Mistyped diagnosis codes that are not ICD-10-CM codes at all (I10 as I10.9, from ICD-9 401.9).
INVALID_FORM_OF: dict[str, str] = {
    "I10": "I109",
    "E119": "E1190",
    "J069": "J0690",
    "R079": "R0799",
    "E785": "E7851",
    "N390": "N3900",
}

# Injury codes keyed without their 7th character (the encounter: A initial, D subsequent...).
WITHOUT_7TH_CHARACTER: dict[str, str] = {
    "S61411A": "S61411",
    "S61412A": "S61412",
    "S93401A": "S93401",
    "S93402A": "S93402",
}

# A code added beside a documented one that its Excludes1 note forbids (strep throat also
# coded as a cold, type 1 beside type 2 diabetes, single-episode beside recurrent depression).
EXCLUDES1_ADDITION: dict[str, str] = {
    "J020": "J069",
    "J209": "J40",
    "M5450": "M5441",
    "F329": "F331",
    "E119": "E109",
    "N390": "N3000",
    "J4521": "R062",
}

# Examination codes picked from the wrong age's list: a child's exam for an adult and back.
AGE_CONFLICT_OF: dict[str, str] = {
    "Z0000": "Z00129",
    "Z0001": "Z00121",
    "Z00129": "Z0000",
    "Z00121": "Z0001",
}

# Modifiers keyed short, which no code set has.
MISTYPED_MODIFIER: dict[str, str] = {"RT": "R", "LT": "L"}
LATERALITY = ("RT", "LT")
OTHER_SIDE = {"RT": "LT", "LT": "RT"}

# Office consultation codes, retired from CPT in 2023 and absent from the practice's list,
# that an outdated EHR charge map still sends for the matching office visit.
RETIRED_CONSULTATION_FOR: dict[str, str] = {
    "99202": "99242",
    "99212": "99242",
    "99203": "99243",
    "99213": "99243",
    "99204": "99244",
    "99214": "99244",
    "99205": "99245",
    "99215": "99245",
    "99211": "99241",
}

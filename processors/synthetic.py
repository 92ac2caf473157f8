"""Synthetic EHR encounters: a reproducible stand-in for a primary care practice's feed.

:func:`generate` yields ``(member key, EncounterEvent)`` pairs shaped exactly as the
``claims.EncounterEvent`` schema expects them from fastavro: ``date`` objects for
dates, timezone-aware UTC ``datetime`` for timestamps, ``None`` for nulls and
ICD-10-CM codes without dots. The member key is the coverage member id, or the
patient's person id for self-pay.

A panel of patients is created first, each with an age, a payer that fits the
age, coverage, a primary clinician and chronic conditions. Encounters then follow
in service-date order over about ten months, drawn from :data:`SCENARIOS`, a table
of clinically coherent visits in which every service points at the diagnoses
that support it. An office visit's note documents total time and medical
decision making that support the level billed (most notes both, some one, a few
neither), and a visit billed beside a minor procedure or a preventive visit
carries modifier 25. A share of encounters carries one injected problem (a
header diagnosis, an overcoded visit, terminated coverage, a late release...)
at about the rate practices see, so the coding edits, the scrubber and the
payers have holds and denials to work on; each coding problem trips one kind of
coding edit. :func:`generate_labelled` also names the problem of each event, or
``"clean"``.

All randomness comes from one ``random.Random(seed)``: the same
``(count, seed, start)`` gives the same events. Nothing is read but the packaged
reference data (payer profiles, the procedure code list and its MUEs).
"""

from __future__ import annotations

import csv
import random
from bisect import bisect
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import cache
from itertools import accumulate
from typing import Any, Generic, TypeVar

from processors.ids import stable_id
from processors.npi import npi_check_digit
from processors.refdata import (
    REFDATA_DIR,
    CoveragePolicy,
    PayerProfile,
    load_coverage_policies,
    shipped_payers,
)

Record = dict[str, Any]
T = TypeVar("T")

DEFAULT_START = date(2026, 1, 5)
SOURCE = "synthetic"
SIMULATED_DAYS = 304  # about ten months of calendar days; visits fall on weekdays
MIN_PANEL = 20

MEDICARE = "MCR-B-SIM"
MEDICAID = "MCD-SIM"
PPO = "PPO-SIM"
HMO = "HMO-SIM"
SELF_PAY = "SELFPAY"
COMMERCIAL = (PPO, HMO)

OFFICE = "11"
TELEHEALTH = "02"

# Visit kinds: the complexity of an office E/M visit, a preventive visit coded by
# age, a Medicare annual wellness visit, or no E/M at all (None).
LOW = "low"
MODERATE = "moderate"
HIGH = "high"
PREVENTIVE = "preventive"
WELLNESS = "wellness"
OFFICE_VISITS = (LOW, MODERATE, HIGH)

FAMILY_MEDICINE = "207Q00000X"
INTERNAL_MEDICINE = "207R00000X"
PEDIATRICS = "208000000X"
NURSE_PRACTITIONER_FAMILY = "363LF0000X"
ORTHOPAEDIC_SURGERY = "207X00000X"
NEUROLOGY = "2084N0400X"

CLEAN = "clean"
NON_COVERED_SERVICE = "non_covered_service"

TELEHEALTH_SHARE = 0.2
MEDICARE_ROUTINE_PHYSICAL_SHARE = 0.15
REFERRED_IMAGING_SHARE = 0.7
OWN_CLINICIAN_SHARE = 0.85
NEW_PATIENT_SHARE = 0.15
UNDERCODED_SHARE = 0.03
OTHER_BASIS_LOWER_SHARE = 0.3
RECENT_ENCOUNTERS = 10
DUPLICATE_SOURCE_SHARE = 0.1
PROBLEM_TRIES = 40
PATIENT_TRIES = 10
SCENARIO_TRIES = 4


class Weighted(Generic[T]):
    """Values drawn in proportion to their weights (cheaper than ``random.choices`` per draw)."""

    def __init__(self, pairs: Iterable[tuple[T, float]]) -> None:
        entries = list(pairs)
        self.values = [value for value, _ in entries]
        self.cumulative = list(accumulate(weight for _, weight in entries))

    def draw(self, rng: random.Random) -> T:
        """One value, chosen with *rng*."""
        at = bisect(self.cumulative, rng.random() * self.cumulative[-1], 0, len(self.values) - 1)
        return self.values[at]


# --- Scenarios ---------------------------------------------------------------


@dataclass(frozen=True)
class Service:
    """A service in a scenario and the scenario diagnoses (by position) that support it."""

    code: str
    supports: tuple[int, ...] = (0,)
    units: int = 1
    modifiers: tuple[str, ...] = ()


@dataclass(frozen=True)
class Scenario:
    """A kind of encounter: who it fits, what is diagnosed and what is done."""

    name: str
    weight: float
    diagnoses: tuple[str, ...]
    services: tuple[Service, ...] = ()
    visit: str | None = LOW
    ages: tuple[int, int] = (0, 120)
    sexes: str = "FM"
    condition: str | None = None  # a chronic condition the patient must have
    payers: frozenset[str] | None = None
    telehealth: bool = False  # may be a video visit (scenarios without services only)
    comorbid: bool = False  # the patient's other chronic conditions are coded too
    referral: str | None = None  # taxonomy of the outside clinician who may order it
    yearly: str | None = None  # at most one encounter of this group per patient
    visit_supports: tuple[int, ...] | None = None  # the E/M's diagnoses; None: the first four
    problem_visit: str | None = None  # an office visit billed beside a preventive one (25)


NOT_MEDICARE = frozenset({MEDICAID, PPO, HMO, SELF_PAY})
MEDICARE_ONLY = frozenset({MEDICARE})

_LAB_DRAW = Service("36415")

SCENARIOS: tuple[Scenario, ...] = (
    # Chronic care: the condition is on the patient's problem list.
    Scenario(
        "hypertension_follow_up",
        28,
        ("I10",),
        visit=MODERATE,
        condition="I10",
        telehealth=True,
        comorbid=True,
    ),
    Scenario(
        "hypertension_metabolic_panel",
        12,
        ("I10",),
        (Service("80048"), _LAB_DRAW),
        visit=MODERATE,
        condition="I10",
        comorbid=True,
    ),
    # Common warts frozen at a blood pressure visit: the visit (25) points at I10 only.
    Scenario(
        "hypertension_follow_up_wart_destruction",
        3,
        ("I10", "B078"),
        (Service("17110", supports=(1,)),),
        visit_supports=(0,),
        condition="I10",
    ),
    Scenario(
        "diabetes_a1c",
        24,
        ("E119",),
        (Service("83036"), _LAB_DRAW),
        visit=MODERATE,
        condition="E119",
        comorbid=True,
    ),
    Scenario(
        "diabetes_follow_up",
        10,
        ("E119",),
        visit=MODERATE,
        condition="E119",
        telehealth=True,
        comorbid=True,
    ),
    Scenario(
        "diabetes_hyperglycemia_a1c",
        28,
        ("E1165",),
        (Service("83036"), _LAB_DRAW),
        visit=HIGH,
        condition="E1165",
        comorbid=True,
    ),
    Scenario(
        "hyperlipidemia_lipid_panel",
        16,
        ("E785",),
        (Service("80061"), _LAB_DRAW),
        visit=MODERATE,
        condition="E785",
        comorbid=True,
    ),
    Scenario("hypothyroidism_tsh", 16, ("E039",), (Service("84443"), _LAB_DRAW), condition="E039"),
    Scenario(
        "atrial_fibrillation_ecg",
        24,
        ("I4891", "Z7901"),
        (Service("93000"),),
        visit=MODERATE,
        condition="I4891",
        comorbid=True,
    ),
    Scenario("asthma_follow_up", 12, ("J4520",), condition="J4520", telehealth=True),
    Scenario(
        "asthma_exacerbation_nebulizer",
        8,
        ("J4521",),
        (Service("94640"), Service("J7613", units=3)),
        visit=MODERATE,
        condition="J4520",
    ),
    Scenario(
        "asthma_exacerbation_steroid",
        4,
        ("J4521",),
        (Service("94640"), Service("J7613", units=3), Service("96372"), Service("J1010", units=40)),
        visit=MODERATE,
        condition="J4520",
        ages=(12, 120),
    ),
    Scenario(
        "knee_osteoarthritis_xray_right",
        12,
        ("M1711",),
        (Service("73562", modifiers=("RT",)),),
        visit=MODERATE,
        condition="M1711",
    ),
    Scenario(
        "knee_osteoarthritis_xray_left",
        12,
        ("M1712",),
        (Service("73562", modifiers=("LT",)),),
        visit=MODERATE,
        condition="M1712",
    ),
    Scenario(
        "knee_osteoarthritis_injection_right",
        16,
        ("M1711",),
        (Service("20610", modifiers=("RT",)), Service("J3301", units=4)),
        visit=MODERATE,
        condition="M1711",
    ),
    Scenario(
        "knee_osteoarthritis_injection_left",
        16,
        ("M1712",),
        (Service("20610", modifiers=("LT",)), Service("J3301", units=4)),
        visit=MODERATE,
        condition="M1712",
    ),
    Scenario(
        "anxiety_follow_up",
        16,
        ("F411",),
        visit=MODERATE,
        condition="F411",
        telehealth=True,
        comorbid=True,
    ),
    Scenario(
        "depression_follow_up",
        16,
        ("F329",),
        visit=MODERATE,
        condition="F329",
        telehealth=True,
        comorbid=True,
    ),
    Scenario("reflux_follow_up", 10, ("K219",), condition="K219", telehealth=True),
    # Alzheimer's disease first, then the dementia it causes (a manifestation code).
    Scenario(
        "dementia_follow_up", 20, ("G309", "F0280"), visit=MODERATE, condition="G309", comorbid=True
    ),
    # Acute problems.
    Scenario("upper_respiratory_infection", 4, ("J069",), telehealth=True),
    Scenario("pharyngitis_strep_test_negative", 2.5, ("J029",), (Service("87880"),), ages=(3, 64)),
    Scenario("strep_pharyngitis", 1.5, ("J020",), (Service("87880"),), ages=(3, 64)),
    Scenario("acute_sinusitis", 2, ("J0190",), ages=(12, 120), telehealth=True),
    Scenario("acute_bronchitis", 2, ("J209",), telehealth=True),
    Scenario("otitis_media_right", 3, ("H6691",), ages=(0, 12)),
    Scenario("otitis_media_bilateral", 3, ("H6693",), ages=(0, 12)),
    Scenario("fever", 2, ("R509",), ages=(0, 5)),
    Scenario("cough_chest_xray", 1, ("R059",), (Service("71046"),), visit=MODERATE, ages=(18, 120)),
    Scenario(
        "pneumonia_ceftriaxone",
        0.6,
        ("J189",),
        (Service("71046"), Service("96372"), Service("J0696", units=4)),
        visit=HIGH,
        ages=(18, 120),
    ),
    Scenario(
        "urinary_tract_infection", 3, ("N390",), (Service("81002"),), sexes="F", ages=(5, 120)
    ),
    Scenario("low_back_pain", 3, ("M5450",), ages=(18, 120)),
    Scenario("other_low_back_pain", 1.5, ("M5459",), ages=(18, 120)),
    Scenario(
        "low_back_pain_xray", 2, ("M5450",), (Service("72100"),), visit=MODERATE, ages=(18, 120)
    ),
    Scenario(
        "lumbar_radiculopathy_mri",
        0.4,
        ("M5416", "M5450"),
        (Service("72148", supports=(0, 1)),),
        visit=MODERATE,
        ages=(18, 120),
        referral=ORTHOPAEDIC_SURGERY,
    ),
    Scenario(
        "knee_pain_mri",
        0.25,
        ("M25561",),
        (Service("73721", modifiers=("RT",)),),
        visit=MODERATE,
        ages=(18, 120),
        referral=ORTHOPAEDIC_SURGERY,
    ),
    Scenario(
        "headache_mri",
        0.2,
        ("R519",),
        (Service("70551"),),
        visit=MODERATE,
        ages=(18, 120),
        referral=NEUROLOGY,
    ),
    Scenario("migraine", 1, ("G43909",), visit=MODERATE, ages=(12, 120), telehealth=True),
    Scenario("chest_pain_ecg", 1.5, ("R079",), (Service("93000"),), visit=MODERATE, ages=(30, 120)),
    Scenario(
        "fatigue_labs",
        1.2,
        ("R5383",),
        (Service("85025"), Service("80053"), _LAB_DRAW),
        visit=MODERATE,
        ages=(18, 120),
    ),
    Scenario("impacted_cerumen_removal", 0.8, ("H6123",), (Service("69210"),)),
    Scenario(
        "seborrheic_keratosis_destruction",
        1.5,
        ("L821",),
        (Service("17110"),),
        visit=None,
        ages=(40, 120),
    ),
    Scenario(
        "actinic_keratosis_destruction",
        1.5,
        ("L570",),
        (Service("17000"),),
        visit=None,
        ages=(40, 120),
    ),
    Scenario("epidermal_cyst_drainage", 1, ("L720",), (Service("10060"),), ages=(12, 120)),
    Scenario("skin_lesion_biopsy", 1, ("D492",), (Service("11102"),), ages=(30, 120)),
    Scenario("ankle_sprain_right", 0.5, ("S93401A",), ages=(8, 120)),
    Scenario("ankle_sprain_left", 0.5, ("S93402A",), ages=(8, 120)),
    Scenario("hand_laceration_repair", 1, ("S61411A",), (Service("12001"),), ages=(2, 120)),
    Scenario(
        "hand_laceration_repair_tdap",
        0.5,
        ("S61412A", "Z23"),
        (Service("12001"), Service("90471", supports=(1,)), Service("90715", supports=(1,))),
        ages=(7, 64),
        payers=NOT_MEDICARE,
    ),
    # Prevention and screening.
    Scenario("preventive_adult", 5, ("Z0000",), visit=PREVENTIVE, ages=(18, 64), yearly=PREVENTIVE),
    Scenario(
        "preventive_adult_lipid_screening",
        2,
        ("Z0000", "Z13220"),
        (Service("80061", supports=(1,)), Service("36415", supports=(1,))),
        visit=PREVENTIVE,
        ages=(18, 64),
        yearly=PREVENTIVE,
    ),
    Scenario(
        "preventive_adult_abnormal_findings",
        1.5,
        ("Z0001",),
        visit=PREVENTIVE,
        ages=(18, 64),
        comorbid=True,
        yearly=PREVENTIVE,
    ),
    # A chronic problem managed at the physical is a separate office visit with modifier 25.
    Scenario(
        "preventive_adult_hypertension_visit",
        4,
        ("Z0001", "I10"),
        visit=PREVENTIVE,
        problem_visit=LOW,
        ages=(18, 64),
        condition="I10",
        comorbid=True,
        yearly=PREVENTIVE,
    ),
    Scenario("well_child", 8, ("Z00129",), visit=PREVENTIVE, ages=(0, 3)),
    Scenario("well_child_abnormal_findings", 1, ("Z00121",), visit=PREVENTIVE, ages=(0, 3)),
    Scenario(
        "well_child_otitis_media",
        1,
        ("Z00121", "H6691"),
        visit=PREVENTIVE,
        problem_visit=LOW,
        ages=(0, 3),
    ),
    Scenario(
        "medicare_annual_wellness",
        12,
        ("Z0000",),
        visit=WELLNESS,
        payers=MEDICARE_ONLY,
        yearly=PREVENTIVE,
    ),
    Scenario(
        "medicare_annual_wellness_hypertension_visit",
        10,
        ("Z0000", "I10"),
        visit=WELLNESS,
        problem_visit=MODERATE,
        payers=MEDICARE_ONLY,
        condition="I10",
        comorbid=True,
        yearly=PREVENTIVE,
    ),
    Scenario(
        "tdap_immunization",
        1.5,
        ("Z23",),
        (Service("90471"), Service("90715")),
        visit=None,
        ages=(7, 64),
        payers=NOT_MEDICARE,
    ),
    Scenario(
        "medicare_flu_shot",
        4,
        ("Z23",),
        (Service("G0008"),),
        visit=None,
        payers=MEDICARE_ONLY,
        yearly="flu",
    ),
    Scenario(
        "screening_mammogram",
        3,
        ("Z1231",),
        (Service("77067"),),
        visit=None,
        sexes="F",
        ages=(40, 120),
        yearly="mammogram",
    ),
)
FALLBACK_SCENARIO = next(s for s in SCENARIOS if s.name == "upper_respiratory_infection")


@dataclass(frozen=True)
class ChronicCondition:
    """A problem-list condition: its codes (one is chosen) and prevalence by age band."""

    codes: tuple[str, ...]
    min_age: int
    prevalence: tuple[float, float, float, float]  # under 18, 18-39, 40-64, 65 and over


CHRONIC_CONDITIONS: tuple[ChronicCondition, ...] = (
    ChronicCondition(("I10",), 18, (0.0, 0.08, 0.30, 0.55)),
    ChronicCondition(("E119", "E1165"), 18, (0.0, 0.03, 0.12, 0.22)),
    ChronicCondition(("E785",), 18, (0.0, 0.05, 0.25, 0.45)),
    ChronicCondition(("J4520",), 3, (0.10, 0.08, 0.06, 0.05)),
    ChronicCondition(("M1711", "M1712"), 40, (0.0, 0.0, 0.08, 0.16)),
    ChronicCondition(("I4891",), 40, (0.0, 0.0, 0.01, 0.09)),
    ChronicCondition(("E039",), 18, (0.0, 0.03, 0.06, 0.10)),
    ChronicCondition(("F411",), 12, (0.03, 0.08, 0.07, 0.04)),
    ChronicCondition(("F329",), 12, (0.02, 0.06, 0.06, 0.05)),
    ChronicCondition(("K219",), 18, (0.0, 0.06, 0.10, 0.12)),
    ChronicCondition(("G309",), 65, (0.0, 0.0, 0.0, 0.10)),
)
# Codes always coded with a condition: its manifestation, listed after it.
CODED_WITH: dict[str, tuple[str, ...]] = {"G309": ("F0280",)}

# Office E/M levels by visit complexity and whether the patient is new to the practice.
OFFICE_VISIT_LEVELS: dict[tuple[str, bool], Weighted[str]] = {
    # No 99211: NCCI bundles a nurse visit into the lab draw and injections billed with it.
    (LOW, False): Weighted((("99212", 28), ("99213", 57), ("99214", 15))),
    (LOW, True): Weighted((("99202", 30), ("99203", 60), ("99204", 10))),
    (MODERATE, False): Weighted((("99213", 40), ("99214", 50), ("99215", 10))),
    (MODERATE, True): Weighted((("99203", 45), ("99204", 45), ("99205", 10))),
    (HIGH, False): Weighted((("99214", 55), ("99215", 45))),
    (HIGH, True): Weighted((("99204", 60), ("99205", 40))),
}

# Total time on the date of the encounter that supports each level (CPT 2021 and later).
VISIT_MINUTES: dict[str, tuple[int, int]] = {
    "99202": (15, 29),
    "99203": (30, 44),
    "99204": (45, 59),
    "99205": (60, 74),
    "99212": (10, 19),
    "99213": (20, 29),
    "99214": (30, 39),
    "99215": (40, 54),
}
# Medical decision making that supports each level (CPT 2021 and later).
VISIT_MDM: dict[str, str] = {
    "99202": "straightforward",
    "99203": "low",
    "99204": "moderate",
    "99205": "high",
    "99212": "straightforward",
    "99213": "low",
    "99214": "moderate",
    "99215": "high",
}
# Office visit codes leveled by time or MDM, new then established patients, lowest first.
VISIT_FAMILIES: tuple[tuple[str, ...], ...] = (
    ("99202", "99203", "99204", "99205"),
    ("99212", "99213", "99214", "99215"),
)
VISIT_FAMILY_OF = {code: family for family in VISIT_FAMILIES for code in family}
# Codes that are NCCI PTP column 1 to the office E/M codes (modifier indicator 1).
NCCI_COLUMN1_OF_EM = frozenset({"96372", "90471"})
NURSE_VISIT = "99211"  # needs neither physician time nor MDM

# What an office visit note documents: total time and MDM, one of them, or neither.
BOTH = "both"
TIME_ONLY = "time"
MDM_ONLY = "mdm"
NEITHER = "neither"
DOCUMENTATION_MIX = ((BOTH, 58.0), (MDM_ONLY, 24.0), (TIME_ONLY, 13.0), (NEITHER, 5.0))
DOCUMENTATION: Weighted[str] = Weighted(DOCUMENTATION_MIX)
VERIFIABLE_DOCUMENTATION: Weighted[str] = Weighted(
    pair for pair in DOCUMENTATION_MIX if pair[0] != NEITHER
)

# The problem-oriented office visit billed beside a preventive visit, by complexity.
PROBLEM_VISIT_LEVELS: dict[str, Weighted[str]] = {
    LOW: Weighted((("99212", 30), ("99213", 60), ("99214", 10))),
    MODERATE: Weighted((("99213", 45), ("99214", 50), ("99215", 5))),
}

# Days from the visit to the EHR releasing it for billing.
RELEASE_DELAYS: Weighted[int] = Weighted(((0, 25), (1, 35), (2, 20), (3, 10), (4, 6), (5, 4)))


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


# --- People, providers, places --------------------------------------------------


@dataclass(frozen=True)
class Address:
    """A postal address."""

    line1: str
    line2: str | None
    city: str
    state: str
    postal_code: str


@dataclass(frozen=True)
class Person:
    """A patient or subscriber."""

    person_id: str
    last_name: str
    first_name: str
    birth_date: date
    sex: str
    address: Address


@dataclass(frozen=True)
class Coverage:
    """The insurance on file for a patient."""

    payer_id: str
    member_id: str
    group_number: str | None
    relationship: str
    subscriber: Person
    effective_date: date


@dataclass(frozen=True)
class Clinician:
    """A rendering or referring clinician (an NPI entity type 1)."""

    npi: str
    last_name: str
    first_name: str
    taxonomy: str


@dataclass(frozen=True)
class Patient:
    """A panel patient and what stays fixed about them over the simulation."""

    person: Person
    coverage: Coverage | None
    conditions: tuple[str, ...]
    clinician: Clinician
    new_to_practice: bool
    scenarios: Weighted[Scenario]
    visit_weight: float

    @property
    def payer_key(self) -> str:
        """The payer id, or SELFPAY for a patient without coverage."""
        return self.coverage.payer_id if self.coverage else SELF_PAY


@dataclass
class History:
    """What the practice has done for a patient so far in the simulation."""

    awv_done: bool
    seen: bool = False
    last_visit: date | None = None
    yearly_done: set[str] = field(default_factory=set)


def _npi(first_nine: str) -> str:
    return first_nine + str(npi_check_digit(first_nine))


# The 837P requires the billing provider's full nine-digit ZIP code.
PRACTICE_ADDRESS = Address("2400 N High St", "Suite 200", "Columbus", "OH", "432021005")
PRACTICE_NAME = "Maple Grove Family Medicine"
PRACTICE_NPI = _npi("154873201")
PRACTICE_TIN = "314987652"

CLINICIANS: tuple[Clinician, ...] = (
    Clinician(_npi("163047281"), "Okafor", "Adaeze", FAMILY_MEDICINE),
    Clinician(_npi("172958364"), "Lindqvist", "Erik", FAMILY_MEDICINE),
    Clinician(_npi("183615907"), "Patel", "Priya", INTERNAL_MEDICINE),
    Clinician(_npi("119274650"), "Nguyen", "Thomas", INTERNAL_MEDICINE),
    Clinician(_npi("145820936"), "Alvarez", "Sofia", PEDIATRICS),
    Clinician(_npi("130596418"), "Brennan", "Molly", NURSE_PRACTITIONER_FAMILY),
)
REFERRING_CLINICIANS: tuple[Clinician, ...] = (
    Clinician(_npi("158302746"), "Kowalski", "Daniel", ORTHOPAEDIC_SURGERY),
    Clinician(_npi("127640395"), "Haddad", "Rana", ORTHOPAEDIC_SURGERY),
    Clinician(_npi("191573028"), "Fischer", "Anna", NEUROLOGY),
)

LAST_NAMES = (
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Jones",
    "Garcia",
    "Miller",
    "Davis",
    "Rodriguez",
    "Martinez",
    "Hernandez",
    "Lopez",
    "Wilson",
    "Anderson",
    "Thomas",
    "Taylor",
    "Moore",
    "Jackson",
    "Martin",
    "Lee",
    "Thompson",
    "White",
    "Harris",
    "Clark",
    "Lewis",
    "Robinson",
    "Walker",
    "Young",
    "Allen",
    "King",
    "Wright",
    "Scott",
    "Hill",
    "Green",
    "Adams",
    "Baker",
    "Nelson",
    "Carter",
    "Mitchell",
    "Roberts",
    "Turner",
    "Phillips",
)
FIRST_NAMES = {
    "F": (
        "Mary",
        "Patricia",
        "Jennifer",
        "Linda",
        "Elizabeth",
        "Barbara",
        "Susan",
        "Jessica",
        "Sarah",
        "Karen",
        "Lisa",
        "Nancy",
        "Betty",
        "Sandra",
        "Ashley",
        "Emily",
        "Olivia",
        "Emma",
        "Sophia",
        "Ava",
        "Mia",
        "Harper",
        "Aaliyah",
        "Maria",
        "Grace",
    ),
    "M": (
        "James",
        "Robert",
        "John",
        "Michael",
        "David",
        "William",
        "Richard",
        "Joseph",
        "Thomas",
        "Charles",
        "Christopher",
        "Daniel",
        "Matthew",
        "Anthony",
        "Mark",
        "Liam",
        "Noah",
        "Elijah",
        "Lucas",
        "Mateo",
        "Ethan",
        "Jayden",
        "Malik",
        "Carlos",
        "Kevin",
    ),
}
STREETS = (
    "High St",
    "Broad St",
    "Maple Ave",
    "Oak St",
    "Summit St",
    "Indianola Ave",
    "Cleveland Ave",
    "Livingston Ave",
    "Main St",
    "Elm St",
    "Cedar Ln",
    "Park Ave",
    "Riverside Dr",
    "Lake Rd",
    "Hamilton Rd",
    "Morse Rd",
    "Karl Rd",
    "Sawmill Rd",
)
# (city, state, ZIP code): the practice's area first, a few neighbouring states after.
LOCAL_PLACES = (
    ("Columbus", "OH", "43201"),
    ("Columbus", "OH", "43206"),
    ("Columbus", "OH", "43214"),
    ("Columbus", "OH", "43224"),
    ("Columbus", "OH", "43232"),
    ("Upper Arlington", "OH", "43221"),
    ("Worthington", "OH", "43085"),
    ("Westerville", "OH", "43081"),
    ("Dublin", "OH", "43017"),
    ("Hilliard", "OH", "43026"),
    ("Grove City", "OH", "43123"),
    ("Reynoldsburg", "OH", "43068"),
    ("Gahanna", "OH", "43230"),
    ("Delaware", "OH", "43015"),
    ("Newark", "OH", "43055"),
    ("Lancaster", "OH", "43130"),
    ("Marysville", "OH", "43040"),
)
DISTANT_PLACES = (
    ("Lexington", "KY", "40502"),
    ("Indianapolis", "IN", "46204"),
    ("Huntington", "WV", "25701"),
    ("Pittsburgh", "PA", "15213"),
    ("Detroit", "MI", "48201"),
)
DISTANT_SHARE = 0.06

# MBI letters: A-Z without S, L, O, I, B and Z.
MBI_LETTERS = "ACDEFGHJKMNPQRTUVWXY"
DIGITS = "0123456789"

# Age bands of the panel, by share: (label, lowest age, highest age).
AGE_BANDS: Weighted[tuple[str, int, int]] = Weighted(
    (
        (("child", 0, 17), 22),
        (("adult", 18, 64), 55),
        (("senior", 65, 95), 23),
    )
)
# Who a patient's own clinician is, by age band.
PRIMARY_CLINICIAN_MIX: dict[str, Weighted[str]] = {
    "child": Weighted(((PEDIATRICS, 70), (FAMILY_MEDICINE, 30))),
    "adult": Weighted(
        ((FAMILY_MEDICINE, 55), (INTERNAL_MEDICINE, 30), (NURSE_PRACTITIONER_FAMILY, 15))
    ),
    "senior": Weighted(
        ((INTERNAL_MEDICINE, 50), (FAMILY_MEDICINE, 40), (NURSE_PRACTITIONER_FAMILY, 10))
    ),
}
PAYER_MIX: dict[str, Weighted[str]] = {
    "child": Weighted(((MEDICAID, 35), (PPO, 35), (HMO, 28), (SELF_PAY, 2))),
    "adult": Weighted(((MEDICAID, 16), (PPO, 45), (HMO, 33), (SELF_PAY, 6))),
    "senior": Weighted(((MEDICARE, 93), (PPO, 5), (SELF_PAY, 2))),
}


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


# --- Small helpers --------------------------------------------------------------


def _age(birth: date, on: date) -> int:
    return on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))


def _digits(rng: random.Random, n: int) -> str:
    return "".join(rng.choices(DIGITS, k=n))


def _business_days(start: date, span: int) -> list[date]:
    days = (start + timedelta(days=n) for n in range(span))
    return [d for d in days if d.weekday() < 5]


def _received_at(rng: random.Random, service_date: date, delay_days: int) -> datetime:
    """A business hour (13:00-21:59 UTC, the practice's 8 to 5) *delay_days* later."""
    day = service_date + timedelta(days=delay_days)
    if day.weekday() >= 5:
        day += timedelta(days=7 - day.weekday())
    return datetime(
        day.year,
        day.month,
        day.day,
        rng.randint(13, 21),
        rng.randint(0, 59),
        rng.randint(0, 59),
        tzinfo=UTC,
    )


def _mbi(rng: random.Random) -> str:
    """A Medicare Beneficiary Identifier in the CMS format."""
    alnum = MBI_LETTERS + DIGITS
    return "".join(
        (
            rng.choice("123456789"),
            rng.choice(MBI_LETTERS),
            rng.choice(alnum),
            rng.choice(DIGITS),
            rng.choice(MBI_LETTERS),
            rng.choice(alnum),
            rng.choice(DIGITS),
            rng.choice(MBI_LETTERS),
            rng.choice(MBI_LETTERS),
            _digits(rng, 2),
        )
    )


def _mistyped_member_id(rng: random.Random, payer_id: str, member_id: str) -> str:
    """*member_id* as front-desk staff mistype it, no longer in the payer's format."""
    if payer_id == MEDICARE:
        if rng.random() < 0.5:
            return f"{_digits(rng, 9)}A"  # the retired HICN, an SSN-based number
        return member_id[:3] + "O" + member_id[4:]  # the letter O keyed for the fourth digit
    position = rng.randrange(len(member_id) - 9, len(member_id))  # one of the last nine digits
    if payer_id in COMMERCIAL and rng.random() < 0.5:
        return member_id[:position] + "O" + member_id[position + 1 :]
    return member_id[:position] + member_id[position + 1 :]  # the digit dropped


def _clone(value: Any) -> Any:
    """A deep copy of a record of dicts, lists and immutable values."""
    if isinstance(value, dict):
        return {key: _clone(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_clone(item) for item in value]
    return value


def _comorbidities(conditions: tuple[str, ...], diagnoses: list[str]) -> list[str]:
    """Up to two other chronic conditions, none in a category already coded, four codes in all.

    A condition comes with the codes always coded beside it, or not at all.
    """
    categories = {code[:3] for code in diagnoses}
    extra: list[str] = []
    added = 0
    for code in conditions:
        if added == 2:
            break
        codes = (code, *CODED_WITH.get(code, ()))
        if code[:3] in categories or len(diagnoses) + len(extra) + len(codes) > 4:
            continue
        extra += codes
        added += 1
    return extra


def _documentation(
    rng: random.Random, code: str, kind: str, undercoded: bool = False
) -> tuple[int | None, str | None]:
    """Total minutes and MDM that a note of *kind* documents for office visit *code*.

    What is documented supports *code*; with both documented, one sometimes supports
    a lower level (the visit was leveled on the other). An *undercoded* note supports
    the next level up.
    """
    if kind == NEITHER:
        return None, None
    family = VISIT_FAMILY_OF[code]
    at = family.index(code)
    if undercoded and at + 1 < len(family):
        at += 1
    by_time = by_mdm = family[at]
    if kind == BOTH and at > 0 and rng.random() < OTHER_BASIS_LOWER_SHARE:
        if rng.random() < 0.5:
            by_time = family[at - 1]
        else:
            by_mdm = family[at - 1]
    minutes = rng.randint(*VISIT_MINUTES[by_time]) if kind != MDM_ONLY else None
    mdm = VISIT_MDM[by_mdm] if kind != TIME_ONLY else None
    return minutes, mdm


def _preventive_code(age: int, new: bool) -> str:
    if age < 1:
        return "99391"
    if age < 5:
        return "99392"
    if age < 40:
        return "99385" if new else "99395"
    return "99386" if new else "99396"


def member_key(event: Record) -> str:
    """The key of *event* on ehr.encounters: the member id, or the person id for self-pay."""
    coverage = event["coverage"]
    return str(coverage["member_id"] if coverage else event["patient"]["person_id"])


# --- Records --------------------------------------------------------------------


def _address_record(address: Address) -> Record:
    return asdict(address)


def _person_record(person: Person) -> Record:
    # Person's fields are the claims.Person record's, its address included.
    return asdict(person)


def _coverage_record(coverage: Coverage, payer: PayerProfile) -> Record:
    return {
        "payer_id": coverage.payer_id,
        "payer_name": payer.name,
        "plan_type": payer.plan_type,
        "member_id": coverage.member_id,
        "group_number": coverage.group_number,
        "relationship": coverage.relationship,
        "subscriber": _person_record(coverage.subscriber),
        "effective_date": coverage.effective_date,
        "termination_date": None,
    }


def _clinician_record(clinician: Clinician) -> Record:
    return {
        "npi": clinician.npi,
        "entity_type": "1",
        "name": clinician.last_name,
        "first_name": clinician.first_name,
        "taxonomy": clinician.taxonomy,
        "tin": None,
        "address": None,
    }


def practice_record() -> Record:
    """The demonstration practice as a billing provider (the ingest adapters' default)."""
    return {
        "npi": PRACTICE_NPI,
        "entity_type": "2",
        "name": PRACTICE_NAME,
        "first_name": None,
        "taxonomy": FAMILY_MEDICINE,
        "tin": PRACTICE_TIN,
        "address": _address_record(PRACTICE_ADDRESS),
    }


def _procedure(
    code: str, refs: list[int], units: int = 1, modifiers: list[str] | None = None
) -> Record:
    return {"code": code, "modifiers": modifiers or [], "units": units, "diagnosis_refs": refs}


# --- Coding problems ------------------------------------------------------------


def _is_office_visit(line: Record) -> bool:
    return line["code"] in VISIT_FAMILY_OF or line["code"] == NURSE_VISIT


def _malform_procedure(rng: random.Random, event: Record) -> None:
    """A digit dropped, or a modifier keyed into the code ("9921325" for 99213-25)."""
    line = rng.choice(event["procedures"])
    glued = [m for m in line["modifiers"] if m != "95"]
    if glued and rng.random() < 0.5:
        line["code"] += glued[0]
        line["modifiers"].remove(glued[0])
    else:
        line["code"] = line["code"][:-1]


def _overcode_visit(rng: random.Random, event: Record) -> None:
    """Bill the visit a level above what its note supports (at the top level, document less)."""
    visit = next(p for p in event["procedures"] if _is_office_visit(p))
    family = VISIT_FAMILY_OF.get(visit["code"], VISIT_FAMILIES[1])
    at = family.index(visit["code"]) if visit["code"] in family else 0
    if at + 1 < len(family):
        visit["code"], documented = family[at + 1], family[at]
    else:
        documented = family[at - 1]
    event["documented_minutes"], event["mdm_level"] = _documentation(
        rng, documented, VERIFIABLE_DOCUMENTATION.draw(rng)
    )


def _inject_coding_problem(rng: random.Random, problem: str, event: Record) -> None:
    """Put a coding *problem* into *event*, whose scenario fits it (see _coding_problem_fits)."""
    diagnoses: list[str] = event["diagnoses"]
    procedures: list[Record] = event["procedures"]
    if problem == "missing_7th_character":
        at = next(i for i, code in enumerate(diagnoses) if code in WITHOUT_7TH_CHARACTER)
        diagnoses[at] = WITHOUT_7TH_CHARACTER[diagnoses[at]]
    elif problem == "manifestation_first":
        diagnoses[0], diagnoses[1] = diagnoses[1], diagnoses[0]
    elif problem == "excludes1_pair":
        diagnoses.append(EXCLUDES1_ADDITION[next(c for c in diagnoses if c in EXCLUDES1_ADDITION)])
    elif problem == "diagnosis_age_conflict":
        at = next(i for i, code in enumerate(diagnoses) if code in AGE_CONFLICT_OF)
        diagnoses[at] = AGE_CONFLICT_OF[diagnoses[at]]
    elif problem == "no_diagnosis":
        diagnoses.clear()
        for line in procedures:
            line["diagnosis_refs"] = []
    elif problem == "malformed_procedure":
        _malform_procedure(rng, event)
    elif problem == "invalid_modifier":
        modifiers = next(
            p["modifiers"] for p in procedures if set(p["modifiers"]) & set(MISTYPED_MODIFIER)
        )
        at = next(i for i, m in enumerate(modifiers) if m in MISTYPED_MODIFIER)
        modifiers[at] = MISTYPED_MODIFIER[modifiers[at]]
    elif problem == "modifier_25_on_procedure":
        catalogue = procedure_catalogue()
        lines = [
            p for p in procedures if catalogue[p["code"]][0] in ("minor_procedure", "injection")
        ]
        rng.choice(lines)["modifiers"].append("25")
    elif problem == "laterality_conflict":
        modifiers = next(
            p["modifiers"] for p in procedures if set(p["modifiers"]) & set(LATERALITY)
        )
        modifiers.append(OTHER_SIDE[next(m for m in modifiers if m in LATERALITY)])
    elif problem == "em_overcoded":
        _overcode_visit(rng, event)
    elif problem in ("modifier_25_missing", "ncci_bundled_service"):
        for line in procedures:
            if _is_office_visit(line):
                line["modifiers"] = [m for m in line["modifiers"] if m != "25"]


# --- The simulation -------------------------------------------------------------


class _Simulation:
    """One run: the panel, each patient's history and the encounters in date order."""

    def __init__(self, count: int, seed: int, start: date) -> None:
        self.count = count
        self.seed = seed
        self.start = start
        self.rng = random.Random(seed)
        self.payers = shipped_payers()
        self.days = _business_days(start, SIMULATED_DAYS)
        self.person_ids: set[str] = set()
        self.groups = {
            payer: [f"GRP{_digits(self.rng, 6)}" for _ in range(8)] for payer in COMMERCIAL
        }
        self.patients = [self._new_patient() for _ in range(max(MIN_PANEL, count // 3))]
        self.panel = Weighted((p, p.visit_weight) for p in self.patients)
        self.histories = {
            p.person.person_id: History(
                awv_done=_age(p.person.birth_date, start) >= 66 or self.rng.random() < 0.5
            )
            for p in self.patients
        }
        self.recent: deque[tuple[str, Record]] = deque(maxlen=RECENT_ENCOUNTERS)

    # The panel.

    def _new_person_id(self) -> str:
        while True:
            person_id = f"P{self.rng.randint(10_000_000, 99_999_999)}"
            if person_id not in self.person_ids:
                self.person_ids.add(person_id)
                return person_id

    def _address(self) -> Address:
        rng = self.rng
        places = DISTANT_PLACES if rng.random() < DISTANT_SHARE else LOCAL_PLACES
        city, state, postal_code = rng.choice(places)
        line2 = f"Apt {rng.randint(1, 24)}{rng.choice('ABCD')}" if rng.random() < 0.15 else None
        line1 = f"{rng.randint(100, 9899)} {rng.choice(STREETS)}"
        return Address(line1, line2, city, state, postal_code)

    def _birth_date(self, age: int) -> date:
        days = int((age + 0.01 + 0.98 * self.rng.random()) * 365.2425)
        return self.start - timedelta(days=days)

    def _person(self, age: int, sex: str, last_name: str, address: Address) -> Person:
        return Person(
            person_id=self._new_person_id(),
            last_name=last_name,
            first_name=self.rng.choice(FIRST_NAMES[sex]),
            birth_date=self._birth_date(age),
            sex=sex,
            address=address,
        )

    def _effective_date(self, earliest: date) -> date:
        """A first of the month some months to years back, not before *earliest*."""
        back = self.start - timedelta(days=self.rng.randint(30, 8 * 365))
        return max(back.replace(day=1), earliest)

    def _coverage(self, payer_id: str, band: str, person: Person) -> Coverage | None:
        rng = self.rng
        if payer_id == SELF_PAY:
            return None
        if payer_id == MEDICARE:
            birth = person.birth_date
            turned_65 = birth.replace(year=birth.year + 65, day=1)
            return Coverage(MEDICARE, _mbi(rng), None, "18", person, turned_65)
        if payer_id == MEDICAID:
            member_id = _digits(rng, 12)
            return Coverage(
                MEDICAID, member_id, None, "18", person, self._effective_date(person.birth_date)
            )
        relationship, subscriber = "18", person
        age = _age(person.birth_date, self.start)
        if band == "child":
            relationship = "19"
            parent_sex = rng.choice("FM")
            subscriber = self._person(
                age + rng.randint(22, 42), parent_sex, person.last_name, person.address
            )
        elif band == "adult" and rng.random() < 0.28:
            relationship = "01"
            spouse_sex = "M" if person.sex == "F" else "F"
            subscriber = self._person(
                max(18, age + rng.randint(-6, 6)), spouse_sex, person.last_name, person.address
            )
        prefix = "PPO" if payer_id == PPO else "HMO"
        return Coverage(
            payer_id,
            f"{prefix}{_digits(rng, 9)}",
            rng.choice(self.groups[payer_id]),
            relationship,
            subscriber,
            self._effective_date(person.birth_date),
        )

    def _conditions(self, age: int) -> tuple[str, ...]:
        band = 0 if age < 18 else 1 if age < 40 else 2 if age < 65 else 3
        return tuple(
            self.rng.choice(condition.codes)
            for condition in CHRONIC_CONDITIONS
            if age >= condition.min_age and self.rng.random() < condition.prevalence[band]
        )

    def _primary_clinician(self, band: str) -> Clinician:
        taxonomy = PRIMARY_CLINICIAN_MIX[band].draw(self.rng)
        return self.rng.choice([c for c in CLINICIANS if c.taxonomy == taxonomy])

    def _new_patient(self) -> Patient:
        rng = self.rng
        band, low, high = AGE_BANDS.draw(rng)
        if band == "senior":  # fewer patients at each year of age past 65
            age = low + int(rng.random() ** 1.6 * (high - low + 1))
        else:
            age = rng.randint(low, high)
        sex = "F" if rng.random() < (0.56 if band == "senior" else 0.51) else "M"
        person = self._person(age, sex, rng.choice(LAST_NAMES), self._address())
        age = _age(person.birth_date, self.start)
        coverage = self._coverage(PAYER_MIX[band].draw(rng), band, person)
        conditions = self._conditions(age)
        payer_key = coverage.payer_id if coverage else SELF_PAY
        scenarios = _scenarios_for(age, sex, conditions, payer_key)
        weight = 1.0 + 0.8 * len(conditions) + (1.5 if age < 2 else 0.0)
        return Patient(
            person,
            coverage,
            conditions,
            self._primary_clinician(band),
            rng.random() < NEW_PATIENT_SHARE,
            scenarios,
            weight,
        )

    # Choosing who is seen for what.

    def _draw_problem(self) -> str | None:
        draw = self.rng.random()
        for problem in PROBLEMS:
            if draw < problem.rate:
                return problem.label
            draw -= problem.rate
        return None

    def _pick_patient(self, day: date) -> Patient:
        patient = self.patients[0]
        for _ in range(PATIENT_TRIES):
            patient = self.panel.draw(self.rng)
            if self.histories[patient.person.person_id].last_visit != day:
                break
        return patient

    def _pick_scenario(self, patient: Patient, problem: str | None) -> Scenario | None:
        done = self.histories[patient.person.person_id].yearly_done
        if problem is None:
            for _ in range(SCENARIO_TRIES):
                scenario = patient.scenarios.draw(self.rng)
                if scenario.yearly is None or scenario.yearly not in done:
                    return scenario
        payer_id = patient.coverage.payer_id if patient.coverage else None
        options = [
            (s, s.weight)
            for s in _fitting(patient.scenarios, problem, payer_id)
            if s.yearly is None or s.yearly not in done
        ]
        return Weighted(options).draw(self.rng) if options else None

    def _choose(self, day: date, problem: str | None) -> tuple[Patient, Scenario, str | None]:
        """A patient and scenario for *day* that can carry *problem*, else a clean one."""
        if problem is not None:
            needs_coverage = PROBLEMS_BY_LABEL[problem].needs_coverage
            for _ in range(PROBLEM_TRIES):
                patient = self._pick_patient(day)
                if needs_coverage and patient.coverage is None:
                    continue
                scenario = self._pick_scenario(patient, problem)
                if scenario is not None:
                    return patient, scenario, problem
        patient = self._pick_patient(day)
        return patient, self._pick_scenario(patient, None) or FALLBACK_SCENARIO, None

    # Building the event.

    def _ids(self, index: int) -> tuple[str, str]:
        start = self.start.isoformat()
        return (
            stable_id("EVT", self.seed, start, index),
            stable_id("ENC", self.seed, start, index, length=12),
        )

    def _rendering(self, patient: Patient, age: int) -> Clinician:
        if self.rng.random() < OWN_CLINICIAN_SHARE:
            return patient.clinician
        allowed = [
            c
            for c in CLINICIANS
            if not (c.taxonomy == PEDIATRICS and age >= 18)
            and not (c.taxonomy == INTERNAL_MEDICINE and age < 18)
        ]
        return self.rng.choice(allowed)

    def _visit(
        self, scenario: Scenario, patient: Patient, history: History, age: int, label: str
    ) -> tuple[str, str]:
        """The E/M code for *scenario*, and the label (a routine physical may not be covered)."""
        rng = self.rng
        new = patient.new_to_practice and not history.seen
        if scenario.visit == WELLNESS:
            if label == CLEAN and rng.random() < MEDICARE_ROUTINE_PHYSICAL_SHARE:
                return _preventive_code(max(age, 40), new), NON_COVERED_SERVICE
            code = "G0439" if history.awv_done else "G0438"
            history.awv_done = True
            return code, label
        if scenario.visit == PREVENTIVE:
            return _preventive_code(age, new), label
        return OFFICE_VISIT_LEVELS[(str(scenario.visit), new)].draw(rng), label

    def _encounter(
        self, index: int, day: date, patient: Patient, scenario: Scenario, problem: str | None
    ) -> tuple[Record, str]:
        rng = self.rng
        history = self.histories[patient.person.person_id]
        age = _age(patient.person.birth_date, day)
        label = problem or CLEAN
        diagnoses = list(scenario.diagnoses)
        if scenario.comorbid:
            diagnoses += _comorbidities(patient.conditions, diagnoses)
        telehealth = scenario.telehealth and rng.random() < TELEHEALTH_SHARE
        procedures: list[Record] = []
        minutes: int | None = None
        mdm: str | None = None
        if scenario.visit is not None:
            code, label = self._visit(scenario, patient, history, age, label)
            if scenario.problem_visit is not None:
                procedures.append(_procedure(code, [0]))
                code = PROBLEM_VISIT_LEVELS[scenario.problem_visit].draw(rng)
                refs = list(range(1, min(len(diagnoses), 5)))
                procedures.append(_procedure(code, refs, modifiers=["25"]))
            else:
                modifiers = ["25"] if _needs_modifier_25(scenario) else []
                if telehealth:
                    modifiers.append("95")
                refs = list(scenario.visit_supports or range(min(len(diagnoses), 4)))
                procedures.append(_procedure(code, refs, modifiers=modifiers))
            if code in VISIT_FAMILY_OF:
                minutes, mdm = _documentation(
                    rng, code, DOCUMENTATION.draw(rng), rng.random() < UNDERCODED_SHARE
                )
        for service in scenario.services:
            procedures.append(
                _procedure(
                    service.code, list(service.supports), service.units, list(service.modifiers)
                )
            )

        payer = self.payers[patient.coverage.payer_id] if patient.coverage else None
        coverage = _coverage_record(patient.coverage, payer) if patient.coverage and payer else None
        needs_authorization = payer is not None and bool(
            _categories(scenario) & set(payer.authorization_required)
        )
        referring = None
        if scenario.referral and rng.random() < REFERRED_IMAGING_SHARE:
            referring = rng.choice(
                [c for c in REFERRING_CLINICIANS if c.taxonomy == scenario.referral]
            )
        event_id, encounter_id = self._ids(index)
        event: Record = {
            "event_id": event_id,
            "encounter_id": encounter_id,
            "source": SOURCE,
            "received_at": _received_at(rng, day, RELEASE_DELAYS.draw(rng)),
            "service_date": day,
            "place_of_service": TELEHEALTH if telehealth else OFFICE,
            "patient": _person_record(patient.person),
            "coverage": coverage,
            "other_coverages": [],
            "billing_provider": practice_record(),
            "rendering_provider": _clinician_record(self._rendering(patient, age)),
            "referring_provider": _clinician_record(referring) if referring else None,
            "diagnoses": diagnoses,
            "procedures": procedures,
            "authorization_number": (
                f"PA{_digits(rng, 9)}"
                if needs_authorization and problem != "missing_authorization"
                else None
            ),
            "referral_number": (
                f"RF{_digits(rng, 8)}" if referring and patient.payer_key == HMO else None
            ),
            "documented_minutes": minutes,
            "mdm_level": mdm,
        }
        history.seen = True
        history.last_visit = day
        if scenario.yearly:
            history.yearly_done.add(scenario.yearly)
        return event, label

    def _inject(self, problem: str, event: Record) -> None:
        """Put *problem* into *event*, which was built to be able to carry it."""
        rng = self.rng
        coverage = event["coverage"]
        service_date: date = event["service_date"]
        if problem == "header_diagnosis":
            diagnoses = event["diagnoses"]
            at = next(i for i, code in enumerate(diagnoses) if code in HEADER_OF)
            diagnoses[at] = HEADER_OF[diagnoses[at]]
        elif problem == "invalid_diagnosis":
            diagnoses = event["diagnoses"]
            at = next(i for i, code in enumerate(diagnoses) if code in INVALID_FORM_OF)
            diagnoses[at] = INVALID_FORM_OF[diagnoses[at]]
        elif problem == "unknown_procedure":
            visit = event["procedures"][0]
            visit["code"] = RETIRED_CONSULTATION_FOR[visit["code"]]
        elif problem == "units_over_max":
            line = rng.choice(event["procedures"])
            line["units"] = unit_limits()[line["code"]] + rng.randint(1, 3)
        elif problem == "coverage_terminated":
            ended = service_date - timedelta(days=rng.randint(1, 90))
            coverage["termination_date"] = ended
            if coverage["effective_date"] > ended:
                began = ended - timedelta(days=rng.randint(90, 720))
                coverage["effective_date"] = began.replace(day=1)
            if coverage["payer_id"] in NEW_PLAN_AFTER and rng.random() < NEW_PLAN_SHARE:
                # The patient changed jobs: registration holds the new plan beside the old one,
                # but the visit was billed to the old one.
                event["other_coverages"].append(self._new_plan(coverage, ended))
        elif problem == "coverage_not_yet_effective":
            coverage["effective_date"] = service_date + timedelta(days=rng.randint(1, 45))
        elif problem == "invalid_member_id":
            coverage["member_id"] = _mistyped_member_id(
                rng, coverage["payer_id"], coverage["member_id"]
            )
        elif problem == "late_filing":
            limit = self.payers[coverage["payer_id"]].timely_filing_days
            event["received_at"] = _received_at(rng, service_date, limit + rng.randint(1, 60))
        elif problem == "invalid_npi":
            provider = event["rendering_provider"]
            npi = provider["npi"]
            provider["npi"] = npi[:9] + str((int(npi[9]) + rng.randint(1, 9)) % 10)
        elif problem == "lab_not_covered_for_diagnosis":
            # The lab is linked to the symptom that prompted it, which the payer's
            # coverage list for the test does not include.
            policies = _coverage_policies()
            event["diagnoses"].append(UNCOVERED_LAB_REASON)
            for line in event["procedures"]:
                policy = policies.get(line["code"])
                if policy is not None and not policy.covers([UNCOVERED_LAB_REASON]):
                    line["diagnosis_refs"] = [len(event["diagnoses"]) - 1]
        else:  # missing_authorization is made by leaving the number out when building
            _inject_coding_problem(rng, problem, event)

    def _new_plan(self, old: Record, ended: date) -> Record:
        """The commercial plan that replaced *old* the day after it ended."""
        payer_id = NEW_PLAN_AFTER[old["payer_id"]]
        payer = self.payers[payer_id]
        prefix = "PPO" if payer_id == PPO else "HMO"
        return {
            **old,
            "payer_id": payer_id,
            "payer_name": payer.name,
            "plan_type": payer.plan_type,
            "member_id": f"{prefix}{_digits(self.rng, 9)}",
            "group_number": self.rng.choice(self.groups[payer_id]),
            "effective_date": ended + timedelta(days=1),
            "termination_date": None,
        }

    def _duplicate(self, index: int) -> tuple[str, Record, str]:
        """A second encounter for a recent clean one: same patient, day, clinician, services."""
        key, original = self.recent[self.rng.randrange(len(self.recent))]
        event = _clone(original)
        event["event_id"], event["encounter_id"] = self._ids(index)
        event["received_at"] = original["received_at"] + timedelta(days=self.rng.randint(1, 10))
        return key, event, "duplicate_service"

    def run(self) -> Iterator[tuple[str, Record, str]]:
        """Every encounter of the run, in service-date order."""
        for index in range(self.count):
            day = self.days[index * len(self.days) // self.count]
            problem = self._draw_problem()
            if problem == "duplicate_service":
                if self.recent:
                    yield self._duplicate(index)
                    continue
                problem = None
            patient, scenario, problem = self._choose(day, problem)
            event, label = self._encounter(index, day, patient, scenario, problem)
            if problem is not None:
                self._inject(problem, event)
            key = member_key(event)
            if (
                label == CLEAN
                and event["coverage"] is not None
                and self.rng.random() < DUPLICATE_SOURCE_SHARE
            ):
                self.recent.append((key, _clone(event)))
            yield key, event, label


def generate_labelled(
    count: int, seed: int, start: date = DEFAULT_START
) -> Iterator[tuple[str, Record, str]]:
    """*count* encounters as ``(member key, EncounterEvent, label)``.

    The label names the problem injected into the event (one of :data:`LABELS`),
    or is ``"clean"``. Every event is a fresh record the caller may change.
    """
    if count < 0:
        raise ValueError(f"count must be zero or more, not {count}")
    return _Simulation(count, seed, start).run()


def generate(count: int, seed: int, start: date = DEFAULT_START) -> Iterator[tuple[str, Record]]:
    """*count* encounters as ``(member key, EncounterEvent)``, the same for the same arguments."""
    for key, event, _ in generate_labelled(count, seed, start):
        yield key, event

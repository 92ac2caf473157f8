"""The visits of the synthetic practice: services that point at the diagnoses supporting them."""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.ingest.synthetic.parameters import (
    HIGH,
    HMO,
    LOW,
    MEDICAID,
    MEDICARE,
    MODERATE,
    NEUROLOGY,
    ORTHOPAEDIC_SURGERY,
    PPO,
    PREVENTIVE,
    SELF_PAY,
    WELLNESS,
    Weighted,
)

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

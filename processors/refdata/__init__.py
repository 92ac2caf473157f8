"""Reference data: code sets, the chargemaster, adjustment codes and payer profiles.

Each table is loaded once per process and indexed for constant-time lookups.
Every file states its source and edition in the Markdown file beside it; the
``*_VERSION`` constants are the edition ids carried in provenance fields.
"""

from __future__ import annotations

import csv
import json
import re
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from functools import cache, cached_property
from pathlib import Path
from typing import Any

from processors.refdata.fees import FeeSchedules, load_fee_schedules

REFDATA_DIR = Path(__file__).resolve().parent
PAYERS_DIR = REFDATA_DIR / "payers"

ICD10CM_VERSION = "ICD-10-CM-FY2026-Apr"
ICD10CM_VALID_FROM = date(2025, 10, 1)
ICD10CM_VALID_TO = date(2026, 9, 30)
AGE_SEX_VERSION = "MCE-style-ICD-10-CM-FY2026"
MODIFIERS_VERSION = "MODIFIERS-2026"
EM_VERSION = "EM-2021-GUIDELINES"
MUE_VERSION = "MUE-2026Q4"
NCCI_VERSION = "NCCI-PTP-2026Q4"
PROCEDURE_CODES_VERSION = "CPT-2026+HCPCS-2026"
ADJUSTMENT_CODES_VERSION = "CARC-RARC-2026"
RULESET_VERSION = (
    f"rules-2|{ICD10CM_VERSION}|{PROCEDURE_CODES_VERSION}|{AGE_SEX_VERSION}|{MODIFIERS_VERSION}"
    f"|{EM_VERSION}|{MUE_VERSION}|{NCCI_VERSION}"
)


@dataclass(frozen=True)
class ProcedureCode:
    """A CPT or HCPCS code the pipeline knows, with our category and unit ceiling."""

    code: str
    code_set: str
    category: str
    max_units_per_day: int


class Icd10Cm:
    """ICD-10-CM index (codes without dots) built once from simple-icd-10-cm."""

    def __init__(self) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import simple_icd_10_cm as cm  # noqa: PLC0415 - loading takes ~1.5 s, done on first use

        self._cm = cm
        self._billable: dict[str, bool] = {}
        for code in cm.get_all_codes(with_dots=False):
            if cm.is_category_or_subcategory(code):
                self._billable[code] = cm.is_leaf(code)

    def exists(self, code: str) -> bool:
        """True when *code* (no dot) is an ICD-10-CM category, subcategory or code."""
        return code in self._billable

    def is_billable(self, code: str) -> bool:
        """True when *code* is valid for billing (a leaf of the classification)."""
        return self._billable.get(code, False)

    def billable_children(self, code: str, limit: int = 12) -> list[str]:
        """Billable codes under header *code*, without dots, at most *limit*."""
        if code not in self._billable:
            return []
        found = [
            c.replace(".", "")
            for c in self._cm.get_descendants(code)
            if self._billable.get(c.replace(".", ""), False)
        ]
        return found[:limit]

    def display(self, code: str) -> str:
        """*code* with its dot, for messages."""
        return with_dot(code)

    def lineage(self, code: str) -> tuple[str, ...]:
        """*code* and its ancestors up to its category, without dots, nearest first."""
        return _lineage(self._cm, code)

    def seventh_characters(self, code: str) -> dict[str, str]:
        """The 7th characters a code under *code* requires (empty when none apply)."""
        for node in self.lineage(code):
            found = self._cm.get_seven_chr_def(self.display(node))
            if found:
                return dict(found)
        return {}

    def is_manifestation(self, code: str) -> bool:
        """True for a manifestation code ("in diseases classified elsewhere", code first)."""
        return _is_manifestation(self._cm, code)

    def excludes1(self, code: str) -> tuple[CodePattern, ...]:
        """Codes that may not be reported with *code*, from its and its ancestors' Excludes1."""
        return _excludes1(self._cm, code)


def with_dot(code: str) -> str:
    """An ICD-10-CM code stored without its dot, as people and FHIR write it."""
    return code if len(code) <= 3 else f"{code[:3]}.{code[3:]}"


CodePattern = tuple[str, str]
"""A code range as (low, high) dotless prefixes; a single code or category has low == high."""

_CODE_TOKEN = re.compile(
    r"^([A-Z][0-9][0-9A-Z](?:\.[0-9A-Z]{0,4})?)-?(?:-([A-Z][0-9][0-9A-Z](?:\.[0-9A-Z]{0,4})?)-?)?$"
)
_PARENS = re.compile(r"\(([^()]*)\)")


def parse_code_references(note: str) -> list[CodePattern]:
    """Code references in an ICD-10-CM note, e.g. "(E08.-, O10-O11, J09.X2)"."""
    found: list[CodePattern] = []
    for group in _PARENS.findall(note):
        for token in group.split(","):
            match = _CODE_TOKEN.match(token.strip())
            if match:
                low = match.group(1).replace(".", "")
                high = (match.group(2) or match.group(1)).replace(".", "")
                if low > high[: len(low)]:
                    continue
                found.append((low, high))
    return found


def matches(code: str, pattern: CodePattern) -> bool:
    """True when dotless *code* falls in the code range *pattern*."""
    low, high = pattern
    return low <= code[: len(low)] and code[: len(high)] <= high


@cache
def _lineage(cm: Any, code: str) -> tuple[str, ...]:
    dotted = with_dot(code)
    if not cm.is_valid_item(dotted):
        return (code,)
    ancestors = [
        a.replace(".", "") for a in cm.get_ancestors(dotted) if cm.is_category_or_subcategory(a)
    ]
    return (code, *ancestors)


@cache
def _is_manifestation(cm: Any, code: str) -> bool:
    for node in _lineage(cm, code):
        dotted = with_dot(node)
        if not cm.is_valid_item(dotted):
            return False
        if "classified elsewhere" in cm.get_description(dotted) and cm.get_code_first(dotted):
            return True
    return False


@cache
def _excludes1(cm: Any, code: str) -> tuple[CodePattern, ...]:
    patterns: list[CodePattern] = []
    for node in _lineage(cm, code):
        dotted = with_dot(node)
        if not cm.is_valid_item(dotted):
            return ()
        for note in cm.get_excludes1(dotted):
            patterns.extend(parse_code_references(note))
    return tuple(patterns)


# Denial categories a payer profile may give noise rates for (``denial_rates``).
DENIAL_CATEGORIES = (
    "eligibility",
    "registration",
    "coordination_of_benefits",
    "missing_information",
    "excluded_service",
    "benefit_limit",
    "authorization",
    "medical_necessity",
    "coding",
    "bundling",
    "duplicate",
    "no_response",
)


@dataclass(frozen=True)
class PayerProfile:
    """A simulated payer's rules, read from one JSON file in ``payers/``."""

    payer_id: str
    name: str
    plan_type: str
    profile_version: str
    member_id_pattern: str
    allowed_percent_of_charge: int
    deductible_cents: int
    coinsurance_percent: int
    copay_cents: dict[str, int]
    out_of_pocket_max_cents: int | None
    timely_filing_days: int
    turnaround_days: int
    appeal_days: int
    authorization_required: tuple[str, ...]
    non_covered: dict[str, dict[str, Any]]
    no_cost_share: frozenset[str]
    self_pay: bool = False
    required_claim_fields: tuple[str, ...] = ()
    fee_basis: str = "charge"
    percent_of_medicare: int = 100
    pfs_locality: str | None = None
    pfs_status_rules: bool = False
    coverage_policies: tuple[str, ...] = ()
    frequency_limits: dict[str, int] = field(default_factory=dict)
    authorization_number_pattern: str | None = None
    referral_required: tuple[str, ...] = ()
    excluded_service_carc: str = "204"
    denial_rates: dict[str, float] = field(default_factory=dict)
    payment_method: str = "ACH"
    address: dict[str, str] = field(default_factory=dict)
    contact_phone: str = ""
    _member_re: re.Pattern[str] = field(init=False, repr=False, compare=False)
    _auth_re: re.Pattern[str] | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_member_re", re.compile(self.member_id_pattern))
        pattern = self.authorization_number_pattern
        object.__setattr__(self, "_auth_re", re.compile(pattern) if pattern else None)
        unknown = set(self.denial_rates) - set(DENIAL_CATEGORIES)
        if unknown:
            raise ValueError(
                f"denial_rates: unknown categories {sorted(unknown)}; "
                f"use {', '.join(DENIAL_CATEGORIES)}"
            )
        if sum(self.denial_rates.values()) >= 1:
            raise ValueError("denial_rates: the rates must add up to less than 1")
        if self.fee_basis not in ("medicare", "charge"):
            raise ValueError(f"fee_schedule.basis {self.fee_basis!r}: use medicare or charge")

    def authorization_valid(self, number: str) -> bool:
        """True when *number* has the shape of this payer's authorization numbers."""
        return self._auth_re is None or self._auth_re.match(number) is not None

    def member_id_valid(self, member_id: str) -> bool:
        """True when *member_id* has the shape of this payer's member ids."""
        return self._member_re.match(member_id) is not None

    @classmethod
    def from_file(cls, path: Path) -> PayerProfile:
        """Read and check one profile file; the error names the file and the field."""
        try:
            raw = json.loads(path.read_text())
            fees = raw.get("fee_schedule", {})
            return cls(
                payer_id=raw["payer_id"],
                name=raw["name"],
                plan_type=raw["plan_type"],
                profile_version=raw["profile_version"],
                member_id_pattern=raw["member_id_pattern"],
                allowed_percent_of_charge=int(raw["allowed_percent_of_charge"]),
                deductible_cents=int(raw["deductible_cents"]),
                coinsurance_percent=int(raw["coinsurance_percent"]),
                copay_cents={k: int(v) for k, v in raw["copay_cents"].items()},
                out_of_pocket_max_cents=raw["out_of_pocket_max_cents"],
                timely_filing_days=int(raw["timely_filing_days"]),
                turnaround_days=int(raw["turnaround_days"]),
                appeal_days=int(raw["appeal_days"]),
                authorization_required=tuple(raw["authorization_required"]),
                non_covered=raw["non_covered"],
                no_cost_share=frozenset(raw["no_cost_share"]),
                self_pay=bool(raw.get("self_pay", False)),
                required_claim_fields=tuple(raw.get("required_claim_fields", ())),
                fee_basis=fees.get("basis", "charge"),
                percent_of_medicare=int(fees.get("percent_of_medicare", 100)),
                pfs_locality=fees.get("locality"),
                pfs_status_rules=bool(fees.get("pfs_status_rules", False)),
                coverage_policies=tuple(raw.get("coverage_policies", ())),
                frequency_limits={k: int(v) for k, v in raw.get("frequency_limits", {}).items()},
                authorization_number_pattern=raw.get("authorization_number_pattern"),
                referral_required=tuple(raw.get("referral_required", ())),
                excluded_service_carc=str(raw.get("excluded_service_carc", "204")),
                denial_rates={k: float(v) for k, v in raw.get("denial_rates", {}).items()},
                payment_method=raw.get("payment_method", "ACH"),
                address=dict(raw.get("address", {})),
                contact_phone=raw.get("contact_phone", ""),
            )
        except (KeyError, ValueError, TypeError) as exc:
            raise ValueError(f"payer profile {path.name}: bad or missing field {exc}") from exc


@dataclass(frozen=True)
class CoveragePolicy:
    """Diagnoses that support the medical necessity of one procedure, after an NCD or LCD."""

    procedure_code: str
    policy_id: str
    kind: str
    covered: frozenset[str]

    def covers(self, diagnoses: list[str]) -> bool:
        """True when any of *diagnoses* (dotless) is on the covered list."""
        return any(dx in self.covered for dx in diagnoses)


def load_coverage_policies() -> dict[str, CoveragePolicy]:
    """The shipped coverage lists, by procedure code."""
    grouped: dict[tuple[str, str, str], list[str]] = {}
    for r in _rows("coverage_policies.csv"):
        key = (r["procedure_code"], r["policy_id"], r["policy_kind"])
        grouped.setdefault(key, []).append(r["covered_icd10_code"])
    return {
        code: CoveragePolicy(code, policy, kind, frozenset(codes))
        for (code, policy, kind), codes in grouped.items()
    }


@dataclass(frozen=True)
class PreventiveBand:
    """One age band of cac_preventive.csv."""

    row: int
    min_age_days: int
    max_age_days: int
    new_cpt: str
    established_cpt: str
    diagnosis: str


@cache
def cac_preventive() -> tuple[PreventiveBand, ...]:
    """The preventive visit codes by age (cac_preventive.csv, see its .md for sources)."""
    return tuple(
        PreventiveBand(
            n,
            int(r["min_age_days"]),
            int(r["max_age_days"]),
            r["new_patient_cpt"],
            r["established_patient_cpt"],
            r["diagnosis"],
        )
        for n, r in enumerate(_rows("cac_preventive.csv"), start=1)
    )


@dataclass(frozen=True)
class CuratedConcept:
    """One row of cac_snomed.csv: what a coder does with a concept the NLM rows lack."""

    row: int
    concept: str
    need: str
    action: str  # code, omit or included
    code: str | None
    confidence: float
    rationale: str


@cache
def cac_snomed() -> dict[tuple[str, str], CuratedConcept]:
    """The curated SNOMED CT rows of cac_snomed.csv, by (concept id, need)."""
    return {
        (r["snomed_concept_id"], r["need"]): CuratedConcept(
            n,
            r["snomed_concept_id"],
            r["need"],
            r["action"],
            r["code"] or None,
            float(r["confidence"]),
            r["rationale"],
        )
        for n, r in enumerate(_rows("cac_snomed.csv"), start=1)
    }


@cache
def snomed_icd10cm() -> dict[str, list[tuple[str, int | None]]]:
    """SNOMED CT concept id -> [(ICD-10-CM code, below this age in days or None)], in order."""
    out: dict[str, list[tuple[str, int | None]]] = {}
    for r in _rows("snomed_icd10cm.csv"):
        below = int(r["below_age_days"]) if r["below_age_days"] else None
        out.setdefault(r["snomed_concept_id"], []).append((r["icd10cm_code"], below))
    return out


def map_snomed(concept_id: str, age_days: int) -> str | None:
    """The ICD-10-CM code (no dot) for SNOMED CT *concept_id* at *age_days*; None if unmapped."""
    for code, below in snomed_icd10cm().get(concept_id, []):
        if below is None or age_days < below:
            return code
    return None


@dataclass(frozen=True)
class Modifier:
    """A procedure modifier and how the NCCI edits treat it."""

    modifier: str
    code_set: str
    ncci_associated: bool
    anatomic: bool


@dataclass(frozen=True)
class Mue:
    """A practitioner MUE: the most units per line (MAI 1) or per date of service (MAI 2, 3)."""

    code: str
    units: int
    mai: int


@dataclass(frozen=True)
class PtpEdit:
    """An NCCI procedure-to-procedure edit: column 2 is not paid with column 1 unless allowed."""

    column1: str
    column2: str
    effective: date
    deleted: date | None
    modifier_indicator: str

    def active_on(self, day: date) -> bool:
        """True when the edit applies on date of service *day*."""
        return self.effective <= day and (self.deleted is None or day <= self.deleted)


@dataclass(frozen=True)
class EmLevel:
    """An office E/M code and what documentation supports it."""

    code: str
    patient: str
    min_minutes: int
    mdm_level: str


@dataclass(frozen=True)
class AgeSexEdits:
    """Diagnosis lists with an age range or a sex, in the manner of the MCE."""

    ranges: dict[str, list[tuple[str, str]]]
    ages: dict[str, tuple[int, int]]

    def lists_of(self, code: str) -> list[str]:
        """The edit lists (newborn, pediatric, maternity, adult, male, female) *code* is on."""
        return [
            name
            for name, spans in self.ranges.items()
            if any(matches(code, span) for span in spans)
        ]


@dataclass(frozen=True)
class RefData:
    """All reference tables, as the stage functions receive them."""

    icd: Icd10Cm
    procedures: dict[str, ProcedureCode]
    charges_cents: dict[str, int]
    carc: dict[str, tuple[str, str]]
    rarc: dict[str, str]
    payers: dict[str, PayerProfile]
    modifiers: dict[str, Modifier] = field(default_factory=dict)
    em_levels: dict[str, EmLevel] = field(default_factory=dict)
    age_sex: AgeSexEdits = field(default_factory=lambda: AgeSexEdits({}, {}))
    mue: dict[str, Mue] = field(default_factory=dict)
    ptp: dict[tuple[str, str], list[PtpEdit]] = field(default_factory=dict)
    fees: FeeSchedules | None = None
    coverage: dict[str, CoveragePolicy] = field(default_factory=dict)
    ruleset_version: str = RULESET_VERSION

    @cached_property
    def distinct_service_modifiers(self) -> frozenset[str]:
        """NCCI-associated modifiers that mark a distinct service (all but 25 and 57)."""
        return frozenset(
            m for m, mod in self.modifiers.items() if mod.ncci_associated and m not in ("25", "57")
        )

    @cached_property
    def timely_filing_days(self) -> dict[str, int]:
        """Each payer's filing limit in days, by payer id."""
        return {p.payer_id: p.timely_filing_days for p in self.payers.values()}

    def payer(self, payer_id: str) -> PayerProfile | None:
        """The profile of *payer_id*, or None when no profile is loaded for it."""
        return self.payers.get(payer_id)


def _rows(name: str) -> list[dict[str, str]]:
    with (REFDATA_DIR / name).open(newline="") as f:
        return list(csv.DictReader(f))


@dataclass(frozen=True)
class PayerRoute:
    """The payer profile that answers for a real payer, and the secondary for its members."""

    profile_id: str
    secondary_profile_id: str | None = None


@cache
def payer_directory() -> dict[str, PayerRoute]:
    """payer_directory.csv: real payer ids and names (lower case) to payer profiles."""
    return {
        r["match"].strip().lower(): PayerRoute(
            r["profile_id"].strip(), r["secondary_profile_id"].strip() or None
        )
        for r in _rows("payer_directory.csv")
    }


def route_payer(
    names: Iterable[str | None], profiles: Mapping[str, PayerProfile]
) -> PayerRoute | None:
    """The profile for the first of *names* (payer ids or names) that is one or is routed."""
    directory = payer_directory()
    for name in names:
        if not name:
            continue
        if name in profiles:
            return PayerRoute(name)
        route = directory.get(name.strip().lower())
        if route is not None and route.profile_id in profiles:
            return route
    return None


@cache
def shipped_payers() -> dict[str, PayerProfile]:
    """The payer profiles shipped in :data:`PAYERS_DIR`, loaded once per process."""
    return load_payers()


def load_payers(directory: Path = PAYERS_DIR) -> dict[str, PayerProfile]:
    """Every payer profile in *directory*, by payer id."""
    profiles = [PayerProfile.from_file(p) for p in sorted(directory.glob("*.json"))]
    return {p.payer_id: p for p in profiles}


@cache
def icd10cm() -> Icd10Cm:
    """The ICD-10-CM index, built once per process."""
    return Icd10Cm()


@cache
def load_refdata(payers_dir: Path = PAYERS_DIR) -> RefData:
    """All reference data, loaded once per process (per payers folder)."""
    procedures = {
        r["code"]: ProcedureCode(
            r["code"], r["code_set"], r["category"], int(r["max_units_per_day"])
        )
        for r in _rows("procedure_codes.csv")
    }
    return RefData(
        icd=icd10cm(),
        procedures=procedures,
        charges_cents={r["code"]: int(r["charge_cents"]) for r in _rows("chargemaster.csv")},
        carc={r["carc"]: (r["category"], r["wording"]) for r in _rows("carc.csv")},
        rarc={r["rarc"]: r["wording"] for r in _rows("rarc.csv")},
        payers=load_payers(payers_dir),
        modifiers={
            r["modifier"]: Modifier(
                r["modifier"], r["code_set"], r["ncci_associated"] == "Y", r["anatomic"] == "Y"
            )
            for r in _rows("modifiers.csv")
        },
        em_levels={
            r["code"]: EmLevel(r["code"], r["patient"], int(r["min_minutes"]), r["mdm_level"])
            for r in _rows("em_levels.csv")
        },
        age_sex=load_age_sex_edits(),
        mue={
            r["code"]: Mue(r["code"], int(r["mue_units"]), int(r["mai"]))
            for r in _rows("mue_practitioner.csv")
        },
        ptp=load_ptp_edits(),
        fees=load_fee_schedules(),
        coverage=load_coverage_policies(),
    )


def load_ptp_edits() -> dict[tuple[str, str], list[PtpEdit]]:
    """NCCI PTP edits indexed by (column 1, column 2)."""
    edits: dict[tuple[str, str], list[PtpEdit]] = {}
    for r in _rows("ncci_ptp_practitioner.csv"):
        edit = PtpEdit(
            r["column1"],
            r["column2"],
            date.fromisoformat(r["effective"]),
            date.fromisoformat(r["deleted"]) if r["deleted"] else None,
            r["modifier_indicator"],
        )
        edits.setdefault((edit.column1, edit.column2), []).append(edit)
    return edits


def load_age_sex_edits() -> AgeSexEdits:
    """The age and sex diagnosis lists with their age ranges."""
    ranges: dict[str, list[tuple[str, str]]] = {}
    for r in _rows("icd10cm_age_sex_edits.csv"):
        ranges.setdefault(r["edit_list"], []).append((r["code_from"], r["code_to"]))
    ages = {
        r["edit_list"]: (int(r["min_age_years"]), int(r["max_age_years"]))
        for r in _rows("mce_age_ranges.csv")
    }
    return AgeSexEdits(ranges, ages)

"""Coding edits: what a coder checks before an encounter may become a claim.

Pure functions only. :func:`code_encounter` takes a decoded EncounterEvent and
the reference data and returns a :class:`CodingResult`: the coded encounter, or
the hard findings that hold it for a coder. Structural problems that are the
feed's fault, not the coder's (no encounter id, no services) raise
:class:`InvalidEncounter`, which the agent sends to the dead-letter topic.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from processors.coding.em import supported_em_code
from processors.coding.suggest import apply_suggestions
from processors.contracts.findings import HARD, SOFT, finding
from processors.contracts.records import CodingFinding
from processors.refdata import (
    AGE_SEX_VERSION,
    EM_VERSION,
    ICD10CM_VALID_FROM,
    ICD10CM_VALID_TO,
    ICD10CM_VERSION,
    MODIFIERS_VERSION,
    MUE_VERSION,
    NCCI_VERSION,
    PROCEDURE_CODES_VERSION,
    RefData,
    matches,
)
from processors.refdata.ncci import (
    E_AND_M,
    PREVENTIVE,
    ptp_conflicts,
)
from processors.stage import Rejected

Record = dict[str, Any]

MAX_DIAGNOSES = 12
MAX_POINTERS = 4
MAX_MODIFIERS = 4
SEX_LISTS = {"male": "M", "female": "F"}
# CPT Category I (5 digits), II (4 digits + F), III (4 digits + T); HCPCS Level II (letter + 4).
PROCEDURE_FORMAT = re.compile(r"^(?:[0-9]{5}|[0-9]{4}[FT]|[A-V][0-9]{4})$")
MINOR_PROCEDURE = "minor_procedure"


class InvalidEncounter(Rejected):
    """The event is readable but lacks data no coder can supply; it is dead-lettered."""


@dataclass(frozen=True)
class CodingResult:
    """Outcome of coding one encounter."""

    coded: Record | None
    findings: list[CodingFinding] = field(default_factory=list)

    @property
    def held(self) -> bool:
        """True when a hard finding holds the encounter for a coder."""
        return any(f["severity"] == HARD for f in self.findings)


def validate_encounter(event: Record) -> None:
    """Raise InvalidEncounter when the event lacks what every encounter must carry."""
    missing = [
        name for name in ("event_id", "encounter_id") if not str(event.get(name) or "").strip()
    ]
    if not event.get("procedures"):
        missing.append("procedures (at least one service)")
    for role in ("billing_provider", "rendering_provider"):
        provider = event.get(role) or {}
        if not str(provider.get("npi") or "").strip():
            missing.append(f"{role}.npi")
    patient = event.get("patient") or {}
    if not str(patient.get("person_id") or "").strip():
        missing.append("patient.person_id")
    if missing:
        raise InvalidEncounter(
            "encounter is missing required data: "
            + ", ".join(missing)
            + "; fix the EHR feed mapping and resend the encounter"
        )


def age_in_years(birth: date, on: date) -> int:
    """Whole years of age on date *on*."""
    return on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))


def check_diagnoses(diagnoses: list[str], refdata: RefData) -> list[CodingFinding]:
    """ICD-10-CM code edits: exists, billable, 7th character, manifestation, Excludes1."""
    out: list[CodingFinding] = []
    icd = refdata.icd
    if not diagnoses:
        out.append(
            finding(
                "DX-MISSING",
                HARD,
                None,
                "No diagnosis documented; every service needs a supporting ICD-10-CM code.",
                ICD10CM_VERSION,
            )
        )
    valid: list[str] = []
    for code in diagnoses:
        if not icd.exists(code):
            out.append(
                finding(
                    "ICD-VALID",
                    HARD,
                    code,
                    f"{code} is not an ICD-10-CM code; check the code against the documentation.",
                    ICD10CM_VERSION,
                )
            )
        elif not icd.is_billable(code):
            seventh = icd.seventh_characters(code)
            if seventh and len(code) < 7:
                choices = "; ".join(f"{k} {v}" for k, v in sorted(seventh.items()))
                out.append(
                    finding(
                        "ICD-7TH-CHAR",
                        HARD,
                        code,
                        f"{icd.display(code)} needs a 7th character (use X placeholders to fill "
                        f"to six characters): {choices}.",
                        ICD10CM_VERSION,
                    )
                )
            else:
                children = ", ".join(icd.display(c) for c in icd.billable_children(code, limit=8))
                out.append(
                    finding(
                        "ICD-BILLABLE",
                        HARD,
                        code,
                        f"{icd.display(code)} is a header code, not billable; code to the highest "
                        f"specificity documented, e.g. {children}.",
                        ICD10CM_VERSION,
                    )
                )
        else:
            valid.append(code)
    if diagnoses and diagnoses[0] in valid and icd.is_manifestation(diagnoses[0]):
        out.append(
            finding(
                "ICD-MANIFESTATION-PRIMARY",
                HARD,
                diagnoses[0],
                f'{icd.display(diagnoses[0])} is a manifestation code ("in diseases classified '
                'elsewhere"); list the underlying condition first.',
                ICD10CM_VERSION,
            )
        )
    for i, code in enumerate(valid):
        for other in valid[i + 1 :]:
            if any(matches(other, p) for p in icd.excludes1(code)) or any(
                matches(code, p) for p in icd.excludes1(other)
            ):
                out.append(
                    finding(
                        "ICD-EXCLUDES1",
                        HARD,
                        other,
                        f"{icd.display(code)} and {icd.display(other)} are an Excludes1 pair: they "
                        "are not coded together; keep the one the documentation supports.",
                        ICD10CM_VERSION,
                    )
                )
    if len(diagnoses) > MAX_DIAGNOSES:
        out.append(
            finding(
                "DX-OVER-12",
                SOFT,
                None,
                f"{len(diagnoses)} diagnoses documented; a professional claim carries 12, "
                "so only the first 12 are billed.",
                ICD10CM_VERSION,
            )
        )
    return out


def check_service_date(diagnoses: list[str], service_date: date) -> list[CodingFinding]:
    """Codes are checked against the FY2026 edition; other dates get a warning."""
    if not diagnoses or ICD10CM_VALID_FROM <= service_date <= ICD10CM_VALID_TO:
        return []
    return [
        finding(
            "ICD-DOS-EDITION",
            SOFT,
            None,
            f"Service date {service_date.isoformat()} is outside ICD-10-CM FY2026 "
            f"({ICD10CM_VALID_FROM.isoformat()} to {ICD10CM_VALID_TO.isoformat()}); codes were "
            "checked against FY2026 and may differ in the edition in force.",
            ICD10CM_VERSION,
        )
    ]


def check_age_sex(
    diagnoses: list[str], patient: Record, service_date: date, refdata: RefData
) -> list[CodingFinding]:
    """Age and sex edits in the manner of the Medicare Code Editor."""
    out: list[CodingFinding] = []
    age = age_in_years(patient["birth_date"], service_date)
    sex = patient.get("sex")
    edits = refdata.age_sex
    for code in diagnoses:
        for name in edits.lists_of(code):
            shown = refdata.icd.display(code)
            if name in SEX_LISTS:
                if sex in ("F", "M") and sex != SEX_LISTS[name]:
                    # A warning, not a hold: CMS dropped sex conflict edits from the MCE in
                    # FY2025, and administrative sex need not match anatomy.
                    out.append(
                        finding(
                            "ICD-SEX",
                            SOFT,
                            code,
                            f"{shown} is usually a {name} diagnosis and the patient's recorded sex "
                            f"is {sex}; confirm the code and the registration.",
                            AGE_SEX_VERSION,
                        )
                    )
                continue
            low, high = edits.ages[name]
            if not low <= age <= high:
                out.append(
                    finding(
                        "ICD-AGE",
                        HARD,
                        code,
                        f"{shown} is a {name} diagnosis (ages {low}-{high}) and the patient is "
                        f"{age} "
                        "on the date of service; check the code and the birth date.",
                        AGE_SEX_VERSION,
                    )
                )
    return out


def check_procedure(line_no: int, proc: Record, refdata: RefData) -> list[CodingFinding]:
    """CPT/HCPCS edits: code known, unit count and modifier count within limits."""
    code = proc["code"]
    if not PROCEDURE_FORMAT.match(code):
        return [
            finding(
                "PROC-FORMAT",
                HARD,
                code,
                f"Line {line_no}: {code!r} is not shaped like a CPT or HCPCS code (five "
                "characters: "
                "digits, 4 digits + F/T, or a letter + 4 digits).",
                PROCEDURE_CODES_VERSION,
            )
        ]
    known = refdata.procedures.get(code)
    if known is None:
        return [
            finding(
                "PROC-VALID",
                HARD,
                code,
                f"Line {line_no}: {code} is not a CPT or HCPCS code in the practice's code list.",
                PROCEDURE_CODES_VERSION,
            )
        ]
    out: list[CodingFinding] = []
    units = proc.get("units", 1)
    if units < 1:
        out.append(
            finding(
                "PROC-UNITS",
                HARD,
                code,
                f"Line {line_no}: {code} has {units} units; bill at least one.",
                PROCEDURE_CODES_VERSION,
            )
        )
    elif code in refdata.mue:
        pass  # the CMS MUE, checked per date of service in check_mue
    elif units > known.max_units_per_day:
        out.append(
            finding(
                "PROC-UNITS",
                HARD,
                code,
                f"Line {line_no}: {units} units of {code} exceed {known.max_units_per_day} "
                "per day; check the documentation or split by date of service.",
                PROCEDURE_CODES_VERSION,
            )
        )
    modifiers = list(proc.get("modifiers", []))
    if len(modifiers) > MAX_MODIFIERS:
        out.append(
            finding(
                "PROC-MODIFIERS",
                HARD,
                code,
                f"Line {line_no}: {len(modifiers)} modifiers; a line carries at most 4.",
                PROCEDURE_CODES_VERSION,
            )
        )
    for modifier in modifiers:
        if modifier not in refdata.modifiers:
            out.append(
                finding(
                    "MOD-VALID",
                    HARD,
                    modifier,
                    f"Line {line_no}: {modifier!r} is not a CPT or HCPCS modifier in the code "
                    "list.",
                    MODIFIERS_VERSION,
                )
            )
    if "25" in modifiers and known.category not in (*E_AND_M, PREVENTIVE):
        out.append(
            finding(
                "MOD-25-NOT-EM",
                HARD,
                code,
                f"Line {line_no}: modifier 25 belongs on an E/M service, not on {code}.",
                MODIFIERS_VERSION,
            )
        )
    if "RT" in modifiers and "LT" in modifiers:
        out.append(
            finding(
                "MOD-LATERALITY",
                HARD,
                code,
                f"Line {line_no}: RT and LT on one line; bill two lines or use 50 if bilateral.",
                MODIFIERS_VERSION,
            )
        )
    return out


MAI_MEANING = {
    1: "per claim line",
    2: "per date of service (policy)",
    3: "per date of service (clinical benchmark)",
}


def check_mue(procedures: list[Record], refdata: RefData) -> list[CodingFinding]:
    """CMS practitioner MUEs: units per line (MAI 1) or per date of service (MAI 2, 3)."""
    out: list[CodingFinding] = []
    per_day: dict[str, int] = {}
    for line_no, proc in enumerate(procedures, start=1):
        mue = refdata.mue.get(proc["code"])
        if mue is None:
            continue
        units = proc.get("units", 1)
        per_day[mue.code] = per_day.get(mue.code, 0) + units
        if mue.mai == 1 and units > mue.units:
            out.append(
                finding(
                    "MUE",
                    HARD,
                    mue.code,
                    f"Line {line_no}: {units} units of {mue.code} exceed its MUE of {mue.units} "
                    f"{MAI_MEANING[1]}; correct the units or split the line as documented.",
                    MUE_VERSION,
                )
            )
    for code, units in per_day.items():
        mue = refdata.mue[code]
        if mue.mai != 1 and units > mue.units:
            out.append(
                finding(
                    "MUE",
                    HARD,
                    code,
                    f"{units} units of {code} on one date exceed its MUE of {mue.units} "
                    f"{MAI_MEANING[mue.mai]} (MAI {mue.mai}); bill the documented units, appeal "
                    "only with records showing medical necessity.",
                    MUE_VERSION,
                )
            )
    return out


def check_ncci(
    procedures: list[Record], service_date: date, refdata: RefData, categories: dict[str, str]
) -> list[CodingFinding]:
    """NCCI procedure-to-procedure edits between the lines of one date of service."""
    out: list[CodingFinding] = []
    mod25_reported = any(c in (MINOR_PROCEDURE, PREVENTIVE) for c in categories.values())
    for i, j, edit in ptp_conflicts(procedures, service_date, refdata, categories):
        first, second = procedures[i], procedures[j]
        col2_category = categories.get(second["code"], "")
        if edit.modifier_indicator == "1":
            mods = set(second.get("modifiers", []))
            if col2_category in E_AND_M and "25" not in mods and mod25_reported:
                continue  # the missing 25 is reported once, as EM-MOD25
            fix = (
                "append 25 to the E/M if it was significant and separately identifiable"
                if col2_category in (*E_AND_M, PREVENTIVE)
                else "append an NCCI-associated modifier (59, XE, XS, XP, XU or an "
                "anatomic modifier) only if the documentation shows a distinct "
                "service"
            )
            out.append(
                finding(
                    "NCCI-PTP",
                    HARD,
                    second["code"],
                    f"Line {j + 1}: {second['code']} is a column 2 code of {first['code']} "
                    f"(NCCI PTP, modifier indicator 1, effective "
                    f"{edit.effective.isoformat()}): {fix}, otherwise remove it.",
                    NCCI_VERSION,
                )
            )
        else:
            out.append(
                finding(
                    "NCCI-PTP",
                    HARD,
                    second["code"],
                    f"Line {j + 1}: {second['code']} is not payable with {first['code']} "
                    f"on the same date (NCCI PTP, modifier indicator 0: no modifier "
                    "bypasses it); remove it.",
                    NCCI_VERSION,
                )
            )
    return out


def check_em(event: Record, refdata: RefData, categories: dict[str, str]) -> list[CodingFinding]:
    """E/M level from documented time or MDM (2021 guidelines), and modifier 25."""
    out: list[CodingFinding] = []
    visits = [p for p in event["procedures"] if categories.get(p["code"]) in E_AND_M]
    minutes, mdm = event.get("documented_minutes"), event.get("mdm_level")
    for visit in visits:
        code = visit["code"]
        if refdata.em_levels[code].min_minutes == 0:
            continue  # 99211 needs no physician time or MDM
        if minutes is None and mdm is None:
            out.append(
                finding(
                    "EM-NOT-VERIFIABLE",
                    SOFT,
                    code,
                    f"Neither total time nor MDM is documented, so the level of {code} cannot be "
                    "checked.",
                    EM_VERSION,
                )
            )
            continue
        supported = supported_em_code(code, minutes, mdm, refdata)
        if supported is None or supported < code:
            shown = supported or "no level of this family"
            out.append(
                finding(
                    "EM-LEVEL",
                    HARD,
                    code,
                    f"{code} is not supported: the documentation ({minutes or 'no'} minutes, MDM "
                    f"{mdm or 'not documented'}) supports {shown}; bill that level or document "
                    "more.",
                    EM_VERSION,
                )
            )
        elif supported > code:
            out.append(
                finding(
                    "EM-UNDERCODED",
                    SOFT,
                    code,
                    f"The documentation supports {supported}; {code} may be under-coded.",
                    EM_VERSION,
                )
            )
    minor = MINOR_PROCEDURE in categories.values()
    preventive = PREVENTIVE in categories.values()
    if visits and (minor or preventive):
        with_what = "a minor procedure" if minor else "a preventive visit"
        out.extend(
            finding(
                "EM-MOD25",
                HARD,
                visit["code"],
                f"{visit['code']} is billed with {with_what} the same day: append modifier 25 "
                "if the visit was significant and separately identifiable, otherwise remove it.",
                MODIFIERS_VERSION,
            )
            for visit in visits
            if "25" not in visit.get("modifiers", [])
        )
    return out


def diagnosis_pointers(refs: list[int], billed: int) -> list[int]:
    """One-based pointers (at most 4) from zero-based refs, within the billed diagnoses."""
    pointers: list[int] = []
    for ref in refs:
        pointer = ref + 1
        if 1 <= pointer <= billed and pointer not in pointers:
            pointers.append(pointer)
    return pointers[:MAX_POINTERS] or [1]


def check_pointers(procedures: list[Record], billed: int) -> list[CodingFinding]:
    """Warn where a line's pointers could not follow the documentation."""
    out: list[CodingFinding] = []
    for line_no, proc in enumerate(procedures, start=1):
        refs = list(proc.get("diagnosis_refs", []))
        kept = [r for r in refs if 0 <= r < billed]
        if not refs:
            message = (
                f"Line {line_no}: no diagnosis is linked to {proc['code']}; it points at "
                "the primary diagnosis. Link the diagnoses that support it."
            )
        elif len(kept) < len(refs):
            message = (
                f"Line {line_no}: {proc['code']} is linked to a diagnosis beyond the "
                "12 billed; move the supporting diagnosis into the first 12."
            )
        elif len(dict.fromkeys(kept)) > MAX_POINTERS:
            message = (
                f"Line {line_no}: {proc['code']} is linked to more than 4 diagnoses; "
                "the 4 most relevant, as documented first, are pointed at."
            )
        else:
            continue
        out.append(finding("DX-POINTER", SOFT, proc["code"], message, ICD10CM_VERSION))
    return out


def uncoded_findings(event: Record, edition: str) -> list[CodingFinding]:
    """HARD findings for the clinical concepts the feed sent without a billing code.

    Each names the concept (its system, code and display: terms, never patient
    data) and where it was; an encounter with no diagnosis at all asks for one.
    """
    found = []
    for concept in event.get("uncoded") or []:
        system = concept["system"].rstrip("/").rsplit("/", 1)[-1] or "unknown system"
        display = f" ({concept['display']})" if concept.get("display") else ""
        found.append(
            finding(
                f"CAC-UNCODED-{concept['need'].upper()}",
                HARD,
                concept["code"],
                f"{concept['element']}: {system} {concept['code']}{display} has no "
                f"{'ICD-10-CM' if concept['need'] == 'diagnosis' else 'CPT or HCPCS'} code in "
                "the shipped maps; code it, or leave it out if it is not billed.",
                edition,
            )
        )
    if found and not event.get("diagnoses"):
        found.append(
            finding(
                "CAC-NO-DIAGNOSIS",
                HARD,
                None,
                "The encounter documents no diagnosis the maps could code: code the reason "
                "for the visit from the note, or query the physician.",
                edition,
            )
        )
    return found


def code_encounter(event: Record, refdata: RefData) -> CodingResult:
    """Apply the coding edits to *event*; hold it when any hard edit fails.

    An encounter whose feed sent clinical concepts without billing codes is held
    for a coder, naming them, before any other edit.
    """
    event, suggested = apply_suggestions(event, refdata)
    uncoded = uncoded_findings(event, refdata.ruleset_version)
    if uncoded:
        return CodingResult(coded=None, findings=suggested + uncoded)
    validate_encounter(event)
    diagnoses = list(event.get("diagnoses") or [])
    findings = suggested + check_diagnoses(diagnoses, refdata)
    findings.extend(check_service_date(diagnoses, event["service_date"]))
    findings.extend(check_age_sex(diagnoses, event["patient"], event["service_date"], refdata))
    procedures = event["procedures"]
    for line_no, proc in enumerate(procedures, start=1):
        findings.extend(check_procedure(line_no, proc, refdata))
    categories = {
        p["code"]: refdata.procedures[p["code"]].category
        for p in procedures
        if p["code"] in refdata.procedures
    }
    findings.extend(check_em(event, refdata, categories))
    findings.extend(check_mue(procedures, refdata))
    findings.extend(check_ncci(procedures, event["service_date"], refdata, categories))
    if any(f["severity"] == HARD for f in findings):
        return CodingResult(coded=None, findings=findings)
    billed = diagnoses[:MAX_DIAGNOSES]
    findings.extend(check_pointers(event["procedures"], len(billed)))
    lines = [
        {
            "line_number": n,
            "procedure_code": proc["code"],
            "modifiers": list(proc.get("modifiers", [])),
            "units": proc.get("units", 1),
            "dx_pointers": diagnosis_pointers(list(proc.get("diagnosis_refs", [])), len(billed)),
            "charge_cents": proc.get("charge_cents"),
        }
        for n, proc in enumerate(event["procedures"], start=1)
    ]
    coded = {
        "event_id": event["event_id"],
        "encounter": event,
        "diagnoses": billed,
        "lines": lines,
        "findings": findings,
        "ruleset_version": refdata.ruleset_version,
    }
    return CodingResult(coded=coded, findings=findings)

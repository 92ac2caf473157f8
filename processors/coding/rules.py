"""Coding edits: what a coder checks before an encounter may become a claim.

Pure functions only. :func:`code_encounter` takes a decoded EncounterEvent and
the reference data and returns a :class:`CodingResult`: the coded encounter, or
the hard findings that hold it for a coder. Structural problems that are the
feed's fault, not the coder's (no encounter id, no services) raise
:class:`InvalidEncounter`, which the agent sends to the dead-letter topic.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from processors.refdata import (
    ICD10CM_VERSION,
    PROCEDURE_CODES_VERSION,
    RefData,
)

Record = dict[str, Any]

MAX_DIAGNOSES = 12
MAX_POINTERS = 4
MAX_MODIFIERS = 4
HARD = "HARD"
SOFT = "SOFT"


class InvalidEncounter(ValueError):
    """The event is readable but lacks data no coder can supply; it is dead-lettered."""


@dataclass(frozen=True)
class CodingResult:
    """Outcome of coding one encounter."""

    coded: Record | None
    findings: list[Record] = field(default_factory=list)

    @property
    def held(self) -> bool:
        """True when a hard finding holds the encounter for a coder."""
        return any(f["severity"] == HARD for f in self.findings)


def finding(edit_id: str, severity: str, code: str | None, message: str, edition: str) -> Record:
    """A CodingFinding record."""
    return {
        "edit_id": edit_id,
        "severity": severity,
        "code": code,
        "message": message,
        "refdata_version": edition,
    }


def validate_encounter(event: Record) -> None:
    """Raise InvalidEncounter when the event lacks what every encounter must carry."""
    missing = [
        name
        for name in ("event_id", "encounter_id")
        if not str(event.get(name) or "").strip()
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
            "encounter is missing required data: " + ", ".join(missing)
            + "; fix the EHR feed mapping and resend the encounter"
        )


def check_diagnoses(diagnoses: list[str], refdata: RefData) -> list[Record]:
    """ICD-10-CM edits: each code exists and is billable (a leaf of the classification)."""
    out: list[Record] = []
    icd = refdata.icd
    if not diagnoses:
        out.append(finding(
            "DX-MISSING", HARD, None,
            "No diagnosis documented; every service needs a supporting ICD-10-CM code.",
            ICD10CM_VERSION,
        ))
    for code in diagnoses:
        if not icd.exists(code):
            out.append(finding(
                "ICD-VALID", HARD, code,
                f"{code} is not an ICD-10-CM code; check the code against the documentation.",
                ICD10CM_VERSION,
            ))
        elif not icd.is_billable(code):
            children = ", ".join(icd.display(c) for c in icd.billable_children(code, limit=8))
            out.append(finding(
                "ICD-BILLABLE", HARD, code,
                f"{icd.display(code)} is a header code, not billable; code to the highest "
                f"specificity documented, e.g. {children}.",
                ICD10CM_VERSION,
            ))
    if len(diagnoses) > MAX_DIAGNOSES:
        out.append(finding(
            "DX-OVER-12", SOFT, None,
            f"{len(diagnoses)} diagnoses documented; a professional claim carries 12, "
            "so only the first 12 are billed.",
            ICD10CM_VERSION,
        ))
    return out


def check_procedure(line_no: int, proc: Record, refdata: RefData) -> list[Record]:
    """CPT/HCPCS edits: code known, unit count and modifier count within limits."""
    code = proc["code"]
    known = refdata.procedures.get(code)
    if known is None:
        return [finding(
            "PROC-VALID", HARD, code,
            f"Line {line_no}: {code} is not a CPT or HCPCS code in the practice's code list.",
            PROCEDURE_CODES_VERSION,
        )]
    out: list[Record] = []
    units = proc.get("units", 1)
    if units < 1:
        out.append(finding(
            "PROC-UNITS", HARD, code,
            f"Line {line_no}: {code} has {units} units; bill at least one.",
            PROCEDURE_CODES_VERSION,
        ))
    elif units > known.max_units_per_day:
        out.append(finding(
            "PROC-UNITS", HARD, code,
            f"Line {line_no}: {units} units of {code} exceed {known.max_units_per_day} per day; "
            "check the documentation or split by date of service.",
            PROCEDURE_CODES_VERSION,
        ))
    if len(proc.get("modifiers", [])) > MAX_MODIFIERS:
        out.append(finding(
            "PROC-MODIFIERS", HARD, code,
            f"Line {line_no}: {len(proc['modifiers'])} modifiers; a line carries at most 4.",
            PROCEDURE_CODES_VERSION,
        ))
    return out


def diagnosis_pointers(refs: list[int], billed: int) -> list[int]:
    """One-based pointers (at most 4) from zero-based refs, within the billed diagnoses."""
    pointers: list[int] = []
    for ref in refs:
        pointer = ref + 1
        if 1 <= pointer <= billed and pointer not in pointers:
            pointers.append(pointer)
    return pointers[:MAX_POINTERS] or [1]


def code_encounter(event: Record, refdata: RefData) -> CodingResult:
    """Apply the coding edits to *event*; hold it when any hard edit fails."""
    validate_encounter(event)
    diagnoses = list(event.get("diagnoses") or [])
    findings = check_diagnoses(diagnoses, refdata)
    for line_no, proc in enumerate(event["procedures"], start=1):
        findings.extend(check_procedure(line_no, proc, refdata))
    if any(f["severity"] == HARD for f in findings):
        return CodingResult(coded=None, findings=findings)
    billed = diagnoses[:MAX_DIAGNOSES]
    lines = [
        {
            "line_number": n,
            "procedure_code": proc["code"],
            "modifiers": list(proc.get("modifiers", [])),
            "units": proc.get("units", 1),
            "dx_pointers": diagnosis_pointers(list(proc.get("diagnosis_refs", [])), len(billed)),
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

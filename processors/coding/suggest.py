"""Computer-assisted coding: billing codes suggested for concepts a feed sent uncoded.

A feed that sends clinical concepts (SNOMED CT encounter types and procedures)
instead of CPT codes leaves them on the EncounterEvent as ``uncoded``. For
those a rule here can code, a suggestion names the code, the rule and its
source row, and a confidence. A suggestion at or above :data:`THRESHOLD` is
billed: the concept becomes a service line (and its diagnosis), and a SOFT
finding ``CAC-SUGGESTED`` keeps the provenance on the coded encounter and its
claim. Below it, or with nothing to suggest, the concept stays uncoded and the
coding stage holds the encounter for a coder, with the suggestion named.

Rules so far: preventive visits (``cac_preventive.csv``), by age on the date of
service and new or established patient; office visits for a problem, by the
documented time or MDM (``em_levels.csv``); curated SNOMED CT rows
(``cac_snomed.csv``).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from processors.coding.em import supported_em_code
from processors.contracts.findings import SOFT, finding
from processors.contracts.records import CodingFinding
from processors.refdata import CuratedConcept, RefData, cac_preventive, cac_snomed

Record = dict[str, Any]

SNOMED = "http://snomed.info/sct"
THRESHOLD = 0.8
# SNOMED CT encounter types of a preventive visit (cac_preventive.md).
PREVENTIVE_VISITS = frozenset({"185349003", "162673000", "410620009"})
RULES_EDITION = "CAC-2026.1"
# ICD-10-CM Z codes for circumstances and status (social determinants Z55-Z65, Z73):
# they do not make a check-up one "with abnormal findings".
CIRCUMSTANCES = (*(f"Z{n}" for n in range(55, 66)), "Z73")


@dataclass(frozen=True)
class Suggestion:
    """A code suggested for an uncoded concept, where it came from and how sure it is."""

    concept: Record
    procedure: str
    diagnosis: str | None
    confidence: float
    rule: str
    why: str  # shown to the coder: what the suggestion rests on


# SNOMED CT encounter types of an office or outpatient visit for a problem: encounter for
# problem, for symptom, follow-up, urgent care clinic.
OFFICE_VISITS = frozenset({"185347001", "185345009", "390906007", "702927004"})


def suggest_office_visit(event: Record, concept: Record, refdata: RefData) -> Suggestion | None:
    """The office E/M level the documented time or MDM supports (em_levels.csv).

    Without the patient's history the family (new or established) is unknown;
    without time or MDM the level is: the suggestion then asks the coder (or
    the physician) and is not billed.
    """
    if concept["need"] != "service" or concept["system"] != SNOMED:
        return None
    if concept["code"] not in OFFICE_VISITS:
        return None
    established = event.get("established_patient")
    minutes, mdm = event.get("documented_minutes"), event.get("mdm_level")
    family = "99212" if established in (True, None) else "99202"
    code = supported_em_code(family, minutes, mdm, refdata)
    if code is None:
        return Suggestion(
            concept,
            family,
            None,
            0.3,
            "em_levels.csv",
            "the feed documents neither total time nor MDM: query the physician for the level",
        )
    basis = f"{minutes} minutes documented" if minutes is not None else f"{mdm} MDM"
    if established is None:
        return Suggestion(
            concept, code, None, 0.5, "em_levels.csv", f"{basis}; new or established unknown"
        )
    patient = "established" if established else "new"
    return Suggestion(concept, code, None, 0.85, "em_levels.csv", f"{basis}, {patient} patient")


def suggest_preventive(event: Record, concept: Record) -> Suggestion | None:
    """The preventive medicine service for a check-up, by age and new/established."""
    if concept["need"] != "service" or concept["system"] != SNOMED:
        return None
    if concept["code"] not in PREVENTIVE_VISITS:
        return None
    age_days = (event["service_date"] - event["patient"]["birth_date"]).days
    band = next((b for b in cac_preventive() if b.min_age_days <= age_days <= b.max_age_days), None)
    if band is None:
        return None
    established = event.get("established_patient")
    if established is None:
        return Suggestion(
            concept,
            band.established_cpt,
            band.diagnosis,
            0.5,
            "cac_preventive.csv",
            "the feed does not say whether the patient is new or established",
        )
    code = band.established_cpt if established else band.new_cpt
    others = [u for u in event.get("uncoded") or [] if u["need"] == "diagnosis"]
    problems = [d for d in event.get("diagnoses") or [] if not d.startswith(CIRCUMSTANCES)]
    confidence = 0.9 if not problems and not others else 0.6
    why = (
        f"age {age_days // 365} on the date of service, "
        f"{'established' if established else 'new'} patient"
        + ("" if confidence >= THRESHOLD else "; other diagnoses were documented")
    )
    return Suggestion(
        concept, code, band.diagnosis, confidence, f"cac_preventive.csv row {band.row}", why
    )


def apply_suggestions(event: Record, refdata: RefData) -> tuple[Record, list[CodingFinding]]:
    """*event* with the suggestions at or above the threshold billed, and their findings.

    A suggestion below it, or for a code the practice's list does not hold, is
    reported as a SOFT finding and the concept stays uncoded (for the coder).
    Curated rows go first; then, with what they left, a check-up's preventive
    visit (sure only when no other problem is left on it); then the services that
    are part of a visit, once the visit code is known.
    """
    uncoded = list(event.get("uncoded") or [])
    if not uncoded:
        return event, []
    out = copy.copy(event)
    out["procedures"] = list(event.get("procedures") or [])
    out["diagnoses"] = list(event.get("diagnoses") or [])
    findings: list[CodingFinding] = []
    included = [(c, k) for c in uncoded if (k := _curated(c)) and k.action == "included"]
    pending = [c for c in uncoded if all(c is not i for i, _ in included)]
    pending = [c for c in pending if not _apply_curated(c, out, findings)]
    state = {**out, "uncoded": pending}
    left = [c for c in pending if not _apply_preventive(state, c, out, findings, refdata)]
    has_visit = any(_is_visit(p["code"], refdata) for p in out["procedures"])
    for concept, curated in included:
        applied = has_visit and curated.confidence >= THRESHOLD
        findings.append(_curated_finding(concept, curated, applied, has_visit=has_visit))
        if not applied:
            left.append(concept)
    out["uncoded"] = left
    return out, findings


def _apply_curated(concept: Record, out: Record, findings: list[CodingFinding]) -> bool:
    """Code or leave off *concept* by its cac_snomed.csv row; True when that is done."""
    curated = _curated(concept)
    if curated is None or curated.action not in ("code", "omit"):
        return False
    applied = curated.confidence >= THRESHOLD
    findings.append(_curated_finding(concept, curated, applied))
    if applied and curated.code and curated.code not in out["diagnoses"]:
        out["diagnoses"].append(curated.code)
    return applied


def _apply_preventive(
    state: Record, concept: Record, out: Record, findings: list[CodingFinding], refdata: RefData
) -> bool:
    """Bill a check-up's preventive visit when sure enough; True when it is billed."""
    suggestion = suggest_preventive(state, concept) or suggest_office_visit(state, concept, refdata)
    if suggestion is None:
        return False
    listed = suggestion.procedure in refdata.procedures
    billed = listed and suggestion.confidence >= THRESHOLD
    findings.append(_finding(suggestion, billed, listed))
    if not billed:
        return False
    refs = list(range(min(len(out["diagnoses"]), 4)))  # a problem visit: its diagnoses
    if suggestion.diagnosis:
        if suggestion.diagnosis not in out["diagnoses"]:
            out["diagnoses"].append(suggestion.diagnosis)
        refs = [out["diagnoses"].index(suggestion.diagnosis)]
    out["procedures"].append(
        {
            "code": suggestion.procedure,
            "modifiers": [],
            "units": 1,
            "diagnosis_refs": refs,
            "charge_cents": None,
        }
    )
    return True


# Procedure categories that are a visit other services can be part of.
VISIT_CATEGORIES = frozenset(
    {"office_visit_new", "office_visit_established", "preventive_visit", "wellness_visit"}
)


def _is_visit(code: str, refdata: RefData) -> bool:
    procedure = refdata.procedures.get(code)
    return procedure is not None and procedure.category in VISIT_CATEGORIES


def _curated(concept: Record) -> CuratedConcept | None:
    if concept["system"] != SNOMED:
        return None
    return cac_snomed().get((concept["code"], concept["need"]))


def _curated_finding(
    concept: Record, curated: CuratedConcept, applied: bool, *, has_visit: bool = True
) -> CodingFinding:
    where = f"SNOMED CT {concept['code']} at {concept['element']}"
    if curated.action == "code":
        what = f"coded {curated.code}" if applied else f"suggested {curated.code}"
    elif curated.action == "omit":
        what = "left off the claim" if applied else "suggested leaving it off the claim"
    elif has_visit:
        what = "part of the visit" if applied else "suggested as part of the visit"
    else:
        what = "part of a visit, but the encounter has no visit code"
    return finding(
        "CAC-SUGGESTED",
        SOFT,
        curated.code,
        f"{where}: {what} (confidence {curated.confidence:.2f}; cac_snomed.csv row "
        f"{curated.row}, curated; {curated.rationale}).",
        RULES_EDITION,
    )


def _finding(s: Suggestion, billed: bool, listed: bool) -> CodingFinding:
    concept = f"SNOMED CT {s.concept['code']} at {s.concept['element']}"
    codes = s.procedure + (f" with {s.diagnosis}" if s.diagnosis else "")
    if billed:
        what = f"billed as suggested: {codes}"
    elif not listed:
        what = f"suggested {codes}, but {s.procedure} is not in the practice's procedure list"
    else:
        what = f"suggested {codes} below the confidence to bill it unreviewed"
    return finding(
        "CAC-SUGGESTED",
        SOFT,
        s.procedure,
        f"{concept}: {what} (confidence {s.confidence:.1f}; {s.rule}; {s.why}).",
        RULES_EDITION,
    )

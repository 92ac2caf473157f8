"""How each injected coding problem changes an encounter, so that it trips one coding edit."""

from __future__ import annotations

import random

from pipeline.ingest.synthetic.catalogue import procedure_catalogue
from pipeline.ingest.synthetic.parameters import Record
from pipeline.ingest.synthetic.problems import (
    AGE_CONFLICT_OF,
    EXCLUDES1_ADDITION,
    LATERALITY,
    MISTYPED_MODIFIER,
    OTHER_SIDE,
    WITHOUT_7TH_CHARACTER,
)
from pipeline.ingest.synthetic.records import _documentation
from pipeline.ingest.synthetic.scenarios import (
    NURSE_VISIT,
    VERIFIABLE_DOCUMENTATION,
    VISIT_FAMILIES,
    VISIT_FAMILY_OF,
)

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

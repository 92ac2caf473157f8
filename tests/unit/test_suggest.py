"""Computer-assisted coding: preventive visits sent as SNOMED CT, coded by age and history."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from processors.coding.rules import code_encounter
from processors.coding.suggest import THRESHOLD, apply_suggestions
from processors.refdata import load_refdata
from tests.builders import encounter, person

REFDATA = load_refdata()
SNOMED = "http://snomed.info/sct"
CHECK_UP = {
    "need": "service",
    "system": SNOMED,
    "code": "185349003",
    "display": "Encounter for check up",
    "element": "Claim.item.productOrService",
}


def check_up(birth: date, established: bool | None, **overrides: Any) -> dict[str, Any]:
    """A check-up on 2026-03-02 sent only as its SNOMED CT encounter type."""
    fields: dict[str, Any] = {
        "patient": person(birth_date=birth),
        "diagnoses": [],
        "procedures": [],
        "uncoded": [dict(CHECK_UP)],
        "established_patient": established,
        **overrides,
    }
    return encounter(**fields)


@pytest.mark.parametrize(
    ("birth", "established", "code", "diagnosis"),
    [
        (date(1981, 6, 1), True, "99396", "Z0000"),
        (date(1981, 6, 1), False, "99386", "Z0000"),
        (date(1996, 1, 15), True, "99395", "Z0000"),
        (date(2023, 1, 10), True, "99392", "Z00129"),
    ],
)
def test_a_check_up_is_billed_as_the_preventive_visit_for_the_age(
    birth: date, established: bool, code: str, diagnosis: str
) -> None:
    result = code_encounter(check_up(birth, established), REFDATA)
    assert result.coded is not None
    assert [ln["procedure_code"] for ln in result.coded["lines"]] == [code]
    assert result.coded["diagnoses"] == [diagnosis]
    (provenance,) = [f for f in result.findings if f["edit_id"] == "CAC-SUGGESTED"]
    assert provenance["severity"] == "SOFT"
    assert "billed as suggested" in provenance["message"]
    assert "cac_preventive.csv row" in provenance["message"]


def test_a_code_the_practice_does_not_list_goes_to_the_coder_named() -> None:
    """A 10-year-old's established check-up is 99393, which the shipped list lacks."""
    result = code_encounter(check_up(date(2015, 8, 24), True), REFDATA)
    assert result.coded is None
    messages = [f["message"] for f in result.findings]
    assert any("suggested 99393 with Z00129, but 99393 is not in" in m for m in messages)
    assert {f["edit_id"] for f in result.findings} >= {"CAC-UNCODED-SERVICE"}


def test_without_the_patients_history_it_is_not_billed_unreviewed() -> None:
    event, findings = apply_suggestions(check_up(date(1981, 6, 1), None), REFDATA)
    assert event["uncoded"] == [CHECK_UP]
    (finding,) = findings
    assert "confidence 0.5" in finding["message"]
    assert THRESHOLD > 0.5


def test_a_check_up_with_other_diagnoses_is_for_the_coder() -> None:
    """Abnormal findings change the diagnosis (Z00.01): the coder decides."""
    event = check_up(date(1981, 6, 1), True, diagnoses=["I10"])
    coded, findings = apply_suggestions(event, REFDATA)
    assert coded["uncoded"] == [CHECK_UP]
    assert "confidence 0.6" in findings[0]["message"]


def test_every_curated_code_is_billable_and_every_row_says_why() -> None:
    from processors.refdata import cac_snomed

    rows = list(cac_snomed().values())
    assert rows
    for row in rows:
        assert row.rationale.strip()
        assert row.action in ("code", "omit", "included")
        assert 0 < row.confidence <= 1
        if row.action == "code":
            assert row.code is not None
            assert REFDATA.icd.is_billable(row.code), row.code
        else:
            assert row.code is None


def concept(code: str, need: str) -> dict[str, Any]:
    return {"need": need, "system": SNOMED, "code": code, "display": None, "element": "X.code"}


def test_a_check_up_with_a_social_circumstance_left_off_is_still_billed() -> None:
    """Full-time employment (curated: not a problem) is left off; the check-up is billed."""
    event = check_up(date(1981, 6, 1), True)
    event["uncoded"].append(concept("160903007", "diagnosis"))
    result = code_encounter(event, REFDATA)
    assert result.coded is not None
    assert [ln["procedure_code"] for ln in result.coded["lines"]] == ["99396"]
    messages = [f["message"] for f in result.findings if f["edit_id"] == "CAC-SUGGESTED"]
    assert any("left off the claim" in m and "curated" in m for m in messages)


def test_a_curated_diagnosis_is_coded_and_named() -> None:
    event = encounter(diagnoses=[], uncoded=[concept("10509002", "diagnosis")])
    coded, findings = apply_suggestions(event, REFDATA)
    assert coded["diagnoses"] == ["J209"]
    assert coded["uncoded"] == []
    assert "cac_snomed.csv row" in findings[0]["message"]


def test_a_service_part_of_a_visit_needs_the_visit() -> None:
    """An assessment is part of the visit it is done in; without a visit code, the coder."""
    assessment = concept("710824005", "service")
    with_visit = encounter(uncoded=[assessment])  # the builder's encounter bills 99213
    coded, _ = apply_suggestions(with_visit, REFDATA)
    assert coded["uncoded"] == []
    alone = encounter(procedures=[], uncoded=[assessment])
    coded, findings = apply_suggestions(alone, REFDATA)
    assert coded["uncoded"] == [assessment]
    assert "no visit code" in findings[0]["message"]


PROBLEM_VISIT = {
    "need": "service",
    "system": SNOMED,
    "code": "185347001",
    "display": "Encounter for problem",
    "element": "Encounter.type",
}


def problem_visit(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "procedures": [],
        "diagnoses": ["J209"],
        "uncoded": [dict(PROBLEM_VISIT)],
        "established_patient": True,
        "mdm_level": None,
        **fields,
    }
    return encounter(**base)


def test_a_problem_visit_with_documented_time_is_billed_at_that_level() -> None:
    result = code_encounter(problem_visit(documented_minutes=25), REFDATA)
    assert result.coded is not None
    (line,) = result.coded["lines"]
    assert line["procedure_code"] == "99213"
    assert line["dx_pointers"] == [1]
    assert any("25 minutes documented" in f["message"] for f in result.findings)


def test_a_new_patients_problem_visit_is_in_the_new_patient_family() -> None:
    coded, _ = apply_suggestions(
        problem_visit(documented_minutes=50, established_patient=False), REFDATA
    )
    assert [p["code"] for p in coded["procedures"]] == ["99204"]


def test_a_problem_visit_without_time_or_mdm_asks_for_the_level() -> None:
    coded, findings = apply_suggestions(problem_visit(documented_minutes=None), REFDATA)
    assert coded["uncoded"] == [PROBLEM_VISIT]
    assert "query the physician" in findings[0]["message"]

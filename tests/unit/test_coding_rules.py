"""Coding edits, driven with real ICD-10-CM and CPT/HCPCS codes."""

from __future__ import annotations

import pytest

from processors.coding.rules import InvalidEncounter, code_encounter, diagnosis_pointers
from processors.refdata import ICD10CM_VERSION, load_refdata
from tests.builders import encounter, procedure

REFDATA = load_refdata()


def hard_edits(**overrides: object) -> list[str]:
    """The hard edit ids raised for an encounter with *overrides*."""
    result = code_encounter(encounter(**overrides), REFDATA)
    return [f["edit_id"] for f in result.findings if f["severity"] == "HARD"]


class TestDiagnoses:
    def test_clean_visit_is_coded_with_the_diagnosis_pointed_at(self) -> None:
        """A 99213 for I10 is coded with one line pointing at diagnosis 1."""
        result = code_encounter(encounter(), REFDATA)
        assert not result.held
        assert result.coded is not None
        assert result.coded["diagnoses"] == ["I10"]
        assert result.coded["lines"][0]["dx_pointers"] == [1]

    def test_header_code_is_held_and_the_finding_lists_billable_children(self) -> None:
        """M54.5 became a header in FY2022: held, with M54.50/M54.51/M54.59 suggested."""
        result = code_encounter(encounter(diagnoses=["M545"]), REFDATA)
        assert result.held
        (found,) = result.findings
        assert found["edit_id"] == "ICD-BILLABLE"
        assert found["refdata_version"] == ICD10CM_VERSION
        assert "M54.50" in found["message"]
        assert "M54.59" in found["message"]

    @pytest.mark.parametrize("code", ["I109", "E1190", "Z999X"])
    def test_codes_not_in_icd10cm_are_held(self, code: str) -> None:
        """Codes that do not exist in ICD-10-CM FY2026 are a hard ICD-VALID finding."""
        assert hard_edits(diagnoses=[code]) == ["ICD-VALID"]

    @pytest.mark.parametrize("code", ["E119", "J069", "S61411A", "Z00129", "M5450"])
    def test_billable_codes_pass(self, code: str) -> None:
        """Leaf codes, including 7-character injury codes, are billable."""
        assert hard_edits(diagnoses=[code]) == []

    def test_no_diagnosis_is_held(self) -> None:
        """An encounter without any diagnosis cannot be billed."""
        assert hard_edits(diagnoses=[]) == ["DX-MISSING"]

    def test_more_than_twelve_diagnoses_bills_the_first_twelve_with_a_warning(self) -> None:
        """Thirteen diagnoses: soft finding, twelve billed, pointers kept in range."""
        codes = ["I10", "E119", "E785", "J069", "N390", "K219", "F419", "E039", "J4520",
                 "L821", "R509", "D649", "E559"]
        event = encounter(diagnoses=codes, procedures=[procedure(refs=[12, 0])])
        result = code_encounter(event, REFDATA)
        assert not result.held
        assert result.coded is not None
        assert len(result.coded["diagnoses"]) == 12
        assert [f["edit_id"] for f in result.findings] == ["DX-OVER-12"]
        assert result.coded["lines"][0]["dx_pointers"] == [1]


class TestProcedures:
    def test_code_not_in_the_code_list_is_held(self) -> None:
        """A procedure code the practice's code list lacks is a hard PROC-VALID finding."""
        assert hard_edits(procedures=[procedure("99999")]) == ["PROC-VALID"]

    def test_units_at_the_daily_limit_pass_and_one_over_is_held(self) -> None:
        """36415 allows 2 units per day here: 2 passes, 3 is held."""
        assert hard_edits(procedures=[procedure("36415", units=2)]) == []
        assert hard_edits(procedures=[procedure("36415", units=3)]) == ["PROC-UNITS"]

    def test_zero_units_are_held(self) -> None:
        """A service billed with zero units is a hard finding."""
        assert hard_edits(procedures=[procedure(units=0)]) == ["PROC-UNITS"]

    def test_five_modifiers_are_held(self) -> None:
        """A line carries at most four modifiers."""
        mods = ["25", "59", "RT", "LT", "XS"]
        assert hard_edits(procedures=[procedure(modifiers=mods)]) == ["PROC-MODIFIERS"]

    def test_hcpcs_level_ii_codes_are_known(self) -> None:
        """G0439 (annual wellness visit) is in the shipped HCPCS subset."""
        assert hard_edits(procedures=[procedure("G0439")], diagnoses=["Z0000"]) == []


class TestStructure:
    @pytest.mark.parametrize(("field", "value", "names"), [
        ("encounter_id", "", "encounter_id"),
        ("procedures", [], "procedures"),
    ])
    def test_missing_structural_data_raises_for_the_dead_letter_topic(
            self, field: str, value: object, names: str) -> None:
        """Data no coder can supply is an InvalidEncounter naming the field."""
        with pytest.raises(InvalidEncounter, match=names):
            code_encounter(encounter(**{field: value}), REFDATA)

    def test_missing_rendering_npi_is_invalid(self) -> None:
        """An encounter with no rendering provider NPI is not codable."""
        event = encounter()
        event["rendering_provider"]["npi"] = ""
        with pytest.raises(InvalidEncounter, match=r"rendering_provider\.npi"):
            code_encounter(event, REFDATA)


class TestPointers:
    def test_pointers_are_one_based_unique_and_at_most_four(self) -> None:
        """Zero-based refs become 1-based pointers, deduplicated, capped at four."""
        assert diagnosis_pointers([0, 1, 1, 2, 3, 4], billed=6) == [1, 2, 3, 4]

    def test_out_of_range_refs_fall_back_to_the_primary(self) -> None:
        """Refs beyond the billed diagnoses are dropped; a line always points somewhere."""
        assert diagnosis_pointers([7], billed=2) == [1]

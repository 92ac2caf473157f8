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

    @pytest.mark.parametrize("code", ["E119", "J069", "S61411A", "Z23", "M5450"])
    def test_billable_codes_pass(self, code: str) -> None:
        """Leaf codes, including 7-character injury codes, are billable."""
        assert hard_edits(diagnoses=[code]) == []

    def test_no_diagnosis_is_held(self) -> None:
        """An encounter without any diagnosis cannot be billed."""
        assert hard_edits(diagnoses=[]) == ["DX-MISSING"]

    def test_more_than_twelve_diagnoses_bills_the_first_twelve_with_a_warning(self) -> None:
        """Thirteen diagnoses: soft finding, twelve billed, pointers kept in range."""
        codes = [
            "I10",
            "E119",
            "E785",
            "J069",
            "N390",
            "K219",
            "F419",
            "E039",
            "J4520",
            "L821",
            "R509",
            "D649",
            "E559",
        ]
        event = encounter(diagnoses=codes, procedures=[procedure(refs=[12, 0])])
        result = code_encounter(event, REFDATA)
        assert not result.held
        assert result.coded is not None
        assert len(result.coded["diagnoses"]) == 12
        assert [f["edit_id"] for f in result.findings] == ["DX-OVER-12", "DX-POINTER"]
        assert result.coded["lines"][0]["dx_pointers"] == [1]


class TestProcedures:
    def test_code_not_in_the_code_list_is_held(self) -> None:
        """A procedure code the practice's code list lacks is a hard PROC-VALID finding."""
        assert hard_edits(procedures=[procedure("99999")]) == ["PROC-VALID"]

    def test_units_at_the_daily_limit_pass_and_one_over_is_held(self) -> None:
        """85025 has no CMS MUE row here: the practice's ceiling of 1 per day applies."""
        assert hard_edits(procedures=[procedure("85025", units=1)]) == []
        assert hard_edits(procedures=[procedure("85025", units=2)]) == ["PROC-UNITS"]

    def test_zero_units_are_held(self) -> None:
        """A service billed with zero units is a hard finding."""
        assert hard_edits(procedures=[procedure(units=0)]) == ["PROC-UNITS"]

    def test_five_modifiers_are_held(self) -> None:
        """A line carries at most four modifiers."""
        mods = ["25", "59", "XS", "XU", "76"]
        assert hard_edits(procedures=[procedure(modifiers=mods)]) == ["PROC-MODIFIERS"]

    def test_hcpcs_level_ii_codes_are_known(self) -> None:
        """G0439 (annual wellness visit) is in the shipped HCPCS subset."""
        assert hard_edits(procedures=[procedure("G0439")], diagnoses=["Z0000"]) == []


class TestStructure:
    @pytest.mark.parametrize(
        ("field", "value", "names"),
        [
            ("encounter_id", "", "encounter_id"),
            ("procedures", [], "procedures"),
        ],
    )
    def test_missing_structural_data_raises_for_the_dead_letter_topic(
        self, field: str, value: object, names: str
    ) -> None:
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

    def test_a_line_without_linked_diagnoses_gets_a_pointer_warning(self) -> None:
        """No documented link: the line points at the primary, with a soft DX-POINTER."""
        result = code_encounter(encounter(procedures=[procedure(refs=[])]), REFDATA)
        assert result.coded is not None
        assert result.coded["lines"][0]["dx_pointers"] == [1]
        assert [(f["edit_id"], f["severity"]) for f in result.findings] == [("DX-POINTER", "SOFT")]

    def test_five_linked_diagnoses_keep_the_first_four_with_a_warning(self) -> None:
        """A line linked to five diagnoses points at the first four documented."""
        codes = ["I10", "E119", "E785", "K219", "F419"]
        result = code_encounter(
            encounter(diagnoses=codes, procedures=[procedure(refs=[4, 3, 2, 1, 0])]), REFDATA
        )
        assert result.coded is not None
        assert result.coded["lines"][0]["dx_pointers"] == [5, 4, 3, 2]
        assert [f["edit_id"] for f in result.findings] == ["DX-POINTER"]

    def test_out_of_range_refs_fall_back_to_the_primary(self) -> None:
        """Refs beyond the billed diagnoses are dropped; a line always points somewhere."""
        assert diagnosis_pointers([7], billed=2) == [1]


def findings_of(**overrides: object) -> list[tuple[str, str]]:
    """(edit id, severity) of every finding for an encounter with *overrides*."""
    result = code_encounter(encounter(**overrides), REFDATA)
    return [(f["edit_id"], f["severity"]) for f in result.findings]


class TestIcdConventions:
    @pytest.mark.parametrize(
        ("code", "edit"),
        [
            ("S61411", "ICD-7TH-CHAR"),  # laceration of right hand: needs A, D or S
            ("S6141", "ICD-7TH-CHAR"),
            ("M545", "ICD-BILLABLE"),  # a header without 7th characters stays ICD-BILLABLE
        ],
    )
    def test_injury_codes_without_their_7th_character_are_held(self, code: str, edit: str) -> None:
        """S61.411 needs A/D/S; the finding lists the 7th characters."""
        result = code_encounter(encounter(diagnoses=[code]), REFDATA)
        assert [f["edit_id"] for f in result.findings] == [edit]
        if edit == "ICD-7TH-CHAR":
            assert "A initial encounter" in result.findings[0]["message"]

    def test_manifestation_code_cannot_be_listed_first(self) -> None:
        """F02.80 (dementia in diseases classified elsewhere) may follow G30.9, never lead."""
        assert hard_edits(diagnoses=["G309", "F0280"]) == []
        assert hard_edits(diagnoses=["F0280", "G309"]) == ["ICD-MANIFESTATION-PRIMARY"]

    @pytest.mark.parametrize(
        ("pair", "held"),
        [
            (["J069", "J020"], True),  # J06.9 Excludes1 streptococcal pharyngitis J02.0
            (["J020", "J069"], True),  # either order
            (["I10", "O10019"], True),  # I10 Excludes1 O10-O11 hypertension in pregnancy
            (["I10", "E119"], False),
        ],
    )
    def test_excludes1_pairs_are_held(self, pair: list[str], held: bool) -> None:
        """Two codes in an Excludes1 relation are not reported together."""
        edits = hard_edits(diagnoses=pair, patient=TestAgeAndSex.patient("1990-01-01"))
        assert ("ICD-EXCLUDES1" in edits) is held

    def test_service_date_outside_the_edition_is_a_warning(self) -> None:
        """A date of service in FY2027 gets a soft edition warning, not a hold."""
        from datetime import UTC, date, datetime

        found = findings_of(
            service_date=date(2026, 10, 1), received_at=datetime(2026, 10, 2, tzinfo=UTC)
        )
        assert ("ICD-DOS-EDITION", "SOFT") in found
        assert ("ICD-DOS-EDITION", "SOFT") not in findings_of(service_date=date(2026, 9, 30))


class TestAgeAndSex:
    @staticmethod
    def patient(born: str, sex: str = "F") -> dict[str, object]:
        """A patient born on *born* (ISO date)."""
        from datetime import date

        return {
            "person_id": "P1",
            "last_name": "R",
            "first_name": "A",
            "birth_date": date.fromisoformat(born),
            "sex": sex,
            "address": encounter()["patient"]["address"],
        }

    # The service date is 2026-03-02; ages are whole years on that date.
    @pytest.mark.parametrize(
        ("born", "code", "held"),
        [
            ("2008-03-03", "Z00129", False),  # 17, eighteen tomorrow: still pediatric
            ("2008-03-02", "Z00129", True),  # 18 today: no longer pediatric
            ("2011-03-02", "Z0000", False),  # 15 today: old enough for the adult exam
            ("2011-03-03", "Z0000", True),  # 14
            ("2026-03-01", "Z3800", False),  # one day old: newborn
            ("2025-03-02", "Z3800", True),  # one year old
            ("1961-03-03", "O80", False),  # 64: within maternity 9-64
            ("1961-03-02", "O80", True),  # 65 today
            ("2017-03-02", "O80", False),  # 9 today
            ("2017-03-03", "O80", True),  # 8
        ],
    )
    def test_age_limits_are_inclusive_whole_years(self, born: str, code: str, held: bool) -> None:
        """Age conflicts at and around each list's limits, in whole years on the service date."""
        edits = hard_edits(
            diagnoses=[code], patient=self.patient(born), procedures=[procedure("99213")]
        )
        assert ("ICD-AGE" in edits) is held

    def test_sex_conflict_is_a_warning(self) -> None:
        """C61 (prostate) for a patient recorded as F is a soft ICD-SEX finding."""
        found = findings_of(diagnoses=["C61"], patient=self.patient("1950-01-01", "F"))
        assert ("ICD-SEX", "SOFT") in found
        assert not [e for e, sev in found if sev == "HARD"]

    def test_unknown_sex_is_never_edited(self) -> None:
        """Administrative sex U raises no sex finding."""
        found = findings_of(diagnoses=["N400"], patient=self.patient("1950-01-01", "U"))
        assert "ICD-SEX" not in [e for e, _ in found]


class TestProcedureFormatAndModifiers:
    @pytest.mark.parametrize(
        ("code", "edit"),
        [
            ("9921", "PROC-FORMAT"),
            ("99213A", "PROC-FORMAT"),
            ("W1234", "PROC-FORMAT"),
            ("0001F", "PROC-VALID"),
            ("0042T", "PROC-VALID"),
            ("J9999", "PROC-VALID"),
        ],
    )
    def test_code_shape_is_checked_before_membership(self, code: str, edit: str) -> None:
        """Malformed codes are PROC-FORMAT; well-formed codes not in the list are PROC-VALID."""
        assert hard_edits(procedures=[procedure(code)]) == [edit]

    def test_unknown_modifier_is_held(self) -> None:
        """A modifier not in the CPT/HCPCS modifier list is a hard finding."""
        assert hard_edits(procedures=[procedure("99213", modifiers=["Z9"])]) == ["MOD-VALID"]

    def test_modifier_25_belongs_on_the_visit(self) -> None:
        """25 on a lab code is held; on the E/M it is accepted."""
        assert hard_edits(procedures=[procedure("36415", modifiers=["25"])]) == ["MOD-25-NOT-EM"]

    def test_both_sides_on_one_line_is_held(self) -> None:
        """RT and LT together on one knee injection line is held."""
        procs = [procedure("20610", modifiers=["RT", "LT"], refs=[0])]
        assert "MOD-LATERALITY" in hard_edits(procedures=procs, diagnoses=["M1711"])


class TestEvaluationAndManagement:
    @pytest.mark.parametrize(
        ("code", "minutes", "mdm", "edit"),
        [
            ("99213", 20, None, None),  # time at the threshold
            ("99213", 19, None, "EM-LEVEL"),  # one minute short, no MDM
            ("99214", 19, "moderate", None),  # MDM alone supports it
            ("99215", 39, "moderate", "EM-LEVEL"),
            ("99215", 40, None, None),
            ("99212", 35, None, "EM-UNDERCODED"),  # documentation supports 99214
            ("99205", 59, "moderate", "EM-LEVEL"),
            ("99205", 60, None, None),
            ("99211", None, None, None),  # no time or MDM requirement
            ("99213", None, None, "EM-NOT-VERIFIABLE"),
        ],
    )
    def test_level_follows_time_or_mdm(
        self, code: str, minutes: int | None, mdm: str | None, edit: str | None
    ) -> None:
        """The billed level must be supported by total time or by MDM (2021 guidelines)."""
        found = findings_of(procedures=[procedure(code)], documented_minutes=minutes, mdm_level=mdm)
        assert [e for e, _ in found] == ([edit] if edit else [])

    def test_visit_with_a_minor_procedure_needs_modifier_25(self) -> None:
        """99213 with 17110 the same day: held without 25, accepted with it."""
        procs = [procedure("99213"), procedure("17110")]
        assert hard_edits(procedures=procs, diagnoses=["L821"]) == ["EM-MOD25"]
        procs = [procedure("99213", modifiers=["25"]), procedure("17110")]
        assert hard_edits(procedures=procs, diagnoses=["L821"]) == []

    def test_problem_visit_with_a_preventive_visit_needs_modifier_25(self) -> None:
        """99396 plus 99213 on one date: the problem visit needs 25."""
        procs = [procedure("99396"), procedure("99213", refs=[1])]
        edits = hard_edits(procedures=procs, diagnoses=["Z0000", "I10"])
        assert edits == ["EM-MOD25"]


class TestMue:
    @pytest.mark.parametrize(
        ("code", "units", "held"),
        [
            ("36415", 2, False),
            ("36415", 3, True),  # MUE 2, MAI 3
            ("96372", 4, False),
            ("96372", 5, True),  # MUE 4, MAI 3
            ("12001", 1, False),
            ("12001", 2, True),  # MUE 1, MAI 2
        ],
    )
    def test_units_at_the_mue_pass_and_one_over_is_held(
        self, code: str, units: int, held: bool
    ) -> None:
        """At the CMS practitioner MUE the line passes; one unit over is a hard MUE finding."""
        edits = hard_edits(
            procedures=[procedure("99213", modifiers=["25"]), procedure(code, units=units)]
        )
        assert ("MUE" in edits) is held
        assert "PROC-UNITS" not in edits

    def test_date_of_service_mue_adds_units_across_lines(self) -> None:
        """Two 36415 lines of 1 and 2 units exceed the per-day MUE of 2 (MAI 3)."""
        procs = [procedure("36415", units=1), procedure("36415", units=2)]
        assert hard_edits(procedures=procs) == ["MUE"]


class TestNcciPtp:
    """Real NCCI practitioner PTP edits (v32.3, 2026 Q4) shipped for the practice's codes."""

    def test_indicator_1_visit_with_injection_needs_25(self) -> None:
        """96372/99213 (indicator 1): the E/M without 25 is held, with 25 it passes."""
        procs = [procedure("99213"), procedure("96372"), procedure("J0696")]
        assert hard_edits(procedures=procs, diagnoses=["J189"]) == ["NCCI-PTP"]
        procs[0] = procedure("99213", modifiers=["25"])
        assert hard_edits(procedures=procs, diagnoses=["J189"]) == []

    def test_indicator_1_procedure_pair_passes_with_a_distinct_service_modifier(self) -> None:
        """20610/12001 (indicator 1): the repair passes with XS or 59, not bare or with 25."""

        def edits(mods: list[str]) -> list[str]:
            procs = [procedure("20610", refs=[0]), procedure("12001", refs=[1], modifiers=mods)]
            return hard_edits(procedures=procs, diagnoses=["M1711", "S61411A"])

        assert edits([]) == ["NCCI-PTP"]
        assert edits(["XS"]) == []
        assert edits(["59"]) == []

    def test_indicator_0_pair_is_held_whatever_the_modifier(self) -> None:
        """96372/99211 (indicator 0): no modifier lets the nurse visit through."""
        procs = [procedure("99211", modifiers=["25"]), procedure("96372"), procedure("J0696")]
        assert hard_edits(procedures=procs, diagnoses=["J189"]) == ["NCCI-PTP"]

    def test_indicator_9_edits_are_not_applied(self) -> None:
        """72148/99213 has only an indicator 9 (deleted) edit: no finding."""
        procs = [procedure("99213"), procedure("72148")]
        assert hard_edits(procedures=procs, diagnoses=["M5450"]) == []

    def test_edits_apply_by_date_of_service(self) -> None:
        """90471/99211 was indicator 0 until 2021-09-30 and is indicator 1 from 2021-10-01."""
        from datetime import UTC, date, datetime

        procs = [procedure("99211", modifiers=["25"]), procedure("90471"), procedure("90715")]

        def edits(day: date) -> list[str]:
            return hard_edits(
                procedures=procs,
                diagnoses=["Z23"],
                service_date=day,
                received_at=datetime.combine(day, datetime.min.time(), tzinfo=UTC),
            )

        assert edits(date(2021, 9, 30)) == ["NCCI-PTP"]
        assert edits(date(2021, 10, 1)) == []

    def test_two_new_patient_visits_the_same_day_are_held(self) -> None:
        """99203/99202 (indicator 0): one new-patient visit per day."""
        procs = [procedure("99203"), procedure("99202", modifiers=["25"])]
        assert "NCCI-PTP" in hard_edits(procedures=procs, documented_minutes=35)

    def test_every_shipped_edit_names_codes_in_the_code_list(self) -> None:
        """The PTP subset only pairs codes the practice bills."""
        for column1, column2 in REFDATA.ptp:
            assert column1 in REFDATA.procedures
            assert column2 in REFDATA.procedures

"""FHIR R4 bundles in: mapping to EncounterEvents, OperationOutcomes, and the dry run."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from pipeline.ingest.directory import FeedDirectory
from pipeline.ingest.fhir import BundleError, map_bundle
from pipeline.ingest.files import fhir_events
from pipeline.ingest.practice import practice_record
from pipeline.jobs.check import run_check, write_check_json
from pipeline.kafka.codec import codec_for
from processors.coding.rules import code_encounter
from processors.refdata import load_refdata, map_snomed, snomed_icd10cm
from tests import fhir_bundles
from tests.fhir_bundles import FIXTURES

REFDATA = load_refdata()
PRACTICE = practice_record()
FEED = FeedDirectory(given=PRACTICE)


def fixture(name: str) -> dict[str, Any]:
    """A bundle from tests/fixtures/fhir/."""
    loaded: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return loaded


def test_fixture_files_are_what_the_builders_write(tmp_path: Path) -> None:
    """The JSON fixtures are current with tests/fhir_bundles.py."""
    assert fixture("office-visit.json") == json.loads(json.dumps(fhir_bundles.office_visit()))
    assert fixture("awkward.json") == json.loads(json.dumps(fhir_bundles.awkward()))


def test_fixtures_are_valid_fhir() -> None:
    """fhir.resources accepts every fixture bundle as a FHIR Bundle."""
    from fhir.resources.R4B.bundle import Bundle

    for path in sorted(FIXTURES.glob("*.json")):
        Bundle.model_validate(json.loads(path.read_text()))


class TestMapping:
    def test_office_visit_maps_to_one_encounter_event(self) -> None:
        """Patient, coverages by order, ranked diagnoses, CPT lines pointing at their reasons."""
        mapped = map_bundle(fixture("office-visit.json"), FEED)
        assert mapped.issues == []
        (event,) = mapped.events
        assert event["encounter_id"] == "V-ENC1"
        assert event["service_date"].isoformat() == "2026-03-02"
        assert event["received_at"].isoformat() == "2026-03-03T15:00:00+00:00"
        assert event["diagnoses"] == ["I10", "E119"]
        assert [(p["code"], p["diagnosis_refs"]) for p in event["procedures"]] == [
            ("99214", [0, 1]),
            ("83036", [1]),
            ("36415", [1]),
        ]
        assert (
            event["coverage"]["payer_id"],
            event["coverage"]["member_id"],
            event["coverage"]["plan_type"],
        ) == ("PPO-SIM", "PPO123456789", "12")
        assert [c["payer_id"] for c in event["other_coverages"]] == ["MCD-SIM"]
        assert event["rendering_provider"]["npi"] == fhir_bundles.DOCTOR_NPI
        assert event["billing_provider"]["npi"] == fhir_bundles.PRACTICE_NPI
        assert event["billing_provider"]["tin"] == "314987652"
        assert event["documented_minutes"] == 35
        assert event["place_of_service"] == "11"

    def test_event_encodes_and_codes_cleanly(self) -> None:
        """The mapped event is a valid EncounterEvent that passes the coding edits."""
        (event,) = map_bundle(fixture("office-visit.json"), FEED).events
        codec = codec_for("claims.EncounterEvent")
        assert codec.decode(codec.encode(event)) == event
        assert not code_encounter(event, REFDATA).held

    def test_same_bundle_twice_gives_the_same_ids(self) -> None:
        """Ids depend on the bundle, not on when it arrives."""
        first = map_bundle(fixture("office-visit.json"), FEED).events[0]
        again = map_bundle(copy.deepcopy(fixture("office-visit.json")), FEED).events[0]
        assert (first["event_id"], first["encounter_id"]) == (
            again["event_id"],
            again["encounter_id"],
        )

    def test_modifiers_units_hcpcs_and_referrer_are_read(self) -> None:
        """RT and 25 from extensions, 4 units of J3301 (HCPCS), the referring practitioner."""
        mapped = map_bundle(fixture("awkward.json"), FEED)
        event = next(e for e in mapped.events if e["encounter_id"] == "V-ENC3")
        assert [(p["code"], p["modifiers"], p["units"]) for p in event["procedures"]] == [
            ("99213", ["25"], 1),
            ("20610", ["RT"], 1),
            ("J3301", [], 4),
        ]
        assert event["referring_provider"]["npi"] == fhir_bundles.REFERRER_NPI

    def test_a_bad_encounter_is_reported_and_the_good_one_still_maps(self) -> None:
        """The ICD-9 diagnosis is named in the OperationOutcome; the other encounter maps."""
        mapped = map_bundle(fixture("awkward.json"), FEED)
        assert [e["encounter_id"] for e in mapped.events] == ["V-ENC3"]
        (issue,) = mapped.issues
        assert issue["expression"] == ["Condition/c5.code"]
        assert issue["code"] == "code-invalid"
        outcome = mapped.outcome()
        assert outcome["resourceType"] == "OperationOutcome"

    def test_practitioner_without_npi_is_named(self) -> None:
        """A practitioner with no NPI identifier: the issue points at its identifier."""
        bundle = fixture("awkward.json")
        for entry in bundle["entry"]:
            if entry["resource"]["id"] == "c5":
                entry["resource"]["code"]["coding"] = [{"system": fhir_bundles.ICD, "code": "I10"}]
        mapped = map_bundle(bundle, FEED)
        (issue,) = mapped.issues
        assert issue["expression"] == ["Practitioner/dr3.identifier"]
        assert "NPI" in issue["diagnostics"]

    def test_issues_never_carry_patient_data(self) -> None:
        """Diagnostics name resources and fields, not names or birth dates."""
        bundle = fixture("office-visit.json")
        for entry in bundle["entry"]:
            if entry["resource"]["resourceType"] == "Patient":
                del entry["resource"]["birthDate"]
        (issue,) = map_bundle(bundle, FEED).issues
        assert issue["expression"] == ["Patient/MRN1001.birthDate"]
        assert "Rivera" not in json.dumps(issue)

    def test_snomed_condition_maps_through_the_shipped_table(self) -> None:
        """Essential hypertension (38341003) in SNOMED CT is billed as I10 for an adult."""
        mapped = map_bundle(fixture("snomed-problem-list.json"), FEED)
        assert mapped.issues == []
        assert mapped.events[0]["diagnoses"] == ["I10"]

    def test_snomed_map_follows_its_age_rule(self) -> None:
        """The same concept for a newborn under 29 days maps to P29.2."""
        assert map_snomed("38341003", 10) == "P292"
        assert map_snomed("38341003", 29) == "I10"

    def test_unmapped_snomed_concept_is_named_and_goes_to_a_coder(self) -> None:
        """A concept the shipped map lacks is carried as uncoded, and the coding stage holds
        the encounter for a coder with an edit that names it."""
        from processors.coding.rules import code_encounter

        bundle = fixture("snomed-problem-list.json")
        for entry in bundle["entry"]:
            if entry["resource"]["resourceType"] == "Condition":
                entry["resource"]["code"]["coding"][0]["code"] = "44054006"
        mapped = map_bundle(bundle, FEED)
        assert mapped.issues == []
        (event,) = mapped.events
        assert {(u["need"], u["code"], u["element"]) for u in event["uncoded"]} == {
            ("diagnosis", "44054006", "Condition.code")
        }
        result = code_encounter(event, REFDATA)
        assert result.coded is None
        edits = {(f["edit_id"], f["code"]) for f in result.findings}
        assert ("CAC-UNCODED-DIAGNOSIS", "44054006") in edits
        assert any("has no ICD-10-CM code" in f["message"] for f in result.findings)

    def test_every_snomed_map_target_is_billable_in_fy2026(self) -> None:
        """Each shipped ICD-10-CM target exists and is billable in the installed edition."""
        targets = {code for rows in snomed_icd10cm().values() for code, _ in rows}
        assert len(targets) > 30
        assert {t for t in targets if not REFDATA.icd.is_billable(t)} == set()

    def test_not_a_bundle_is_refused(self) -> None:
        """A Patient resource on its own is not a Bundle."""
        with pytest.raises(BundleError, match="not a FHIR Bundle"):
            map_bundle({"resourceType": "Patient"}, FEED)


class TestDryRun:
    def test_check_reports_findings_claim_answer_and_routing(self) -> None:
        """The dry run of the fixtures: one clean claim paid, one held or denied with a route."""
        events, problems = fhir_events(sorted(FIXTURES.glob("*.json")), FEED)
        result = run_check(events, REFDATA, seed=2026)
        assert {p["source"] for p in problems} >= {"awkward.json#1"}
        by_id = {r.encounter_id: r for r in result.reports}
        visit = by_id["V-ENC1"]
        assert visit.claims[0]["payer_id"] == "PPO-SIM"
        assert visit.answers[0]["claim_status_code"] == "1"
        mri = by_id["V-ENC3"]
        assert mri.answers
        assert mri.rework
        assert mri.rework[0]["queue"] in {"appeals", "front_desk", "billing", "coding"}

    def test_check_json_lines_hold_ids_and_codes_only(
        self, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """--json writes one line per encounter, without patient names."""
        import sys

        events, problems = fhir_events([FIXTURES / "office-visit.json"], FEED)
        result = run_check(events, REFDATA, seed=2026)
        result.problems = problems
        write_check_json(result, sys.stdout)
        lines = capsys.readouterr().out.splitlines()
        (line,) = lines
        record = json.loads(line)
        assert record["encounter_id"] == "V-ENC1"
        assert record["claims"][0]["lines"][0]["procedure_code"] == "99214"
        assert "Rivera" not in line

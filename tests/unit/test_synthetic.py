"""The synthetic EHR feed: reproducible, schema-exact, coded soundly, problems at known rates."""

from __future__ import annotations

import io
import re
import time
import warnings
from collections import Counter
from datetime import UTC, date, datetime
from types import ModuleType
from typing import Any

import fastavro
import pytest

from pipeline.ingest.synthetic import generate, generate_labelled
from pipeline.ingest.synthetic.catalogue import procedure_catalogue, unit_limits
from pipeline.ingest.synthetic.problems import (
    AGE_CONFLICT_OF,
    EXCLUDES1_ADDITION,
    HEADER_OF,
    INVALID_FORM_OF,
    LABELS,
    MISTYPED_MODIFIER,
    PROBLEMS,
    RETIRED_CONSULTATION_FOR,
    WITHOUT_7TH_CHARACTER,
)
from pipeline.ingest.synthetic.scenarios import CODED_WITH, SCENARIOS, VISIT_MDM, VISIT_MINUTES
from pipeline.kafka.codec import load_expanded
from processors.claims.rules import build_claim
from processors.coding.rules import PROCEDURE_FORMAT, code_encounter
from processors.contracts.findings import HARD
from processors.npi import is_valid_npi
from processors.refdata import RefData, load_payers, load_refdata, matches

Labelled = list[tuple[str, dict[str, Any], str]]

SAMPLE_SIZE = 5000
DIAGNOSIS_PROBLEMS = {"header_diagnosis", "invalid_diagnosis", "missing_7th_character"}
UNKNOWN_CODE_PROBLEMS = {"unknown_procedure", "malformed_procedure"}
OFFICE_VISITS = {"99202", "99203", "99204", "99205", "99211", "99212", "99213", "99214", "99215"}
MDM_LEVELS = {"straightforward", "low", "moderate", "high"}

# The hard edit each injected problem must trip, and no other kind. Payer problems (coverage,
# member id, filing limit, authorization, duplicates) pass coding and the scrubber.
INTENDED_EDIT: dict[str, str] = {
    "header_diagnosis": "ICD-BILLABLE",
    "invalid_diagnosis": "ICD-VALID",
    "missing_7th_character": "ICD-7TH-CHAR",
    "manifestation_first": "ICD-MANIFESTATION-PRIMARY",
    "excludes1_pair": "ICD-EXCLUDES1",
    "diagnosis_age_conflict": "ICD-AGE",
    "no_diagnosis": "DX-MISSING",
    "unknown_procedure": "PROC-VALID",
    "malformed_procedure": "PROC-FORMAT",
    "units_over_max": "PROC-UNITS",
    "invalid_modifier": "MOD-VALID",
    "modifier_25_on_procedure": "MOD-25-NOT-EM",
    "laterality_conflict": "MOD-LATERALITY",
    "em_overcoded": "EM-LEVEL",
    "modifier_25_missing": "EM-MOD25",
    "ncci_bundled_service": "NCCI-PTP",
    "invalid_npi": "SCRUB-NPI",
}
# The CMS MUE is the units edit for the codes it lists.
EDIT_KIND = {"MUE": "PROC-UNITS"}


@pytest.fixture(scope="module")
def sample() -> Labelled:
    """Five thousand labelled encounters from one seed."""
    return list(generate_labelled(SAMPLE_SIZE, seed=11))


@pytest.fixture(scope="module")
def refdata() -> RefData:
    """The packaged reference data the coding edits and the scrubber use."""
    return load_refdata()


@pytest.fixture(scope="module")
def hard_edits(sample: Labelled, refdata: RefData) -> list[set[str]]:
    """The hard edits coding, then the scrubber for coded events, raise on each sample event."""
    found = []
    for _, event, _ in sample:
        result = code_encounter(event, refdata)
        findings = list(result.findings)
        if result.coded is not None:
            findings += build_claim(result.coded, refdata).findings
        found.append({f["edit_id"] for f in findings if f["severity"] == HARD})
    return found


@pytest.fixture(scope="module")
def icd() -> ModuleType:
    """The simple_icd_10_cm module, imported quietly."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import simple_icd_10_cm

    return simple_icd_10_cm


def billable(icd: ModuleType, code: str) -> bool:
    """True when *code* (no dot) is an ICD-10-CM code valid for billing."""
    return bool(icd.is_valid_item(code) and icd.is_leaf(code))


class TestDeterminism:
    def test_same_seed_gives_identical_events(self):
        """Two runs with the same count, seed and start yield equal events in the same order."""
        assert list(generate(300, seed=5)) == list(generate(300, seed=5))

    def test_different_seeds_give_different_events(self):
        """Another seed gives another feed, ids included."""
        first = list(generate(100, seed=1))
        second = list(generate(100, seed=2))
        assert first != second
        assert {e["event_id"] for _, e in first}.isdisjoint(e["event_id"] for _, e in second)

    def test_generate_is_generate_labelled_without_labels(self):
        """The unlabelled feed is the labelled feed with the labels dropped."""
        labelled = [(key, event) for key, event, _ in generate_labelled(200, seed=3)]
        assert list(generate(200, seed=3)) == labelled

    def test_event_and_encounter_ids_are_unique(self, sample: Labelled):
        """Every event and every encounter, duplicates included, has its own id."""
        assert len({e["event_id"] for _, e, _ in sample}) == SAMPLE_SIZE
        assert len({e["encounter_id"] for _, e, _ in sample}) == SAMPLE_SIZE


class TestShape:
    def test_every_event_encodes_and_decodes_with_the_schema(self, sample: Labelled):
        """Each event is written by fastavro against claims.EncounterEvent and reads back equal."""
        schema = fastavro.parse_schema(load_expanded("claims.EncounterEvent"))
        for _, event, _ in sample:
            buffer = io.BytesIO()
            fastavro.schemaless_writer(buffer, schema, event)
            buffer.seek(0)
            assert fastavro.schemaless_reader(buffer, schema) == event

    def test_times_are_dates_and_aware_utc_datetimes(self, sample: Labelled):
        """Service dates are dates; received_at is UTC and not before the service date."""
        for _, event, _ in sample:
            assert type(event["service_date"]) is date
            assert isinstance(event["received_at"], datetime)
            assert event["received_at"].tzinfo is UTC
            assert event["received_at"].date() >= event["service_date"]

    def test_member_key_is_member_id_or_person_id_for_self_pay(self, sample: Labelled):
        """The key is the coverage member id, or the patient's person id without coverage."""
        for key, event, _ in sample:
            coverage = event["coverage"]
            expected = coverage["member_id"] if coverage else event["patient"]["person_id"]
            assert key == expected

    def test_diagnosis_refs_point_at_documented_diagnoses(self, sample: Labelled):
        """Every service points at one to four diagnoses, or none when none was documented."""
        for _, event, label in sample:
            if label == "no_diagnosis":
                assert event["diagnoses"] == []
                assert all(p["diagnosis_refs"] == [] for p in event["procedures"])
                continue
            for procedure in event["procedures"]:
                refs = procedure["diagnosis_refs"]
                assert 1 <= len(refs) <= 4
                assert all(0 <= ref < len(event["diagnoses"]) for ref in refs)


class TestCodes:
    def test_every_npi_on_clean_events_is_valid(self, sample: Labelled):
        """Billing, rendering and referring NPIs pass the check digit unless one was broken."""
        for _, event, label in sample:
            if label == "invalid_npi":
                assert not is_valid_npi(event["rendering_provider"]["npi"])
                continue
            providers = [event["billing_provider"], event["rendering_provider"]]
            providers += [event["referring_provider"]] if event["referring_provider"] else []
            assert all(is_valid_npi(p["npi"]) for p in providers)

    def test_diagnoses_on_clean_events_are_billable(self, sample: Labelled, icd: ModuleType):
        """Every ICD-10-CM code is a billable leaf unless a diagnosis problem was injected."""
        for _, event, label in sample:
            if label not in DIAGNOSIS_PROBLEMS:
                assert all(billable(icd, code) for code in event["diagnoses"]), event["diagnoses"]

    def test_procedure_codes_are_in_the_code_list(self, sample: Labelled):
        """Every CPT/HCPCS code is in procedure_codes.csv unless an unknown code was injected."""
        catalogue = procedure_catalogue()
        for _, event, label in sample:
            unknown = [p["code"] for p in event["procedures"] if p["code"] not in catalogue]
            assert len(unknown) == (1 if label in UNKNOWN_CODE_PROBLEMS else 0)
            malformed = [code for code in unknown if not PROCEDURE_FORMAT.match(code)]
            assert len(malformed) == (1 if label == "malformed_procedure" else 0)

    def test_modifiers_are_in_the_modifier_list(self, sample: Labelled, refdata: RefData):
        """Every modifier is in modifiers.csv unless a mistyped one was injected."""
        for _, event, label in sample:
            unknown = [
                m for p in event["procedures"] for m in p["modifiers"] if m not in refdata.modifiers
            ]
            assert len(unknown) == (1 if label == "invalid_modifier" else 0)

    def test_every_scenario_uses_billable_diagnoses_and_listed_procedures(self, icd: ModuleType):
        """The scenario table holds only real, billable codes and codes the practice bills."""
        catalogue = procedure_catalogue()
        for scenario in SCENARIOS:
            assert all(billable(icd, code) for code in scenario.diagnoses), scenario.name
            assert all(s.code in catalogue for s in scenario.services), scenario.name

    def test_injected_diagnosis_codes_are_headers_or_not_codes(self, icd: ModuleType):
        """Header replacements are real non-billable categories; mistyped forms are not codes."""
        for code, header in HEADER_OF.items():
            assert billable(icd, code)
            assert icd.is_valid_item(header)
            assert not icd.is_leaf(header)
        for code, mistyped in INVALID_FORM_OF.items():
            assert billable(icd, code)
            assert not icd.is_valid_item(mistyped)

    def test_injected_coding_errors_are_what_they_claim(self, refdata: RefData):
        """Each code-swap table holds real codes that make the error its name says."""
        icd = refdata.icd
        for code, short in WITHOUT_7TH_CHARACTER.items():
            assert icd.is_billable(code)
            assert icd.exists(short)
            assert not icd.is_billable(short)
            assert code[6] in icd.seventh_characters(short)
        for code, added in EXCLUDES1_ADDITION.items():
            assert icd.is_billable(code)
            assert icd.is_billable(added)
            assert any(matches(added, p) for p in icd.excludes1(code)) or any(
                matches(code, p) for p in icd.excludes1(added)
            )
        for code, other in AGE_CONFLICT_OF.items():
            assert icd.is_billable(other)
            assert refdata.age_sex.lists_of(code) != refdata.age_sex.lists_of(other)
        for etiology, manifestations in CODED_WITH.items():
            assert icd.is_billable(etiology)
            assert not icd.is_manifestation(etiology)
            assert all(icd.is_billable(m) and icd.is_manifestation(m) for m in manifestations)
        for modifier, mistyped in MISTYPED_MODIFIER.items():
            assert modifier in refdata.modifiers
            assert mistyped not in refdata.modifiers

    def test_visit_levels_match_the_em_table(self, refdata: RefData):
        """The minutes and MDM the generator documents per level are those em_levels.csv sets."""
        for code, (low, _) in VISIT_MINUTES.items():
            assert refdata.em_levels[code].min_minutes == low
            assert refdata.em_levels[code].mdm_level == VISIT_MDM[code]

    def test_unit_limits_are_the_edits_limits(self, refdata: RefData):
        """Units beyond a code's limit are what the MUE (or, without one, the code list) holds."""
        for code, limit in unit_limits().items():
            mue = refdata.mue.get(code)
            assert limit == (mue.units if mue else refdata.procedures[code].max_units_per_day)

    def test_retired_consultation_codes_are_not_in_the_code_list(self):
        """The codes an outdated charge map sends are absent from the practice's list."""
        catalogue = procedure_catalogue()
        assert not set(RETIRED_CONSULTATION_FOR.values()) & set(catalogue)


class TestProblems:
    def test_every_label_occurs(self, sample: Labelled):
        """Five thousand encounters contain every kind of problem, and clean ones."""
        assert set(LABELS) == {label for _, _, label in sample}

    def test_problem_rates_are_near_their_targets(self, sample: Labelled):
        """Each injected problem occurs at a third to twice its rate; 20-28% have a problem."""
        counts = Counter(label for _, _, label in sample)
        for problem in PROBLEMS:
            expected = problem.rate * SAMPLE_SIZE
            assert expected / 3 <= counts[problem.label] <= expected * 2, problem.label
        problem_share = 1 - counts["clean"] / SAMPLE_SIZE
        assert 0.20 <= problem_share <= 0.28

    def test_every_coding_problem_trips_its_edit_and_no_other_kind(
        self, sample: Labelled, hard_edits: list[set[str]]
    ):
        """An injected coding or scrubber problem holds the event for its own edit alone."""
        for (_, event, label), found in zip(sample, hard_edits, strict=True):
            if label in INTENDED_EDIT:
                kinds = {EDIT_KIND.get(edit, edit) for edit in found}
                assert kinds == {INTENDED_EDIT[label]}, (label, found, event["procedures"])

    def test_clean_and_payer_problem_events_have_no_hard_findings(
        self, sample: Labelled, hard_edits: list[set[str]]
    ):
        """Clean events, and those only a payer would deny, pass coding and the scrubber."""
        for (_, event, label), found in zip(sample, hard_edits, strict=True):
            if label not in INTENDED_EDIT:
                assert not found, (label, found, event["procedures"], event["diagnoses"])

    def test_invalid_member_ids_fail_the_payer_pattern(self, sample: Labelled):
        """A mistyped member id does not match its payer's format; every other one does."""
        payers = load_payers()
        for _, event, label in sample:
            coverage = event["coverage"]
            if coverage is None:
                continue
            valid = payers[coverage["payer_id"]].member_id_valid(coverage["member_id"])
            assert valid == (label != "invalid_member_id")

    def test_coverage_problems_put_the_service_outside_coverage(self, sample: Labelled):
        """Terminated coverage ends before the visit; not-yet-effective coverage starts after."""
        for _, event, label in sample:
            coverage, service_date = event["coverage"], event["service_date"]
            if label == "coverage_terminated":
                assert coverage["termination_date"] < service_date
            elif label == "coverage_not_yet_effective":
                assert coverage["effective_date"] > service_date
            elif coverage is not None:
                assert coverage["effective_date"] <= service_date
                assert coverage["termination_date"] is None

    def test_late_filing_misses_the_payer_limit(self, sample: Labelled):
        """Late encounters are released after the payer's filing limit, the others within days."""
        payers = load_payers()
        for _, event, label in sample:
            delay = (event["received_at"].date() - event["service_date"]).days
            if label == "late_filing":
                assert delay > payers[event["coverage"]["payer_id"]].timely_filing_days
            elif label != "duplicate_service":
                assert delay <= 7

    def test_advanced_imaging_lacks_authorization_only_when_injected(self, sample: Labelled):
        """MRI for a payer that requires authorization carries a number unless it is the problem."""
        payers = load_payers()
        catalogue = procedure_catalogue()
        for _, event, label in sample:
            coverage = event["coverage"]
            imaging = any(
                catalogue.get(p["code"], ("", 0))[0] == "advanced_imaging"
                for p in event["procedures"]
            )
            if not imaging or coverage is None:
                continue
            if "advanced_imaging" in payers[coverage["payer_id"]].authorization_required:
                assert (event["authorization_number"] is None) == (label == "missing_authorization")

    def test_duplicates_repeat_an_earlier_service(self, sample: Labelled):
        """A duplicate has the patient, date, clinician and services of an earlier encounter."""

        def fingerprint(event: dict[str, Any]) -> tuple[object, ...]:
            codes = tuple(sorted((p["code"], p["units"]) for p in event["procedures"]))
            return (
                event["patient"]["person_id"],
                event["service_date"],
                event["rendering_provider"]["npi"],
                codes,
            )

        seen: set[tuple[object, ...]] = set()
        for _, event, label in sample:
            if label == "duplicate_service":
                assert fingerprint(event) in seen
            seen.add(fingerprint(event))


class TestRealism:
    def test_members_have_more_than_one_encounter_on_average(self, sample: Labelled):
        """Patients come back, so members have several claims in date order."""
        keys = Counter(key for key, _, _ in sample)
        assert SAMPLE_SIZE / len(keys) > 1.5

    def test_payer_mix_contains_all_five_payers(self, sample: Labelled):
        """Medicare, Medicaid, PPO, HMO and self-pay all occur."""
        payers = {e["coverage"]["payer_id"] if e["coverage"] else "SELFPAY" for _, e, _ in sample}
        assert payers == {"MCR-B-SIM", "MCD-SIM", "PPO-SIM", "HMO-SIM", "SELFPAY"}

    def test_medicare_patients_are_seniors_with_a_valid_mbi(self, sample: Labelled):
        """Medicare members are 65 or older on Part B with a Medicare Beneficiary Identifier."""
        mbi = re.compile(load_payers()["MCR-B-SIM"].member_id_pattern)
        for _, event, label in sample:
            coverage = event["coverage"]
            if coverage is None or coverage["payer_id"] != "MCR-B-SIM":
                continue
            birth = event["patient"]["birth_date"]
            assert (event["service_date"] - birth).days >= 65 * 365
            assert coverage["plan_type"] == "MB"
            assert bool(mbi.match(coverage["member_id"])) == (label != "invalid_member_id")

    def test_dependents_have_a_distinct_subscriber(self, sample: Labelled):
        """Children (19) and spouses (01) are covered under another person, self (18) is not."""
        relationships: Counter[str] = Counter()
        for _, event, _ in sample:
            coverage = event["coverage"]
            if coverage is None:
                continue
            relationships[coverage["relationship"]] += 1
            same = coverage["subscriber"]["person_id"] == event["patient"]["person_id"]
            assert same == (coverage["relationship"] == "18")
        assert {"18", "19", "01"} <= set(relationships)

    def test_office_visits_are_mostly_level_three_and_four(self, sample: Labelled):
        """99213 and 99214 are the two most common office visit codes."""
        visits = Counter(
            p["code"] for _, e, _ in sample for p in e["procedures"] if p["code"].startswith("992")
        )
        assert {code for code, _ in visits.most_common(2)} == {"99213", "99214"}

    def test_telehealth_is_for_visits_only(self, sample: Labelled):
        """Video encounters (place of service 02) bill an office visit and nothing else."""
        telehealth = [e for _, e, _ in sample if e["place_of_service"] == "02"]
        assert telehealth
        for event in telehealth:
            assert len(event["procedures"]) == 1
            assert "95" in event["procedures"][0]["modifiers"]

    def test_every_event_carries_mdm_level(self, sample: Labelled):
        """mdm_level is on every event: a level on some office visits, None without one."""
        for _, event, label in sample:
            codes = {p["code"] for p in event["procedures"]}
            assert "mdm_level" in event
            if label in UNKNOWN_CODE_PROBLEMS:
                continue
            if event["mdm_level"] is not None:
                assert event["mdm_level"] in MDM_LEVELS
                assert codes & OFFICE_VISITS - {"99211"}
            if not codes & OFFICE_VISITS - {"99211"}:
                assert event["documented_minutes"] is None

    def test_office_visit_notes_mostly_document_time_and_mdm(self, sample: Labelled):
        """Most leveled visits document both, some one, and about one in twenty neither."""
        kinds: Counter[tuple[bool, bool]] = Counter()
        for _, event, label in sample:
            codes = {p["code"] for p in event["procedures"]}
            if label == "clean" and codes & OFFICE_VISITS - {"99211"}:
                kinds[event["documented_minutes"] is not None, event["mdm_level"] is not None] += 1
        visits = sum(kinds.values())
        assert kinds[True, True] / visits > 0.5
        assert kinds[True, False]
        assert kinds[False, True]
        assert 0.02 <= kinds[False, False] / visits <= 0.09

    def test_documentation_supports_the_level_billed(
        self, sample: Labelled, hard_edits: list[set[str]]
    ):
        """Only an overcoded visit lacks the time or MDM for its level."""
        overcoded = {
            label == "em_overcoded"
            for (_, _, label), found in zip(sample, hard_edits, strict=True)
            if "EM-LEVEL" in found
        }
        assert overcoded == {True}

    def test_visits_beside_a_procedure_or_physical_carry_modifier_25(self, sample: Labelled):
        """Clean office visits billed with a minor procedure or a preventive visit have 25."""
        catalogue = procedure_catalogue()
        beside: Counter[str] = Counter()
        for _, event, label in sample:
            if label != "clean":
                continue
            categories = {catalogue[p["code"]][0] for p in event["procedures"]}
            reason = (
                "minor_procedure"
                if "minor_procedure" in categories
                else "preventive_visit"
                if "preventive_visit" in categories
                else None
            )
            visits = [p for p in event["procedures"] if p["code"] in OFFICE_VISITS]
            if reason is None or not visits:
                continue
            beside[reason] += 1
            assert all("25" in p["modifiers"] for p in visits)
        assert beside["minor_procedure"]
        assert beside["preventive_visit"]

    def test_generating_a_thousand_events_is_fast(self):
        """A thousand encounters take well under a second."""
        started = time.perf_counter()
        events = list(generate(1000, seed=9))
        assert len(events) == 1000
        assert time.perf_counter() - started < 1.0

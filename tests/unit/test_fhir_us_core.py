"""FHIR R4 / US Core forms the mapper must accept, and billing providers never made up.

Hand-written bundles in the forms real feeds use (Synthea, US Core): untyped
participants, conditional references resolved in the bundle or in the files
sent with it, diagnoses from reasonCode and from a Claim, services from a
Claim's items. The billing provider comes from the feed, the provider
directory, or a provider given for the feed; otherwise the encounter is
refused, naming what was looked up.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from pipeline.ingest.directory import DirectoryError, FeedDirectory, load_directory
from pipeline.ingest.fhir import map_bundle
from pipeline.ingest.practice import PRACTICE_NPI as DEMO_NPI
from tests import fhir_bundles as fb
from tests.builders import npi

Record = dict[str, Any]
NOBODY = FeedDirectory()
ORG_SYSTEM = "https://ehr.example.org/organizations"
TAXONOMY = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"


def directory(tmp_path: Path, **entry: Any) -> FeedDirectory:
    """A provider directory file with one organization (defaults: a valid clinic)."""
    org = {
        "identifiers": [f"{ORG_SYSTEM}|clinic-7"],
        "name": "Clinic Seven",
        "npi": npi("177000001"),
        "tin": "371112222",
        "taxonomy": "261QP2300X",
        "address": {
            "line1": "7 Elm St",
            "line2": None,
            "city": "Dayton",
            "state": "OH",
            "postal_code": "454020007",
        },
        **entry,
    }
    path = tmp_path / "providers.json"
    path.write_text(json.dumps({"organizations": [org]}))
    return load_directory(path)


def visit(
    *,
    serviceprovider: Record | None = None,
    organization: Record | None = None,
    participants: list[Record] | None = None,
    extra: list[Record] = (),  # type: ignore[assignment]
    conditions: bool = True,
    procedures: bool = True,
) -> Record:
    """The office visit of ``tests.fhir_bundles``, with the parts a test changes."""
    enc = fb.encounter(diagnoses=("c1",) if conditions else ())
    if serviceprovider is not None:
        enc["serviceProvider"] = serviceprovider
    if participants is not None:
        enc["participant"] = participants
    resources = [
        fb.patient(),
        fb.payer_org("PPO-SIM", "Commercial PPO (simulated)"),
        fb.coverage("cov1", "PPO-SIM", "PPO123456789", 1),
        organization if organization is not None else fb.practice(),
        fb.practitioner("dr1", "Lindqvist", "Erik", fb.DOCTOR_NPI),
        fb.practitioner("dr2", "Nguyen", "Thomas", npi("119274650")),
        enc,
    ]
    if conditions:
        resources.append(fb.condition("c1", "I10"))
    if procedures:
        resources.append(fb.procedure("p1", "99213", reasons=("c1",)))
    return fb.bundle([*resources, *extra], "us-core-1")


def untyped(practitioner: str) -> Record:
    return {"individual": {"reference": f"urn:uuid:practitioner-{practitioner}"}}


def clinic_without_npi() -> Record:
    return {
        "resourceType": "Organization",
        "id": "clinic-7",
        "identifier": [{"system": ORG_SYSTEM, "value": "clinic-7"}],
        "name": "Clinic Seven",
    }


def issues_of(bundle: Record, billing: FeedDirectory = NOBODY, **kw: Any) -> list[str]:
    return [i["diagnostics"] for i in map_bundle(bundle, billing, **kw).issues]


class TestParticipants:
    def test_a_single_untyped_participant_renders(self) -> None:
        (event,) = map_bundle(visit(participants=[untyped("dr2")]), NOBODY).events
        assert event["rendering_provider"]["npi"] == npi("119274650")

    def test_several_untyped_participants_are_refused_by_name(self) -> None:
        (issue,) = issues_of(visit(participants=[untyped("dr1"), untyped("dr2")]))
        assert "2 participants without a type" in issue

    def test_a_typed_performer_wins_over_an_untyped_one(self) -> None:
        typed = {
            "type": [{"coding": [{"system": TAXONOMY, "code": "PPRF"}]}],
            "individual": {"reference": "urn:uuid:practitioner-dr1"},
        }
        (event,) = map_bundle(visit(participants=[untyped("dr2"), typed]), NOBODY).events
        assert event["rendering_provider"]["npi"] == fb.DOCTOR_NPI


class TestConditionalReferences:
    def test_an_organization_named_by_identifier_in_the_bundle_bills(self) -> None:
        ref = {"reference": f"Organization?identifier={fb.NPI}|{fb.PRACTICE_NPI}"}
        (event,) = map_bundle(visit(serviceprovider=ref), NOBODY).events
        assert event["billing_provider"]["npi"] == fb.PRACTICE_NPI

    def test_a_practitioner_in_a_file_sent_with_the_bundle_renders(self) -> None:
        """Synthea's form: the Practitioner is only in practitionerInformation*.json."""
        outside = fb.practitioner("dr9", "Haddad", "Rana", npi("127640395"))
        side = fb.bundle([outside], "practitioners", bundle_type="batch")
        ref = {"individual": {"reference": f"Practitioner?identifier={fb.NPI}|{npi('127640395')}"}}
        bundle = visit(participants=[ref])
        (alone,) = map_bundle(bundle, NOBODY).events  # unresolved: the procedure's performer
        assert alone["rendering_provider"]["npi"] == fb.DOCTOR_NPI
        (event,) = map_bundle(bundle, NOBODY, context=[side]).events
        assert event["rendering_provider"]["npi"] == npi("127640395")


class TestBillingProvider:
    def test_an_organization_without_npi_and_no_directory_is_refused(self) -> None:
        """Never billed as the demonstration practice: refused, and the reason says what to do."""
        ref = {"reference": "urn:uuid:organization-clinic-7"}
        mapped = map_bundle(visit(serviceprovider=ref, organization=clinic_without_npi()), NOBODY)
        assert mapped.events == []
        (issue,) = [i["diagnostics"] for i in mapped.issues]
        assert "Clinic Seven" in issue
        assert "has no NPI and is not in the provider directory" in issue
        assert "CLAIMS_PROVIDER_DIRECTORY" in issue

    def test_the_directory_gives_the_organization_its_billing_provider(
        self, tmp_path: Path
    ) -> None:
        ref = {"reference": "urn:uuid:organization-clinic-7"}
        bundle = visit(serviceprovider=ref, organization=clinic_without_npi())
        (event,) = map_bundle(bundle, directory(tmp_path)).events
        billing = event["billing_provider"]
        assert billing["npi"] == npi("177000001")
        assert billing["tin"] == "371112222"
        assert billing["address"]["postal_code"] == "454020007"
        assert billing["npi"] != DEMO_NPI

    def test_a_conditional_reference_to_an_absent_organization_is_found_in_the_directory(
        self, tmp_path: Path
    ) -> None:
        ref = {"reference": f"Organization?identifier={ORG_SYSTEM}|clinic-7"}
        bundle = visit(serviceprovider=ref, organization=clinic_without_npi())
        bundle["entry"] = [
            e
            for e in bundle["entry"]
            if e["resource"]["resourceType"] != "Organization" or e["resource"]["id"] != "clinic-7"
        ]
        (event,) = map_bundle(bundle, directory(tmp_path)).events
        assert event["billing_provider"]["name"] == "Clinic Seven"

    def test_no_service_provider_needs_a_provider_given_for_the_feed(self) -> None:
        bundle = visit()
        for entry in bundle["entry"]:
            entry["resource"].pop("serviceProvider", None)
        (issue,) = issues_of(bundle)
        assert "names no serviceProvider" in issue
        given = {**fb.encounter(), "npi": fb.PRACTICE_NPI}
        (event,) = map_bundle(bundle, FeedDirectory(given=given)).events
        assert event["billing_provider"]["npi"] == fb.PRACTICE_NPI

    @pytest.mark.parametrize(
        ("change", "says"),
        [
            ({"npi": "1234567890"}, "not a valid NPI"),
            ({"tin": "12-345"}, "9-digit tax id"),
            (
                {
                    "address": {
                        "line1": "7 Elm St",
                        "city": "Dayton",
                        "state": "OH",
                        "postal_code": "45402",
                    }
                },
                r"9-digit ZIP\+4",
            ),
        ],
    )
    def test_a_directory_entry_that_cannot_bill_is_refused_when_loaded(
        self, tmp_path: Path, change: Record, says: str
    ) -> None:
        with pytest.raises(DirectoryError, match=says):
            directory(tmp_path, **change)


class TestDiagnosesAndServices:
    def test_a_reason_code_is_the_diagnosis_when_no_condition_is_linked(self) -> None:
        bundle = visit(conditions=False)
        enc = next(
            e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Encounter"
        )
        enc["reasonCode"] = [{"coding": [{"system": fb.ICD, "code": "J02.9"}]}]
        (event,) = map_bundle(bundle, NOBODY).events
        assert event["diagnoses"] == ["J029"]

    def test_a_claim_for_the_encounter_gives_diagnoses_and_services(self) -> None:
        claim = {
            "resourceType": "Claim",
            "id": "claim1",
            "status": "active",
            "use": "claim",
            "patient": {"reference": "urn:uuid:patient-MRN1001"},
            "diagnosis": [
                {
                    "sequence": 1,
                    "diagnosisCodeableConcept": {"coding": [{"system": fb.ICD, "code": "M54.50"}]},
                },
            ],
            "item": [
                {
                    "sequence": 1,
                    "diagnosisSequence": [1],
                    "net": {"value": 142.5, "currency": "USD"},
                    "productOrService": {"coding": [{"system": fb.CPT, "code": "99213"}]},
                    "encounter": [{"reference": "urn:uuid:encounter-enc1"}],
                },
                {
                    "sequence": 2,
                    "productOrService": {"coding": [{"system": fb.SNOMED, "code": "185347001"}]},
                },
            ],
        }
        bundle = visit(conditions=False, procedures=False, extra=[claim])
        (event,) = map_bundle(bundle, NOBODY).events
        assert event["diagnoses"] == ["M5450"]
        assert [p["code"] for p in event["procedures"]] == ["99213"]
        assert [p["charge_cents"] for p in event["procedures"]] == [14250]

    def test_a_service_sent_only_as_snomed_goes_to_a_coder(self) -> None:
        claim = {
            "resourceType": "Claim",
            "id": "claim2",
            "item": [
                {
                    "sequence": 1,
                    "productOrService": {
                        "coding": [
                            {"system": fb.SNOMED, "code": "185349003", "display": "Check up"}
                        ]
                    },
                    "encounter": [{"reference": "urn:uuid:encounter-enc1"}],
                }
            ],
        }
        (event,) = map_bundle(visit(procedures=False, extra=[copy.deepcopy(claim)]), NOBODY).events
        assert event["procedures"] == []
        (concept,) = event["uncoded"]
        assert concept == {
            "need": "service",
            "system": fb.SNOMED,
            "code": "185349003",
            "display": "Check up",
            "element": "Claim.item.productOrService",
        }

    def test_no_service_at_all_is_refused(self) -> None:
        claim = {
            "resourceType": "Claim",
            "id": "claim4",
            "item": [{"sequence": 1, "encounter": [{"reference": "urn:uuid:encounter-enc1"}]}],
        }
        (issue,) = issues_of(visit(procedures=False, extra=[copy.deepcopy(claim)]))
        assert "has no billable service" in issue


class TestSyntheaDirectory:
    def test_an_organization_gets_a_billing_entry_that_loads_and_is_stable(
        self, tmp_path: Path
    ) -> None:
        from pipeline.ingest.synthea import directory_entry, write_directory

        org = {
            "resourceType": "Organization",
            "id": "74ab949d",
            "identifier": [
                {"system": "https://github.com/synthetichealth/synthea", "value": "74ab949d"}
            ],
            "name": "Fitchburg Outpatient Clinic",
            "address": [
                {
                    "line": ["881 Main Street"],
                    "city": "Fitchburg",
                    "state": "MA",
                    "postalCode": "01420",
                }
            ],
        }
        entry = directory_entry(org)
        assert entry == directory_entry(org)
        assert entry["synthetic"] is True
        assert entry["address"]["postal_code"].startswith("01420")
        write_directory(tmp_path / "providers.json", [org])
        billing = load_directory(tmp_path / "providers.json")
        found = billing.find(["https://github.com/synthetichealth/synthea|74ab949d"])
        assert found is not None
        assert found["npi"] == entry["npi"]


class TestInsurance:
    def claim(self, display: str) -> Record:
        return {
            "resourceType": "Claim",
            "id": "claim3",
            "insurance": [{"sequence": 1, "focal": True, "coverage": {"display": display}}],
            "item": [{"sequence": 1, "encounter": [{"reference": "urn:uuid:encounter-enc1"}]}],
        }

    def without_coverage(self, display: str) -> Record:
        bundle = visit(extra=[self.claim(display)])
        bundle["entry"] = [
            e for e in bundle["entry"] if e["resource"]["resourceType"] != "Coverage"
        ]
        return bundle

    def test_an_insurer_named_without_a_coverage_is_refused_not_billed_to_the_patient(
        self,
    ) -> None:
        mapped = map_bundle(self.without_coverage("Medicaid"), NOBODY)
        assert mapped.events == []
        (issue,) = [i["diagnostics"] for i in mapped.issues]
        assert "names the insurer 'Medicaid'" in issue
        assert "Coverage.subscriberId" in issue

    def test_no_insurance_is_self_pay(self) -> None:
        (event,) = map_bundle(self.without_coverage("NO_INSURANCE"), NOBODY).events
        assert event["coverage"] is None


class TestPayerDirectory:
    """Real payer ids and names reach the profiles payer_directory.csv routes them to."""

    def with_payer(self, payer_id: str, name: str) -> Record:
        bundle = visit()
        for entry in bundle["entry"]:
            res = entry["resource"]
            if res["resourceType"] == "Organization" and res["id"] == "ppo-sim":
                res["identifier"] = [{"system": "urn:payer-id", "value": payer_id}]
                res["name"] = name
        return bundle

    @pytest.mark.parametrize(
        ("payer_id", "name", "profile"),
        [("87726", "UnitedHealthcare", "PPO-SIM"), ("61101", "Humana", "HMO-SIM")],
    )
    def test_an_edi_payer_id_is_billed_to_its_profile(
        self, payer_id: str, name: str, profile: str
    ) -> None:
        (event,) = map_bundle(self.with_payer(payer_id, name), NOBODY).events
        assert event["coverage"]["payer_id"] == profile
        assert event["coverage"]["payer_name"] == name

    def test_a_payer_known_only_by_name_is_routed(self) -> None:
        (event,) = map_bundle(self.with_payer("H-001", "Medicaid"), NOBODY).events
        assert event["coverage"]["payer_id"] == "MCD-SIM"

    def test_an_unrouted_payer_stays_as_sent_and_the_scrubber_names_the_file(self) -> None:
        from processors.claims.rules import build_claim
        from processors.coding.rules import code_encounter
        from processors.refdata import load_refdata

        (event,) = map_bundle(self.with_payer("99999", "Nowhere Health"), NOBODY).events
        assert event["coverage"]["payer_id"] == "99999"
        refdata = load_refdata()
        coded = code_encounter(event, refdata).coded
        assert coded is not None
        (held,) = [f for f in build_claim(coded, refdata).findings if f["edit_id"] == "SCRUB-PAYER"]
        assert "payer_directory.csv" in held["message"]


class TestClaimItemsThatAreNotServices:
    def test_a_repeated_diagnosis_and_a_prescription_are_not_services(self) -> None:
        """Synthea lists the visit's conditions and prescriptions among its Claim items."""
        rx = "http://www.nlm.nih.gov/research/umls/rxnorm"
        claim = {
            "resourceType": "Claim",
            "id": "claim5",
            "item": [
                {
                    "sequence": 1,
                    "productOrService": {"coding": [{"system": fb.CPT, "code": "99213"}]},
                    "encounter": [{"reference": "urn:uuid:encounter-enc1"}],
                },
                {
                    "sequence": 2,
                    "productOrService": {"coding": [{"system": fb.ICD, "code": "I10"}]},
                },
                {"sequence": 3, "productOrService": {"coding": [{"system": rx, "code": "562251"}]}},
            ],
        }
        (event,) = map_bundle(visit(procedures=False, extra=[claim]), NOBODY).events
        assert [p["code"] for p in event["procedures"]] == ["99213"]
        assert event["uncoded"] == []

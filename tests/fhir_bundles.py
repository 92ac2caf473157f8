"""FHIR R4 Bundles as an EHR sends them, for the ingest tests (fictional people and ids).

``write_fixtures`` writes the bundles under tests/fixtures/fhir/; the tests read
those files, as an integrator's tooling would.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from tests.builders import npi

Record = dict[str, Any]
FIXTURES = Path(__file__).parent / "fixtures" / "fhir"

PRACTICE_NPI = npi("154873201")
DOCTOR_NPI = npi("172958364")
REFERRER_NPI = npi("119274650")
ICD = "http://hl7.org/fhir/sid/icd-10-cm"
SNOMED = "http://snomed.info/sct"
CPT = "http://www.ama-assn.org/go/cpt"
HCPCS = "urn:oid:2.16.840.1.113883.6.285"
NPI = "http://hl7.org/fhir/sid/us-npi"


def _entry(resource: Record) -> Record:
    return {
        "fullUrl": f"urn:uuid:{resource['resourceType'].lower()}-{resource['id']}",
        "resource": resource,
        "request": {"method": "POST", "url": resource["resourceType"]},
    }


def _ref(resource_type: str, rid: str) -> Record:
    return {"reference": f"urn:uuid:{resource_type.lower()}-{rid}"}


def patient(
    pid: str = "MRN1001",
    family: str = "Rivera",
    given: str = "Ana",
    birth: str = "1978-05-14",
    gender: str = "female",
) -> Record:
    return {
        "resourceType": "Patient",
        "id": pid,
        "identifier": [{"system": "urn:oid:2.16.840.1.113883.3.9999.1", "value": pid}],
        "name": [{"use": "official", "family": family, "given": [given]}],
        "gender": gender,
        "birthDate": birth,
        "address": [
            {"line": ["41 Summit St"], "city": "Columbus", "state": "OH", "postalCode": "43201"}
        ],
    }


def payer_org(payer_id: str, name: str) -> Record:
    return {
        "resourceType": "Organization",
        "id": payer_id.lower(),
        "identifier": [{"system": "urn:oid:2.16.840.1.113883.3.9999.2", "value": payer_id}],
        "name": name,
    }


def coverage(
    cid: str,
    payer_id: str,
    member_id: str,
    order: int,
    pid: str = "MRN1001",
    group: str | None = "GRP100",
    start: str = "2025-01-01",
    end: str | None = None,
) -> Record:
    cov: Record = {
        "resourceType": "Coverage",
        "id": cid,
        "status": "active",
        "order": order,
        "subscriberId": member_id,
        "beneficiary": _ref("Patient", pid),
        "relationship": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/subscriber-relationship",
                    "code": "self",
                }
            ]
        },
        "period": {"start": start, **({"end": end} if end else {})},
        "payor": [_ref("Organization", payer_id.lower())],
    }
    if group:
        cov["class"] = [
            {
                "type": {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/coverage-class",
                            "code": "group",
                        }
                    ]
                },
                "value": group,
            }
        ]
    return cov


def practitioner(rid: str, family: str, given: str, npi_value: str | None) -> Record:
    res: Record = {
        "resourceType": "Practitioner",
        "id": rid,
        "name": [{"family": family, "given": [given]}],
    }
    if npi_value:
        res["identifier"] = [{"system": NPI, "value": npi_value}]
    return res


def practice() -> Record:
    return {
        "resourceType": "Organization",
        "id": "practice",
        "identifier": [
            {"system": NPI, "value": PRACTICE_NPI},
            {"system": "urn:oid:2.16.840.1.113883.4.4", "value": "314987652"},
        ],
        "name": "Maple Grove Family Medicine",
        "address": [
            {
                "line": ["2400 N High St", "Suite 200"],
                "city": "Columbus",
                "state": "OH",
                "postalCode": "43202-1005",
            }
        ],
    }


def condition(
    rid: str, code: str, system: str = ICD, eid: str = "enc1", pid: str = "MRN1001"
) -> Record:
    return {
        "resourceType": "Condition",
        "id": rid,
        "subject": _ref("Patient", pid),
        "encounter": _ref("Encounter", eid),
        "code": {"coding": [{"system": system, "code": code}]},
    }


def procedure(
    rid: str,
    code: str,
    system: str = CPT,
    eid: str = "enc1",
    reasons: tuple[str, ...] = (),
    modifiers: tuple[str, ...] = (),
    units: int = 1,
    pid: str = "MRN1001",
) -> Record:
    res: Record = {
        "resourceType": "Procedure",
        "id": rid,
        "status": "completed",
        "subject": _ref("Patient", pid),
        "encounter": _ref("Encounter", eid),
        "code": {"coding": [{"system": system, "code": code}]},
        "performer": [{"actor": _ref("Practitioner", "dr1")}],
    }
    if reasons:
        res["reasonReference"] = [_ref("Condition", r) for r in reasons]
    ext: list[dict[str, object]] = [
        {"url": "https://claims-pipeline.dev/fhir/StructureDefinition/modifier", "valueCode": m}
        for m in modifiers
    ]
    if units != 1:
        ext.append(
            {
                "url": "https://claims-pipeline.dev/fhir/StructureDefinition/units",
                "valueInteger": units,
            }
        )
    if ext:
        res["extension"] = ext
    return res


def encounter(
    eid: str = "enc1",
    pid: str = "MRN1001",
    start: str = "2026-03-02T14:00:00Z",
    attending: str | None = "dr1",
    referrer: str | None = None,
    diagnoses: tuple[str, ...] = (),
) -> Record:
    res: Record = {
        "resourceType": "Encounter",
        "id": eid,
        "status": "finished",
        "identifier": [
            {"system": "urn:oid:2.16.840.1.113883.3.9999.3", "value": f"V-{eid.upper()}"}
        ],
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
        "subject": _ref("Patient", pid),
        "period": {"start": start, "end": start},
        "length": {
            "value": 35,
            "unit": "min",
            "system": "http://unitsofmeasure.org",
            "code": "min",
        },
        "serviceProvider": _ref("Organization", "practice"),
        "participant": [],
    }
    if attending:
        res["participant"].append(
            {
                "type": [
                    {
                        "coding": [
                            {
                                "system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
                                "code": "ATND",
                            }
                        ]
                    }
                ],
                "individual": _ref("Practitioner", attending),
            }
        )
    if referrer:
        res["participant"].append(
            {
                "type": [
                    {
                        "coding": [
                            {
                                "system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
                                "code": "REF",
                            }
                        ]
                    }
                ],
                "individual": _ref("Practitioner", referrer),
            }
        )
    if diagnoses:
        res["diagnosis"] = [
            {"condition": _ref("Condition", c), "rank": i + 1} for i, c in enumerate(diagnoses)
        ]
    return res


def bundle(resources: list[Record], bid: str, bundle_type: str = "transaction") -> Record:
    return {
        "resourceType": "Bundle",
        "id": bid,
        "type": bundle_type,
        "timestamp": "2026-03-03T15:00:00Z",
        "entry": [_entry(copy.deepcopy(r)) for r in resources],
    }


def office_visit() -> Record:
    """Hypertension and diabetes follow-up with labs; a PPO primary and a Medicaid secondary."""
    return bundle(
        [
            patient(),
            payer_org("PPO-SIM", "Commercial PPO (simulated)"),
            payer_org("MCD-SIM", "State Medicaid (simulated)"),
            practice(),
            coverage("cov1", "PPO-SIM", "PPO123456789", 1),
            coverage("cov2", "MCD-SIM", "123456789012", 2, group=None),
            practitioner("dr1", "Lindqvist", "Erik", DOCTOR_NPI),
            encounter(diagnoses=("c1", "c2")),
            condition("c1", "I10"),
            condition("c2", "E11.9"),
            procedure("p1", "99214", reasons=("c1", "c2")),
            procedure("p2", "83036", reasons=("c2",)),
            procedure("p3", "36415", reasons=("c2",)),
        ],
        "visit-1",
    )


def snomed_problem_list() -> Record:
    """Conditions coded only in SNOMED CT, as many EHR problem lists send them."""
    return bundle(
        [
            patient("MRN2002", "Okafor", "Chidi", "1961-11-02", "male"),
            payer_org("PPO-SIM", "Commercial PPO (simulated)"),
            practice(),
            coverage("cov3", "PPO-SIM", "PPO987654321", 1, pid="MRN2002"),
            practitioner("dr1", "Lindqvist", "Erik", DOCTOR_NPI),
            encounter("enc2", "MRN2002", diagnoses=("c3",)),
            condition("c3", "38341003", SNOMED, eid="enc2", pid="MRN2002"),
            procedure("p4", "99213", eid="enc2", reasons=("c3",), pid="MRN2002"),
        ],
        "visit-2",
        "collection",
    )


def awkward() -> Record:
    """Two encounters: one billable (an MRI ordered by a referrer, RT modifier), and one with a
    practitioner lacking an NPI and a diagnosis in a code system the pipeline does not read."""
    return bundle(
        [
            patient("MRN3003", "Baker", "Lee", "1990-07-30", "other"),
            payer_org("HMO-SIM", "Commercial HMO (simulated)"),
            practice(),
            coverage("cov4", "HMO-SIM", "HMO123456789", 1, pid="MRN3003"),
            practitioner("dr1", "Lindqvist", "Erik", DOCTOR_NPI),
            practitioner("dr2", "Nguyen", "Thomas", REFERRER_NPI),
            practitioner("dr3", "Moss", "Kay", None),
            encounter("enc3", "MRN3003", referrer="dr2", diagnoses=("c4",)),
            condition("c4", "M17.11", eid="enc3", pid="MRN3003"),
            procedure("p5", "99213", eid="enc3", reasons=("c4",), modifiers=("25",), pid="MRN3003"),
            procedure("p6", "20610", eid="enc3", reasons=("c4",), modifiers=("RT",), pid="MRN3003"),
            procedure("p7", "J3301", HCPCS, eid="enc3", reasons=("c4",), units=4, pid="MRN3003"),
            encounter("enc4", "MRN3003", start="2026-03-05T15:00:00Z", attending="dr3"),
            condition("c5", "401.9", "http://hl7.org/fhir/sid/icd-9-cm", eid="enc4", pid="MRN3003"),
            procedure("p8", "99213", eid="enc4", pid="MRN3003"),
        ],
        "visit-3",
    )


def write_fixtures() -> None:
    """Write the bundles as JSON files under tests/fixtures/fhir/."""
    FIXTURES.mkdir(parents=True, exist_ok=True)
    for name, make in (
        ("office-visit.json", office_visit),
        ("snomed-problem-list.json", snomed_problem_list),
        ("awkward.json", awkward),
    ):
        (FIXTURES / name).write_text(json.dumps(make(), indent=2) + "\n")


if __name__ == "__main__":
    write_fixtures()

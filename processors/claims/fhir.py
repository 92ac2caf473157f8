"""FHIR R4 Claim resources from Claim records: the same content as the 837P.

Pure functions. :func:`to_fhir_claim` returns one Claim as a JSON-ready dict,
with the patient, subscriber, coverage, payer and providers as contained
resources so each line of an NDJSON export stands on its own.
"""

from __future__ import annotations

from typing import Any

from processors.refdata import with_dot

Record = dict[str, Any]

ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
CPT = "http://www.ama-assn.org/go/cpt"
HCPCS = "https://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets"
NPI = "http://hl7.org/fhir/sid/us-npi"
TIN = "urn:oid:2.16.840.1.113883.4.4"
POS = "https://www.cms.gov/Medicare/Coding/place-of-service-codes/Place_of_Service_Code_Set"
CLAIM_ID = "urn:claims-pipeline:claim-id"
ACCOUNT = "urn:claims-pipeline:patient-account"
PAYER_ID = "urn:claims-pipeline:payer-id"
GENDER = {"F": "female", "M": "male", "U": "unknown"}
RELATIONSHIP = {"18": "self", "01": "spouse", "19": "child"}


def money(cents: int) -> Record:
    """A FHIR Money in US dollars."""
    return {"value": round(cents / 100, 2), "currency": "USD"}


def _address(address: Record | None) -> list[Record]:
    if not address:
        return []
    lines = [address["line1"]] + ([address["line2"]] if address.get("line2") else [])
    return [
        {
            "line": lines,
            "city": address["city"],
            "state": address["state"],
            "postalCode": address["postal_code"],
            "country": "US",
        }
    ]


def _patient(rid: str, person: Record) -> Record:
    return {
        "resourceType": "Patient",
        "id": rid,
        "identifier": [{"system": ACCOUNT, "value": person["person_id"]}],
        "name": [{"family": person["last_name"], "given": [person["first_name"]]}],
        "gender": GENDER.get(person["sex"], "unknown"),
        "birthDate": person["birth_date"].isoformat(),
        "address": _address(person.get("address")),
    }


def _provider(rid: str, provider: Record) -> Record:
    identifiers = [{"system": NPI, "value": provider["npi"]}]
    if provider.get("tin"):
        identifiers.append({"system": TIN, "value": provider["tin"]})
    if provider["entity_type"] == "1":
        return {
            "resourceType": "Practitioner",
            "id": rid,
            "identifier": identifiers,
            "name": [
                {
                    "family": provider["name"],
                    "given": [provider["first_name"]] if provider.get("first_name") else [],
                }
            ],
        }
    return {
        "resourceType": "Organization",
        "id": rid,
        "identifier": identifiers,
        "name": provider["name"],
        "address": _address(provider.get("address")),
    }


def _procedure_coding(code: str) -> Record:
    system = HCPCS if code[0].isalpha() else CPT
    return {"coding": [{"system": system, "code": code}]}


def to_fhir_claim(claim: Record) -> Record:
    """The FHIR R4 Claim for *claim*."""
    patient_self = claim["relationship"] == "18"
    contained = [
        _patient("patient", claim["patient"]),
        _provider("billing", claim["billing_provider"]),
        _provider("rendering", claim["rendering_provider"]),
        {
            "resourceType": "Organization",
            "id": "payer",
            "name": claim["payer_name"],
            "identifier": [{"system": PAYER_ID, "value": claim["payer_id"]}],
        },
    ]
    if not patient_self:
        contained.append(_patient("subscriber", claim["subscriber"]))
    if claim.get("referring_provider"):
        contained.append(_provider("referring", claim["referring_provider"]))
    coverage: Record = {
        "resourceType": "Coverage",
        "id": "coverage",
        "status": "active",
        "subscriberId": claim["member_id"],
        "beneficiary": {"reference": "#patient"},
        "subscriber": {"reference": "#patient" if patient_self else "#subscriber"},
        "relationship": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/subscriber-relationship",
                    "code": RELATIONSHIP.get(claim["relationship"], "other"),
                }
            ]
        },
        "payor": [{"reference": "#payer"}],
    }
    if claim.get("group_number"):
        coverage["class"] = [
            {
                "type": {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/coverage-class",
                            "code": "group",
                        }
                    ]
                },
                "value": claim["group_number"],
            }
        ]
    contained.append(coverage)
    care_team = [
        {
            "sequence": 1,
            "provider": {"reference": "#rendering"},
            "role": {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/claimcareteamrole",
                        "code": "primary",
                    }
                ]
            },
        }
    ]
    insurance: Record = {"sequence": 1, "focal": True, "coverage": {"reference": "#coverage"}}
    if claim.get("authorization_number"):
        insurance["preAuthRef"] = [claim["authorization_number"]]
    location = {"coding": [{"system": POS, "code": claim["place_of_service"]}]}
    items = []
    for line in claim["lines"]:
        item: Record = {
            "sequence": line["line_number"],
            "careTeamSequence": [1],
            "diagnosisSequence": list(line["dx_pointers"]),
            "productOrService": _procedure_coding(line["procedure_code"]),
            "servicedDate": line["service_date"].isoformat(),
            "locationCodeableConcept": location,
            "quantity": {"value": line["units"]},
            "unitPrice": money(line["charge_cents"] // max(line["units"], 1)),
            "net": money(line["charge_cents"]),
        }
        if line["modifiers"]:
            item["modifier"] = [_procedure_coding(m) for m in line["modifiers"]]
        items.append(item)
    resource: Record = {
        "resourceType": "Claim",
        "id": claim["claim_id"],
        "contained": contained,
        "identifier": [{"system": CLAIM_ID, "value": claim["claim_id"]}],
        "status": "cancelled" if claim["frequency_code"] == "8" else "active",
        "type": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/claim-type",
                    "code": "professional",
                }
            ]
        },
        "use": "claim",
        "patient": {"reference": "#patient"},
        "billablePeriod": {
            "start": claim["service_date_from"].isoformat(),
            "end": claim["service_date_to"].isoformat(),
        },
        "created": claim["created_at"].isoformat(),
        "insurer": {"reference": "#payer"},
        "provider": {"reference": "#billing"},
        "priority": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/processpriority",
                    "code": "normal",
                }
            ]
        },
        "careTeam": care_team,
        "diagnosis": [
            {
                "sequence": i,
                "diagnosisCodeableConcept": {
                    "coding": [{"system": ICD10CM, "code": with_dot(code)}]
                },
            }
            for i, code in enumerate(claim["diagnoses"], start=1)
        ],
        "insurance": [insurance],
        "item": items,
        "total": money(claim["total_charge_cents"]),
    }
    if claim.get("referring_provider"):
        resource["careTeam"].append(
            {
                "sequence": 2,
                "provider": {"reference": "#referring"},
                "role": {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/claimcareteamrole",
                            "code": "other",
                        }
                    ]
                },
            }
        )
    if claim["frequency_code"] in ("7", "8") and claim.get("original_claim_id"):
        related: Record = {
            "claim": {"identifier": {"system": CLAIM_ID, "value": claim["original_claim_id"]}},
            "relationship": {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/ex-relatedclaimrelationship",
                        "code": "prior",
                    }
                ]
            },
        }
        if claim.get("payer_claim_control_number"):
            related["reference"] = {"value": claim["payer_claim_control_number"]}
        resource["related"] = [related]
    return resource

"""FHIR R4 Bundles in: Patient, Coverage, Encounter, Condition, Procedure, Practitioner,
Organization -> EncounterEvents.

Pure functions only (the CLI and the worker's HTTP endpoint do the I/O). One
EncounterEvent per Encounter in the bundle. An Encounter the pipeline cannot
bill (no patient, no diagnosis in ICD-10-CM or a mapped SNOMED CT coding, no
CPT/HCPCS procedure, a practitioner without an NPI) is reported in a FHIR
OperationOutcome naming the resource and the field, never the values; the
other encounters of the bundle still go through.

Ids are deterministic: the same bundle twice gives the same event and
encounter ids, so nothing downstream is billed twice.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from processors.ids import stable_id
from processors.refdata import PayerProfile, map_snomed, shipped_payers

Record = dict[str, Any]

ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
SNOMED = "http://snomed.info/sct"
CPT_SYSTEMS = ("http://www.ama-assn.org/go/cpt", "urn:oid:2.16.840.1.113883.6.12")
HCPCS_SYSTEMS = (
    "urn:oid:2.16.840.1.113883.6.285",
    "http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets",
    "https://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets",
)
NPI_SYSTEM = "http://hl7.org/fhir/sid/us-npi"
EIN_SYSTEM = "urn:oid:2.16.840.1.113883.4.4"
# A CPT/HCPCS modifier on a Procedure, and the units billed, as extensions.
MODIFIER_EXTENSION = "modifier"
UNITS_EXTENSION = "units"
# Encounter.class (v3 ActCode) -> CMS place of service.
PLACE_OF_SERVICE = {
    "AMB": "11",
    "VR": "10",
    "EMER": "23",
    "IMP": "21",
    "HH": "12",
    "FLD": "15",
    "SS": "24",
}
# Coverage.relationship (subscriber-relationship) -> X12 individual relationship code.
RELATIONSHIP = {
    "self": "18",
    "spouse": "01",
    "child": "19",
    "parent": "G8",
    "common": "G8",
    "other": "G8",
    "injured": "G8",
}
SEX = {"male": "M", "female": "F"}


@dataclass
class Mapped:
    """What one bundle gave: events to publish and the issues found."""

    events: list[Record] = field(default_factory=list)
    issues: list[Record] = field(default_factory=list)

    def outcome(self) -> Record:
        """The FHIR OperationOutcome of this bundle (an information issue when all went well)."""
        issues = self.issues or [
            {
                "severity": "information",
                "code": "informational",
                "diagnostics": f"{len(self.events)} encounter(s) accepted",
            }
        ]
        return {"resourceType": "OperationOutcome", "issue": issues}


class BundleError(ValueError):
    """The document is not a FHIR Bundle the pipeline can read."""


def _issue(code: str, expression: str, diagnostics: str) -> Record:
    return {
        "severity": "error",
        "code": code,
        "diagnostics": diagnostics,
        "expression": [expression],
    }


class _Missing(ValueError):
    """A required element is absent or unusable; carries the OperationOutcome issue."""

    def __init__(self, code: str, expression: str, diagnostics: str) -> None:
        super().__init__(diagnostics)
        self.issue = _issue(code, expression, diagnostics)


@dataclass
class _Index:
    """A bundle's resources, looked up once so that mapping an encounter never scans the bundle.

    *by_ref* resolves every reference form (fullUrl, Type/id); *names* is the reverse: the
    forms that resolve to a resource (keyed by ``id()``); *linked* lists the Conditions
    and Procedures by the reference in their ``encounter``, in bundle order (*position*).
    """

    by_ref: dict[str, Record]
    ordered: list[Record]
    names: dict[int, set[str]]
    linked: dict[tuple[str, str], list[Record]]
    coverages: list[Record]
    position: dict[int, int]

    def refs(self, resource: Record) -> set[str]:
        """Every reference that names *resource* in this bundle, and its Type/id."""
        return {_name(resource), *self.names.get(id(resource), ())}

    def linked_to(self, resource_type: str, refs: set[str]) -> list[Record]:
        """The *resource_type* resources whose ``encounter`` is one of *refs*, in bundle order."""
        found = [r for ref in refs for r in self.linked.get((resource_type, ref), ())]
        if len(refs) > 1:
            found.sort(key=lambda r: self.position[id(r)])
        return found


def _index(bundle: Record) -> _Index:
    """Resources by every reference form (fullUrl, Type/id) and in bundle order."""
    by_ref: dict[str, Record] = {}
    ordered: list[Record] = []
    entries = bundle.get("entry") or []
    if not isinstance(entries, list):
        raise BundleError("Bundle.entry is not an array")
    for entry in entries:
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if not isinstance(resource, dict) or not isinstance(resource.get("resourceType"), str):
            continue
        ordered.append(resource)
        if entry.get("fullUrl") and isinstance(entry["fullUrl"], str):
            by_ref[entry["fullUrl"]] = resource
        if resource.get("id"):
            by_ref[f"{resource['resourceType']}/{resource['id']}"] = resource
    names: dict[int, set[str]] = {}
    for ref, resource in by_ref.items():
        names.setdefault(id(resource), set()).add(ref)
    linked: dict[tuple[str, str], list[Record]] = {}
    for resource in ordered:
        if resource["resourceType"] in ("Condition", "Procedure"):
            link = resource.get("encounter")
            target = link.get("reference") if isinstance(link, dict) else None
            if isinstance(target, str):
                linked.setdefault((resource["resourceType"], target), []).append(resource)
    coverages = [r for r in ordered if r["resourceType"] == "Coverage"]
    position = {id(r): i for i, r in enumerate(ordered)}
    return _Index(by_ref, ordered, names, linked, coverages, position)


def _ref(by_ref: dict[str, Record], reference: Record | None) -> Record | None:
    if not reference or not reference.get("reference"):
        return None
    target = reference["reference"]
    return by_ref.get(target) or by_ref.get(target.split("/_history")[0])


def _name(resource: Record) -> str:
    return f"{resource['resourceType']}/{resource.get('id', '?')}"


def _date(value: str | None) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        return None


def _identifier(resource: Record, system: str) -> str | None:
    for ident in resource.get("identifier") or []:
        if ident.get("system") == system and ident.get("value"):
            return str(ident["value"])
    return None


def _human_name(resource: Record) -> tuple[str, str]:
    names = resource.get("name") or []
    if isinstance(names, str):  # Organization.name
        return names, ""
    official = next((n for n in names if n.get("use") == "official"), names[0] if names else {})
    given = official.get("given") or [""]
    return official.get("family") or "", given[0]


def _address(resource: Record) -> Record | None:
    addresses = resource.get("address") or []
    if not addresses:
        return None
    a = addresses[0]
    lines = a.get("line") or [""]
    return {
        "line1": lines[0],
        "line2": lines[1] if len(lines) > 1 else None,
        "city": a.get("city") or "",
        "state": a.get("state") or "",
        "postal_code": (a.get("postalCode") or "").replace("-", ""),
    }


def _person(resource: Record, what: str) -> Record:
    family, given = _human_name(resource)
    born = _date(resource.get("birthDate"))
    where = _name(resource)
    if not family:
        raise _Missing("required", f"{where}.name", f"{what} {where} has no family name")
    if born is None:
        raise _Missing(
            "required", f"{where}.birthDate", f"{what} {where} has no birth date in YYYY-MM-DD form"
        )
    address = _address(resource)
    if address is None:
        raise _Missing("required", f"{where}.address", f"{what} {where} has no address")
    ident = next(
        (i.get("value") for i in resource.get("identifier") or [] if i.get("value")),
        resource.get("id"),
    )
    return {
        "person_id": str(ident),
        "last_name": family,
        "first_name": given,
        "birth_date": born,
        "sex": SEX.get(resource.get("gender", ""), "U"),
        "address": address,
    }


def _provider(resource: Record, role: str, *, organization: bool = False) -> Record:
    npi = _identifier(resource, NPI_SYSTEM)
    where = _name(resource)
    if not npi:
        raise _Missing(
            "required",
            f"{where}.identifier",
            f"{role} {where} has no NPI (identifier system {NPI_SYSTEM})",
        )
    family, given = _human_name(resource)
    return {
        "npi": npi,
        "entity_type": "2" if organization else "1",
        "name": family,
        "first_name": None if organization else (given or None),
        "taxonomy": None,
        "tin": _identifier(resource, EIN_SYSTEM) if organization else None,
        "address": _address(resource),
    }


def _coding(concept: Record | None, systems: tuple[str, ...]) -> Record | None:
    for coding in (concept or {}).get("coding") or []:
        if coding.get("system") in systems and coding.get("code"):
            return dict(coding)
    return None


def diagnosis_code(condition: Record, age_days: int = 365 * 40) -> str:
    """The ICD-10-CM code (no dot) of a Condition: its own ICD-10-CM coding, or a mapped
    SNOMED CT one (some maps depend on the patient's age, *age_days*)."""
    concept = condition.get("code")
    icd = _coding(concept, (ICD10CM,))
    if icd is not None:
        return str(icd["code"]).replace(".", "").upper()
    snomed = _coding(concept, (SNOMED,))
    where = _name(condition)
    if snomed is not None:
        mapped = map_snomed(str(snomed["code"]), age_days)
        if mapped:
            return mapped
        raise _Missing(
            "code-invalid",
            f"{where}.code",
            f"{where}: SNOMED CT concept {snomed['code']} is not in the shipped "
            "SNOMED CT to ICD-10-CM map; add an ICD-10-CM coding",
        )
    raise _Missing(
        "code-invalid", f"{where}.code", f"{where} has no ICD-10-CM ({ICD10CM}) or SNOMED CT coding"
    )


def _extension_values(resource: Record, suffix: str) -> list[Record]:
    return [e for e in resource.get("extension") or [] if str(e.get("url", "")).endswith(suffix)]


def _procedure_entry(procedure: Record, condition_refs: list[set[str]]) -> Record:
    where = _name(procedure)
    coding = _coding(procedure.get("code"), (*CPT_SYSTEMS, *HCPCS_SYSTEMS))
    if coding is None:
        raise _Missing("code-invalid", f"{where}.code", f"{where} has no CPT or HCPCS coding")
    modifiers = []
    for ext in _extension_values(procedure, MODIFIER_EXTENSION):
        code = _coding(ext.get("valueCodeableConcept"), (*CPT_SYSTEMS, *HCPCS_SYSTEMS)) or {
            "code": ext.get("valueCode") or ext.get("valueString")
        }
        if code.get("code"):
            modifiers.append(str(code["code"]))
    units = 1
    for ext in _extension_values(procedure, UNITS_EXTENSION):
        value = ext.get("valueInteger") or (ext.get("valueQuantity") or {}).get("value")
        if value:
            units = int(value)
    refs = []
    for reason in procedure.get("reasonReference") or []:
        target = reason.get("reference", "")
        refs += [i for i, names in enumerate(condition_refs) if target in names]
    return {
        "code": str(coding["code"]).upper(),
        "modifiers": modifiers,
        "units": units,
        "diagnosis_refs": refs or [0],
    }


def _coverages(
    patient_ref: set[str],
    index: _Index,
    patient: Record,
    on: date,
    profiles: Mapping[str, PayerProfile],
) -> list[Record]:
    by_ref = index.by_ref
    found = []
    for cov in index.coverages:
        if cov.get("status", "active") != "active":
            continue
        if (cov.get("beneficiary") or {}).get("reference") not in patient_ref:
            continue
        where = _name(cov)
        payor = _ref(by_ref, (cov.get("payor") or [{}])[0])
        payer_id = None
        if payor is not None:
            payer_id = next(
                (i.get("value") for i in payor.get("identifier") or [] if i.get("value")), None
            )
        payer_id = payer_id or (cov.get("payor") or [{}])[0].get("identifier", {}).get("value")
        if not payer_id:
            raise _Missing(
                "required", f"{where}.payor", f"{where} names no payer with an identifier"
            )
        member_id = cov.get("subscriberId") or next(
            (i.get("value") for i in cov.get("identifier") or [] if i.get("value")), None
        )
        if not member_id:
            raise _Missing("required", f"{where}.subscriberId", f"{where} has no member id")
        subscriber_res = _ref(by_ref, cov.get("subscriber"))
        subscriber = _person(subscriber_res, "Subscriber") if subscriber_res else patient
        relationship = (
            _coding(
                cov.get("relationship"),
                ("http://terminology.hl7.org/CodeSystem/subscriber-relationship",),
            )
            or {}
        ).get("code", "self")
        group = next(
            (
                c.get("value")
                for c in cov.get("class") or []
                if (
                    _coding(
                        c.get("type"), ("http://terminology.hl7.org/CodeSystem/coverage-class",)
                    )
                    or {}
                ).get("code")
                == "group"
            ),
            None,
        )
        period = cov.get("period") or {}
        start, end = _date(period.get("start")), _date(period.get("end"))
        profile = profiles.get(payer_id)
        payer_name = (payor or {}).get("name") or (profile.name if profile else payer_id)
        found.append(
            {
                "order": cov.get("order", 99),
                "coverage": {
                    "payer_id": payer_id,
                    "payer_name": payer_name,
                    # The claim filing indicator is the payer's (X12 SBR09), not in Coverage.
                    "plan_type": profile.plan_type if profile else "CI",
                    "member_id": str(member_id),
                    "group_number": group,
                    "relationship": RELATIONSHIP.get(relationship, "G8"),
                    "subscriber": subscriber,
                    "effective_date": start or on,
                    "termination_date": end,
                },
            }
        )
    found.sort(key=lambda c: c["order"])
    return [c["coverage"] for c in found]


def _encounter(
    encounter: Record,
    index: _Index,
    billing_provider: Record,
    received_at: datetime,
    source: str,
    profiles: Mapping[str, PayerProfile],
) -> Record:
    by_ref = index.by_ref
    where = _name(encounter)
    patient_res = _ref(by_ref, encounter.get("subject"))
    if patient_res is None or patient_res["resourceType"] != "Patient":
        raise _Missing(
            "required", f"{where}.subject", f"{where} does not reference a Patient in the bundle"
        )
    patient = _person(patient_res, "Patient")
    patient_refs = index.refs(patient_res)
    period = encounter.get("period") or {}
    service_date = _date(period.get("start"))
    if service_date is None:
        raise _Missing("required", f"{where}.period.start", f"{where} has no start date")
    enc_refs = index.refs(encounter)

    conditions = index.linked_to("Condition", enc_refs)
    ranked = {
        (_ref(by_ref, d.get("condition")) or {}).get("id"): d.get("rank", 99)
        for d in encounter.get("diagnosis") or []
    }
    conditions.sort(key=lambda c: ranked.get(c.get("id"), 99))
    condition_refs = [index.refs(c) for c in conditions]
    age_days = (service_date - patient["birth_date"]).days
    diagnoses = [diagnosis_code(c, age_days) for c in conditions]
    if not diagnoses:
        raise _Missing(
            "required",
            f"{where}.diagnosis",
            f"{where} has no Condition linked to it (Condition.encounter)",
        )
    procedures = index.linked_to("Procedure", enc_refs)
    if not procedures:
        raise _Missing("required", f"{where}", f"{where} has no Procedure linked to it")
    lines = [_procedure_entry(p, condition_refs) for p in procedures]

    rendering = referring = None
    for participant in encounter.get("participant") or []:
        kinds = {
            c.get("code") for t in participant.get("type") or [] for c in t.get("coding") or []
        }
        actor = _ref(by_ref, participant.get("individual"))
        if actor is None:
            continue
        if kinds & {"ATND", "PPRF", "PART"} and rendering is None:
            rendering = _provider(actor, "Practitioner")
        elif "REF" in kinds:
            referring = _provider(actor, "Referring practitioner")
    if rendering is None:
        performer = next(
            (
                _ref(by_ref, p.get("actor"))
                for proc in procedures
                for p in proc.get("performer") or []
            ),
            None,
        )
        if performer is None:
            raise _Missing(
                "required",
                f"{where}.participant",
                f"{where} names no attending practitioner and no procedure performer",
            )
        rendering = _provider(performer, "Practitioner")
    org = _ref(by_ref, encounter.get("serviceProvider"))
    billing = _provider(org, "Organization", organization=True) if org else billing_provider

    coverages = _coverages(patient_refs, index, patient, service_date, profiles)
    encounter_id = next(
        (i.get("value") for i in encounter.get("identifier") or [] if i.get("value")),
        encounter.get("id"),
    )
    if not encounter_id:
        raise _Missing("required", f"{where}.identifier", "the Encounter has no id or identifier")
    version = (encounter.get("meta") or {}).get("versionId", "")
    minutes = (encounter.get("length") or {}).get("value")
    return {
        # The same Encounter version has the same id whichever way it arrived.
        "event_id": stable_id("EV", "fhir", encounter_id, version),
        "encounter_id": str(encounter_id),
        "source": source,
        "received_at": received_at,
        "service_date": service_date,
        "place_of_service": PLACE_OF_SERVICE.get(
            (encounter.get("class") or {}).get("code", ""), "11"
        ),
        "patient": patient,
        "coverage": coverages[0] if coverages else None,
        "other_coverages": coverages[1:],
        "billing_provider": billing,
        "rendering_provider": rendering,
        "referring_provider": referring,
        "diagnoses": diagnoses,
        "procedures": lines,
        "authorization_number": None,
        "referral_number": None,
        "documented_minutes": int(minutes) if minutes else None,
        "mdm_level": None,
    }


def map_bundle(
    bundle: Record,
    billing_provider: Record,
    received_at: datetime | None = None,
    source: str = "fhir",
    *,
    payers: Mapping[str, PayerProfile] | None = None,
) -> Mapped:
    """EncounterEvents for every billable Encounter of a FHIR R4 *bundle*.

    *billing_provider* is the practice billing the claims, used when an
    Encounter names no serviceProvider. *received_at* defaults to the bundle's
    timestamp. *payers* are the payer profiles (the settings' reference data;
    the shipped ones when not given) that fill in what a Coverage lacks.
    """
    profiles = payers if payers is not None else shipped_payers()
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        raise BundleError("the document is not a FHIR Bundle (resourceType must be Bundle)")
    if bundle.get("type") not in ("transaction", "collection", "batch", "message", "document"):
        raise BundleError(
            f"Bundle.type {repr(bundle.get('type'))[:40]}: use transaction or collection"
        )
    index = _index(bundle)
    when = received_at or _timestamp(bundle.get("timestamp")) or datetime.now(UTC)
    out = Mapped()
    encounters = [r for r in index.ordered if r["resourceType"] == "Encounter"]
    if not encounters:
        out.issues.append(_issue("required", "Bundle.entry", "the Bundle holds no Encounter"))
    for encounter in encounters:
        try:
            out.events.append(
                _encounter(encounter, index, billing_provider, when, source, profiles)
            )
        except _Missing as exc:
            out.issues.append(exc.issue)
        except (AttributeError, TypeError, ValueError, KeyError, IndexError) as exc:
            # An element of the wrong JSON type (an object where FHIR has an array, a
            # number where it has a string): the encounter is not valid FHIR.
            where = _name(encounter)
            out.issues.append(
                _issue(
                    "structure",
                    where,
                    (
                        f"{where} or a resource it references has an element of the wrong type or "
                        f"shape ({type(exc).__name__}); check it against the FHIR R4 definitions"
                    ),
                )
            )
    return out


def _timestamp(value: object) -> datetime | None:
    if not value or not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)

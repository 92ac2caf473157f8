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

from bisect import bisect_left
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from pipeline.ingest.directory import Enrollment, FeedDirectory
from processors.contracts.claim import SELF_PAY_ID
from processors.ids import stable_id
from processors.refdata import PayerProfile, map_snomed, route_payer, shipped_payers

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
    visit_dates: dict[tuple[str, str], list[date]] = field(default_factory=dict)
    visits_per_patient: Counter[str] = field(default_factory=Counter)

    def refs(self, resource: Record) -> set[str]:
        """Every reference that names *resource* in this bundle, and its Type/id."""
        return {_name(resource), *self.names.get(id(resource), ())}

    def linked_to(self, resource_type: str, refs: set[str]) -> list[Record]:
        """The *resource_type* resources whose ``encounter`` is one of *refs*, in bundle order."""
        found = [r for ref in refs for r in self.linked.get((resource_type, ref), ())]
        if len(refs) > 1:
            found.sort(key=lambda r: self.position[id(r)])
        return found


def _entries(bundle: Record) -> list[tuple[str | None, Record]]:
    """(fullUrl, resource) of each entry of *bundle* that holds a resource."""
    entries = bundle.get("entry") or []
    if not isinstance(entries, list):
        raise BundleError("Bundle.entry is not an array")
    found = []
    for entry in entries:
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if not isinstance(resource, dict) or not isinstance(resource.get("resourceType"), str):
            continue
        url = entry.get("fullUrl")
        found.append((url if isinstance(url, str) and url else None, resource))
    return found


def _reference_forms(url: str | None, resource: Record) -> list[str]:
    """Every reference that names *resource*: its fullUrl, Type/id, and the conditional
    ``Type?identifier=system|value`` form of each of its identifiers."""
    forms = [url] if url else []
    kind = resource["resourceType"]
    if resource.get("id"):
        forms.append(f"{kind}/{resource['id']}")
    for ident in resource.get("identifier") or []:
        if isinstance(ident, dict) and ident.get("system") and ident.get("value"):
            forms.append(f"{kind}?identifier={ident['system']}|{ident['value']}")
    return forms


def _index(bundle: Record, context: Sequence[Record] = ()) -> _Index:
    """Resources by every reference form (fullUrl, Type/id, conditional identifier) and in
    bundle order; *context* are bundles sent with it whose resources references may name
    (Synthea's organization and practitioner files), never billed themselves."""
    by_ref: dict[str, Record] = {}
    for side in context:
        for url, resource in _entries(side):
            for form in _reference_forms(url, resource):
                by_ref.setdefault(form, resource)
    ordered: list[Record] = []
    for url, resource in _entries(bundle):
        ordered.append(resource)
        for form in _reference_forms(url, resource):
            by_ref[form] = resource
    names: dict[int, set[str]] = {}
    for ref, resource in by_ref.items():
        names.setdefault(id(resource), set()).add(ref)
    linked = _links(ordered)
    coverages = [r for r in ordered if r["resourceType"] == "Coverage"]
    position = {id(r): i for i, r in enumerate(ordered)}
    visit_dates, per_patient = _visits(ordered)
    return _Index(by_ref, ordered, names, linked, coverages, position, visit_dates, per_patient)


# The element that ties a resource to its Encounter, by resource type.
ENCOUNTER_LINK = {
    "Condition": "encounter",
    "Procedure": "encounter",
    "MedicationAdministration": "context",
}


def _target(link: object) -> str | None:
    target = link.get("reference") if isinstance(link, dict) else None
    return target if isinstance(target, str) else None


def _links(ordered: list[Record]) -> dict[tuple[str, str], list[Record]]:
    """(resource type, encounter reference) -> the resources tied to that encounter, in
    bundle order: Conditions, Procedures and MedicationAdministrations by their own
    element, Claims by the encounter of any of their items (each Claim once)."""
    linked: dict[tuple[str, str], list[Record]] = {}
    for resource in ordered:
        kind = resource["resourceType"]
        if kind in ENCOUNTER_LINK:
            target = _target(resource.get(ENCOUNTER_LINK[kind]))
            if target is not None:
                linked.setdefault((kind, target), []).append(resource)
        elif kind == "Claim":
            for item in resource.get("item") or []:
                for link in item.get("encounter") or []:
                    target = _target(link)
                    if target is None:
                        continue
                    claims = linked.setdefault(("Claim", target), [])
                    if not claims or claims[-1] is not resource:
                        claims.append(resource)
    return linked


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
    where = _name(condition)
    return concept_code(condition.get("code"), f"{where}.code", age_days)


class _Unmapped(_Missing):
    """A clinical concept with no billing code: not a refusal, it goes to a coder."""

    def __init__(self, need: str, coding: Record, where: str) -> None:
        super().__init__("code-invalid", where, f"{where}: no billing code for {coding['code']}")
        self.concept = {
            "need": need,
            "system": str(coding.get("system") or ""),
            "code": str(coding["code"]),
            "display": coding.get("display"),
            # The element without the resource's id: Condition.code, Claim.item.productOrService.
            "element": _element(where),
        }


def _element(where: str) -> str:
    kind, _, rest = where.partition("/")
    path = rest.partition(".")[2]
    return f"{kind}.{path}" if path else kind


def concept_code(concept: Record | None, where: str, age_days: int = 365 * 40) -> str:
    """The ICD-10-CM code (no dot) of a diagnosis concept at *where* (an element path).

    A SNOMED CT concept the shipped map does not hold raises :class:`_Unmapped`
    (the encounter goes to a coder with it); a concept in neither system is refused.
    """
    icd = _coding(concept, (ICD10CM,))
    if icd is not None:
        return str(icd["code"]).replace(".", "").upper()
    snomed = _coding(concept, (SNOMED,))
    if snomed is not None:
        mapped = map_snomed(str(snomed["code"]), age_days)
        if mapped:
            return mapped
        raise _Unmapped("diagnosis", snomed, where)
    raise _Missing("code-invalid", where, f"{where} has no ICD-10-CM or SNOMED CT coding")


def _diagnoses(
    encounter: Record, index: _Index, enc_refs: set[str], age_days: int, uncoded: list[Record]
) -> tuple[list[str], list[set[str]]]:
    """The encounter's ICD-10-CM codes, most relevant first, and the references of the
    Conditions behind the first of them (which Procedure.reasonReference may point at).

    Read, in this order: Encounter.diagnosis (by rank), the Conditions whose
    ``encounter`` is this one, Encounter.reasonReference, Encounter.reasonCode, and
    the diagnoses of a Claim for this encounter in the bundle.
    """
    where = _name(encounter)
    by_ref = index.by_ref
    conditions: list[Record] = []

    def add(condition: Record | None) -> None:
        if (
            condition is not None
            and condition.get("resourceType") == "Condition"
            and all(c is not condition for c in conditions)
        ):
            conditions.append(condition)

    ranked = sorted(encounter.get("diagnosis") or [], key=lambda d: d.get("rank", 99))
    for d in ranked:
        add(_ref(by_ref, d.get("condition")))
    for condition in index.linked_to("Condition", enc_refs):
        add(condition)
    for reason in encounter.get("reasonReference") or []:
        add(_ref(by_ref, reason))
    codes: list[str] = []
    refs: list[set[str]] = []

    def code(concept: Record | None, at: str, condition: Record | None = None) -> None:
        try:
            found = concept_code(concept, at, age_days)
        except _Unmapped as gap:
            uncoded.append(gap.concept)
            return
        if found not in codes:
            codes.append(found)
            refs.append(index.refs(condition) if condition is not None else set())

    for condition in conditions:
        code(condition.get("code"), f"{_name(condition)}.code", condition)
    for i, concept in enumerate(encounter.get("reasonCode") or []):
        code(concept, f"{where}.reasonCode[{i}]")
    for claim in index.linked_to("Claim", enc_refs):
        for i, d in enumerate(claim.get("diagnosis") or []):
            if d.get("diagnosisCodeableConcept"):
                code(d["diagnosisCodeableConcept"], f"{_name(claim)}.diagnosis[{i}]")
            else:
                referenced = _ref(by_ref, d.get("diagnosisReference"))
                if referenced is not None and referenced.get("resourceType") == "Condition":
                    code(referenced.get("code"), f"{_name(referenced)}.code", referenced)
    return codes, refs


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
        "charge_cents": None,  # a Procedure carries no charge; a Claim item's net does
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
        # A real payer (its id or name) is billed to the profile payer_directory.csv routes
        # it to; one neither a profile nor routed stays as sent, and the scrubber holds it.
        route = route_payer([payer_id, (payor or {}).get("name")], profiles)
        payer_id = route.profile_id if route else payer_id
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


def _identifiers(resource: Record | None, reference: Record | None = None) -> list[str]:
    """``system|value`` of each identifier of *resource*, and of a conditional *reference*."""
    found = []
    target = str((reference or {}).get("reference") or "")
    if "?identifier=" in target:
        found.append(target.split("?identifier=", 1)[1])
    ident = (reference or {}).get("identifier")
    if isinstance(ident, dict) and ident.get("system") and ident.get("value"):
        found.append(f"{ident['system']}|{ident['value']}")
    for i in (resource or {}).get("identifier") or []:
        if isinstance(i, dict) and i.get("system") and i.get("value"):
            found.append(f"{i['system']}|{i['value']}")
    npi = _identifier(resource, NPI_SYSTEM) if resource else None
    if npi:
        found.append(f"npi|{npi}")
    return found


def _practitioner(resource: Record, billing: FeedDirectory, role: str = "Practitioner") -> Record:
    """A rendering or referring provider: the directory's entry for it, else its own NPI."""
    listed = billing.find_practitioner(_identifiers(resource))
    if listed is not None:
        return listed
    return _provider(resource, role)


def _participants(
    encounter: Record, index: _Index, billing: FeedDirectory
) -> tuple[Record | None, Record | None]:
    """(rendering, referring) from Encounter.participant.

    The first primary performer, attender or participant (PPRF, ATND, PART)
    renders; without a type, a single individual does (FHIR R4 and US Core allow
    an untyped participant). REF refers.
    """
    rendering_actor = referring_actor = None
    untyped = []
    for participant in encounter.get("participant") or []:
        kinds = {
            c.get("code") for t in participant.get("type") or [] for c in t.get("coding") or []
        }
        actor = _ref(index.by_ref, participant.get("individual"))
        if actor is None or actor.get("resourceType") != "Practitioner":
            continue
        if kinds & {"ATND", "PPRF", "PART"} and rendering_actor is None:
            rendering_actor = actor
        elif "REF" in kinds and referring_actor is None:
            referring_actor = actor
        elif not kinds:
            untyped.append(actor)
    if rendering_actor is None and len(untyped) == 1:
        rendering_actor = untyped[0]
    elif rendering_actor is None and len(untyped) > 1:
        where = _name(encounter)
        raise _Missing(
            "required",
            f"{where}.participant",
            f"{where} has {len(untyped)} participants without a type and none typed PPRF, "
            "ATND or PART: the rendering practitioner cannot be told apart",
        )
    rendering = _practitioner(rendering_actor, billing) if rendering_actor else None
    referring = (
        _practitioner(referring_actor, billing, "Referring practitioner")
        if referring_actor
        else None
    )
    return rendering, referring


def _billing_provider(encounter: Record, index: _Index, billing: FeedDirectory) -> Record:
    """The billing provider: the serviceProvider's own NPI, else its directory entry, else
    the provider given for the feed; refused when none of them gives one."""
    where = _name(encounter)
    reference = encounter.get("serviceProvider")
    if reference:
        org = _ref(index.by_ref, reference)
        if org is not None and _identifier(org, NPI_SYSTEM):
            return _provider(org, "Organization", organization=True)
        listed = billing.find(_identifiers(org, reference))
        if listed is not None:
            return listed
        named = (org or {}).get("name") or reference.get("display") or reference.get("reference")
        raise _Missing(
            "required",
            f"{where}.serviceProvider",
            f"{where}.serviceProvider ({named}) has no NPI and is not in the provider "
            f"directory: {billing.where_to_add()}",
        )
    if billing.given is not None:
        return dict(billing.given)
    raise _Missing(
        "required",
        f"{where}.serviceProvider",
        f"{where} names no serviceProvider and no billing provider was given for the feed: "
        "add Encounter.serviceProvider, or give one with --billing-provider",
    )


def _net_cents(item: Record) -> int | None:
    """A Claim item's ``net`` (its whole charge) in cents, when it is in USD."""
    net = item.get("net") or {}
    value = net.get("value")
    if value is None or net.get("currency", "USD") != "USD":
        return None
    return round(float(value) * 100)


def _claim_lines(claim: Record, condition_refs: list[set[str]]) -> list[Record]:
    """ProcedureEntries from the CPT/HCPCS items of a Claim for the encounter."""
    lines = []
    for item in claim.get("item") or []:
        coding = _coding(item.get("productOrService"), (*CPT_SYSTEMS, *HCPCS_SYSTEMS))
        if coding is None:
            continue
        modifiers = [
            str(c.get("code"))
            for m in item.get("modifier") or []
            for c in (m.get("coding") or [])[:1]
            if c.get("code")
        ]
        quantity = (item.get("quantity") or {}).get("value")
        pointers = [int(n) - 1 for n in item.get("diagnosisSequence") or [] if int(n) >= 1]
        lines.append(
            {
                "charge_cents": _net_cents(item),
                "code": str(coding["code"]).upper(),
                "modifiers": modifiers[:4],
                "units": int(quantity) if quantity else 1,
                "diagnosis_refs": [n for n in pointers if n < max(len(condition_refs), 12)] or [0],
            }
        )
    return lines


RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"


def _administered(index: _Index, enc_refs: set[str]) -> set[str]:
    """RxNorm codes of the MedicationAdministrations of the encounter (drugs given there)."""
    given: set[str] = set()
    for ref in enc_refs:
        for resource in index.linked.get(("MedicationAdministration", ref), ()):
            concept = resource.get("medicationCodeableConcept") or {}
            given |= {str(c.get("code")) for c in concept.get("coding") or [] if c.get("code")}
    return given


def _first_coding(concept: Record | None) -> Record | None:
    for coding in (concept or {}).get("coding") or []:
        if coding.get("code"):
            return dict(coding)
    return None


def _service_lines(
    encounter: Record,
    procedures: list[Record],
    index: _Index,
    enc_refs: set[str],
    condition_refs: list[set[str]],
    uncoded: list[Record],
) -> list[Record]:
    """The encounter's services: its Procedures with CPT/HCPCS codings, else the CPT/HCPCS
    items of a Claim for it. A service sent in another code system (SNOMED CT, CVX,
    RxNorm) is added to *uncoded* for a coder; an encounter with no service at all is
    refused, naming what was there."""
    billing_systems = (*CPT_SYSTEMS, *HCPCS_SYSTEMS)
    lines = []
    seen: set[tuple[str, str]] = set()
    for p in procedures:
        if _coding(p.get("code"), billing_systems):
            lines.append(_procedure_entry(p, condition_refs))
            continue
        other = _first_coding(p.get("code"))
        if other is None:
            lines.append(_procedure_entry(p, condition_refs))  # refused: names the Procedure
            continue
        seen.add((str(other.get("system")), str(other["code"])))
        uncoded.append(_Unmapped("service", other, f"{_name(p)}.code").concept)
    claims = index.linked_to("Claim", enc_refs)
    if not lines:
        for claim in claims:
            lines = _claim_lines(claim, condition_refs)
            if lines:
                break
    # A Claim item that repeats a diagnosis (Synthea lists the encounter's conditions as
    # items too) is not a service, nor is a prescription (RxNorm) the practice did not give.
    seen |= {(u["system"], u["code"]) for u in uncoded if u["need"] == "diagnosis"}
    for condition in index.linked_to("Condition", enc_refs):
        seen |= {
            (str(c.get("system")), str(c.get("code")))
            for c in (condition.get("code") or {}).get("coding") or []
        }
    given = _administered(index, enc_refs)
    for claim in claims:
        for item in claim.get("item") or []:
            concept = item.get("productOrService")
            if _coding(concept, billing_systems):
                continue
            other = _first_coding(concept)
            if other is None or (str(other.get("system")), str(other["code"])) in seen:
                continue
            if other.get("system") == RXNORM and str(other["code"]) not in given:
                continue
            seen.add((str(other.get("system")), str(other["code"])))
            at = f"{_name(claim)}.item.productOrService"
            uncoded.append(_Unmapped("service", other, at).concept)
    if lines or any(u["need"] == "service" for u in uncoded):
        return lines
    where = _name(encounter)
    coded_as = [
        f"{c.get('system', '?').rsplit('/', 1)[-1]} {c.get('code')}"
        for claim in claims
        for item in claim.get("item") or []
        for c in (item.get("productOrService") or {}).get("coding") or []
    ]
    found = f" (its Claim items are coded {', '.join(coded_as[:4])})" if coded_as else ""
    raise _Missing(
        "required",
        where,
        f"{where} has no billable service: no Procedure linked to it and no Claim item "
        f"with a CPT or HCPCS code{found}",
    )


# CPT's new/established rule: seen by the same practice within the past three years.
ESTABLISHED_WITHIN = timedelta(days=3 * 365)


def _visit_key(encounter: Record) -> tuple[str, str]:
    subject = str((encounter.get("subject") or {}).get("reference") or "")
    return subject, str((encounter.get("serviceProvider") or {}).get("reference") or "")


def _visits(ordered: list[Record]) -> tuple[dict[tuple[str, str], list[date]], Counter[str]]:
    """Visit dates by (patient, serviceProvider) reference, sorted; visits per patient."""
    dates: dict[tuple[str, str], list[date]] = {}
    per_patient: Counter[str] = Counter()
    for resource in ordered:
        if resource["resourceType"] != "Encounter":
            continue
        key = _visit_key(resource)
        per_patient[key[0]] += 1
        when = _date((resource.get("period") or {}).get("start"))
        if when is not None:
            dates.setdefault(key, []).append(when)
    for found in dates.values():
        found.sort()
    return dates, per_patient


def _established(encounter: Record, index: _Index, service_date: date) -> bool | None:
    """Whether the bundle shows a visit of the patient at the same serviceProvider in the 3
    years before *service_date*; None when the bundle holds no other visit of theirs."""
    key = _visit_key(encounter)
    if index.visits_per_patient[key[0]] < 2:
        return None
    dates = index.visit_dates.get(key, [])
    i = bisect_left(dates, service_date - ESTABLISHED_WITHIN)
    return i < len(dates) and dates[i] < service_date


ROSTER_RELATIONSHIP = {"self": "18", "child": "19", "spouse": "01", "other": "G8"}


def _roster_coverage(
    enrolled: Enrollment, patient: Record, where: str, profiles: Mapping[str, PayerProfile]
) -> list[Record]:
    """The coverage the member roster holds for the patient on the date of service."""
    route = route_payer([enrolled.payer], profiles)
    payer_id = route.profile_id if route else enrolled.payer
    if payer_id == SELF_PAY_ID:
        return []
    if enrolled.relationship != "self":
        raise _Missing(
            "required",
            f"{where}.subject",
            f"the member roster's coverage of the patient of {where} belongs to another "
            f"subscriber (the patient is their {enrolled.relationship}), and the roster "
            "has no subscriber's name, birth date and address",
        )
    profile = profiles.get(payer_id)
    return [
        {
            "payer_id": payer_id,
            "payer_name": enrolled.payer if profile is None else profile.name,
            "plan_type": profile.plan_type if profile else "CI",
            "member_id": enrolled.member_id,
            "group_number": None,
            "relationship": ROSTER_RELATIONSHIP[enrolled.relationship],
            "subscriber": patient,
            "effective_date": enrolled.start,
            "termination_date": enrolled.end,
        }
    ]


# Claim.insurance displays that mean the patient pays (Synthea's form).
SELF_PAY_DISPLAYS = frozenset({"no_insurance", "self-pay", "self pay", "selfpay", "none"})


def _insured_without_coverage(index: _Index, enc_refs: set[str]) -> None:
    """Refuse an encounter whose Claim names an insurer the bundle has no Coverage for.

    Without a Coverage the encounter would be billed to the patient; a Claim
    that names an insurer says the patient is insured, and the member id the
    payer needs is missing, so it is held rather than billed as self-pay.
    """
    for claim in index.linked_to("Claim", enc_refs):
        for i, insurance in enumerate(claim.get("insurance") or []):
            ref = insurance.get("coverage") or {}
            coverage = _ref(index.by_ref, ref)
            named = (coverage or {}).get("payor") or ref.get("display")
            display = str(ref.get("display") or named or "").strip()
            if display and display.lower() not in SELF_PAY_DISPLAYS:
                where = f"{_name(claim)}.insurance[{i}]"
                raise _Missing(
                    "required",
                    where,
                    f"{where} names the insurer {display!r} but the bundle has no active "
                    "Coverage of the patient with its member id (Coverage.subscriberId); "
                    "send the Coverage, or it would be billed to the patient",
                )


def _encounter(
    encounter: Record,
    index: _Index,
    billing: FeedDirectory,
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

    age_days = (service_date - patient["birth_date"]).days
    uncoded: list[Record] = []
    diagnoses, condition_refs = _diagnoses(encounter, index, enc_refs, age_days, uncoded)
    procedures = index.linked_to("Procedure", enc_refs)
    lines = _service_lines(encounter, procedures, index, enc_refs, condition_refs, uncoded)
    if not diagnoses and not uncoded:
        raise _Missing(
            "required",
            f"{where}.diagnosis",
            f"{where} has no diagnosis: no Encounter.diagnosis, reasonCode or "
            "reasonReference, no Condition whose encounter is it, and no Claim.diagnosis "
            "for it",
        )

    rendering, referring = _participants(encounter, index, billing)
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
        rendering = _practitioner(performer, billing)
    billing_provider = _billing_provider(encounter, index, billing)

    coverages = _coverages(patient_refs, index, patient, service_date, profiles)
    if not coverages:
        enrolled = billing.enrollment(_identifiers(patient_res), service_date)
        if enrolled is not None:
            coverages = _roster_coverage(enrolled, patient, where, profiles)
        else:
            _insured_without_coverage(index, enc_refs)
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
        "billing_provider": billing_provider,
        "rendering_provider": rendering,
        "referring_provider": referring,
        "diagnoses": diagnoses,
        "procedures": lines,
        "authorization_number": None,
        "referral_number": None,
        "documented_minutes": int(minutes) if minutes else None,
        "mdm_level": None,
        "established_patient": _established(encounter, index, service_date),
        "uncoded": uncoded,
    }


def map_bundle(
    bundle: Record,
    billing: FeedDirectory,
    received_at: datetime | None = None,
    source: str = "fhir",
    *,
    payers: Mapping[str, PayerProfile] | None = None,
    context: Sequence[Record] = (),
) -> Mapped:
    """EncounterEvents for every billable Encounter of a FHIR R4 *bundle*.

    *billing* says where billing providers come from: the provider directory,
    and a provider given for the whole feed for Encounters that name no
    serviceProvider (none is made up). *received_at* defaults to the bundle's
    timestamp. *payers* are the payer profiles (the settings' reference data;
    the shipped ones when not given) that fill in what a Coverage lacks.
    *context* are bundles sent with this one whose resources its references may
    name (Synthea's organization and practitioner files).
    """
    profiles = payers if payers is not None else shipped_payers()
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        raise BundleError("the document is not a FHIR Bundle (resourceType must be Bundle)")
    if bundle.get("type") not in ("transaction", "collection", "batch", "message", "document"):
        raise BundleError(
            f"Bundle.type {repr(bundle.get('type'))[:40]}: use transaction or collection"
        )
    index = _index(bundle, context)
    when = received_at or _timestamp(bundle.get("timestamp")) or datetime.now(UTC)
    out = Mapped()
    encounters = [r for r in index.ordered if r["resourceType"] == "Encounter"]
    if not encounters:
        out.issues.append(_issue("required", "Bundle.entry", "the Bundle holds no Encounter"))
    for encounter in encounters:
        try:
            out.events.append(_encounter(encounter, index, billing, when, source, profiles))
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

"""The records that cross stage boundaries, as fastavro decodes them: one TypedDict per schema.

Written from ``schemas/claims.*.avsc`` (one record per file) and kept equal to
them by ``tests/unit/test_records.py``: a field added to a schema and not here
(or here with another type) fails the tests. Field docs are in the schemas.
A decoded record carries every field (defaults filled in), so every key is
required; ``date`` and ``datetime`` are the logical types ``date`` and
``timestamp-millis``.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import TypedDict


class Address(TypedDict):
    """A postal address as the 837P N3/N4 segments carry it."""

    line1: str
    line2: str | None
    city: str
    state: str
    postal_code: str


class Adjustment(TypedDict):
    """An 835 CAS adjustment: group code, claim adjustment reason code and amount."""

    group_code: str
    carc: str
    amount_cents: int
    rule_id: str


class Provider(TypedDict):
    """A billing, rendering or referring provider (837P loops 2010AA, 2310B, 2310A)."""

    npi: str
    entity_type: str
    name: str
    first_name: str | None
    taxonomy: str | None
    tin: str | None
    address: Address | None


class Person(TypedDict):
    """A patient or subscriber (837P loops 2010BA and 2010CA). Protected health information:
    never logged.
    """

    person_id: str
    last_name: str
    first_name: str
    birth_date: date
    sex: str
    address: Address


class ServiceLine(TypedDict):
    """An 837P professional service line (loop 2400, SV1)."""

    line_number: int
    procedure_code: str
    modifiers: list[str]
    charge_cents: int
    units: int
    place_of_service: str
    dx_pointers: list[int]
    service_date: date


class Coverage(TypedDict):
    """The insurance a patient presents at the encounter (837P loops 2000B, 2010BA, 2010BB)."""

    payer_id: str
    payer_name: str
    plan_type: str
    member_id: str
    group_number: str | None
    relationship: str
    subscriber: Person
    effective_date: date
    termination_date: date | None


class CodingFinding(TypedDict):
    """One result of a coding or scrubber edit."""

    edit_id: str
    severity: str
    code: str | None
    message: str
    refdata_version: str


class Claim(TypedDict):
    """A professional claim shaped on the X12 837P 005010X222A1 loops. Topic claims.submitted,
    keyed by member key.
    """

    claim_id: str
    encounter_id: str
    event_id: str
    frequency_code: str
    original_claim_id: str | None
    resubmission: int
    payer_claim_control_number: str | None
    created_at: datetime
    billing_provider: Provider
    rendering_provider: Provider
    referring_provider: Provider | None
    subscriber: Person
    patient: Person
    relationship: str
    member_id: str
    group_number: str | None
    payer_id: str
    payer_name: str
    plan_type: str
    place_of_service: str
    service_date_from: date
    service_date_to: date
    diagnoses: list[str]
    lines: list[ServiceLine]
    total_charge_cents: int
    authorization_number: str | None
    referral_number: str | None
    coverage_effective_date: date | None
    coverage_termination_date: date | None
    other_coverages: list[Coverage]
    findings: list[CodingFinding]
    ruleset_version: str


class ClaimChange(TypedDict):
    """One correction a person asks for when resubmitting a claim."""

    field: str
    line_number: int | None
    value: str


class ClaimStatus(TypedDict):
    """The latest state of one claim (or held encounter). Topic claims.lifecycle, compacted,
    keyed by claim_id (encounter id for coding holds).
    """

    claim_id: str
    encounter_id: str
    status: str
    stage: str
    at: datetime
    charge_cents: int
    paid_cents: int
    patient_responsibility_cents: int
    payer_id: str | None
    detail: str | None
    history: list[str]


class ProcedureEntry(TypedDict):
    """A procedure or service as documented in the encounter, before coding edits."""

    code: str
    modifiers: list[str]
    units: int
    diagnosis_refs: list[int]
    charge_cents: int | None


class UncodedConcept(TypedDict):
    """A clinical concept the feed sent that no billing code could be found for: a coder codes
    it (or drops it) before the encounter is billed.
    """

    need: str
    system: str
    code: str
    display: str | None
    element: str


class EncounterEvent(TypedDict):
    """A finished encounter as the EHR reports it: who was seen, by whom, under which coverage,
    with which documented diagnoses and services. Topic ehr.encounters, keyed by member key.
    """

    event_id: str
    encounter_id: str
    source: str
    received_at: datetime
    service_date: date
    place_of_service: str
    patient: Person
    coverage: Coverage | None
    other_coverages: list[Coverage]
    billing_provider: Provider
    rendering_provider: Provider
    referring_provider: Provider | None
    diagnoses: list[str]
    procedures: list[ProcedureEntry]
    authorization_number: str | None
    referral_number: str | None
    documented_minutes: int | None
    mdm_level: str | None
    established_patient: bool | None
    uncoded: list[UncodedConcept]


class CodedLine(TypedDict):
    """A service line after coding: the code to bill, its modifiers, units and diagnosis
    pointers.
    """

    line_number: int
    procedure_code: str
    modifiers: list[str]
    units: int
    dx_pointers: list[int]
    charge_cents: int | None


class CodedEncounter(TypedDict):
    """An encounter that passed the coding edits, ready to become a claim. Topic
    encounters.coded, keyed by member key.
    """

    event_id: str
    encounter: EncounterEvent
    diagnoses: list[str]
    lines: list[CodedLine]
    findings: list[CodingFinding]
    ruleset_version: str


class DeadLetter(TypedDict):
    """A record a stage could not process, kept whole with the reason. Topic pipeline.dead-
    letter, keyed by the original key.
    """

    stage: str
    error: str
    error_type: str
    source_topic: str
    source_partition: int
    source_offset: int
    key: bytes | None
    value: bytes | None
    record_id: str | None
    value_size: int | None
    failed_at: datetime


class StatementLine(TypedDict):
    """One service on a patient statement."""

    line_number: int
    procedure_code: str
    service_date: date | None
    charge_cents: int
    insurance_paid_cents: int
    adjusted_cents: int
    patient_cents: int
    reasons: list[str]


class PatientStatement(TypedDict):
    """What a patient owes for one claim after the payer's answer (or the whole charge for
    self-pay). Topic patients.statements, keyed by member key.
    """

    statement_id: str
    claim_id: str
    encounter_id: str
    remittance_id: str
    member_key: str
    patient: Person | None
    payer_id: str
    statement_date: date
    due_date: date
    amount_due_cents: int
    lines: list[StatementLine]


class RemittanceLine(TypedDict):
    """An 835 service payment (loop 2110, SVC)."""

    line_number: int
    procedure_code: str
    modifiers: list[str]
    units: int
    charge_cents: int
    allowed_cents: int
    paid_cents: int
    adjustments: list[Adjustment]
    rarcs: list[str]
    service_date: date | None


class Remittance(TypedDict):
    """The payer's answer to one claim, shaped on the X12 835 005010X221A1 claim payment loop
    (2100, CLP). Topic claims.remittance, keyed by member key.
    """

    remittance_id: str
    claim_id: str
    encounter_id: str
    member_key: str
    payer_id: str
    claim_status_code: str
    total_charge_cents: int
    paid_cents: int
    patient_responsibility_cents: int
    plan_type: str
    payer_claim_control_number: str
    frequency_code: str
    adjudicated_date: date
    claim_adjustments: list[Adjustment]
    lines: list[RemittanceLine]
    rarcs: list[str]
    payer_profile_version: str
    in_response_to: str | None
    original_payer_claim_control_number: str | None
    service_date_from: date | None
    service_date_to: date | None
    payer_received_date: date | None
    payment_method: str
    payment_trace_number: str
    patient: Person | None
    subscriber: Person | None
    payee: Provider | None
    rendering_npi: str | None
    rendering_provider: Provider | None
    place_of_service: str | None


class ReworkAction(TypedDict):
    """What was done about a rework item: by a person from the CLI or by an automatic
    correction. Topic rework.actions, keyed by member key.
    """

    action_id: str
    rework_id: str
    claim_id: str | None
    encounter_id: str
    member_key: str
    action: str
    changes: list[ClaimChange]
    claim: Claim | None
    note: str | None
    actor: str
    at: datetime


class ReworkReason(TypedDict):
    """One reason an item needs work: an edit finding or a payer adjustment code."""

    code: str
    group_code: str | None
    line_number: int | None
    message: str
    rule_id: str


class ReworkItem(TypedDict):
    """Work for a person or an automatic correction: a coding hold, a scrubber hold or a
    denial. Topic denials.rework, keyed by member key.
    """

    rework_id: str
    kind: str
    encounter_id: str
    claim_id: str | None
    payer_id: str | None
    member_key: str
    category: str
    action: str
    queue: str
    priority: int
    amount_at_stake_cents: int
    reasons: list[ReworkReason]
    suggested_fix: str
    created_at: datetime
    deadline: date | None
    ruleset_version: str
    status: str
    remittance_id: str | None
    payer_claim_control_number: str | None
    service_date: date | None
    deadline_kind: str | None
    correction: str | None
    resubmitted_claim_id: str | None
    related_rework_id: str | None

"""The pipeline's vocabularies: the string values records carry in their coded fields.

Each is a ``StrEnum``, so a member is the plain string on the wire (the Avro
bytes are those of the value) and compares equal to it; reading reference
data through them turns a misspelt value into an error that names it.
"""

from __future__ import annotations

from enum import StrEnum


class LifecycleStatus(StrEnum):
    """A claim's status on claims.lifecycle (``ClaimStatus.status``)."""

    CODED = "CODED"
    HELD_CODING = "HELD_CODING"
    HELD_SCRUBBER = "HELD_SCRUBBER"
    SUBMITTED = "SUBMITTED"
    PAID = "PAID"
    PARTIALLY_PAID = "PARTIALLY_PAID"
    DENIED = "DENIED"
    REVERSED = "REVERSED"  # an earlier payment taken back
    APPEALED = "APPEALED"
    WRITTEN_OFF = "WRITTEN_OFF"
    BILLED_TO_PATIENT = "BILLED_TO_PATIENT"


class ItemKind(StrEnum):
    """What a rework item is (``ReworkItem.kind``)."""

    CODING_HOLD = "CODING_HOLD"
    SCRUBBER_HOLD = "SCRUBBER_HOLD"
    DENIAL = "DENIAL"
    FOLLOW_UP = "FOLLOW_UP"  # no answer from the payer in time
    REMINDER = "REMINDER"  # a deadline approaching


class Queue(StrEnum):
    """The work queue a rework item goes to (``ReworkItem.queue``)."""

    FRONT_DESK = "front_desk"
    CODING = "coding"
    BILLING = "billing"
    APPEALS = "appeals"
    TRIAGE = "triage"


class Category(StrEnum):
    """Why a claim was denied or held (``ReworkItem.category``, payers' ``denial_rates``)."""

    ELIGIBILITY = "eligibility"
    REGISTRATION = "registration"
    COORDINATION_OF_BENEFITS = "coordination_of_benefits"
    MISSING_INFORMATION = "missing_information"
    EXCLUDED_SERVICE = "excluded_service"
    BENEFIT_LIMIT = "benefit_limit"
    AUTHORIZATION = "authorization"
    MEDICAL_NECESSITY = "medical_necessity"
    CODING = "coding"
    BUNDLING = "bundling"
    DUPLICATE = "duplicate"
    NO_RESPONSE = "no_response"
    TIMELY_FILING = "timely_filing"
    NON_COVERED = "non_covered"
    CONTRACTUAL = "contractual"
    PATIENT_RESPONSIBILITY = "patient_responsibility"
    TRIAGE = "triage"


class ItemAction(StrEnum):
    """What to do about a rework item (``ReworkItem.action``)."""

    CORRECT_AND_RESUBMIT = "correct_and_resubmit"
    FIX_CODING = "fix_coding"
    VERIFY_ELIGIBILITY = "verify_eligibility"
    APPEAL = "appeal"
    BILL_PATIENT = "bill_patient"
    WRITE_OFF = "write_off"
    CLAIM_STATUS_INQUIRY = "claim_status_inquiry"
    TRIAGE = "triage"


class Decision(StrEnum):
    """What someone (or an automatic correction) did about an item (``ReworkAction.action``)."""

    RESUBMIT = "RESUBMIT"
    APPEAL = "APPEAL"
    WRITE_OFF = "WRITE_OFF"
    BILL_PATIENT = "BILL_PATIENT"


class ErrorType(StrEnum):
    """Why a record went to the dead-letter topic (``DeadLetter.error_type``)."""

    DECODE = "DECODE"  # not readable as the topic's schema
    VALIDATION = "VALIDATION"  # readable, but missing or wrong data
    NO_KEY = "NO_KEY"  # no key, and none can be read from the record
    OVERSIZE = "OVERSIZE"  # an output or the member state over the record size limit
    INTERNAL = "INTERNAL"  # the stage failed on this record


class Severity(StrEnum):
    """A coding finding's weight (``CodingFinding.severity``)."""

    HARD = "HARD"  # holds the encounter or claim for a person
    SOFT = "SOFT"  # a warning carried along

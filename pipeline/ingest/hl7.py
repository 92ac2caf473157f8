"""HL7 v2 in (v2.3, 2.3.1, 2.5, 2.5.1): ADT^A04/A08 registrations and DFT^P03 charges -> events.

Pure functions only (the MLLP listener and the CLI do the I/O). A practice's
EHR registers a patient and their insurance with ADT^A04 and updates it with
ADT^A08; those fill a registration store (a plain dict keyed by the patient id,
PID-3) that :func:`apply_adt` returns updated. A DFT^P03 posts the charges of
one visit: its PID, PV1, DG1 and FT1 segments, with the coverage from its own
IN1 segments or else from the registration on file, become one EncounterEvent.

Every message is answered with an HL7 v2.5 ACK: AA when accepted, AE when the
message was understood but its content cannot be used (a required field is
missing, a code is in the wrong code system, the payer is unknown), AR when it
is rejected outright (not HL7, an unsupported message type or version). Each
problem is an ERR segment naming the segment, its occurrence and the field,
with a reason that never contains a value from the message: names, birth
dates and member ids are protected health information.

Ids are deterministic: the same message twice gives the same event id, so
nothing downstream is billed twice.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

from hl7apy import load_reference
from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.exceptions import HL7apyException, ValidationError
from hl7apy.parser import parse_field, parse_message, parse_segment

from pipeline.ingest.directory import FeedDirectory
from processors.ids import stable_id
from processors.npi import is_valid_npi
from processors.refdata import PayerProfile, route_payer, shipped_payers

Record = dict[str, Any]
# Registrations by patient id (PID-3): {"patient": Person, "coverage": Coverage | None,
# "other_coverages": [Coverage, ...]}.
Store = dict[str, Record]

SOURCE = "hl7"
# v2.3 and v2.3.1 feeds are read the same way: the fields this adapter reads are the same in
# each version; each message is validated against its own version (v2.3 has no FT1-26).
SUPPORTED_VERSIONS = ("2.3", "2.3.1", "2.5", "2.5.1")
# MSH-9 has no message structure component before v2.3.1.
VERSIONS_WITHOUT_STRUCTURE = ("2.3",)
REGISTRATION_EVENTS = ("A04", "A08")
CHARGE_EVENTS = ("P03",)
# HL7 table 0354: the message structure of each supported trigger event. hl7apy derives the
# structure from MSH-9 as "<type>_<trigger>" when MSH-9.3 is absent, and there is no ADT_A04
# or ADT_A08 structure (both use ADT_A01), so in STRICT mode it rejects a legitimate ADT^A04
# that leaves MSH-9.3 empty. The structure is filled in from this table before validation.
MESSAGE_STRUCTURES = {
    ("ADT", "A04"): "ADT_A01",
    ("ADT", "A08"): "ADT_A01",
    ("DFT", "P03"): "DFT_P03",
}

# HL7 table 0357, message error condition codes.
SEGMENT_SEQUENCE_ERROR = "100"
REQUIRED_FIELD_MISSING = "101"
DATA_TYPE_ERROR = "102"
TABLE_VALUE_NOT_FOUND = "103"
UNSUPPORTED_MESSAGE_TYPE = "200"
UNSUPPORTED_EVENT_CODE = "201"
UNSUPPORTED_VERSION_ID = "203"
UNKNOWN_KEY_IDENTIFIER = "204"
# Table 0357 has no code for a business rule the content breaks (one date of service, one
# rendering clinician per encounter); 207 is the nearest, with the rule in ERR-8.
APPLICATION_ERROR = "207"
ERROR_CONDITIONS = {
    SEGMENT_SEQUENCE_ERROR: "Segment sequence error",
    REQUIRED_FIELD_MISSING: "Required field missing",
    DATA_TYPE_ERROR: "Data type error",
    TABLE_VALUE_NOT_FOUND: "Table value not found",
    UNSUPPORTED_MESSAGE_TYPE: "Unsupported message type",
    UNSUPPORTED_EVENT_CODE: "Unsupported event code",
    UNSUPPORTED_VERSION_ID: "Unsupported version id",
    UNKNOWN_KEY_IDENTIFIER: "Unknown key identifier",
    APPLICATION_ERROR: "Application internal error",
}
ACCEPTED, APPLICATION_ERROR_ACK, APPLICATION_REJECT = "AA", "AE", "AR"

# HL7 table 0063 (relationship) -> X12 individual relationship code (SBR02 / PAT01).
RELATIONSHIP = {"SEL": "18", "SPO": "01", "CHD": "19"}
OTHER_RELATIONSHIP = "G8"
# PV1-2 patient class (HL7 table 0004) -> CMS place of service for a professional claim:
# outpatient is an office visit (11), emergency the emergency room (23), inpatient the
# inpatient hospital (21). Other classes (obstetrics, commercial account, preadmit...) do
# not say where a professional service happened and are answered AE.
PLACE_OF_SERVICE = {"O": "11", "E": "23", "I": "21"}
SEX = {"F": "F", "M": "M"}
# HL7 table 0396 coding systems (and the common local spellings) per code set.
ICD10CM_SYSTEMS = frozenset({"I10", "I10C", "ICD10CM", "ICD-10-CM"})
ICD9_SYSTEMS = frozenset({"I9", "I9C", "I9CDX", "ICD9", "ICD9CM"})
PROCEDURE_SYSTEMS = frozenset({"C4", "CPT", "CPT4", "HCPCS", "HPC", "HC"})
ICD10CM_SHAPE = re.compile(r"^[A-Z][0-9][0-9A-Z][0-9A-Z]{0,4}$")
MODIFIER_SHAPE = re.compile(r"^[0-9A-Z]{2}$")
POSTAL_CODE_SHAPE = re.compile(r"^(?:[0-9]{5}|[0-9]{9})$")
DATE_PREFIX = re.compile(r"^([0-9]{8})")

MLLP_START, MLLP_END = "\x0b", "\x1c"
BATCH_SEGMENTS = frozenset({"FHS", "BHS", "BTS", "FTS"})


@dataclass(frozen=True)
class Hl7Error:
    """One problem with a message: where it is and why, never the value itself."""

    code: str
    reason: str
    segment: str = "MSH"
    sequence: int | None = None
    field: int | None = None

    def __str__(self) -> str:
        return f"{self.location}: {self.reason} (HL7 error {self.code})"

    @property
    def location(self) -> str:
        """ERR-2 (ERL): segment id ^ occurrence ^ field position."""
        parts = [self.segment]
        if self.sequence is not None:
            parts.append(str(self.sequence))
            if self.field is not None:
                parts.append(str(self.field))
        return "^".join(parts)


class MessageRejected(ValueError):
    """A message the application cannot use, with the errors to acknowledge."""

    def __init__(self, ack_code: str, errors: Sequence[Hl7Error]) -> None:
        super().__init__("; ".join(str(e) for e in errors))
        self.ack_code = ack_code
        self.errors = list(errors)


@dataclass(frozen=True)
class MappedMessage:
    """What one DFT^P03 gave: its EncounterEvent, or the errors that stopped it."""

    event: Record | None
    errors: list[Hl7Error] = field(default_factory=list)


@dataclass(frozen=True)
class Outcome:
    """What one inbound message gave: events to publish, the store after it, its ACK.

    *errors* are the problems as log-safe sentences (location, then reason; never a
    value from the message); *details* the same problems as structured errors.
    """

    events: list[Record]
    store: Store
    ack: str
    errors: list[str]
    ack_code: str
    message_type: str
    control_id: str
    text: str
    details: list[Hl7Error] = field(default_factory=list)

    @property
    def accepted(self) -> bool:
        """True when the message was acknowledged AA."""
        return self.ack_code == ACCEPTED


# Reading ER7 text.


@dataclass(frozen=True)
class Separators:
    """The delimiters a message declares in MSH-1 and MSH-2."""

    field: str = "|"
    component: str = "^"
    repetition: str = "~"
    escape: str = "\\"
    subcomponent: str = "&"

    def unescape(self, text: str) -> str:
        """*text* with the HL7 escape sequences for the delimiters resolved."""
        if self.escape not in text:
            return text
        names = {
            "F": self.field,
            "S": self.component,
            "T": self.subcomponent,
            "R": self.repetition,
            "E": self.escape,
        }
        esc = re.escape(self.escape)
        return re.sub(f"{esc}([^{esc}]*){esc}", lambda m: names.get(m.group(1), ""), text)

    def escape_text(self, text: str) -> str:
        """*text* escaped so it can stand in one field."""
        out = text.replace(self.escape, f"{self.escape}E{self.escape}")
        for char, name in (
            (self.field, "F"),
            (self.component, "S"),
            (self.subcomponent, "T"),
            (self.repetition, "R"),
        ):
            out = out.replace(char, f"{self.escape}{name}{self.escape}")
        return out.replace("\r", " ").replace("\n", " ")


@dataclass(frozen=True)
class Segment:
    """One segment: its id, its occurrence in the message and its raw fields."""

    name: str
    sequence: int
    fields: tuple[str, ...]
    seps: Separators

    def raw(self, number: int) -> str:
        """Field *number* as sent (all repetitions, escapes unresolved)."""
        return self.fields[number] if number < len(self.fields) else ""

    def repetitions(self, number: int) -> list[str]:
        """The non-empty repetitions of field *number*."""
        return [r for r in self.raw(number).split(self.seps.repetition) if r.strip()]

    def component(self, number: int, component: int = 1, repetition: str | None = None) -> str:
        """Component *component* of field *number* (first repetition), unescaped and stripped."""
        value = (
            repetition
            if repetition is not None
            else self.raw(number).split(self.seps.repetition)[0]
        )
        parts = value.split(self.seps.component)
        if component > len(parts):
            return ""
        first_subcomponent = parts[component - 1].split(self.seps.subcomponent)[0]
        return self.seps.unescape(first_subcomponent).strip()

    def value(self, number: int) -> str:
        """The first component of field *number*."""
        return self.component(number, 1)

    def error(self, number: int | None, code: str, reason: str) -> Hl7Error:
        """An error located at field *number* of this segment."""
        return Hl7Error(code, reason, self.name, self.sequence, number)


@dataclass(frozen=True)
class Message:
    """An HL7 v2 message split into segments, with its header fields at hand."""

    text: str
    segments: tuple[Segment, ...]
    seps: Separators

    @property
    def msh(self) -> Segment:
        """The message header."""
        return self.segments[0]

    @property
    def message_type(self) -> str:
        """MSH-9.1, e.g. DFT."""
        return self.msh.component(9, 1).upper()

    @property
    def trigger(self) -> str:
        """MSH-9.2, e.g. P03."""
        return self.msh.component(9, 2).upper()

    @property
    def control_id(self) -> str:
        """MSH-10, the sender's id of this message."""
        return self.msh.value(10)

    @property
    def sending_facility(self) -> str:
        """MSH-4.1."""
        return self.msh.value(4)

    @property
    def version(self) -> str:
        """MSH-12.1."""
        return self.msh.value(12)

    def all(self, name: str) -> list[Segment]:
        """Every segment *name*, in message order."""
        return [s for s in self.segments if s.name == name]

    def first(self, name: str) -> Segment | None:
        """The first segment *name*, or None."""
        return next((s for s in self.segments if s.name == name), None)


def normalize(text: str) -> str:
    """*text* without MLLP framing, with every segment ended by a carriage return."""
    body = text.replace(MLLP_START, "").replace(MLLP_END, "")
    body = body.replace("\r\n", "\r").replace("\n", "\r")
    segments = [s.strip(" \t") for s in body.split("\r")]
    return "".join(f"{s}\r" for s in segments if s)


def read_message(text: str) -> Message:
    """Split *text* into segments; raise :class:`MessageRejected` (AR) when it is not HL7 v2."""
    body = normalize(text)
    if not re.match(r"^MSH[^A-Za-z0-9\r]", body):
        raise MessageRejected(
            APPLICATION_REJECT,
            [
                Hl7Error(
                    SEGMENT_SEQUENCE_ERROR,
                    "not an HL7 v2 message: it does not start with an MSH segment",
                    "MSH",
                    1,
                )
            ],
        )
    field_sep = body[3]
    header = body.split("\r", 1)[0].split(field_sep)
    encoding = header[1] if len(header) > 1 else ""
    if len(encoding) < 4 or len(set(encoding[:4] + field_sep)) != 5:
        raise MessageRejected(
            APPLICATION_REJECT,
            [
                Hl7Error(
                    REQUIRED_FIELD_MISSING,
                    "MSH-2 (encoding characters) is missing or invalid",
                    "MSH",
                    1,
                    2,
                )
            ],
        )
    seps = Separators(field_sep, encoding[0], encoding[1], encoding[2], encoding[3])
    counts: dict[str, int] = {}
    segments: list[Segment] = []
    for line in body.split("\r"):
        if not line:
            continue
        name = line[:3].upper()
        counts[name] = counts.get(name, 0) + 1
        parts = line.split(field_sep)
        # MSH-1 is the field separator itself, so MSH field n is parts[n - 1].
        fields = (name, field_sep, *parts[1:]) if name == "MSH" else (name, *parts[1:])
        segments.append(Segment(name, counts[name], tuple(fields), seps))
    return Message(body, tuple(segments), seps)


def split_messages(data: str | bytes) -> list[str]:
    """The messages in a file or stream: MLLP-framed, or one after another starting at MSH.

    Segments may end with CR, LF or CRLF; batch envelopes (FHS, BHS, BTS, FTS) are
    dropped. Each message comes back with its segments ended by CR.
    """
    text = _decode(data) if isinstance(data, bytes) else data
    # In an MLLP stream only what stands between a start and an end block is a message.
    chunks = (
        [c.split(MLLP_END, 1)[0] for c in text.split(MLLP_START)[1:]]
        if MLLP_START in text
        else [text]
    )
    messages: list[list[str]] = []
    for chunk in chunks:
        current: list[str] = []
        for segment in normalize(chunk).split("\r"):
            if not segment or segment[:3].upper() in BATCH_SEGMENTS:
                continue
            if segment.startswith("MSH") and current:
                messages.append(current)
                current = []
            current.append(segment)
        if current:
            messages.append(current)
    return ["".join(f"{s}\r" for s in m) for m in messages]


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")  # HL7's default character set is ASCII; old feeds send 8859-1


# Validation with hl7apy.


def validate_structure(message: Message) -> list[Hl7Error]:
    """Errors hl7apy finds validating *message* against the v2.5 standard in STRICT mode.

    STRICT accepts the supported structures as the standard defines them (checked with
    registrations, charges, Z segments, escapes and time zones); the one limitation met is
    the message structure it derives when MSH-9.3 is empty (see MESSAGE_STRUCTURES). hl7apy
    reports only its first error, and a data type error carries the offending value, so the
    value-free location is found again segment by segment and field by field.
    """
    text = _with_structure(message)
    try:
        parsed = parse_message(text, validation_level=VALIDATION_LEVEL.STRICT, find_groups=True)
        parsed.validate()
    except ValidationError as exc:
        return [_translate(str(exc), message)]
    except (HL7apyException, ValueError, AttributeError, KeyError, IndexError):
        return [_locate_data_type_error(message)]
    return []


def _with_structure(message: Message) -> str:
    structure = MESSAGE_STRUCTURES.get((message.message_type, message.trigger))
    msh = message.msh
    if structure is None or msh.component(9, 3) or message.version in VERSIONS_WITHOUT_STRUCTURE:
        return message.text
    seps = message.seps
    msh_9 = f"{message.message_type}{seps.component}{message.trigger}{seps.component}{structure}"
    fields = list(msh.fields[2:])  # MSH-2 onwards, as they are joined on the wire
    fields[9 - 2] = msh_9
    header = seps.field.join(["MSH", *fields])
    return message.text.replace(message.text.split("\r", 1)[0], header, 1)


# A group hl7apy names in an error, by the segment that opens it.
GROUP_FIRST_SEGMENT = {"FINANCIAL": "FT1", "INSURANCE": "IN1", "PROCEDURE": "PR1"}
_MISSING_CHILD = re.compile(r"Missing required child (\w+)\.(\w+)")
_TOO_MANY = re.compile(r"Child limit exceeded (\w+)\.(\w+)")
_FIELD_NAME = re.compile(r"^([A-Z][A-Z0-9]{2})_([0-9]+)$")


def _translate(detail: str, message: Message) -> Hl7Error:
    """A value-free error from an hl7apy validation message (which names elements only)."""
    v = message.version
    for pattern, what in (
        (_MISSING_CHILD, f"is required by the HL7 v{v} message structure"),
        (_TOO_MANY, f"occurs more often than the HL7 v{v} structure allows"),
    ):
        found = pattern.search(detail)
        if not found:
            continue
        parent, child = found.group(1), found.group(2)
        field_name = _FIELD_NAME.match(child)
        if field_name:
            number = int(field_name.group(2))
            # hl7apy does not say which occurrence; the first one without the field it is.
            occurrences = message.all(parent)
            segment = next(
                (s for s in occurrences if not s.raw(number).strip()),
                occurrences[0] if occurrences else None,
            )
            code = REQUIRED_FIELD_MISSING if pattern is _MISSING_CHILD else DATA_TYPE_ERROR
            return Hl7Error(
                code,
                f"{parent}-{number} {what}",
                parent,
                segment.sequence if segment else 1,
                number,
            )
        name = child.split("_")[-1] if child.startswith(parent) else child
        name = GROUP_FIRST_SEGMENT.get(name, name)
        return Hl7Error(SEGMENT_SEQUENCE_ERROR, f"segment {name} {what}", name)
    return Hl7Error(
        SEGMENT_SEQUENCE_ERROR,
        f"the message does not follow its HL7 v{v} message structure",
        "MSH",
        1,
    )


def _locate_data_type_error(message: Message) -> Hl7Error:
    """The first segment, and field, that hl7apy cannot read in STRICT mode."""
    seps = message.seps
    encoding = {
        "FIELD": seps.field,
        "COMPONENT": seps.component,
        "SUBCOMPONENT": seps.subcomponent,
        "REPETITION": seps.repetition,
        "ESCAPE": seps.escape,
        "SEGMENT": "\r",
        "GROUP": "\r",
    }
    version = message.version if message.version in SUPPORTED_VERSIONS else "2.5"
    strict = VALIDATION_LEVEL.STRICT
    for segment in message.segments:
        if segment.name.startswith("Z"):
            continue  # locally defined segments have no standard data types to check
        is_msh = segment.name == "MSH"
        line = seps.field.join([segment.name, *segment.fields[2 if is_msh else 1 :]])
        try:
            parse_segment(line, version, encoding, strict)
        except (HL7apyException, ValueError, AttributeError, KeyError, IndexError):
            pass
        else:
            continue
        try:
            defined = len(load_reference(segment.name, "Segment", version)[1])
        except (HL7apyException, ValueError, KeyError, IndexError):
            return segment.error(
                None,
                SEGMENT_SEQUENCE_ERROR,
                f"segment {segment.name} is not an HL7 v{version} segment",
            )
        for number in range(3 if is_msh else 1, len(segment.fields)):
            raw = segment.raw(number)
            if not raw:
                continue
            if number > defined:
                return segment.error(
                    number,
                    SEGMENT_SEQUENCE_ERROR,
                    f"{segment.name}-{number} is beyond the {defined} fields "
                    f"HL7 v{version} defines for {segment.name}",
                )
            try:
                parse_field(
                    raw,
                    name=f"{segment.name}_{number}",
                    version=version,
                    encoding_chars=encoding,
                    validation_level=strict,
                )
            except (HL7apyException, ValueError, AttributeError, KeyError, IndexError):
                return segment.error(
                    number,
                    DATA_TYPE_ERROR,
                    f"{segment.name}-{number} does not match its HL7 v{version} data type",
                )
        return segment.error(
            None,
            DATA_TYPE_ERROR,
            f"segment {segment.name} does not match its HL7 v{version} definition",
        )
    return Hl7Error(
        SEGMENT_SEQUENCE_ERROR,
        f"the message does not follow its HL7 v{version} message structure",
        "MSH",
        1,
    )


# Field readers: each returns a value or records a value-free error.


class _Errors(list[Hl7Error]):
    """The errors found while mapping one message."""

    def add(self, segment: Segment, number: int | None, code: str, reason: str) -> None:
        self.append(segment.error(number, code, reason))


MSH_TIME = re.compile(r"^(\d{8})(\d{2})?(\d{2})?(\d{2})?(?:\.\d+)?([+-]\d{4})?$")


def message_time(message: Message) -> datetime | None:
    """MSH-7, when the sender released the message, as an aware datetime (UTC if no zone)."""
    found = MSH_TIME.match(message.msh.value(7))
    if not found:
        return None
    day, hour, minute, second, zone = found.groups()
    offset = timedelta(hours=int(zone[1:3]), minutes=int(zone[3:5])) if zone else timedelta()
    tz = timezone(-offset if zone and zone[0] == "-" else offset)
    try:
        return datetime(
            int(day[:4]),
            int(day[4:6]),
            int(day[6:8]),
            int(hour or 0),
            int(minute or 0),
            int(second or 0),
            tzinfo=tz,
        )
    except ValueError:
        return None


def _date(
    segment: Segment,
    number: int,
    what: str,
    errors: _Errors,
    *,
    required: bool = True,
    repetition: str | None = None,
) -> date | None:
    raw = segment.component(number, 1, repetition)
    label = f"{segment.name}-{number} ({what})"
    if not raw:
        if required:
            errors.add(segment, number, REQUIRED_FIELD_MISSING, f"{label} is missing or not a date")
        return None
    found = DATE_PREFIX.match(raw)
    try:
        if not found:
            raise ValueError(label)
        digits = found.group(1)
        return date(int(digits[:4]), int(digits[4:6]), int(digits[6:8]))
    except ValueError:
        errors.add(segment, number, DATA_TYPE_ERROR, f"{label} is missing or not a date")
        return None


def _required(segment: Segment, number: int, component: int, what: str, errors: _Errors) -> str:
    value = segment.component(number, component)
    if not value:
        where = f"{segment.name}-{number}" + (f".{component}" if component > 1 else "")
        errors.add(segment, number, REQUIRED_FIELD_MISSING, f"{where} ({what}) is missing")
    return value


def _address(segment: Segment, number: int, what: str, errors: _Errors) -> Record | None:
    """An XAD field as a claims.Address."""
    before = len(errors)
    line1 = _required(segment, number, 1, f"{what} street", errors)
    city = _required(segment, number, 3, f"{what} city", errors)
    state = _required(segment, number, 4, f"{what} state", errors).upper()
    postal = _required(segment, number, 5, f"{what} ZIP code", errors).replace("-", "")
    if postal and not POSTAL_CODE_SHAPE.match(postal):
        errors.add(
            segment,
            number,
            DATA_TYPE_ERROR,
            f"{segment.name}-{number}.5 ({what} ZIP code) is not 5 or 9 digits",
        )
    if state and not re.match(r"^[A-Z]{2}$", state):
        errors.add(
            segment,
            number,
            DATA_TYPE_ERROR,
            f"{segment.name}-{number}.4 ({what} state) is not a two-letter state code",
        )
    if len(errors) > before:
        return None
    line2 = segment.component(number, 2) or None
    return {"line1": line1, "line2": line2, "city": city, "state": state, "postal_code": postal}


def _person(
    segment: Segment,
    person_id: str,
    name_field: int,
    birth_field: int,
    sex_field: int,
    address_field: int,
    what: str,
    errors: _Errors,
    fallback_address: Record | None = None,
) -> Record | None:
    """A claims.Person from an XPN name, a TS birth date, a sex code and an XAD address."""
    before = len(errors)
    last = _required(segment, name_field, 1, f"{what} family name", errors)
    first = _required(segment, name_field, 2, f"{what} given name", errors)
    birth = _date(segment, birth_field, f"{what} birth date", errors)
    if fallback_address is not None and not segment.raw(address_field).strip():
        address: Record | None = fallback_address
    else:
        address = _address(segment, address_field, f"{what} address", errors)
    if len(errors) > before or birth is None or address is None:
        return None
    return {
        "person_id": person_id,
        "last_name": last,
        "first_name": first,
        "birth_date": birth,
        "sex": SEX.get(segment.value(sex_field).upper(), "U"),
        "address": dict(address),
    }


def _patient(message: Message, errors: _Errors) -> Record | None:
    """The patient of PID: account number PID-3, name PID-5, birth PID-7, sex PID-8, PID-11."""
    pid = message.first("PID")
    if pid is None:
        errors.append(Hl7Error(SEGMENT_SEQUENCE_ERROR, "the PID segment is missing", "PID"))
        return None
    patient_id = _required(pid, 3, 1, "patient identifier", errors)
    return _person(pid, patient_id, 5, 7, 8, 11, "patient", errors)


def _coverages(
    message: Message, patient: Record, payers: Mapping[str, PayerProfile], errors: _Errors
) -> list[Record]:
    """The IN1 segments as claims.Coverage records, the primary (IN1-1 = 1) first."""
    ordered = sorted(message.all("IN1"), key=lambda s: (_set_id(s), s.sequence))
    out: list[Record] = []
    for in1 in ordered:
        coverage = _coverage(in1, patient, payers, errors)
        if coverage is not None:
            out.append(coverage)
    return out


def _set_id(segment: Segment) -> int:
    value = segment.value(1)
    return int(value) if value.isdigit() else 1_000_000 + segment.sequence


def _coverage(
    in1: Segment, patient: Record, payers: Mapping[str, PayerProfile], errors: _Errors
) -> Record | None:
    before = len(errors)
    payer_id = _required(in1, 3, 1, "insurance company id", errors)
    route = route_payer([payer_id, in1.value(4)], payers) if payer_id else None
    payer_id = route.profile_id if route else payer_id
    profile = payers.get(payer_id) if payer_id else None
    if payer_id and profile is None:
        errors.add(
            in1,
            3,
            TABLE_VALUE_NOT_FOUND,
            "IN1-3 (insurance company id) is not a payer profile and not routed to one by "
            "processors/refdata/payer_directory.csv",
        )
    member_id = _required(in1, 36, 1, "policy number / member id", errors)
    effective = _date(in1, 12, "plan effective date", errors)
    terminated = _date(in1, 13, "plan expiration date", errors, required=False)
    relationship_code = _required(in1, 17, 1, "insured's relationship to patient", errors).upper()
    relationship = RELATIONSHIP.get(relationship_code, OTHER_RELATIONSHIP)
    if relationship == "18":
        subscriber: Record | None = patient
    else:
        insured_id = in1.value(49) or f"{patient['person_id']}-S{in1.value(1) or in1.sequence}"
        subscriber = _person(
            in1, insured_id, 16, 18, 43, 19, "insured", errors, fallback_address=patient["address"]
        )
    if len(errors) > before or profile is None or effective is None or subscriber is None:
        return None
    return {
        "payer_id": payer_id,
        "payer_name": in1.value(4) or profile.name,
        "plan_type": profile.plan_type,
        "member_id": member_id,
        "group_number": in1.value(8) or None,
        "relationship": relationship,
        "subscriber": subscriber,
        "effective_date": effective,
        "termination_date": terminated,
    }


def _registration(
    message: Message, payers: Mapping[str, PayerProfile], errors: _Errors
) -> tuple[str, Record] | None:
    patient = _patient(message, errors)
    if patient is None:
        return None
    coverages = _coverages(message, patient, payers, errors)
    if errors:
        return None
    return patient["person_id"], {
        "patient": patient,
        "coverage": coverages[0] if coverages else None,
        "other_coverages": coverages[1:],
    }


def _provider(
    segment: Segment, number: int, repetition: str, what: str, errors: _Errors
) -> Record | None:
    """An XCN repetition naming a clinician by NPI, or None when it carries no NPI."""
    authority = segment.component(number, 9, repetition).upper()
    id_type = segment.component(number, 13, repetition).upper()
    npi = segment.component(number, 1, repetition)
    if "NPI" not in (authority, id_type) or not npi:
        return None
    if not is_valid_npi(npi):
        errors.add(
            segment,
            number,
            DATA_TYPE_ERROR,
            f"{segment.name}-{number} ({what}) NPI is not 10 digits with a valid check digit",
        )
        return None
    return {
        "npi": npi,
        "entity_type": "1",
        "name": segment.component(number, 2, repetition) or what,
        "first_name": segment.component(number, 3, repetition) or None,
        "taxonomy": None,
        "tin": None,
        "address": None,
    }


def _providers(segment: Segment | None, number: int, what: str, errors: _Errors) -> list[Record]:
    if segment is None:
        return []
    found = (_provider(segment, number, r, what, errors) for r in segment.repetitions(number))
    return [p for p in found if p is not None]


def _diagnosis_code(
    segment: Segment, number: int, repetition: str | None, what: str, errors: _Errors
) -> str | None:
    """A CE/CWE ICD-10-CM code without its dot; other code systems are errors."""
    code = segment.component(number, 1, repetition).replace(".", "").upper()
    system = segment.component(number, 3, repetition).upper()
    label = f"{segment.name}-{number} ({what})"
    if not code:
        errors.add(segment, number, REQUIRED_FIELD_MISSING, f"{label} is missing")
        return None
    if system in ICD9_SYSTEMS:
        errors.add(
            segment,
            number,
            TABLE_VALUE_NOT_FOUND,
            f"{label} is coded in ICD-9-CM; send the ICD-10-CM code (coding system I10)",
        )
        return None
    if system and system not in ICD10CM_SYSTEMS:
        errors.add(
            segment, number, TABLE_VALUE_NOT_FOUND, f"{label} coding system is not ICD-10-CM (I10)"
        )
        return None
    if not ICD10CM_SHAPE.match(code):
        errors.add(
            segment, number, DATA_TYPE_ERROR, f"{label} is not shaped like an ICD-10-CM code"
        )
        return None
    return code


def _diagnoses(message: Message, errors: _Errors) -> list[str]:
    """DG1-3 codes, by DG1-15 priority (1 the primary) and then DG1-1 set id."""

    def rank(dg1: Segment) -> tuple[int, int]:
        priority = dg1.value(15)
        ranked = int(priority) if priority.isdigit() and int(priority) > 0 else 1_000
        return ranked, _set_id(dg1)

    codes: list[str] = []
    for dg1 in sorted(message.all("DG1"), key=rank):
        code = _diagnosis_code(dg1, 3, None, "diagnosis code", errors)
        if code and code not in codes:
            codes.append(code)
    return codes


def _procedure(ft1: Segment, diagnoses: list[str], errors: _Errors) -> Record | None:
    """One FT1 as a claims.ProcedureEntry; FT1-19 codes not in DG1 are added to *diagnoses*."""
    before = len(errors)
    # FT1-25 is the standard's procedure code; many feeds send the CPT/HCPCS code as FT1-7,
    # the transaction code, with a CPT or HCPCS coding system.
    number = 25 if ft1.value(25) else 7
    code = ft1.component(number, 1).upper()
    system = ft1.component(number, 3).upper()
    label = f"FT1-{number} ({'procedure' if number == 25 else 'transaction'} code)"
    if not code:
        errors.add(ft1, 7, REQUIRED_FIELD_MISSING, "FT1-7 (transaction code) is missing")
    elif system not in PROCEDURE_SYSTEMS:
        errors.add(
            ft1, number, TABLE_VALUE_NOT_FOUND, f"{label} coding system is not CPT (C4) or HCPCS"
        )
    quantity = ft1.value(10)
    units = 1
    if quantity:
        try:
            parsed = float(quantity)
        except ValueError:
            parsed = 0.0
        if parsed < 1 or parsed != int(parsed):
            errors.add(
                ft1,
                10,
                DATA_TYPE_ERROR,
                "FT1-10 (transaction quantity) is not a whole number of units",
            )
        else:
            units = int(parsed)
    modifiers: list[str] = []
    for repetition in ft1.repetitions(26):
        modifier = ft1.component(26, 1, repetition).upper()
        if not MODIFIER_SHAPE.match(modifier):
            errors.add(
                ft1,
                26,
                DATA_TYPE_ERROR,
                "FT1-26 (procedure code modifier) is not a two-character modifier",
            )
        elif modifier not in modifiers:
            modifiers.append(modifier)
    refs: list[int] = []
    for repetition in ft1.repetitions(19):
        dx = _diagnosis_code(ft1, 19, repetition, "diagnosis code", errors)
        if dx is None:
            continue
        if dx not in diagnoses:
            diagnoses.append(dx)
        if diagnoses.index(dx) not in refs:
            refs.append(diagnoses.index(dx))
    charge = _money_cents(ft1, 11, "transaction amount - extended", errors)
    if len(errors) > before:
        return None
    return {
        "code": code,
        "modifiers": modifiers,
        "units": units,
        "diagnosis_refs": refs,
        "charge_cents": charge,
    }


def _money_cents(segment: Segment, number: int, what: str, errors: _Errors) -> int | None:
    """A CP/MO amount (component 1, dollars) in cents; None when the field is empty."""
    raw = segment.component(number, 1)
    if not raw:
        return None
    try:
        cents = round(float(raw) * 100)
    except ValueError:
        cents = -1
    if cents < 0:
        errors.add(
            segment,
            number,
            DATA_TYPE_ERROR,
            f"{segment.name}-{number} ({what}) is not an amount of money",
        )
        return None
    return cents


def _service_date(ft1s: list[Segment], errors: _Errors) -> date | None:
    """FT1-4, the transaction date: one date of service per encounter."""
    dates = [(ft1, _date(ft1, 4, "transaction date", errors)) for ft1 in ft1s]
    known = [d for _, d in dates if d is not None]
    if len(known) < len(dates) or not known:
        return None
    for ft1, day in dates:
        if day != known[0]:
            errors.add(
                ft1,
                4,
                APPLICATION_ERROR,
                "FT1-4 (transaction date) differs from the "
                "first line's; send one DFT P03 per date of service",
            )
            return None
    return known[0]


# Public mapping functions.


def apply_adt(
    store: Store, message: str, *, payers: Mapping[str, PayerProfile] | None = None
) -> Store:
    """*store* with the registration an ADT^A04 or ADT^A08 *message* carries.

    A04 registers the patient (PID) with their insurance (IN1, the one with set id 1 the
    primary; no IN1 registers a self-pay patient); A08 updates the demographics and, when
    it carries IN1 segments, replaces the insurance on file (without IN1 the coverage on
    file is kept). Raises
    :class:`MessageRejected` when the message cannot be applied; *store* is never changed.
    """
    parsed = read_message(message)
    _check_header(parsed, REGISTRATION_EVENTS, "ADT")
    return _apply_adt(store, parsed, payers if payers is not None else shipped_payers())


def _apply_adt(store: Store, message: Message, payers: Mapping[str, PayerProfile]) -> Store:
    structure = validate_structure(message)
    if structure:
        raise MessageRejected(APPLICATION_ERROR_ACK, structure)
    errors = _Errors()
    registration = _registration(message, payers, errors)
    if registration is None:
        raise MessageRejected(APPLICATION_ERROR_ACK, errors)
    patient_id, record = registration
    on_file = store.get(patient_id)
    if message.trigger == "A08" and on_file is not None and not message.all("IN1"):
        record = {
            **record,
            "coverage": _resubscribe(on_file["coverage"], record["patient"]),
            "other_coverages": [
                _resubscribe(c, record["patient"]) for c in on_file["other_coverages"]
            ],
        }
    return {**store, patient_id: record}


def _resubscribe(coverage: Any, patient: Record) -> Any:
    """*coverage* with the patient's current demographics where the patient is the subscriber."""
    if coverage is None or coverage["relationship"] != "18":
        return coverage
    return {**coverage, "subscriber": patient}


def _billing_provider(
    message: Message, pv1: Segment | None, billing: FeedDirectory, errors: _Errors
) -> Record | None:
    """The directory's provider for MSH-4 or PV1-3.4, else the feed's; an error when neither."""
    facility = message.sending_facility
    place = pv1.component(3, 4) if pv1 is not None else ""
    keys = [f"MSH-4|{facility}"] + ([f"PV1-3|{place}"] if place else [])
    found = billing.find(keys) or (dict(billing.given) if billing.given else None)
    if found is None:
        errors.append(
            Hl7Error(
                UNKNOWN_KEY_IDENTIFIER,
                f"MSH-4 (sending facility) {facility!r} names no billing provider: "
                f"{billing.where_to_add()} (identifier MSH-4|{facility})",
                "MSH",
            )
        )
    return found


def map_dft(
    message_text: str,
    store: Store,
    billing: FeedDirectory,
    received_at: datetime,
    *,
    payers: Mapping[str, PayerProfile] | None = None,
) -> MappedMessage:
    """The EncounterEvent of one DFT^P03, or the errors that keep it from being billed.

    *billing* gives the billing provider: the provider directory's entry for the
    sending facility (MSH-4) or the visit's facility (PV1-3.4), else the provider
    given for the feed; the message is refused when neither names one. *received_at*
    (timezone-aware) is when the charges were released for billing. Coverage comes from
    the message's IN1 segments when it has any, else from the patient's registration in
    *store*.
    """
    try:
        parsed = read_message(message_text)
        _check_header(parsed, CHARGE_EVENTS, "DFT")
    except MessageRejected as rejected:
        return MappedMessage(None, rejected.errors)
    return _map_dft(
        parsed,
        store,
        billing,
        received_at,
        payers if payers is not None else shipped_payers(),
    )


def _map_dft(
    message: Message,
    store: Store,
    billing: FeedDirectory,
    received_at: datetime,
    payers: Mapping[str, PayerProfile],
) -> MappedMessage:
    if received_at.tzinfo is None:
        raise ValueError("received_at must be timezone-aware")
    structure = validate_structure(message)
    if structure:
        return MappedMessage(None, structure)
    errors = _Errors()
    patient = _patient(message, errors)
    pv1 = message.first("PV1")
    place = None
    if pv1 is None:
        errors.append(Hl7Error(SEGMENT_SEQUENCE_ERROR, "the PV1 segment is missing", "PV1"))
    else:
        place = PLACE_OF_SERVICE.get(pv1.value(2).upper())
        if place is None:
            errors.add(
                pv1,
                2,
                TABLE_VALUE_NOT_FOUND,
                "PV1-2 (patient class) is not O (outpatient), E (emergency) or I (inpatient)",
            )
    diagnoses = _diagnoses(message, errors)
    ft1s = sorted(message.all("FT1"), key=lambda s: (_set_id(s), s.sequence))
    procedures = [p for p in (_procedure(ft1, diagnoses, errors) for ft1 in ft1s) if p]
    if not diagnoses and not any(e.segment in ("DG1", "FT1") for e in errors):
        errors.append(
            Hl7Error(
                REQUIRED_FIELD_MISSING, "no DG1 segment: the encounter has no diagnosis", "DG1"
            )
        )
    service_date = _service_date(ft1s, errors)
    rendering, referring = _clinicians(ft1s, pv1, errors)
    billing_provider = _billing_provider(message, pv1, billing, errors)

    coverage: Record | None = None
    others: list[Record] = []
    if patient is not None:
        if message.all("IN1"):
            coverages = _coverages(message, patient, payers, errors)
            coverage, others = (coverages[0], coverages[1:]) if coverages else (None, [])
        elif patient["person_id"] in store:
            registered = store[patient["person_id"]]
            coverage = _resubscribe(registered["coverage"], patient)
            others = [_resubscribe(c, patient) for c in registered["other_coverages"]]
        else:
            pid = message.first("PID")
            if pid is not None:
                errors.add(
                    pid,
                    3,
                    UNKNOWN_KEY_IDENTIFIER,
                    "PID-3 (patient identifier) has no registration on file (ADT A04) "
                    "and the message carries no IN1 segment",
                )
    if (
        errors
        or patient is None
        or place is None
        or service_date is None
        or rendering is None
        or billing_provider is None
    ):
        return MappedMessage(None, list(errors))

    primary_in1 = next((s for s in sorted(message.all("IN1"), key=_set_id)), None)
    authorization = primary_in1.component(14, 1) if primary_in1 is not None else ""
    facility, control_id = message.sending_facility, message.control_id
    visit = pv1.value(19) if pv1 is not None else ""
    event = {
        "event_id": stable_id("EV", SOURCE, facility, control_id),
        "encounter_id": visit or control_id,
        "source": SOURCE,
        # Business time is when the EHR released the charges (MSH-7), so the same message
        # always gives the same event; the arrival time stands in when MSH-7 is unusable.
        "received_at": (message_time(message) or received_at).astimezone(UTC),
        "service_date": service_date,
        "place_of_service": place,
        "patient": patient,
        "coverage": coverage,
        "other_coverages": others,
        "billing_provider": billing_provider,
        "rendering_provider": rendering,
        "referring_provider": referring,
        "diagnoses": diagnoses,
        "procedures": procedures,
        "authorization_number": authorization or None,
        "referral_number": None,
        "documented_minutes": None,
        "mdm_level": None,
        "established_patient": None,
        "uncoded": [],
    }
    return MappedMessage(event, [])


def _clinicians(
    ft1s: list[Segment], pv1: Segment | None, errors: _Errors
) -> tuple[Record | None, Record | None]:
    """Rendering (FT1-20, else PV1-7) and referring (PV1-8, else FT1-21) clinicians."""
    before = len(errors)
    performers = [(ft1, p) for ft1 in ft1s for p in _providers(ft1, 20, "performed by", errors)]
    rendering = performers[0][1] if performers else None
    for ft1, performer in performers:
        if performer["npi"] != performers[0][1]["npi"]:
            errors.add(
                ft1,
                20,
                APPLICATION_ERROR,
                "FT1-20 (performed by) names another "
                "rendering clinician than the first line; send one DFT P03 per clinician",
            )
            break
    if rendering is None:
        attending = _providers(pv1, 7, "attending doctor", errors)
        rendering = attending[0] if attending else None
    if rendering is None:
        where = ft1s[0] if ft1s else pv1
        if where is not None and len(errors) == before:  # else an invalid NPI was reported
            errors.add(
                where,
                20 if where.name == "FT1" else 7,
                REQUIRED_FIELD_MISSING,
                "FT1-20 (performed by) and PV1-7 (attending doctor) carry no NPI for the "
                "rendering clinician",
            )
        return None, None
    referring_doctors = _providers(pv1, 8, "referring doctor", errors)
    ordering = [
        p
        for ft1 in ft1s
        for p in _providers(ft1, 21, "ordered by", errors)
        if p["npi"] != rendering["npi"]
    ]
    return rendering, next(iter(referring_doctors + ordering), None)


def _check_header(message: Message, triggers: Sequence[str], message_type: str) -> None:
    """Raise AR for a version, message type or trigger event this adapter does not take."""
    if message.version not in SUPPORTED_VERSIONS:
        raise MessageRejected(
            APPLICATION_REJECT,
            [
                message.msh.error(
                    12,
                    UNSUPPORTED_VERSION_ID,
                    "MSH-12 (version id) is not " + ", ".join(SUPPORTED_VERSIONS),
                )
            ],
        )
    if message.message_type != message_type:
        raise MessageRejected(
            APPLICATION_REJECT,
            [
                message.msh.error(
                    9,
                    UNSUPPORTED_MESSAGE_TYPE,
                    "MSH-9 (message type) is not one this interface accepts: ADT (A04, A08) or DFT "
                    "(P03)",
                )
            ],
        )
    if message.trigger not in triggers:
        raise MessageRejected(
            APPLICATION_REJECT,
            [
                message.msh.error(
                    9,
                    UNSUPPORTED_EVENT_CODE,
                    "MSH-9.2 (trigger event) is not one this interface accepts: ADT (A04, A08) or "
                    "DFT (P03)",
                )
            ],
        )
    if not message.control_id:
        raise MessageRejected(
            APPLICATION_REJECT,
            [
                message.msh.error(
                    10, REQUIRED_FIELD_MISSING, "MSH-10 (message control id) is missing"
                )
            ],
        )


def map_message(
    text: str,
    store: Store,
    billing: FeedDirectory,
    received_at: datetime,
    *,
    payers: Mapping[str, PayerProfile] | None = None,
) -> Outcome:
    """Apply or map one inbound message and acknowledge it.

    ADT^A04/A08 update the registration store and give no event; DFT^P03 gives one
    EncounterEvent. Anything else is answered AR. *received_at* also stamps the ACK.
    """
    profiles = payers if payers is not None else shipped_payers()
    try:
        message = read_message(text)
    except MessageRejected as rejected:
        return _outcome(text, None, [], store, rejected.ack_code, rejected.errors, received_at)
    try:
        if message.message_type == "ADT":
            _check_header(message, REGISTRATION_EVENTS, "ADT")
            updated = _apply_adt(store, message, profiles)
            return _outcome(text, message, [], updated, ACCEPTED, [], received_at)
        _check_header(message, CHARGE_EVENTS, "DFT")
    except MessageRejected as rejected:
        return _outcome(
            text,
            message,
            [],
            store,
            _ack_code(rejected.errors, rejected.ack_code),
            rejected.errors,
            received_at,
        )
    mapped = _map_dft(message, store, billing, received_at, profiles)
    if mapped.event is None:
        return _outcome(
            text, message, [], store, _ack_code(mapped.errors), mapped.errors, received_at
        )
    return _outcome(text, message, [mapped.event], store, ACCEPTED, [], received_at)


def _ack_code(errors: Sequence[Hl7Error], code: str = APPLICATION_ERROR_ACK) -> str:
    """AR when the header (MSH) itself is at fault, else *code*."""
    return APPLICATION_REJECT if any(e.segment == "MSH" for e in errors) else code


def _outcome(
    text: str,
    message: Message | None,
    events: list[Record],
    store: Store,
    code: str,
    errors: Sequence[Hl7Error],
    at: datetime,
) -> Outcome:
    ack = build_ack(text, code, errors, at)
    kind = f"{message.message_type}^{message.trigger}" if message else ""
    return Outcome(
        events,
        store,
        ack,
        [str(e) for e in errors],
        code,
        kind,
        message.control_id if message else "",
        text,
        list(errors),
    )


def map_stream(
    data: str | bytes,
    billing: FeedDirectory,
    received_at: datetime,
    *,
    store: Store | None = None,
    payers: Mapping[str, PayerProfile] | None = None,
) -> Iterator[Outcome]:
    """The outcome of every message in a file or stream, in order (see :func:`split_messages`).

    Registrations carry over from one message to the next, starting from *store*, so a
    file may hold a patient's ADT^A04 and then their charges.
    """
    current: Store = dict(store or {})
    for text in split_messages(data):
        outcome = map_message(text, current, billing, received_at, payers=payers)
        current = outcome.store
        yield outcome


# Acknowledgements.


def build_ack(original: str, ack_code: str, errors: Sequence[Hl7Error], at: datetime) -> str:
    """The HL7 v2.5 ACK of *original*: MSH, MSA and one ERR per error, CR-terminated.

    Sender and receiver are swapped; the control id is derived from the original's
    sending facility and control id, so a resent message gets the same ACK id.
    """
    try:
        message: Message | None = read_message(original)
    except MessageRejected:
        message = None
    seps = message.seps if message else Separators()
    fs = seps.field
    msh = message.msh if message else None

    def raw(number: int) -> str:
        return msh.raw(number) if msh else ""

    control_id = message.control_id if message else ""
    ack_id = stable_id(
        "ACK", message.sending_facility if message else "", control_id or original, length=12
    )
    trigger = message.trigger if message else ""
    header = fs.join(
        [
            "MSH",
            f"{seps.component}{seps.repetition}{seps.escape}{seps.subcomponent}",
            raw(5),
            raw(6),
            raw(3),
            raw(4),
            at.astimezone(UTC).strftime("%Y%m%d%H%M%S+0000"),
            "",
            seps.component.join(["ACK", trigger, "ACK"]),
            ack_id,
            (msh.value(11) if msh else "") or "P",
            "2.5",
        ]
    )
    segments = [header, fs.join(["MSA", ack_code, seps.escape_text(control_id)])]
    for error in errors:
        condition = seps.component.join(
            [error.code, ERROR_CONDITIONS.get(error.code, ""), "HL70357"]
        )
        location = seps.component.join(error.location.split("^"))
        segments.append(
            fs.join(
                ["ERR", "", location, condition, "E", "", "", "", seps.escape_text(error.reason)]
            )
        )
    return "".join(f"{s}\r" for s in segments)


def reject(original: str, reason: str, at: datetime) -> str:
    """An AR ACK for a message the application failed on (ERR-3 207, *reason* in ERR-8)."""
    return build_ack(
        original, APPLICATION_REJECT, [Hl7Error(APPLICATION_ERROR, reason, "MSH", 1)], at
    )

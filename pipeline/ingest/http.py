"""``POST /fhir`` on the worker: a FHIR R4 Bundle in, EncounterEvents on ehr.encounters.

What it answers:

- 415 unless the body is ``application/fhir+json`` or ``application/json``
  (a ``charset=utf-8`` parameter is allowed);
- 413 with an OperationOutcome when the body is larger than
  ``CLAIMS_HTTP_MAX_BYTES`` or the bundle holds more entries than
  ``CLAIMS_HTTP_MAX_ENTRIES``: refused at the door, the sender keeps the data;
- 400 with an OperationOutcome when nothing in the request can be used (not
  UTF-8 JSON, JSON nested deeper than :data:`MAX_JSON_DEPTH`, not a Bundle, no
  billable encounter); the raw body is kept on the dead-letter topic with the
  reason;
- 202 with the accepted event ids, and an OperationOutcome listing every
  encounter it could not bill (each also dead-lettered), once Kafka has
  acknowledged every event and dead letter;
- 503 with an OperationOutcome and ``Retry-After`` when a send fails or is not
  acknowledged within ``CLAIMS_HTTP_ACK_TIMEOUT``: nothing is claimed as
  accepted, and sending the bundle again is safe (the same bundle gives the
  same event ids).

An encounter whose EncounterEvent would be larger than the record size limit
(``CLAIMS_MAX_RECORD_BYTES``) is not sent: the OperationOutcome names it and it
is dead-lettered as OVERSIZE. Reading the JSON, mapping and encoding run in a
worker thread, so the event loop, which the faust agents share, keeps serving.
Enabled with ``CLAIMS_HTTP_PORT``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import traceback
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from pipeline.config import (
    DEFAULT_HTTP_MAX_BYTES,
    DEFAULT_HTTP_MAX_ENTRIES,
    DEFAULT_MAX_RECORD_BYTES,
    Settings,
)
from pipeline.ingest.directory import FeedDirectory
from pipeline.ingest.fhir import BundleError, map_bundle
from pipeline.kafka.codec import codec_for
from pipeline.kafka.deadletters import Source, dead_letter_record, encode_dead_letter
from processors.contracts.topics import EHR_ENCOUNTERS, member_key
from processors.contracts.vocab import ErrorType
from processors.refdata import PayerProfile

Record = dict[str, Any]
KeyValue = tuple[bytes, bytes]
# Sends events ((key, value) for ehr.encounters) and encoded dead letters; returns once
# Kafka has acknowledged every one of them, raises when a send fails.
Publish = Callable[[list[KeyValue], list[bytes]], Awaitable[None]]

SOURCE = "ingest:fhir-http"
CONTENT_TYPES = ("application/fhir+json", "application/json")
CHARSETS = ("utf-8", "utf8")
# A FHIR resource inside a bundle nests about a dozen levels deep; JSON nested far deeper
# is not a bundle, and refusing it before parsing keeps the parser's recursion bounded.
MAX_JSON_DEPTH = 64
RETRY_AFTER_SECONDS = 10
# Bundles read at once: each holds its parsed JSON in memory and shares the GIL with the
# agents, so more requests wait their turn.
CONCURRENT_BUNDLES = 2

log = logging.getLogger(__name__)

_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


@dataclass(frozen=True)
class Limits:
    """How much one request may carry, and how long Kafka has to acknowledge it."""

    max_bytes: int = DEFAULT_HTTP_MAX_BYTES
    max_entries: int = DEFAULT_HTTP_MAX_ENTRIES
    max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES
    ack_timeout: float = 30.0

    @classmethod
    def from_settings(cls, settings: Settings) -> Limits:
        """The limits *settings* name."""
        return cls(
            max_bytes=settings.http_max_bytes,
            max_entries=settings.http_max_entries,
            max_record_bytes=settings.max_record_bytes,
            ack_timeout=float(settings.http_ack_timeout),
        )


@dataclass
class Answer:
    """What one request gives: the HTTP answer, and what to send before giving it."""

    status: int
    body: Record
    events: list[KeyValue] = field(default_factory=list)
    dead_letters: list[bytes] = field(default_factory=list)


def outcome(code: str, diagnostics: str) -> Record:
    """A FHIR OperationOutcome with one error issue."""
    return {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": code, "diagnostics": diagnostics}],
    }


def nested_deeper_than(raw: bytes, limit: int) -> bool:
    """True when the JSON text *raw* opens more than *limit* arrays and objects inside each other.

    Counts brackets outside strings without parsing, so it never recurses. UTF-8 never
    encodes another character with the bytes of quotes, backslashes or brackets.
    """
    brackets = _JSON_STRING.sub(b"", raw).translate(None, _NOT_BRACKETS)
    depth = 0
    for byte in brackets:
        depth += 1 if byte in b"[{" else -1
        if depth > limit:
            return True
    return False


def _dead_letter(
    raw: bytes, error: str, error_type: ErrorType, limits: Limits, record_id: str | None = None
) -> bytes:
    return encode_dead_letter(
        dead_letter_record(
            "ingest",
            error,
            error_type,
            Source(SOURCE, value=raw),
            record_id,
            max_record_bytes=limits.max_record_bytes,
        )
    )


def _refused(raw: bytes, error: str, error_type: ErrorType, limits: Limits) -> Answer:
    return Answer(
        400,
        outcome("structure" if error_type != ErrorType.INTERNAL else "exception", error),
        dead_letters=[_dead_letter(raw, error, error_type, limits)],
    )


def read_bundle(
    raw: bytes,
    billing: FeedDirectory,
    limits: Limits,
    *,
    payers: Mapping[str, PayerProfile] | None = None,
) -> Answer:
    """The answer to a request body *raw*: pure work, run off the event loop.

    Never raises for bad input: what cannot be read is a 400 with its dead letter.
    """
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return _refused(
            raw, "the request body is not UTF-8 text (FHIR JSON is UTF-8)", ErrorType.DECODE, limits
        )
    if nested_deeper_than(raw, MAX_JSON_DEPTH):
        return _refused(
            raw,
            f"the request body nests JSON arrays and objects more than "
            f"{MAX_JSON_DEPTH} levels deep; a FHIR Bundle does not",
            ErrorType.DECODE,
            limits,
        )
    try:
        bundle = json.loads(text)
    except (ValueError, RecursionError) as exc:
        return _refused(
            raw, f"the request body is not JSON ({type(exc).__name__})", ErrorType.DECODE, limits
        )
    entries = bundle.get("entry") if isinstance(bundle, dict) else None
    if isinstance(entries, list) and len(entries) > limits.max_entries:
        return Answer(
            413,
            outcome(
                "too-costly",
                (
                    f"the Bundle holds {len(entries):,} entries, more than the "
                    f"{limits.max_entries:,} "
                    "this endpoint takes in one request (CLAIMS_HTTP_MAX_ENTRIES); split it"
                ),
            ),
        )
    try:
        return _map(raw, bundle, billing, limits, payers)
    except BundleError as exc:
        return _refused(raw, str(exc), ErrorType.VALIDATION, limits)
    except Exception as exc:  # bad input must never become a 500
        where = traceback.extract_tb(exc.__traceback__)[-1]
        log.warning(
            "POST /fhir: mapping failed with %s at %s:%d; answered 400",
            type(exc).__name__,
            where.filename,
            where.lineno or 0,
        )
        return _refused(
            raw,
            f"the bundle could not be mapped ({type(exc).__name__})",
            ErrorType.INTERNAL,
            limits,
        )


def _map(
    raw: bytes,
    bundle: Any,
    billing: FeedDirectory,
    limits: Limits,
    payers: Mapping[str, PayerProfile] | None,
) -> Answer:
    mapped = map_bundle(bundle, billing, source="fhir-http", payers=payers)
    dead = [
        _dead_letter(
            raw,
            f"{i['expression'][0]}: {i['diagnostics']}",
            ErrorType.VALIDATION,
            limits,
            i["expression"][0].split(".")[0],
        )
        for i in mapped.issues
    ]
    codec = codec_for(EHR_ENCOUNTERS.value_schema)
    events: list[KeyValue] = []
    accepted: list[Record] = []
    for event in mapped.events:
        key, value = member_key(event).encode(), codec.encode(event)
        size = len(key) + len(value)
        if size <= limits.max_record_bytes:
            events.append((key, value))
            accepted.append(event)
            continue
        reason = (
            f"its EncounterEvent is {size:,} bytes, over the {limits.max_record_bytes:,}-"
            "byte record limit (CLAIMS_MAX_RECORD_BYTES); send fewer diagnoses and "
            "procedures per encounter"
        )
        mapped.issues.append(
            {
                "severity": "error",
                "code": "too-long",
                "diagnostics": f"encounter {event['encounter_id']}: {reason}",
                "expression": ["Encounter"],
            }
        )
        dead.append(
            _dead_letter(
                raw,
                f"encounter {event['encounter_id']}: {reason}",
                ErrorType.OVERSIZE,
                limits,
                event["encounter_id"],
            )
        )
    mapped.events = accepted
    if not accepted:
        return Answer(400, mapped.outcome(), dead_letters=dead)
    return Answer(
        202,
        {
            "event_ids": [e["event_id"] for e in accepted],
            "encounter_ids": [e["encounter_id"] for e in accepted],
            "outcome": mapped.outcome(),
        },
        events,
        dead,
    )


def _fhir(status: int, body: Record, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        status=status, text=json.dumps(body), content_type="application/fhir+json", headers=headers
    )


def _too_large(limits: Limits) -> web.Response:
    return _fhir(
        413,
        outcome(
            "too-long",
            (
                f"the request body is larger than the {limits.max_bytes:,} bytes this "
                "endpoint takes (CLAIMS_HTTP_MAX_BYTES); split the bundle"
            ),
        ),
    )


def build_web_app(
    publish: Publish,
    billing: FeedDirectory,
    limits: Limits | None = None,
    *,
    payers: Mapping[str, PayerProfile] | None = None,
) -> web.Application:
    """The aiohttp application; *publish* sends events and dead letters and awaits their acks.

    *payers* are the settings' payer profiles (the shipped ones when not given).
    """
    limits = limits or Limits()
    gate = asyncio.Semaphore(CONCURRENT_BUNDLES)

    async def post_fhir(request: web.Request) -> web.Response:
        charset = (request.charset or "utf-8").lower()
        if request.content_type not in CONTENT_TYPES or charset not in CHARSETS:
            return _fhir(
                415,
                outcome(
                    "not-supported",
                    (
                        "send the Bundle as application/fhir+json or application/json in "
                        f"UTF-8, not {request.content_type[:60]}"
                        + (f"; charset={charset[:20]}" if request.charset else "")
                    ),
                ),
            )
        if request.content_length is not None and request.content_length > limits.max_bytes:
            return _too_large(limits)
        try:
            raw = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return _too_large(limits)
        async with gate:
            answer = await asyncio.to_thread(read_bundle, raw, billing, limits, payers=payers)
        if answer.events or answer.dead_letters:
            try:
                await asyncio.wait_for(
                    publish(answer.events, answer.dead_letters), limits.ack_timeout
                )
            except Exception as exc:  # a failed or slow send: say so, claim nothing
                log.warning(
                    "POST /fhir: Kafka did not acknowledge %d event(s) and %d dead "
                    "letter(s) (%s); answered 503",
                    len(answer.events),
                    len(answer.dead_letters),
                    type(exc).__name__,
                )
                return _fhir(
                    503,
                    outcome(
                        "transient",
                        (
                            "the events could not be stored in Kafka; nothing from this "
                            f"request was accepted. Send it again (after {RETRY_AFTER_SECONDS} "
                            "s): the same bundle gives the same event ids"
                        ),
                    ),
                    {"Retry-After": str(RETRY_AFTER_SECONDS)},
                )
        if answer.status == 202:
            log.info(
                "POST /fhir: %d encounter(s) accepted, %d dead letter(s)",
                len(answer.events),
                len(answer.dead_letters),
            )
        return _fhir(answer.status, answer.body)

    app = web.Application(client_max_size=limits.max_bytes)
    app.router.add_post("/fhir", post_fhir)
    return app

"""DeadLetter records: the one builder every stage and ingest adapter uses.

A dead letter keeps the original key and value bytes with a reason a person
can act on. The dead letter must itself fit the record size limit: when the
original value is too large to keep beside the reason, it is left out, its
size is recorded, and the source topic, partition and offset say where to read
it (an ingest adapter refuses such input at its door instead).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from pipeline.kafka.codec import AvroCodec, codec_for
from processors.contracts.records import DeadLetter
from processors.contracts.topics import DEAD_LETTER
from processors.contracts.vocab import ErrorType

# What a DeadLetter needs besides the key and value: the reason, ids, topic name.
ENVELOPE_BYTES = 8 * 1024
MAX_ERROR_CHARS = 2000


@dataclass(frozen=True)
class Source:
    """Where a dead-lettered record came from: a topic position, or an ingest adapter."""

    topic: str
    partition: int = -1
    offset: int = -1
    key: bytes | None = None
    value: bytes | None = None
    timestamp_ms: int | None = None


def dead_letter_record(
    stage: str,
    error: str,
    error_type: ErrorType,
    source: Source,
    record_id: str | None = None,
    *,
    max_record_bytes: int,
) -> DeadLetter:
    """The DeadLetter for *source*, the value kept whole when it fits *max_record_bytes*."""
    value = source.value
    key = source.key
    keep = len(key or b"") + len(value or b"") + ENVELOPE_BYTES <= max_record_bytes
    if len(error) > MAX_ERROR_CHARS:
        error = error[: MAX_ERROR_CHARS - 3] + "..."
    failed_at = (
        datetime.fromtimestamp(source.timestamp_ms / 1000, tz=UTC)
        if source.timestamp_ms is not None
        else datetime.now(UTC)
    )
    return {
        "stage": stage,
        "error": error,
        "error_type": error_type,
        "source_topic": source.topic,
        "source_partition": source.partition,
        "source_offset": source.offset,
        "key": key if keep or len(key or b"") < ENVELOPE_BYTES else None,
        "value": value if keep else None,
        "value_size": len(value) if value is not None else None,
        "record_id": record_id,
        "failed_at": failed_at,
    }


_CODEC: AvroCodec | None = None


def encode_dead_letter(record: DeadLetter, codec: AvroCodec | None = None) -> bytes:
    """*record* as pipeline.dead-letter bytes."""
    global _CODEC  # noqa: PLW0603 - one codec per process, built on first use
    if codec is None:
        if _CODEC is None:
            _CODEC = codec_for(DEAD_LETTER.value_schema)
        codec = _CODEC
    return codec.encode(record)

"""Where ingested records go: encounters and remittances to their topics, bad input to the
dead-letter topic with its reason and its raw bytes."""

from __future__ import annotations

from typing import Any

from kafka import KafkaProducer

from pipeline.config import Settings, topic_max_message_bytes
from pipeline.kafka.codec import codec_for
from pipeline.kafka.deadletters import Source, dead_letter_record, encode_dead_letter
from processors.contracts.topics import CLAIMS_REMITTANCE, DEAD_LETTER, EHR_ENCOUNTERS, member_key
from processors.contracts.vocab import ErrorType

Record = dict[str, Any]


class IngestSink:
    """A producer for what an adapter accepts and rejects; use as a context manager."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.producer = KafkaProducer(
            bootstrap_servers=settings.bootstrap,
            acks="all",
            linger_ms=5,
            max_request_size=topic_max_message_bytes(settings.max_record_bytes),
        )
        self.sent = 0
        self.dead = 0

    def _topic(self, spec: Any) -> str:
        return str(spec.full_name(self.settings.topic_prefix))

    def _publish(self, spec: Any, key: bytes, value: bytes, record_id: str) -> None:
        """Send one record, or dead-letter it when it is over the record size limit."""
        size = len(key) + len(value)
        if size > self.settings.max_record_bytes:
            self.dead_letter(
                f"ingest:{spec.name}",
                -1,
                value,
                f"{record_id} would be a {size:,}-byte record on {spec.name}, over the "
                f"{self.settings.max_record_bytes:,}-byte limit (CLAIMS_MAX_RECORD_BYTES); "
                "split it or raise the limit",
                record_id,
                ErrorType.OVERSIZE,
            )
            return
        self.producer.send(self._topic(spec), key=key, value=value)
        self.sent += 1

    def encounters(self, events: list[Record]) -> None:
        """Publish EncounterEvents to ehr.encounters, keyed by member."""
        codec = codec_for(EHR_ENCOUNTERS.value_schema)
        for event in events:
            self._publish(
                EHR_ENCOUNTERS,
                member_key(event).encode(),
                codec.encode(event),
                str(event["encounter_id"]),
            )

    def remittances(self, records: list[Record]) -> None:
        """Publish Remittances to claims.remittance, keyed by member."""
        codec = codec_for(CLAIMS_REMITTANCE.value_schema)
        for record in records:
            self._publish(
                CLAIMS_REMITTANCE,
                record["member_key"].encode(),
                codec.encode(record),
                str(record["remittance_id"]),
            )

    def dead_letter(
        self,
        source: str,
        index: int,
        raw: bytes,
        error: str,
        record_id: str | None = None,
        error_type: ErrorType = ErrorType.VALIDATION,
    ) -> None:
        """Keep *raw* input on pipeline.dead-letter with the reason it was refused.

        *index* (the message's place in its file or connection) stands as the offset;
        input too large to keep beside the reason is left out, its size recorded.
        """
        record = dead_letter_record(
            "ingest",
            error,
            error_type,
            Source(source, offset=index, value=raw),
            record_id,
            max_record_bytes=self.settings.max_record_bytes,
        )
        self.producer.send(self._topic(DEAD_LETTER), key=None, value=encode_dead_letter(record))
        self.dead += 1

    def close(self) -> None:
        """Wait for every send, then close."""
        self.producer.flush(timeout=60)
        self.producer.close(timeout=10)

    def __enter__(self) -> IngestSink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

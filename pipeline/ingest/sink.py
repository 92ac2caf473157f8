"""Where ingested records go: encounters and remittances to their topics, bad input to the
dead-letter topic with its reason and its raw bytes."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from kafka import KafkaProducer

from pipeline.codec import codec_for
from pipeline.config import Settings
from pipeline.topics import CLAIMS_REMITTANCE, DEAD_LETTER, EHR_ENCOUNTERS
from processors.synthetic import member_key

Record = dict[str, Any]


class IngestSink:
    """A producer for what an adapter accepts and rejects; use as a context manager."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.producer = KafkaProducer(bootstrap_servers=settings.bootstrap, acks="all",
                                      linger_ms=5)
        self.sent = 0
        self.dead = 0

    def _topic(self, spec: Any) -> str:
        return str(spec.full_name(self.settings.topic_prefix))

    def encounters(self, events: list[Record]) -> None:
        """Publish EncounterEvents to ehr.encounters, keyed by member."""
        codec = codec_for(EHR_ENCOUNTERS.value_schema)
        for event in events:
            self.producer.send(self._topic(EHR_ENCOUNTERS), key=member_key(event).encode(),
                               value=codec.encode(event))
            self.sent += 1

    def remittances(self, records: list[Record]) -> None:
        """Publish Remittances to claims.remittance, keyed by member."""
        codec = codec_for(CLAIMS_REMITTANCE.value_schema)
        for record in records:
            self.producer.send(self._topic(CLAIMS_REMITTANCE),
                               key=record["member_key"].encode(), value=codec.encode(record))
            self.sent += 1

    def dead_letter(self, source: str, index: int, raw: bytes, error: str,
                    record_id: str | None = None, error_type: str = "VALIDATION") -> None:
        """Keep *raw* input on pipeline.dead-letter with the reason it was refused."""
        self.producer.send(self._topic(DEAD_LETTER), key=None,
                           value=codec_for(DEAD_LETTER.value_schema).encode({
                               "stage": "ingest", "error": error, "error_type": error_type,
                               "source_topic": source, "source_partition": -1,
                               "source_offset": index, "key": None, "value": raw,
                               "record_id": record_id, "failed_at": datetime.now(UTC),
                           }))
        self.dead += 1

    def close(self) -> None:
        """Wait for every send, then close."""
        self.producer.flush(timeout=60)
        self.producer.close(timeout=10)

    def __enter__(self) -> IngestSink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

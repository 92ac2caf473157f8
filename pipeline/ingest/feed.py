"""Publishing encounters to ehr.encounters with kafka-python.

The synthetic generator (``pipeline.ingest.synthetic``) is pure; this module encodes
its events with the Avro codec and sends them keyed by member, reporting
progress on long feeds. It can also mix in malformed records on request, to
show that bad input lands on the dead-letter topic and nothing stops.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, TextIO

from kafka import KafkaProducer

from pipeline.config import Settings
from pipeline.kafka.codec import codec_for
from processors.contracts.topics import EHR_ENCOUNTERS


@dataclass
class FeedReport:
    """What a feed sent."""

    sent: int = 0
    malformed: int = 0
    encounter_ids: list[str] = field(default_factory=list)
    seconds: float = 0.0


def producer(settings: Settings) -> KafkaProducer:
    """A producer tuned for feeding: batches, all replicas acknowledge, idempotent keys."""
    return KafkaProducer(
        bootstrap_servers=settings.bootstrap,
        client_id="claims-feed",
        acks="all",
        linger_ms=5,
        batch_size=256 * 1024,
        max_request_size=4 * 1024 * 1024,
    )


def malformed_records(count: int, seed: int) -> list[tuple[bytes, bytes]]:
    """*count* bad (key, value) pairs: JSON where Avro belongs, truncated and empty frames."""
    codec = codec_for(EHR_ENCOUNTERS.value_schema)
    header = b"\x00" + codec.schema_id.to_bytes(4, "big")
    kinds = [
        b'{"encounter_id": "not-avro"}',
        header + b"\x02",
        header,
        b"\x00\x00\x00\x03\xe7garbage",
    ]
    return [(f"BAD{seed}-{i}".encode(), kinds[i % len(kinds)]) for i in range(count)]


def publish(
    settings: Settings,
    events: Iterable[tuple[str, dict[str, Any]]],
    *,
    malformed: int = 0,
    seed: int = 0,
    progress: TextIO | None = sys.stderr,
    total: int | None = None,
) -> FeedReport:
    """Encode and send *events* (member key, EncounterEvent) to ehr.encounters."""
    codec = codec_for(EHR_ENCOUNTERS.value_schema)
    topic = EHR_ENCOUNTERS.full_name(settings.topic_prefix)
    report = FeedReport()
    started = time.monotonic()
    prod = producer(settings)
    bad = malformed_records(malformed, seed)
    spacing = max(1, (total or 1000) // (malformed + 1)) if malformed else 0
    try:
        for i, (key, event) in enumerate(events):
            prod.send(topic, key=key.encode(), value=codec.encode(event))
            report.sent += 1
            report.encounter_ids.append(event["encounter_id"])
            if bad and spacing and i % spacing == spacing - 1:
                bkey, bvalue = bad.pop()
                prod.send(topic, key=bkey, value=bvalue)
                report.malformed += 1
            if progress is not None and report.sent % 5000 == 0:
                print(
                    f"  fed {report.sent}{f'/{total}' if total else ''} encounters",
                    file=progress,
                    flush=True,
                )
        for bkey, bvalue in bad:
            prod.send(topic, key=bkey, value=bvalue)
            report.malformed += 1
        prod.flush(timeout=60)
    finally:
        prod.close(timeout=10)
    report.seconds = time.monotonic() - started
    return report

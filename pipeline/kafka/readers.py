"""Reading the topics from the command line and the tests: end offsets, counts, decoded records.

kafka-python consumers that assign partitions (no consumer group, nothing
committed), so reading never disturbs the workers.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from kafka import KafkaConsumer, TopicPartition

from pipeline.config import Settings
from pipeline.kafka.codec import codec_for
from processors.contracts.topics import ALL_TOPICS, TopicSpec

Offsets = dict[str, dict[int, int]]


def snapshot_offsets(settings: Settings, specs: Iterable[TopicSpec] = ALL_TOPICS) -> Offsets:
    """End offsets of each topic's partitions now: where a run's records will start."""
    consumer = KafkaConsumer(bootstrap_servers=settings.bootstrap, client_id="claims-snapshot")
    try:
        snap: Offsets = {}
        for spec in specs:
            name = spec.full_name(settings.topic_prefix)
            parts = consumer.partitions_for_topic(name) or set()
            tps = [TopicPartition(name, p) for p in sorted(parts)]
            ends = consumer.end_offsets(tps) if tps else {}
            snap[spec.name] = {tp.partition: off for tp, off in ends.items()}
        return snap
    finally:
        consumer.close()


def record_counts(settings: Settings, before: Offsets) -> dict[str, int]:
    """Records added to each topic since the snapshot *before*."""
    after = snapshot_offsets(settings)
    return {
        name: sum(off - before.get(name, {}).get(p, 0) for p, off in parts.items())
        for name, parts in after.items()
    }


def read_topic(
    settings: Settings, spec: TopicSpec, start: dict[int, int]
) -> list[tuple[int, dict[str, Any] | None]]:
    """(timestamp ms, decoded value or None) of every record after *start* on *spec*."""
    name = spec.full_name(settings.topic_prefix)
    consumer = KafkaConsumer(bootstrap_servers=settings.bootstrap, enable_auto_commit=False)
    tps = [TopicPartition(name, p) for p in sorted(consumer.partitions_for_topic(name) or [])]
    consumer.assign(tps)
    ends = consumer.end_offsets(tps)
    for tp in tps:
        consumer.seek(tp, start.get(tp.partition, 0))
    codec = codec_for(spec.value_schema)
    out: list[tuple[int, dict[str, Any] | None]] = []
    remaining = {tp for tp in tps if ends[tp] > start.get(tp.partition, 0)}
    deadline = time.monotonic() + 120
    while remaining and time.monotonic() < deadline:
        for tp, records in consumer.poll(timeout_ms=500, max_records=10000).items():
            for r in records:
                try:
                    value: dict[str, Any] | None = codec.decode(r.value)
                except ValueError:
                    value = None
                out.append((r.timestamp, value))
            if consumer.position(tp) >= ends[tp]:
                remaining.discard(tp)
    consumer.close()
    return out


def latest_records(
    settings: Settings, spec: TopicSpec, id_field: str, start: Offsets | None = None
) -> list[dict[str, Any]]:
    """Records on *spec* after *start* (default: from the beginning), the latest per id."""
    latest: dict[str, dict[str, Any]] = {}
    for _, record in read_topic(settings, spec, (start or {}).get(spec.name, {})):
        if record is not None:
            latest[record[id_field]] = record
    return list(latest.values())

"""Stage runtime: decode, call the stage's pure handler, encode, dead-letter failures.

Free of faust so it serves the faust agents, the benchmark baseline and the
tests alike. In ``fused`` topology a record's outputs that feed the next stage
are handed to it in the same call (still published to their topics), which
saves a Kafka round trip and a decode per hop; ``staged`` runs one stage per
agent. The topics and their contents are the same either way.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from kafka.partitioner.default import murmur2

from pipeline.codec import AvroCodec, DecodeError, SchemaRegistry, default_registry
from pipeline.metrics import Metrics
from pipeline.topics import ALL_TOPICS, DEAD_LETTER, DENIALS_REWORK, TopicSpec
from processors.adjudication.stage import STAGE as ADJUDICATION
from processors.claims.stage import STAGE as CLAIMS
from processors.coding.stage import STAGE as CODING
from processors.denials.followup import next_due, sweep_member
from processors.denials.resubmit import STAGE as REWORK
from processors.denials.stage import STAGE as DENIALS
from processors.stage import Agenda, Stage, StageContext

log = logging.getLogger(__name__)

STAGES: tuple[Stage, ...] = (CODING, CLAIMS, ADJUDICATION, DENIALS, REWORK)
# What the fused topology consumes: new encounters, and actions on rework items (from
# people, and automatic corrections that move a claim to another member's partition).
ENTRY_STAGES: tuple[Stage, ...] = (CODING, REWORK)
STAGE_BY_INPUT = {stage.input.name: stage for stage in STAGES}
STAGE_BY_NAME = {stage.name: stage for stage in STAGES}


@dataclass(frozen=True)
class Incoming:
    """A record as read from Kafka."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp_ms: int


@dataclass(frozen=True)
class Outgoing:
    """An encoded record to publish."""

    topic: str
    key: bytes | None
    value: bytes


class Codecs:
    """One codec per topic, over one registry."""

    def __init__(self, registry: SchemaRegistry | None = None) -> None:
        registry = registry or default_registry()
        self._by_topic = {spec.name: AvroCodec(registry, spec.value_schema) for spec in ALL_TOPICS}

    def __getitem__(self, spec: TopicSpec) -> AvroCodec:
        return self._by_topic[spec.name]


def _record_id(record: dict[str, Any] | None) -> str | None:
    if not record:
        return None
    encounter = record.get("encounter")
    if isinstance(encounter, dict) and encounter.get("encounter_id"):
        return str(encounter["encounter_id"])
    for name in ("encounter_id", "claim_id", "event_id"):
        value = record.get(name)
        if isinstance(value, str) and value:
            return value
    return None


class StageRunner:
    """Runs stages on incoming records and returns what to publish."""

    def __init__(self, contexts: Callable[[Stage], StageContext], prefix: str = "",
                 fused: bool = False, codecs: Codecs | None = None,
                 agenda: Agenda | None = None, partitions: int = 1,
                 metrics: Metrics | None = None) -> None:
        self.contexts = contexts
        self.prefix = prefix
        self.fused = fused
        self.codecs = codecs or Codecs()
        self.processed: dict[str, int] = {stage.name: 0 for stage in STAGES}
        self.dead_letters = 0
        self.agenda = agenda
        self.partitions = partitions
        self.metrics = metrics
        # Business time per partition: the latest date its records carry (co-partitioned
        # topics share partition numbers, so one clock per number).
        self.watermarks: dict[int, date] = {}

    def dead_letter(self, stage: str, error: str, error_type: str, source: Incoming,
                    record: dict[str, Any] | None = None) -> Outgoing:
        """The DeadLetter record for *source*: raw bytes kept, reason stated."""
        self.dead_letters += 1
        if self.metrics is not None:
            self.metrics.dead_letter(stage)
        record_id = _record_id(record)
        log.warning("dead letter from %s at %s[%d]@%d (id %s): %s", stage, source.topic,
                    source.partition, source.offset, record_id or "-", error_type)
        value = self.codecs[DEAD_LETTER].encode({
            "stage": stage,
            "error": error,
            "error_type": error_type,
            "source_topic": source.topic,
            "source_partition": source.partition,
            "source_offset": source.offset,
            "key": source.key,
            "value": source.value,
            "record_id": record_id,
            "failed_at": datetime.fromtimestamp(source.timestamp_ms / 1000, tz=UTC),
        })
        return Outgoing(DEAD_LETTER.full_name(self.prefix), source.key, value)

    def process(self, stage: Stage, incoming: Incoming) -> list[Outgoing]:
        """Decode *incoming* as *stage*'s input and run it (and, fused, the stages after)."""
        try:
            record = self.codecs[stage.input].decode(incoming.value)
        except DecodeError as exc:
            return [self.dead_letter(stage.name, str(exc), "DECODE", incoming)]
        return self.process_record(stage, incoming, record)

    def process_record(self, stage: Stage, incoming: Incoming,
                       record: dict[str, Any]) -> list[Outgoing]:
        """Run *stage* on an already decoded *record*."""
        key = incoming.key or b""
        context = self.contexts(stage)
        context.partition = incoming.partition
        if incoming.partition >= 0:
            seen = event_date(record)
            if seen is not None and seen > self.watermarks.get(incoming.partition, seen - ONE_DAY):
                self.watermarks[incoming.partition] = seen
        try:
            outputs = stage.handle(key, record, context)
            encoded = [
                Outgoing(out.topic.full_name(self.prefix), out.key,
                         self.codecs[out.topic].encode(out.record))
                for out in outputs
            ]
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            reason = str(exc) if isinstance(exc, ValueError) else (
                f"{type(exc).__name__}: {exc} (a required field is missing or has the wrong type)"
            )
            return [self.dead_letter(stage.name, reason, "VALIDATION", incoming, record)]
        self.processed[stage.name] += 1
        if self.metrics is not None:
            self.metrics.handled(stage.name)
            for out in outputs:
                if out.topic is DENIALS_REWORK:
                    self.metrics.rework_item(out.record)
        if not self.fused:
            return encoded
        chained: list[Outgoing] = []
        for out, enc in zip(outputs, encoded, strict=True):
            nxt = STAGE_BY_INPUT.get(out.topic.name)
            # Only records of the same member continue in this process: another member's
            # state may live in another worker's partition, so theirs go through Kafka. An
            # entry stage's input is consumed from Kafka in this topology, so never chained.
            if nxt is not None and out.key == key and nxt not in ENTRY_STAGES:
                hop = Incoming(enc.topic, incoming.partition, -1, out.key, enc.value,
                               incoming.timestamp_ms)
                chained.extend(self.process_record(nxt, hop, out.record))
        return encoded + chained

    def process_many(self, stage: Stage, batch: Iterable[Incoming]) -> list[Outgoing]:
        """Process a batch, in order, then sweep the follow-ups its business time made due."""
        out: list[Outgoing] = []
        partitions: set[int] = set()
        for incoming in batch:
            out.extend(self.process(stage, incoming))
            partitions.add(incoming.partition)
        for partition in sorted(p for p in partitions if p >= 0):
            out.extend(self.sweep(partition))
        return out

    def sweep(self, partition: int) -> list[Outgoing]:
        """Follow-ups and reminders of *partition*'s members due by its business date."""
        today = self.watermarks.get(partition)
        if self.agenda is None or today is None:
            return []
        context = self.contexts(STATEFUL)
        if partition not in self.agenda.loaded:
            self._load_agenda(partition, context)
        out: list[Outgoing] = []
        for key in self.agenda.pop_due(partition, today):
            items, state = sweep_member(key.decode(), context.state.get(key), today,
                                        context.refdata.timely_filing_days)
            if state is not None:
                context.state[key] = state
            for item in items:
                out.append(Outgoing(DENIALS_REWORK.full_name(self.prefix), key,
                                    self.codecs[DENIALS_REWORK].encode(item)))
                if self.metrics is not None:
                    self.metrics.rework_item(item)
            due = next_due(state if state is not None else context.state.get(key))
            if due is not None:
                self.agenda.add(partition, key, due)
        return out

    def _load_agenda(self, partition: int, context: StageContext) -> None:
        """Index what this worker's state store holds for *partition* (after a restart)."""
        assert self.agenda is not None
        self.agenda.loaded.add(partition)
        for key in list(context.state):
            if partition_for(key, self.partitions) != partition:
                continue
            due = next_due(context.state.get(key))
            if due is not None:
                self.agenda.add(partition, key, due)


ONE_DAY = timedelta(days=1)
STATEFUL = ADJUDICATION


def event_date(record: dict[str, Any]) -> date | None:
    """The business date a record carries: a payment date, a filing or receipt time."""
    for name in ("adjudicated_date", "created_at", "received_at", "at"):
        value = record.get(name)
        if isinstance(value, datetime):
            return value.date()
        if isinstance(value, date):
            return value
    return None


def partition_for(key: bytes, partitions: int) -> int:
    """The partition Kafka's default partitioner gives *key* (murmur2, as producers use)."""
    return int((murmur2(key) & 0x7FFFFFFF) % partitions)

"""Stage runtime: decode, call the stage's pure handler, encode, dead-letter failures.

Free of faust so it serves the faust agents, the benchmark baseline and the
tests alike. In ``fused`` topology a record's outputs that feed the next stage
are handed to it in the same call (still published to their topics), which
saves a Kafka round trip and a decode per hop; ``staged`` runs one stage per
agent. The topics and their contents are the same either way.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable, Iterator, MutableMapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from kafka.partitioner.default import murmur2

from pipeline.config import DEFAULT_MAX_RECORD_BYTES
from pipeline.kafka.codec import AvroCodec, DecodeError, SchemaRegistry, default_registry
from pipeline.kafka.deadletters import Source, dead_letter_record
from pipeline.runtime.metrics import Metrics
from processors.contracts.topics import ALL_TOPICS, DEAD_LETTER, TopicSpec, member_key_of
from processors.contracts.vocab import ErrorType
from processors.memberstate import MemberState, is_member_row, next_due, stale_rows
from processors.stage import Agenda, Stage, StageContext, Sweep, failure_reason

log = logging.getLogger(__name__)


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


_MISSING = object()
DELETED = object()


class BatchState(MutableMapping[bytes, Any]):
    """Write-back view of the state store for one batch: one write per row, in a safe order.

    Reads see the batch's own writes. :meth:`checkpoint` starts recording what
    one record writes, so :meth:`oversized` can check those rows against the
    record size limit and :meth:`rollback` can undo them; :meth:`flush` writes
    every changed row to the store once, detail rows before member rows
    (``processors.memberstate`` relies on that order).
    """

    def __init__(
        self,
        table: MutableMapping[bytes, Any],
        max_row_bytes: int = DEFAULT_MAX_RECORD_BYTES,
        measure: Callable[[Any], int] | None = None,
    ) -> None:
        self.table = table
        self.max_row_bytes = max_row_bytes
        self.measure = measure or _json_size
        self.dirty: dict[bytes, Any] = {}
        self._undo: dict[bytes, Any] | None = None

    def __getitem__(self, key: bytes) -> Any:
        if key in self.dirty:
            value = self.dirty[key]
            if value is DELETED:
                raise KeyError(key)
            return value
        return self.table[key]

    def get(self, key: bytes, default: Any = None) -> Any:
        if key in self.dirty:
            value = self.dirty[key]
            return default if value is DELETED else value
        return self.table.get(key, default)

    def __contains__(self, key: object) -> bool:
        if key in self.dirty:
            return self.dirty[key] is not DELETED
        return key in self.table

    def _remember(self, key: bytes) -> None:
        if self._undo is not None and key not in self._undo:
            self._undo[key] = self.dirty.get(key, _MISSING)

    def __setitem__(self, key: bytes, value: Any) -> None:
        self._remember(key)
        self.dirty[key] = value

    def __delitem__(self, key: bytes) -> None:
        self._remember(key)
        self.dirty[key] = DELETED

    def __iter__(self) -> Iterator[bytes]:
        for key in self.table:
            if self.dirty.get(key) is not DELETED:
                yield key
        for key, value in self.dirty.items():
            if value is not DELETED and key not in self.table:
                yield key

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def checkpoint(self) -> None:
        """Start recording the rows one record writes."""
        self._undo = {}

    def oversized(self) -> str | None:
        """Why a row written since :meth:`checkpoint` cannot be stored, if one cannot."""
        for key in self._undo or {}:
            value = self.dirty[key]
            if value is DELETED:
                continue
            size = len(key) + self.measure(value)
            if size > self.max_row_bytes:
                kind = "member row" if is_member_row(key) else "state row"
                return (
                    f"the {kind} this record writes would be {size:,} bytes, over the "
                    f"{self.max_row_bytes:,}-byte record limit (CLAIMS_MAX_RECORD_BYTES)"
                )
        return None

    def rollback(self) -> None:
        """Undo every write since :meth:`checkpoint`."""
        for key, before in (self._undo or {}).items():
            if before is _MISSING:
                self.dirty.pop(key, None)
            else:
                self.dirty[key] = before
        self._undo = None

    def release(self) -> None:
        """Keep the writes since :meth:`checkpoint`."""
        self._undo = None

    def flush(self) -> None:
        """Write the batch's changes to the store: detail rows first, then member rows."""
        ordered = sorted(self.dirty.items(), key=lambda kv: is_member_row(kv[0]))
        for key, value in ordered:
            if value is DELETED:
                if key in self.table:
                    del self.table[key]
            else:
                self.table[key] = value
        self.dirty.clear()


def _json_size(value: Any) -> int:
    return len(json.dumps(value, separators=(",", ":"), default=str).encode())


class StageRunner:
    """Runs stages on incoming records and returns what to publish.

    Every record ends in its outputs or in one dead letter: a handler's
    failure, an output or a state row over the record size limit, and a
    record without a key that its content cannot supply all become a dead
    letter (with the state the record wrote undone), and the batch goes on.
    """

    def __init__(
        self,
        stages: Sequence[Stage],
        contexts: Callable[[Stage], StageContext],
        prefix: str = "",
        fused: bool = False,
        codecs: Codecs | None = None,
        agenda: Agenda | None = None,
        partitions: int = 1,
        metrics: Metrics | None = None,
        max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stages = tuple(stages)
        self.contexts = contexts
        self.prefix = prefix
        self.fused = fused
        self.codecs = codecs or Codecs()
        # What the stages declare: who reads which topic, which stages are read from
        # Kafka in the fused topology too, whose context holds the member state, and the
        # sweeps to run after each batch.
        self.by_input = {stage.input.name: stage for stage in self.stages}
        self.entries = {stage.name for stage in self.stages if stage.entry}
        self.keeper = next((stage for stage in self.stages if stage.stateful), None)
        self.sweeps: tuple[Sweep, ...] = tuple(
            stage.sweep for stage in self.stages if stage.sweep is not None
        )
        self.processed: dict[str, int] = {stage.name: 0 for stage in self.stages}
        self.dead_letters = 0
        self.rekeyed = 0
        self.agenda = agenda
        self.partitions = partitions
        self.metrics = metrics
        self.max_record_bytes = max_record_bytes
        self.clock = clock
        # Business time per partition: the latest date its records carry (co-partitioned
        # topics share partition numbers, so one clock per number).
        self.watermarks: dict[int, date] = {}
        self._clock_moved: set[int] = set()
        # Follow-ups and reminders made but not yet delivered, by batch ticket; per member,
        # the due tokens they stand for (not made twice meanwhile).
        self.ticket = 0
        self._swept: dict[int, list[tuple[int, bytes, Sweep, list[str]]]] = {}
        self._in_flight: dict[bytes, set[str]] = {}
        # Rows found stale at one housekeeping pass are removed at the next one.
        self._housekeeping_at: float | None = None
        self._stale: list[bytes] = []

    def dead_letter(
        self,
        stage: str,
        error: str,
        error_type: ErrorType,
        source: Incoming,
        record: dict[str, Any] | None = None,
    ) -> Outgoing:
        """The DeadLetter record for *source*: raw bytes kept, reason stated."""
        self.dead_letters += 1
        if self.metrics is not None:
            self.metrics.dead_letter(stage)
        record_id = _record_id(record)
        log.warning(
            "dead letter from %s at %s[%d]@%d (id %s): %s",
            stage,
            source.topic,
            source.partition,
            source.offset,
            record_id or "-",
            error_type,
        )
        letter = dead_letter_record(
            stage,
            error,
            error_type,
            Source(
                source.topic,
                source.partition,
                source.offset,
                source.key,
                source.value,
                source.timestamp_ms,
            ),
            record_id,
            max_record_bytes=self.max_record_bytes,
        )
        return Outgoing(
            DEAD_LETTER.full_name(self.prefix), source.key, self.codecs[DEAD_LETTER].encode(letter)
        )

    def process(self, stage: Stage, incoming: Incoming) -> list[Outgoing]:
        """Decode *incoming* as *stage*'s input and run it (and, fused, the stages after)."""
        try:
            record = self.codecs[stage.input].decode(incoming.value)
        except DecodeError as exc:
            return [self.dead_letter(stage.name, str(exc), ErrorType.DECODE, incoming)]
        if not incoming.key:
            return [self._rekey(stage, incoming, record)]
        return self.process_record(stage, incoming, record)

    def _rekey(self, stage: Stage, incoming: Incoming, record: dict[str, Any]) -> Outgoing:
        """A record without a key goes back to its topic under the key its content gives."""
        key = member_key_of(stage.input, record)
        if key is None:
            return self.dead_letter(
                stage.name,
                f"the record on {incoming.topic} has no key and names no member to "
                "key it by; publish it keyed by the member key",
                ErrorType.NO_KEY,
                incoming,
                record,
            )
        self.rekeyed += 1
        log.warning(
            "record without a key at %s[%d]@%d (id %s) sent back keyed by its member",
            incoming.topic,
            incoming.partition,
            incoming.offset,
            _record_id(record) or "-",
        )
        assert incoming.value is not None
        return Outgoing(incoming.topic, key, incoming.value)

    def _state(self, stage: Stage, context: StageContext) -> BatchState | None:
        state = context.state
        return state if stage.stateful and isinstance(state, BatchState) else None

    def _too_large(self, encoded: list[Outgoing]) -> str | None:
        for out in encoded:
            size = len(out.key or b"") + len(out.value)
            if size > self.max_record_bytes:
                return (
                    f"its output to {out.topic} would be {size:,} bytes, over the "
                    f"{self.max_record_bytes:,}-byte record limit "
                    "(CLAIMS_MAX_RECORD_BYTES); split the input or raise the limit"
                )
        return None

    def process_record(
        self, stage: Stage, incoming: Incoming, record: dict[str, Any]
    ) -> list[Outgoing]:
        """Run *stage* on an already decoded *record*."""
        key = incoming.key
        assert key, "records are keyed before they reach a stage"
        context = self.contexts(stage)
        context.partition = incoming.partition
        if incoming.partition >= 0:
            self._advance_clock(incoming.partition, event_date(record))
        state = self._state(stage, context)
        if state is not None:
            state.checkpoint()
        try:
            outputs = stage.run(key, record, context)
            encoded = [
                Outgoing(
                    out.topic.full_name(self.prefix),
                    out.key,
                    self.codecs[out.topic].encode(out.record),
                )
                for out in outputs
            ]
        except Exception as exc:  # every failure is this record's dead letter
            if state is not None:
                state.rollback()
            reason, error_type = failure_reason(exc)
            if error_type == ErrorType.INTERNAL:
                log.exception(
                    "stage %s failed on %s[%d]@%d",
                    stage.name,
                    incoming.topic,
                    incoming.partition,
                    incoming.offset,
                )
            return [self.dead_letter(stage.name, reason, error_type, incoming, record)]
        refused = self._too_large(encoded) or (state.oversized() if state is not None else None)
        if refused is not None:
            if state is not None:
                state.rollback()
            return [
                self.dead_letter(
                    stage.name,
                    f"the record was not processed: {refused}",
                    ErrorType.OVERSIZE,
                    incoming,
                    record,
                )
            ]
        if state is not None:
            state.release()
        self.processed[stage.name] += 1
        if self.metrics is not None:
            self.metrics.handled(stage.name)
            for out in outputs:
                self.metrics.published(out.topic, out.record)
        if not self.fused:
            return encoded
        chained: list[Outgoing] = []
        for out, enc in zip(outputs, encoded, strict=True):
            nxt = self.by_input.get(out.topic.name)
            # Only records of the same member continue in this process: another member's
            # state may live in another worker's partition, so theirs go through Kafka. An
            # entry stage's input is consumed from Kafka in this topology; what the stage
            # takes at once (a member's own automatic correction, sent right after its
            # denial so the member's claims are decided in one order whatever the timing)
            # is chained too, and found done when it is read back from the topic.
            if (
                nxt is not None
                and out.key == key
                and (
                    nxt.name not in self.entries
                    or (nxt.at_once is not None and nxt.at_once(key, out.record))
                )
            ):
                hop = Incoming(
                    enc.topic, incoming.partition, -1, out.key, enc.value, incoming.timestamp_ms
                )
                chained.extend(self.process_record(nxt, hop, out.record))
        return encoded + chained

    def store(self) -> MutableMapping[bytes, Any]:
        """The member state the stateful stages share (an empty dict if no stage keeps any)."""
        return self.contexts(self.keeper).state if self.keeper is not None else {}

    def _advance_clock(self, partition: int, seen: date | None) -> None:
        """Move *partition*'s business time to *seen* if it is later (restored after a restart)."""
        if partition not in self.watermarks:
            stored = self.store().get(clock_key(partition))
            if stored is not None:
                self.watermarks[partition] = date.fromisoformat(stored["date"])
        if seen is not None and seen > self.watermarks.get(partition, seen - ONE_DAY):
            self.watermarks[partition] = seen
            self._clock_moved.add(partition)

    def process_many(self, stage: Stage, batch: Iterable[Incoming]) -> list[Outgoing]:
        """Process a batch, in order, then sweep the follow-ups its business time made due.

        What the batch publishes carries the ticket :attr:`ticket`; once it is
        delivered, :meth:`delivered` lets the state record the sweep's items as made.
        """
        self.ticket += 1
        out: list[Outgoing] = []
        partitions: set[int] = set()
        for incoming in batch:
            out.extend(self.process(stage, incoming))
            partitions.add(incoming.partition)
        for partition in sorted(p for p in partitions if p >= 0):
            out.extend(self.sweep(partition))
        store = self.store()
        for partition in sorted(self._clock_moved):
            store[clock_key(partition)] = {"date": self.watermarks[partition].isoformat()}
        self._clock_moved.clear()
        self.housekeep()
        return out

    def reset_partitions(self) -> None:
        """Forget what this runner knows per partition: the group's assignment changed.

        Another worker may have changed the partitions' states meanwhile, so the
        agenda and the business dates are read again from the state store at the
        next batch; follow-ups made but not yet recorded are made again.
        """
        if self.agenda is not None:
            self.agenda.clear()
        self.watermarks.clear()
        self._clock_moved.clear()
        self._swept.clear()
        self._in_flight.clear()

    def delivered(self, ticket: int) -> None:
        """Everything batch *ticket* published is on the broker: record its follow-ups.

        The member states record the follow-ups and reminders the batch made
        (the caller writes the state store out). Until then the state still has
        them due, so a worker that dies before its items reach the broker leaves
        them for the next worker to make again.
        """
        store = self.store()
        for partition, key, sweep, tokens in self._swept.pop(ticket, []):
            state = MemberState.load(store, key)
            sweep.made(state, tokens)
            state.commit(store)
            pending = self._in_flight.get(key, set()) - set(tokens)
            if pending:
                self._in_flight[key] = pending
            else:
                self._in_flight.pop(key, None)
            due = next_due({"due": {t: d for t, d in state.due.items() if t not in pending}})
            if due is not None and self.agenda is not None:
                self.agenda.add(partition, key, due)

    def sweep(self, partition: int) -> list[Outgoing]:
        """Follow-ups and reminders of *partition*'s members due by its business date.

        The items are made from a copy of the state: the state records them only
        once they are delivered (:meth:`delivered`), and until then they are not
        made again.
        """
        today = self.watermarks.get(partition)
        if self.agenda is None or today is None or self.keeper is None or not self.sweeps:
            return []
        context = self.contexts(self.keeper)
        if partition not in self.agenda.loaded:
            self._load_agenda(partition, context)
        out: list[Outgoing] = []
        for key in self.agenda.pop_due(partition, today):
            trial = MemberState.load(context.state, key)
            in_flight = self._in_flight.get(key, set())
            for token in in_flight:
                trial.clear_due(token)
            for sweep in self.sweeps:
                before = set(trial.due)
                records = sweep.due(key.decode(), trial, today, context)
                made = sorted(before - set(trial.due))
                if made:
                    in_flight = in_flight | set(made)
                    self._in_flight[key] = in_flight
                    self._swept.setdefault(self.ticket, []).append((partition, key, sweep, made))
                for record in records:
                    out.append(
                        Outgoing(
                            sweep.output.full_name(self.prefix),
                            key,
                            self.codecs[sweep.output].encode(record),
                        )
                    )
                    if self.metrics is not None:
                        self.metrics.published(sweep.output, record)
            due = trial.next_due()
            if due is not None:
                self.agenda.add(partition, key, due)
        return out

    def _load_agenda(self, partition: int, context: StageContext) -> None:
        """Index what this worker's state store holds for *partition* (after a restart)."""
        assert self.agenda is not None
        self.agenda.loaded.add(partition)
        for key in list(context.state):
            if not is_member_row(key) or partition_for(key, self.partitions) != partition:
                continue
            due = MemberState.load(context.state, key).next_due()
            if due is not None:
                self.agenda.add(partition, key, due)

    def housekeep(self) -> None:
        """Remove state rows the members' states have forgotten, two passes apart.

        A row found stale at one pass is deleted at the next, :data:`HOUSEKEEPING_S`
        later, by which time every record that could still read it (a redelivery of
        the records before its plan year was forgotten) has long been committed.
        """
        if self.agenda is None:
            return
        now = self.clock()
        if self._housekeeping_at is None:
            self._housekeeping_at = now + HOUSEKEEPING_S
            return
        if now < self._housekeeping_at:
            return
        store = self.store()
        doomed = set(stale_rows(store, self._stale))
        for key in doomed:
            del store[key]
        self._stale = [k for k in stale_rows(store, list(store)) if k not in doomed]
        self._housekeeping_at = now + HOUSEKEEPING_S
        if doomed:
            log.info("removed %d state rows of forgotten plan years", len(doomed))


ONE_DAY = timedelta(days=1)
HOUSEKEEPING_S = 600.0
# Business time of each partition is kept in the state store under these keys, so a
# worker that takes a partition over (after a crash) goes on from where it was.
CLOCK_PREFIX = b"\x00clock\x00"


def clock_key(partition: int) -> bytes:
    """The state-store key of *partition*'s business date."""
    return CLOCK_PREFIX + str(partition).encode()


def clock_partition(key: bytes) -> int | None:
    """The partition a business-date key belongs to; None for any other key."""
    if key.startswith(CLOCK_PREFIX):
        return int(key[len(CLOCK_PREFIX) :])
    return None


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

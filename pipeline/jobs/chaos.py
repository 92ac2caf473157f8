"""Crash injection: the pipeline under worker SIGKILLs and a broker kill -9, against a reference.

For each topology the same input (N synthetic encounters and a few malformed
records, encoded once, every record with a fixed timestamp) runs twice on one
cluster, each run on its own topic prefix, so its own consumer group and state:

1. **reference**: W workers, never interrupted;
2. **chaos**: W workers; the feed is split into segments, and in each segment
   but the last, at a seeded random point, a seeded random worker is killed
   with SIGKILL and replaced at once, as a supervisor would (in the middle
   segment the broker is killed with kill -9 instead and restarted on the same
   storage). The feed goes on after each kill (it waits while the broker is
   down, so both runs' input stays identical); the next segment starts once the
   group is stable again and records flow on every partition. A worker that
   exits on its own is replaced too, and reported.

Both runs are fed at the same rate. After the last segment a run waits until the
workers have consumed and committed every record of their input topics and no
topic grows any more; then the topics of both runs are read and compared per
record id (:data:`ID_FIELDS`; ``claims.lifecycle`` by its latest record per
claim, it is compacted):

- *lost*: ids the reference has and the chaos run lacks;
- *extra*: ids only the chaos run has;
- *differing*: ids whose records (key and value bytes; dead letters with the
  run's topic prefix taken out of ``source_topic``) differ;
- *duplicate copies*: byte-identical copies of a record beyond the reference's
  (redeliveries: expected under at-least-once, reported, not failures).

Recovery is measured for every kill by a sampler polling the consumer group and
the topics' end offsets: the time until the group is stable again, until output
flows again on every partition with work to do, and each partition's stall (the
gap in its output across the kill); the samples are written out as a timeline.
A broker kill needs a broker the harness owns: it starts its own, on free
ports, under ``<data_dir>/chaos/<run>``, and removes that folder when the runs
agree (it is kept, topics and all, when they do not). Reports hold ids, counts
and field names, never record contents (they carry PHI).
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import logging
import random
import shutil
import statistics
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient
from kafka.errors import KafkaError

from pipeline.config import Settings
from pipeline.ingest.feed import malformed_records, producer
from pipeline.ingest.synthetic import generate
from pipeline.kafka.admin import admin_client, create_topics, delete_topics
from pipeline.kafka.broker import BrokerError, LocalBroker, free_port_pair, kafka_answers
from pipeline.kafka.codec import DecodeError, codec_for
from pipeline.runtime.app import app_id
from pipeline.runtime.processes import WorkerPool
from processors.contracts.topics import (
    ALL_TOPICS,
    CLAIMS_LIFECYCLE,
    DEAD_LETTER,
    EHR_ENCOUNTERS,
    TopicSpec,
)

# The field that identifies a record on each topic (a path into the decoded value).
ID_FIELDS: dict[str, tuple[str, ...]] = {
    "ehr.encounters": ("event_id",),
    "encounters.coded": ("encounter", "encounter_id"),
    "claims.submitted": ("claim_id",),
    "claims.remittance": ("remittance_id",),
    "denials.rework": ("rework_id",),
    "rework.actions": ("action_id",),
    "patients.statements": ("statement_id",),
    "claims.lifecycle": ("claim_id",),
}
# Topics keyed by member (or the original key), so their partition numbers are the
# partitions the stages consume: what the sampler watches for a partition's progress.
PROGRESS_TOPICS = tuple(s for s in ALL_TOPICS if s not in (EHR_ENCOUNTERS, CLAIMS_LIFECYCLE))
SAMPLE_PERIOD_S = 0.25
QUIET_S = 3.0
CRASH_LOOP_EXITS = 3


class ChaosError(RuntimeError):
    """The harness could not carry out its plan; the message says what did not come back."""


@dataclass(frozen=True)
class ChaosOptions:
    """What to run: the input, the kills, and how long to wait for anything."""

    encounters: int = 2000
    kills: int = 3
    workers: int = 2
    topologies: tuple[str, ...] = ("staged", "fused")
    broker_kill: bool = True
    seed: int = 7
    rate: float = 300.0  # input records per second
    malformed: int = 8
    recovery_timeout: float = 120.0
    settle_timeout: float = 600.0


@dataclass(frozen=True)
class FeedRecord:
    """One input record, exactly as both runs send it."""

    key: bytes
    value: bytes
    timestamp_ms: int


@dataclass(frozen=True)
class Kill:
    """One planned crash: a worker's SIGKILL or the broker's kill -9, once *at* records are in."""

    kind: str  # "worker" or "broker"
    at: int
    segment_end: int
    worker: int | None = None


def chaos_input(encounters: int, seed: int, malformed: int, base_ms: int) -> list[FeedRecord]:
    """The synthetic encounters with *malformed* bad records spread among them, encoded once.

    Record *i* carries the timestamp ``base_ms + i``: both runs send the same bytes with
    the same timestamps, which dead letters carry as their ``failed_at``.
    """
    codec = codec_for(EHR_ENCOUNTERS.value_schema)
    good = [(key.encode(), codec.encode(event)) for key, event in generate(encounters, seed)]
    bad = malformed_records(malformed, seed)
    spacing = max(1, len(good) // (len(bad) + 1))
    mixed: list[tuple[bytes, bytes]] = []
    for i, pair in enumerate(good):
        mixed.append(pair)
        if bad and i % spacing == spacing - 1:
            mixed.append(bad.pop(0))
    mixed.extend(bad)
    return [FeedRecord(k, v, base_ms + i) for i, (k, v) in enumerate(mixed)]


def kill_plan(records: int, kills: int, workers: int, broker_kill: bool, seed: int) -> list[Kill]:
    """One kill per segment of the feed, at a seeded random point; the broker's in the middle."""
    rng = random.Random(f"chaos:{seed}:{kills}:{workers}")
    kinds = ["worker"] * kills
    if broker_kill:
        kinds.insert(len(kinds) // 2 + len(kinds) % 2, "broker")
    segment = records / (len(kinds) + 1)
    plan = []
    for j, kind in enumerate(kinds):
        at = int(segment * (j + rng.uniform(0.3, 0.7)))
        worker = rng.randrange(workers) if kind == "worker" else None
        plan.append(Kill(kind, max(1, at), int(segment * (j + 1)), worker))
    return plan


# -- watching a run ----------------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    """What the cluster showed at one moment of a run."""

    at: float  # time.monotonic()
    up: bool
    group: str = "Unavailable"
    members: frozenset[str] = frozenset()
    progress: tuple[int, ...] = ()  # per partition: records on the PROGRESS_TOPICS
    lag: tuple[int, ...] = ()  # per partition: input records not yet committed by the group
    written: int = 0  # records on every topic of the run


class Sampler(threading.Thread):
    """Polls the consumer group, its committed offsets and the topics' end offsets.

    It keeps its own clients and rebuilds them when the broker goes away, so it
    watches a broker restart through.
    """

    def __init__(self, settings: Settings, inputs: list[TopicSpec]) -> None:
        super().__init__(name="chaos-sampler", daemon=True)
        self.settings = settings
        self.group = app_id(settings)
        self.prefix = settings.topic_prefix
        self.inputs = [s.full_name(self.prefix) for s in inputs]
        self.partitions = settings.partitions
        self.samples: list[Sample] = []
        self.lock = threading.Lock()
        self.halt = threading.Event()
        self._consumer: KafkaConsumer | None = None
        self._admin: KafkaAdminClient | None = None
        # kafka-python warns on every description of a faust group, quoting the whole
        # member metadata (faust's assignor does not use the consumer protocol's layout).
        logging.getLogger("kafka.admin._groups").setLevel(logging.ERROR)

    def run(self) -> None:
        while not self.halt.is_set():
            started = time.monotonic()
            sample = self._sample()
            with self.lock:
                self.samples.append(sample)
            self.halt.wait(max(0.0, SAMPLE_PERIOD_S - (time.monotonic() - started)))
        self._close()

    def stop(self) -> None:
        """Stop sampling and close the clients."""
        self.halt.set()
        self.join(timeout=30)

    def since(self, at: float) -> list[Sample]:
        """Samples taken at or after *at*."""
        with self.lock:
            return [s for s in self.samples if s.at >= at]

    def latest(self) -> Sample | None:
        """The newest sample."""
        with self.lock:
            return self.samples[-1] if self.samples else None

    def _sample(self) -> Sample:
        now = time.monotonic()
        if self._consumer is None and not kafka_answers(self.settings.bootstrap, timeout=1.0):
            return Sample(now, up=False)
        try:
            if self._consumer is None:
                self._consumer = KafkaConsumer(
                    bootstrap_servers=self.settings.bootstrap,
                    client_id="claims-chaos-sampler",
                    request_timeout_ms=5000,
                )
            if self._admin is None:
                self._admin = KafkaAdminClient(
                    bootstrap_servers=self.settings.bootstrap,
                    client_id="claims-chaos-sampler",
                    request_timeout_ms=5000,
                )
            tps = [
                TopicPartition(s.full_name(self.prefix), p)
                for s in ALL_TOPICS
                for p in range(self.partitions)
            ]
            ends = {
                (tp.topic, tp.partition): off
                for tp, off in self._consumer.end_offsets(tps, timeout_ms=5000).items()
            }
            info = self._admin.describe_groups([self.group]).get(self.group, {})
            committed = {
                (tp.topic, tp.partition): meta.offset
                for tp, meta in self._admin.list_group_offsets({self.group: None})
                .get(self.group, {})
                .items()
                if meta.offset >= 0
            }
        except (KafkaError, OSError, ValueError, AttributeError):
            self._close()
            return Sample(now, up=False)
        progress = tuple(
            sum(ends.get((s.full_name(self.prefix), p), 0) for s in PROGRESS_TOPICS)
            for p in range(self.partitions)
        )
        lag = tuple(
            sum(max(0, ends.get((t, p), 0) - committed.get((t, p), 0)) for t in self.inputs)
            for p in range(self.partitions)
        )
        members = frozenset(str(m.get("member_id")) for m in info.get("members") or [])
        return Sample(
            now,
            True,
            str(info.get("group_state", "Unknown")),
            members,
            progress,
            lag,
            sum(ends.values()),
        )

    def _close(self) -> None:
        for client in (self._consumer, self._admin):
            if client is not None:
                with contextlib.suppress(Exception):
                    client.close()
        self._consumer = self._admin = None


def measure_recovery(
    samples: list[Sample],
    killed_at: float,
    workers: int,
    members_before: frozenset[str] | None,
    after: float,
) -> dict[str, Any] | None:
    """Recovery figures of one kill from the samples since it, or None while not recovered.

    The group is stable again at the first sample after *after* showing it Stable with
    *workers* members (a membership other than *members_before* when a worker was
    replaced). Records flow again once every partition has produced output since then,
    or has no input left to process. A partition's stall is the longest gap in its
    output across the kill (:func:`_stall`).
    """
    stable = next(
        (
            s
            for s in samples
            if s.at >= after
            and s.up
            and s.group == "Stable"
            and len(s.members) == workers
            and (members_before is None or s.members != members_before)
        ),
        None,
    )
    if stable is None:
        return None
    resumed: dict[int, float] = {}
    for s in samples:
        if s.at < stable.at or not s.up:
            continue
        for p in range(len(stable.progress)):
            if p not in resumed and (s.progress[p] > stable.progress[p] or s.lag[p] == 0):
                resumed[p] = s.at
        if len(resumed) == len(stable.progress):
            flowing = s
            break
    else:
        return None
    stalls = {
        p: round(_stall(samples, p, killed_at, resumed_at), 2) for p, resumed_at in resumed.items()
    }
    backlog = max((sum(s.lag) for s in samples if s.up and s.at <= flowing.at), default=0)
    return {
        "group_stable_s": round(stable.at - killed_at, 2),
        "flowing_s": round(flowing.at - killed_at, 2),
        "partition_stall_s": {str(p): v for p, v in sorted(stalls.items())},
        "max_partition_stall_s": max(stalls.values(), default=0.0),
        "backlog_peak_records": backlog,
    }


def _stall(samples: list[Sample], partition: int, killed_at: float, resumed_at: float) -> float:
    """The longest gap in *partition*'s output from its last output before the kill until it
    resumed.

    A sample showing the partition with nothing to do ends a gap as output does. Output
    first seen after the broker was unreachable counts at the last sample before the gap
    (it was written before the broker went away). A partition with no output or idle
    sample before the kill is counted from the kill.
    """
    moments: list[float] = []
    previous: Sample | None = None
    gap = False
    for s in samples:
        if s.at > resumed_at:
            break
        if not s.up:
            gap = True
            continue
        if previous is not None and s.progress[partition] > previous.progress[partition]:
            moments.append(previous.at if gap else s.at)
        elif s.lag[partition] == 0:
            moments.append(s.at)
        previous, gap = s, False
    before = [m for m in moments if m <= killed_at]
    start = before[-1] if before else killed_at
    points = [start, *sorted(m for m in moments if m > start), resumed_at]
    return max(b - a for a, b in itertools.pairwise(points))


# -- one run -------------------------------------------------------------------------------


@dataclass(frozen=True)
class KillMoment:
    """What recovery from one kill is measured against."""

    killed_at: float  # time.monotonic()
    members_before: frozenset[str] | None  # None: no new membership needed (broker kill)
    after: float  # recovery counts from here (the broker answering again)


@dataclass
class TopicContents:
    """One topic of a run: the content digests of every record, grouped by record id."""

    records: int = 0
    copies: dict[str, Counter[bytes]] = field(default_factory=dict)
    latest: dict[str, bytes] = field(default_factory=dict)  # claims.lifecycle only


@dataclass
class RunResult:
    """What one run did and what its topics hold."""

    label: str
    prefix: str
    seconds: float = 0.0
    settled: bool = False
    contents: dict[str, TopicContents] = field(default_factory=dict)
    kills: list[dict[str, Any]] = field(default_factory=list)
    unplanned_restarts: list[dict[str, Any]] = field(default_factory=list)
    timeline: list[dict[str, Any]] = field(default_factory=list)


class Feeder:
    """Sends the input records in order, at a steady rate, with their own timestamps."""

    def __init__(self, settings: Settings, records: list[FeedRecord], rate: float) -> None:
        self.topic = EHR_ENCOUNTERS.full_name(settings.topic_prefix)
        self.settings = settings
        self.records = records
        self.rate = rate
        self.sent = 0

    def feed_to(self, end: int, between: Callable[[], None]) -> None:
        """Send records up to index *end*, calling *between* after each chunk; all acknowledged
        on return."""
        end = min(end, len(self.records))
        if self.sent >= end:
            return
        prod: KafkaProducer = producer(self.settings)
        futures = []
        started, first = time.monotonic(), self.sent
        chunk = max(1, int(self.rate / 20))
        try:
            while self.sent < end:
                for record in self.records[self.sent : min(end, self.sent + chunk)]:
                    futures.append(
                        prod.send(
                            self.topic,
                            key=record.key,
                            value=record.value,
                            timestamp_ms=record.timestamp_ms,
                        )
                    )
                self.sent = min(end, self.sent + chunk)
                ahead = (self.sent - first) / self.rate - (time.monotonic() - started)
                if ahead > 0:
                    time.sleep(ahead)
                between()
            prod.flush(timeout=60)
        finally:
            prod.close(timeout=10)
        failed = [f for f in futures if not f.succeeded()]
        if failed:
            raise ChaosError(
                f"{len(failed)} input records were not acknowledged by the broker "
                f"(first error: {failed[0].exception!r})"
            )


class Run:
    """One run on its own topic prefix: topics, workers, feed, kills, settling, reading."""

    def __init__(
        self,
        settings: Settings,
        label: str,
        records: list[FeedRecord],
        options: ChaosOptions,
        log_dir: Path,
        say: Callable[[str], None],
        broker: LocalBroker | None = None,
    ) -> None:
        from pipeline.runtime.topology import ENTRY_STAGES, STAGES  # noqa: PLC0415 - the stage registry

        self.settings = settings
        self.label = label
        self.records = records
        self.options = options
        self.log_dir = log_dir
        self.say = say
        self.broker = broker
        stages = ENTRY_STAGES if settings.topology == "fused" else STAGES
        self.inputs = list(dict.fromkeys(s.input for s in stages))
        self.result = RunResult(label, settings.topic_prefix)
        self.exits: Counter[int] = Counter()
        self.started = 0.0

    def run(self, plan: list[Kill]) -> RunResult:
        """Carry out *plan* (empty: an uninterrupted run), settle, and read every topic."""
        create_topics(self.settings)
        sampler = Sampler(self.settings, self.inputs)
        pool = WorkerPool(self.settings, self.options.workers, self.log_dir)
        self.started = time.monotonic()
        sampler.start()
        try:
            pool.start()
            pool.wait_ready(timeout=self.options.recovery_timeout)
            feeder = Feeder(self.settings, self.records, self.options.rate)
            for n, kill in enumerate(plan, start=1):
                feeder.feed_to(kill.at, lambda: self._supervise(pool))
                entry, moment = self._kill(n, len(plan), kill, pool, feeder, sampler)
                self.result.kills.append(entry)
                feeder.feed_to(kill.segment_end, lambda: self._supervise(pool))
                entry.update(self._await_recovery(entry, moment, pool, sampler))
            feeder.feed_to(len(self.records), lambda: self._supervise(pool))
            self.say(
                f"  [{self.label}] fed all {len(self.records)} records; waiting for the "
                "workers to settle ..."
            )
            self.result.settled = self._settle(pool, sampler)
            self.result.seconds = round(time.monotonic() - self.started, 1)
        finally:
            pool.stop()
            sampler.stop()
            self.result.timeline = [
                {
                    "at_s": round(s.at - self.started, 2),
                    "up": s.up,
                    "group": s.group,
                    "members": len(s.members),
                    "progress": list(s.progress),
                    "lag": list(s.lag),
                }
                for s in sampler.since(self.started)
            ]
        for spec in ALL_TOPICS:
            self.result.contents[spec.name] = read_contents(self.settings, spec)
        return self.result

    def _elapsed(self) -> float:
        return round(time.monotonic() - self.started, 2)

    def _supervise(self, pool: WorkerPool) -> None:
        """Replace workers that exited on their own, as a supervisor would; stop a crash loop."""
        for index, pid, code in pool.restart_exited():
            self.exits[index] += 1
            self.result.unplanned_restarts.append(
                {"at_s": self._elapsed(), "worker": index + 1, "pid": pid, "exit_code": code}
            )
            self.say(
                f"  [{self.label}] worker {index + 1} (pid {pid}) exited with {code}; restarted"
            )
            if self.exits[index] >= CRASH_LOOP_EXITS:
                raise ChaosError(
                    f"worker {index + 1} exited {self.exits[index]} times on its "
                    f"own; last lines of {pool.logs[index]}:\n" + _tail(pool.logs[index])
                )

    def _kill(
        self, n: int, total: int, kill: Kill, pool: WorkerPool, feeder: Feeder, sampler: Sampler
    ) -> tuple[dict[str, Any], KillMoment]:
        """Carry out *kill*: a worker SIGKILLed and replaced, or the broker killed and started."""
        latest = sampler.latest()
        entry: dict[str, Any] = {"kill": n, "kind": kill.kind, "fed": feeder.sent}
        if kill.kind == "worker":
            assert kill.worker is not None
            killed_at = time.monotonic()
            old, new = pool.kill_and_restart(kill.worker)
            entry.update(
                worker=kill.worker + 1,
                pid=old,
                replacement_pid=new,
                at_s=round(killed_at - self.started, 2),
            )
            self.say(
                f"  [{self.label}] kill {n}/{total}: SIGKILL worker {kill.worker + 1} "
                f"(pid {old}) after {feeder.sent} records; replacement pid {new}"
            )
            members = latest.members if latest is not None and latest.up else None
            return entry, KillMoment(killed_at, members, killed_at)
        if self.broker is None:
            raise ChaosError("a broker kill needs a broker the harness started")
        killed_at = time.monotonic()
        pid = self.broker.kill()
        self.say(
            f"  [{self.label}] kill {n}/{total}: kill -9 of the broker (pid {pid}) "
            f"after {feeder.sent} records; restarting it ..."
        )
        try:
            self.broker.start(timeout=self.options.recovery_timeout)
        except BrokerError as exc:
            raise ChaosError(f"the broker did not restart after kill -9: {exc}") from exc
        up = time.monotonic()
        entry.update(
            pid=pid,
            at_s=round(killed_at - self.started, 2),
            broker_restart_s=round(up - killed_at, 2),
        )
        self.say(f"  [{self.label}] broker answers again after {up - killed_at:.1f} s")
        return entry, KillMoment(killed_at, None, up)

    def _await_recovery(
        self, entry: dict[str, Any], moment: KillMoment, pool: WorkerPool, sampler: Sampler
    ) -> dict[str, Any]:
        """Wait until the pipeline recovered from the kill *entry* describes; its figures."""
        deadline = moment.killed_at + self.options.recovery_timeout
        while True:
            self._supervise(pool)
            figures = measure_recovery(
                sampler.since(moment.killed_at - 2.0),
                moment.killed_at,
                self.options.workers,
                moment.members_before,
                moment.after,
            )
            if figures is not None:
                self.say(
                    f"  [{self.label}]   group stable after {figures['group_stable_s']} s, "
                    f"records flowing after {figures['flowing_s']} s, longest partition "
                    f"stall {figures['max_partition_stall_s']} s"
                )
                return figures
            if time.monotonic() > deadline:
                latest = sampler.latest()
                state = (
                    f"{latest.group} with {len(latest.members)}/{self.options.workers} members"
                    if latest is not None and latest.up
                    else "unreachable (the broker does not answer)"
                )
                what = (
                    f"worker {entry['worker']}"
                    if entry["kind"] == "worker"
                    else "the pipeline after the broker restart"
                )
                logs = "".join(f"\n--- last lines of {log} ---\n{_tail(log)}" for log in pool.logs)
                raise ChaosError(
                    f"{what} did not recover within "
                    f"{self.options.recovery_timeout:.0f} s of kill "
                    f"{entry['kill']}: the consumer group is {state}{logs}"
                )
            time.sleep(SAMPLE_PERIOD_S)

    def _settle(self, pool: WorkerPool, sampler: Sampler) -> bool:
        """Wait until every input record is committed and nothing has been written for a while."""
        deadline = time.monotonic() + self.options.settle_timeout
        quiet_since: float | None = None
        written = -1
        last_report = time.monotonic()
        while time.monotonic() < deadline:
            self._supervise(pool)
            latest = sampler.latest()
            if latest is not None and latest.up:
                if latest.written != written or any(latest.lag):
                    written, quiet_since = latest.written, None
                elif quiet_since is None:
                    quiet_since = latest.at
                elif latest.at - quiet_since >= QUIET_S:
                    return True
                if time.monotonic() - last_report > 10:
                    self.say(
                        f"  [{self.label}]   {sum(latest.lag)} input records not yet "
                        f"committed; {latest.written} records written"
                    )
                    last_report = time.monotonic()
            time.sleep(SAMPLE_PERIOD_S)
        self.say(
            f"  [{self.label}] the workers did not settle within "
            f"{self.options.settle_timeout:.0f} s; comparing what is there"
        )
        return False


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"


# -- reading and comparing -----------------------------------------------------------------


def read_raw(
    settings: Settings, spec: TopicSpec, timeout: float = 300.0
) -> Iterator[tuple[int, int, bytes | None, bytes | None]]:
    """(partition, offset, key, value) of every record on *spec*, partition by partition."""
    name = spec.full_name(settings.topic_prefix)
    consumer = KafkaConsumer(
        bootstrap_servers=settings.bootstrap,
        enable_auto_commit=False,
        client_id="claims-chaos-reader",
    )
    try:
        tps = [TopicPartition(name, p) for p in sorted(consumer.partitions_for_topic(name) or [])]
        ends = consumer.end_offsets(tps) if tps else {}
        for tp in tps:
            if not ends[tp]:
                continue
            consumer.assign([tp])
            consumer.seek_to_beginning(tp)
            deadline = time.monotonic() + timeout
            while consumer.position(tp) < ends[tp]:
                if time.monotonic() > deadline:
                    raise ChaosError(f"reading {name}[{tp.partition}] took over {timeout:.0f} s")
                for records in consumer.poll(timeout_ms=500, max_records=10000).values():
                    for r in records:
                        yield r.partition, r.offset, r.key, r.value
    finally:
        consumer.close()


def _digest(*parts: bytes | None) -> bytes:
    h = hashlib.sha256()
    for part in parts:
        data = part or b""
        h.update(len(data).to_bytes(8, "big") + data)
    return h.digest()[:16]


def _short(data: bytes | None) -> str:
    return hashlib.sha256(data or b"").hexdigest()[:12]


def identify(
    spec: TopicSpec,
    key: bytes | None,
    value: bytes | None,
    record: dict[str, Any] | None,
    prefix: str,
) -> tuple[str, dict[str, Any] | None]:
    """(record id, the record as compared) of one record of *spec* in a run on *prefix*.

    Dead letters are compared with the run's prefix taken out of ``source_topic``;
    their id is (stage, source topic, record id or a hash of the key, error).
    Undecodable values are identified by hashes of their key and value.
    """
    if record is None:
        return f"undecodable:{_short(key)}:{_short(value)}", None
    if spec is DEAD_LETTER:
        normal = {**record, "source_topic": str(record["source_topic"]).removeprefix(prefix)}
        who = record["record_id"] or f"key:{_short(record['key'])}"
        return f"{record['stage']}|{normal['source_topic']}|{who}|{record['error']}", normal
    value_of: Any = record
    for name in ID_FIELDS[spec.name]:
        value_of = value_of[name]
    return str(value_of), record


def _decoded(codec: Any, value: bytes | None) -> dict[str, Any] | None:
    try:
        record: dict[str, Any] = codec.decode(value)
    except DecodeError:
        return None
    return record


def read_contents(settings: Settings, spec: TopicSpec) -> TopicContents:
    """Every record of *spec* in the run on *settings*: content digests grouped by id."""
    codec = codec_for(spec.value_schema)
    dead_codec = codec_for(DEAD_LETTER.value_schema)
    contents = TopicContents()
    for _, _, key, value in read_raw(settings, spec):
        contents.records += 1
        record = _decoded(codec, value)
        rid, normal = identify(spec, key, value, record, settings.topic_prefix)
        body = dead_codec.encode(normal) if spec is DEAD_LETTER and normal is not None else value
        digest = _digest(key, body)
        contents.copies.setdefault(rid, Counter())[digest] += 1
        if spec is CLAIMS_LIFECYCLE:
            contents.latest[rid] = digest  # one partition per claim id, read in offset order
    return contents


def records_by_id(
    settings: Settings, spec: TopicSpec, ids: set[str]
) -> dict[str, list[dict[str, Any]]]:
    """The decoded records (as compared) of the given *ids* on *spec*, in offset order."""
    codec = codec_for(spec.value_schema)
    out: dict[str, list[dict[str, Any]]] = {}
    if not ids:
        return out
    for _, _, key, value in read_raw(settings, spec):
        rid, normal = identify(spec, key, value, _decoded(codec, value), settings.topic_prefix)
        if rid in ids and normal is not None:
            out.setdefault(rid, []).append({"__key__": _short(key), **normal})
    return out


def differing_fields(
    reference: list[dict[str, Any]], chaos: list[dict[str, Any]], latest_only: bool
) -> list[str]:
    """Names of the top-level fields in which the chaos run's copies differ from the reference's.

    ``__key__`` names a different record key.
    """
    if latest_only:
        reference, chaos = reference[-1:], chaos[-1:]
    names: set[str] = set()
    for copy in chaos:
        if copy in reference:
            continue
        base = reference[0] if reference else {}
        names |= {k for k in set(base) | set(copy) if base.get(k) != copy.get(k)}
    return sorted(names)


def compare_topic(
    spec: TopicSpec, reference: TopicContents, chaos: TopicContents, examples: int = 5
) -> tuple[dict[str, Any], set[str]]:
    """Lost, extra, differing and duplicate copies on one topic; and the differing ids."""
    ref_ids, chaos_ids = set(reference.copies), set(chaos.copies)
    lost = sorted(ref_ids - chaos_ids)
    extra = sorted(chaos_ids - ref_ids)
    differing: list[str] = []
    duplicates = 0
    for rid in sorted(ref_ids & chaos_ids):
        ref, got = reference.copies[rid], chaos.copies[rid]
        if spec is CLAIMS_LIFECYCLE:
            same = reference.latest[rid] == chaos.latest[rid]
        else:
            same = set(ref) == set(got)
        if not same:
            differing.append(rid)
        duplicates += sum(max(0, n - ref[d]) for d, n in got.items() if d in ref)
    reference_duplicates = sum(n - 1 for c in reference.copies.values() for n in c.values())
    report = {
        "reference_records": reference.records,
        "chaos_records": chaos.records,
        "ids": len(ref_ids),
        "lost": len(lost),
        "extra": len(extra),
        "differing": len(differing),
        "duplicate_copies": duplicates,
        "reference_duplicate_copies": reference_duplicates,
        "examples": {
            "lost": lost[:examples],
            "extra": extra[:examples],
            "differing": [{"id": rid} for rid in differing[:examples]],
        },
    }
    return report, set(differing[:examples])


def compare_runs(
    reference: RunResult, chaos: RunResult, ref_settings: Settings, chaos_settings: Settings
) -> dict[str, dict[str, Any]]:
    """Every topic of *chaos* against *reference*, with the fields that differ in examples."""
    topics: dict[str, dict[str, Any]] = {}
    for spec in ALL_TOPICS:
        report, wanted = compare_topic(
            spec, reference.contents[spec.name], chaos.contents[spec.name]
        )
        if wanted:
            ref = records_by_id(ref_settings, spec, wanted)
            got = records_by_id(chaos_settings, spec, wanted)
            for example in report["examples"]["differing"]:
                example["fields"] = differing_fields(
                    ref.get(example["id"], []),
                    got.get(example["id"], []),
                    latest_only=spec is CLAIMS_LIFECYCLE,
                )
        topics[spec.name] = report
    return topics


def _spread(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    return {"median": round(statistics.median(values), 2), "max": round(max(values), 2)}


def summarize_recovery(kills: list[dict[str, Any]]) -> dict[str, Any]:
    """Median and worst recovery figures over the worker kills, and the broker kill's."""
    workers = [k for k in kills if k["kind"] == "worker"]
    out: dict[str, Any] = {
        "worker_kills": len(workers),
        "group_stable_s": _spread([k["group_stable_s"] for k in workers]),
        "flowing_s": _spread([k["flowing_s"] for k in workers]),
        "max_partition_stall_s": _spread([k["max_partition_stall_s"] for k in workers]),
    }
    broker = next((k for k in kills if k["kind"] == "broker"), None)
    if broker is not None:
        out["broker"] = {
            name: broker[name]
            for name in ("broker_restart_s", "group_stable_s", "flowing_s", "max_partition_stall_s")
        }
    return out


# -- the whole harness ---------------------------------------------------------------------


@contextlib.contextmanager
def harness_cluster(
    settings: Settings, options: ChaosOptions, work_dir: Path, say: Callable[[str], None]
) -> Iterator[tuple[Settings, LocalBroker | None]]:
    """The cluster the runs use: a broker of the harness's own, or the configured cluster.

    A broker kill must not take down a broker someone else uses, so the harness starts
    its own (free ports, storage under *work_dir*) and stops it afterwards. An existing
    cluster (CLAIMS_BOOTSTRAP_SERVERS) is used only without a broker kill.
    """
    if settings.external_cluster:
        if options.broker_kill:
            raise ChaosError("a broker kill needs a broker the harness owns")
        say(f"Using the existing cluster at {settings.bootstrap} (no broker kill)")
        yield settings.with_changes(data_dir=work_dir), None
        return
    broker = LocalBroker(work_dir, free_port_pair())
    say(f"Starting the harness's own Kafka broker at {broker.bootstrap} ...")
    try:
        broker.start(timeout=options.recovery_timeout)
    except BrokerError as exc:
        raise ChaosError(f"the harness's broker did not start: {exc}") from exc
    try:
        yield settings.with_changes(data_dir=work_dir, broker_port=broker.port), broker
    finally:
        broker.stop()


def delete_run_topics(settings: Settings, prefixes: list[str]) -> None:
    """Delete every topic of the runs on *prefixes*, faust's own (changelog, leader) included."""
    admin = admin_client(settings)
    try:
        names = [t for t in admin.list_topics() if t.startswith(tuple(prefixes))]
    finally:
        admin.close()
    delete_topics(settings, names)


def run_topology(
    settings: Settings,
    topology: str,
    records: list[FeedRecord],
    options: ChaosOptions,
    log_dir: Path,
    broker: LocalBroker | None,
    say: Callable[[str], None],
    timelines: Path | None = None,
) -> dict[str, Any]:
    """The reference and the chaos run of one topology, compared; the sampler's timeline of
    each run written to *timelines* (JSON lines) when given."""
    tag = uuid.uuid4().hex[:8]
    ref_settings = settings.with_changes(topology=topology, topic_prefix=f"chaos-{tag}-ref.")
    chaos_settings = settings.with_changes(topology=topology, topic_prefix=f"chaos-{tag}-run.")
    plan = kill_plan(
        len(records), options.kills, options.workers, options.broker_kill, options.seed
    )
    say(
        f"[{topology}] reference run: {len(records)} records at {options.rate:g}/s, "
        f"{options.workers} workers, no kills"
    )
    reference = Run(
        ref_settings,
        f"{topology} reference",
        records,
        options,
        log_dir / topology / "reference",
        say,
    ).run([])
    say(f"[{topology}] reference run settled in {reference.seconds} s")
    say(
        f"[{topology}] chaos run: {options.kills} worker kills"
        f"{' and a broker kill' if options.broker_kill else ''} at records "
        f"{', '.join(str(k.at) for k in plan)}"
    )
    chaos = Run(
        chaos_settings,
        f"{topology} chaos",
        records,
        options,
        log_dir / topology / "chaos",
        say,
        broker,
    ).run(plan)
    say(f"[{topology}] chaos run settled in {chaos.seconds} s; comparing the topics ...")
    topics = compare_runs(reference, chaos, ref_settings, chaos_settings)
    totals = {
        name: sum(t[name] for t in topics.values())
        for name in ("lost", "extra", "differing", "duplicate_copies")
    }
    ok = (
        reference.settled
        and chaos.settled
        and not (totals["lost"] or totals["extra"] or totals["differing"])
    )
    if settings.external_cluster and ok:
        delete_run_topics(settings, [ref_settings.topic_prefix, chaos_settings.topic_prefix])
    if timelines is not None:
        timelines.mkdir(parents=True, exist_ok=True)
        for run in (reference, chaos):
            path = timelines / f"{topology}-{run.label.rsplit(' ', 1)[-1]}-timeline.jsonl"
            path.write_text("".join(json.dumps(row) + "\n" for row in run.timeline))
    return {
        "reference": {
            "prefix": reference.prefix,
            "seconds": reference.seconds,
            "settled": reference.settled,
            "unplanned_restarts": reference.unplanned_restarts,
        },
        "chaos": {
            "prefix": chaos.prefix,
            "seconds": chaos.seconds,
            "settled": chaos.settled,
            "kills": chaos.kills,
            "unplanned_restarts": chaos.unplanned_restarts,
        },
        "topics": topics,
        "totals": totals,
        "recovery": summarize_recovery(chaos.kills),
        "ok": ok,
    }


def run_chaos(
    settings: Settings,
    options: ChaosOptions,
    out: Path | None = None,
    progress: TextIO = sys.stderr,
) -> dict[str, Any]:
    """Run the harness for each topology; the report, also written to *out*/chaos.json."""

    def say(message: str) -> None:
        print(message, file=progress, flush=True)

    if options.workers < 1 or options.kills < 0 or options.encounters < 1 or options.rate <= 0:
        raise ChaosError(
            "--encounters and --workers must be at least 1, --kills at least 0, --rate above 0"
        )
    if settings.external_cluster and options.broker_kill:
        raise ChaosError(
            f"a broker kill needs a broker the harness owns, and "
            f"CLAIMS_BOOTSTRAP_SERVERS names {settings.bootstrap}; run with "
            "--no-broker-kill, or unset it to let the harness start its own"
        )
    work_dir = (
        settings.data_dir / "chaos" / f"{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"
    )
    work_dir.mkdir(parents=True, exist_ok=True)
    log_dir = (out / "logs") if out is not None else work_dir / "logs"
    base_ms = int(time.time()) * 1000
    records = chaos_input(options.encounters, options.seed, options.malformed, base_ms)
    report: dict[str, Any] = {
        "encounters": options.encounters,
        "malformed": options.malformed,
        "input_records": len(records),
        "kills": options.kills,
        "workers": options.workers,
        "broker_kill": options.broker_kill,
        "seed": options.seed,
        "rate": options.rate,
        "partitions": settings.partitions,
        "started_at": datetime.now(UTC).isoformat(),
        "topologies": {},
    }
    completed = False
    try:
        with harness_cluster(settings, options, work_dir, say) as (cluster, broker):
            if broker is not None:
                report["broker"] = {"data_dir": str(work_dir), "port": broker.port}
            for topology in options.topologies:
                report["topologies"][topology] = run_topology(
                    cluster, topology, records, options, log_dir, broker, say, out
                )
        completed = True
    finally:
        if completed and all(t["ok"] for t in report["topologies"].values()):
            shutil.rmtree(work_dir, ignore_errors=True)
            if out is None:
                say("(worker logs were removed with the run's folder; pass --out to keep them)")
        elif "broker" in report:
            say(
                f"The runs' topics are kept in {work_dir}; to look at them: "
                f"CLAIMS_DATA_DIR={work_dir} CLAIMS_BROKER_PORT={report['broker']['port']} "
                "claims broker start, then CLAIMS_TOPIC_PREFIX=<a run's prefix> with the same "
                "two variables for `claims status CLAIM_ID` and the other commands"
            )
        elif report["topologies"]:
            say(f"The runs' topics are kept on {settings.bootstrap} (prefixes in the report)")
    report["ok"] = all(t["ok"] for t in report["topologies"].values())
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "chaos.json").write_text(json.dumps(report, indent=2) + "\n")
    return report


def print_report(report: dict[str, Any], stream: TextIO) -> None:
    """The report as a person reads it."""
    for topology, result in report["topologies"].items():
        chaos = result["chaos"]
        workers = sum(1 for k in chaos["kills"] if k["kind"] == "worker")
        brokers = len(chaos["kills"]) - workers
        print(
            f"\n{topology}: {report['input_records']} input records "
            f"({report['encounters']} encounters, {report['malformed']} malformed), "
            f"{report['workers']} workers, {workers} worker kills, {brokers} broker kill(s); "
            f"reference {result['reference']['seconds']} s, chaos {chaos['seconds']} s"
            f"{'' if chaos['settled'] else ' (did not settle)'}; topic prefixes "
            f"{result['reference']['prefix']} and {chaos['prefix']}",
            file=stream,
        )
        print(
            f"  {'topic':<22}{'reference':>10}{'chaos':>8}{'lost':>7}{'extra':>7}"
            f"{'differing':>11}{'duplicates':>12}",
            file=stream,
        )
        for name, t in result["topics"].items():
            print(
                f"  {name:<22}{t['reference_records']:>10}{t['chaos_records']:>8}"
                f"{t['lost']:>7}{t['extra']:>7}{t['differing']:>11}"
                f"{t['duplicate_copies']:>12}",
                file=stream,
            )
        print(
            f"  {'kill':<6}{'at':>8}  {'what':<18}{'group stable':>13}{'flowing':>9}"
            f"{'longest stall':>15}{'backlog':>9}",
            file=stream,
        )
        for k in chaos["kills"]:
            what = (
                f"worker {k['worker']}"
                if k["kind"] == "worker"
                else f"broker (up {k['broker_restart_s']} s)"
            )
            print(
                f"  {k['kill']:<6}{k['at_s']:>7}s  {what:<18}{k['group_stable_s']:>12}s"
                f"{k['flowing_s']:>8}s{k['max_partition_stall_s']:>14}s"
                f"{k['backlog_peak_records']:>9}",
                file=stream,
            )
        for r in [*result["reference"]["unplanned_restarts"], *chaos["unplanned_restarts"]]:
            print(
                f"  worker {r['worker']} exited on its own (code {r['exit_code']}) at "
                f"{r['at_s']} s and was restarted",
                file=stream,
            )
        for name, t in result["topics"].items():
            for kind in ("lost", "extra"):
                if t["examples"][kind]:
                    print(f"  {name}: {kind} e.g. {', '.join(t['examples'][kind])}", file=stream)
            for example in t["examples"]["differing"]:
                print(
                    f"  {name}: differing {example['id']} in "
                    f"{', '.join(example.get('fields', [])) or '?'}",
                    file=stream,
                )
        verdict = "OK" if result["ok"] else "FAILED"
        totals = result["totals"]
        print(
            f"  {verdict}: {totals['lost']} lost, {totals['extra']} extra, "
            f"{totals['differing']} differing, {totals['duplicate_copies']} duplicate copies",
            file=stream,
        )

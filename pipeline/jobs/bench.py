"""Benchmark: the whole flow on fresh topics, against a raw aiokafka baseline.

For each topology it runs, on its own topic prefix:

1. **Throughput**: once the workers have joined, N encounters are fed as
   fast as the producer goes (faster than the pipeline drains them);
   encounters/s is N over the span between the first and the last record the
   pipeline wrote (so worker start-up is not counted). Per-stage
   msg/s come from the record each stage writes once per input (its lifecycle
   record, or the remittance), over that stage's own first-to-last span.
2. **Latency**: a paced feed well below capacity; for each encounter, the time
   from its record on ehr.encounters to its remittance (or hold), as
   p50/p95/p99 in milliseconds (broker timestamps, one clock).
3. **Memory**: peak resident memory of each worker, sampled during the runs.

The baseline, in the same run: plain aiokafka consumers and producers moving
the same bytes through the same number of hops (4) with no decoding or rules.
"""

from __future__ import annotations

import asyncio
import itertools
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from pipeline.config import Settings
from pipeline.ingest.feed import producer, publish
from pipeline.ingest.synthetic import generate
from pipeline.kafka.admin import create_topics, delete_topics
from pipeline.kafka.broker import cluster_for
from pipeline.kafka.codec import codec_for
from pipeline.kafka.readers import read_topic, snapshot_offsets
from pipeline.runtime.processes import WorkerPool
from pipeline.views.outcomes import OutcomeCollector
from processors.contracts.topics import (
    ALL_TOPICS,
    CLAIMS_LIFECYCLE,
    CLAIMS_REMITTANCE,
    CLAIMS_SUBMITTED,
    DENIALS_REWORK,
    EHR_ENCOUNTERS,
    TopicSpec,
)
from processors.contracts.vocab import ItemKind

# What each stage writes once per record it handles: its lifecycle record
# (coding, claims, denials) or its remittance (adjudication).
STAGE_OUTPUTS = {
    "coding": CLAIMS_LIFECYCLE,
    "claims": CLAIMS_LIFECYCLE,
    "adjudication": CLAIMS_REMITTANCE,
    "denials": CLAIMS_LIFECYCLE,
}
HOPS = ("hop0", "hop1", "hop2", "hop3", "hop4")


def say(message: str) -> None:
    """Progress on stderr (stdout carries the JSON)."""
    print(message, file=sys.stderr, flush=True)


def percentile(values: list[float], pct: float) -> float:
    """The *pct* percentile of *values* (nearest rank)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(pct / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


class MemorySampler:
    """Samples the workers' resident memory in the background."""

    def __init__(self, pool: WorkerPool) -> None:
        self.pool = pool
        self.peak = 0

    def check(self) -> None:
        """Fail if a worker died; record the current memory peak."""
        self.pool.check_alive()
        self.peak = max([self.peak, *self.pool.peak_rss_bytes()])


def run_topology(
    settings: Settings, topology: str, encounters: int, seed: int, workers: int, log_dir: Path
) -> dict[str, Any]:
    """Throughput, per-stage rates, latency and memory for one topology."""
    settings = settings.with_changes(
        topology=topology, topic_prefix=f"bench-{uuid.uuid4().hex[:8]}."
    )
    create_topics(settings)
    try:
        before = snapshot_offsets(settings)
        collector = OutcomeCollector(settings, before)
        with WorkerPool(settings, workers, log_dir / topology) as pool:
            sampler = MemorySampler(pool)
            pool.wait_ready()
            say(f"[{topology}] feeding {encounters} encounters to {workers} worker(s) ...")
            fed = publish(settings, generate(encounters, seed), progress=None)
            ok = collector.wait_for(fed.sent, timeout=900, progress=None, alive=sampler.check)
            if not ok:
                raise RuntimeError(f"{topology}: backlog not drained; see {log_dir}")
            drained_at_ms = int(time.time() * 1000)
            backlog_end = snapshot_offsets(settings)
            # Latency: a paced feed at a rate the pipeline keeps up with.
            rate, count = 250, min(2500, encounters)
            say(f"[{topology}] paced feed of {count} at {rate}/s for latency ...")
            paced = paced_feed(settings, count, seed + 1, rate)
            ok = collector.wait_for(
                fed.sent + paced, timeout=600, progress=None, alive=sampler.check
            )
            if not ok:
                raise RuntimeError(f"{topology}: paced feed not drained; see {log_dir}")
        collector.close()

        lifecycle = read_topic(settings, CLAIMS_LIFECYCLE, before[CLAIMS_LIFECYCLE.name])
        outputs: dict[str, list[tuple[int, dict[str, Any] | None]]] = {
            name: [(ts, v) for ts, v in lifecycle if v and v["stage"] == name]
            for name in ("coding", "claims", "denials")
        }
        outputs["adjudication"] = read_topic(
            settings, CLAIMS_REMITTANCE, before[CLAIMS_REMITTANCE.name]
        )
        holds = read_topic(settings, DENIALS_REWORK, before[DENIALS_REWORK.name])
        backlog = [ts for recs in outputs.values() for ts, _ in recs if ts <= drained_at_ms]
        end_of_backlog = max(backlog)
        span = max(end_of_backlog - min(backlog), 1) / 1000
        per_stage = {}
        for name, recs in outputs.items():
            stamps = sorted(ts for ts, _ in recs if ts <= end_of_backlog)
            if len(stamps) > 1:
                per_stage[name] = round(
                    len(stamps) / max((stamps[-1] - stamps[0]) / 1000, 0.001), 1
                )
        latencies = latency_ms(settings, backlog_end, outputs["adjudication"], holds)
        return {
            "topology": topology,
            "workers": workers,
            "encounters": fed.sent,
            "encounters_per_s": round(fed.sent / span, 1),
            "per_stage_msgs_per_s": per_stage,
            "latency_ms": {
                "paced_rate_per_s": rate,
                "samples": len(latencies),
                "p50": round(percentile(latencies, 50), 1),
                "p95": round(percentile(latencies, 95), 1),
                "p99": round(percentile(latencies, 99), 1),
                "mean": round(statistics.fmean(latencies), 1) if latencies else 0.0,
            },
            "worker_peak_rss_mb": round(sampler.peak / 2**20, 1),
        }
    finally:
        delete_topics(settings, [t.full_name(settings.topic_prefix) for t in ALL_TOPICS])


def latency_ms(
    settings: Settings,
    backlog_end: dict[str, dict[int, int]],
    remittances: list[tuple[int, dict[str, Any] | None]],
    holds: list[tuple[int, dict[str, Any] | None]],
) -> list[float]:
    """Feed-to-outcome latency of each paced encounter, in milliseconds."""
    fed = read_topic(settings, EHR_ENCOUNTERS, backlog_end[EHR_ENCOUNTERS.name])
    fed_at = {v["encounter_id"]: ts for ts, v in fed if v}
    done_at: dict[str, int] = {}
    for ts, value in remittances:
        if value and value["encounter_id"] in fed_at:
            done_at[value["encounter_id"]] = ts
    for ts, value in holds:
        if value and value["kind"] != ItemKind.DENIAL and value["encounter_id"] in fed_at:
            done_at.setdefault(value["encounter_id"], ts)
    return [float(done_at[e] - fed_at[e]) for e in done_at]


def paced_feed(settings: Settings, count: int, seed: int, rate: int) -> int:
    """Publish *count* encounters at about *rate* per second; returns the number sent."""
    events = list(generate(count, seed))
    codec = codec_for(EHR_ENCOUNTERS.value_schema)
    topic = EHR_ENCOUNTERS.full_name(settings.topic_prefix)
    sent = 0
    started = time.monotonic()
    chunk = max(1, rate // 20)
    prod = producer(settings)  # one connection for the whole paced feed
    try:
        for i in range(0, len(events), chunk):
            for key, event in events[i : i + chunk]:
                prod.send(topic, key=key.encode(), value=codec.encode(event))
            prod.flush()
            sent += len(events[i : i + chunk])
            ahead = sent / rate - (time.monotonic() - started)
            if ahead > 0:
                time.sleep(ahead)
    finally:
        prod.close()
    return sent


async def _baseline(settings: Settings, prefix: str, count: int) -> float:
    """Move *count* records through four hops with plain aiokafka; records/s end to end."""
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.bootstrap, linger_ms=5, max_batch_size=65536
    )
    await producer.start()
    try:

        async def hop(src: str, dst: str) -> None:
            consumer = AIOKafkaConsumer(
                f"{prefix}{src}",
                bootstrap_servers=settings.bootstrap,
                group_id=f"{prefix}baseline-{src}",
                auto_offset_reset="earliest",
                max_poll_records=500,
            )
            await consumer.start()
            moved = 0
            try:
                while moved < count:
                    batch = await consumer.getmany(timeout_ms=200, max_records=500)
                    futures = [
                        await producer.send(f"{prefix}{dst}", r.value, key=r.key)
                        for records in batch.values()
                        for r in records
                    ]
                    if futures:
                        await asyncio.gather(*futures)
                        await consumer.commit()
                    moved += len(futures)
            finally:
                await consumer.stop()

        tasks = [asyncio.create_task(hop(a, b)) for a, b in itertools.pairwise(HOPS)]
        started = time.monotonic()
        await asyncio.gather(*tasks)
        return count / (time.monotonic() - started)
    finally:
        await producer.stop()


def run_baseline(settings: Settings, encounters: int, seed: int) -> dict[str, Any]:
    """The raw aiokafka baseline on a fresh set of hop topics."""
    prefix = f"bench-base-{uuid.uuid4().hex[:8]}."
    specs = [TopicSpec(h, "member key", EHR_ENCOUNTERS.value_schema) for h in HOPS]
    create_topics(settings, specs, prefix=prefix)
    try:
        base = settings.with_changes(topic_prefix=prefix)
        say(f"[baseline] feeding {encounters} records, then 4 raw aiokafka hops ...")
        codec = codec_for(EHR_ENCOUNTERS.value_schema)
        prod = producer(settings)
        for key, event in generate(encounters, seed):
            prod.send(f"{prefix}hop0", key=key.encode(), value=codec.encode(event))
        prod.flush()
        prod.close()
        rate = asyncio.run(_baseline(base, prefix, encounters))
        return {
            "records_per_s": round(rate, 1),
            "hops": len(HOPS) - 1,
            "what": "aiokafka consume+produce of the same bytes, no decode, no rules",
        }
    finally:
        delete_topics(settings, [f"{prefix}{h}" for h in HOPS])


def run_bench(
    settings: Settings, *, encounters: int, seed: int, workers: int, topologies: list[str]
) -> dict[str, Any]:
    """Run the benchmark and return its figures."""
    log_dir = settings.data_dir / "bench-logs"
    with cluster_for(settings, say=say):
        baseline = run_baseline(settings, encounters, seed)
        runs = [run_topology(settings, t, encounters, seed, workers, log_dir) for t in topologies]
        for run in runs:
            run["ratio_to_baseline"] = round(run["encounters_per_s"] / baseline["records_per_s"], 3)
        return {
            "baseline": baseline,
            "runs": runs,
            "target": {"encounters_per_s": 1000, "worker_rss_mb": 500},
        }


def best_rate(work: Callable[[], Any], items: int, rounds: int) -> float:
    """The best of *rounds* timed runs of *work*, as *items* per second."""
    best = 0.0
    for _ in range(rounds):
        started = time.perf_counter()
        work()
        best = max(best, items / (time.perf_counter() - started))
    return best


def run_coding_bench(encounters: int, seed: int, rounds: int = 3) -> dict[str, Any]:
    """Encounters/s of the pure coding function on one core, against Avro decoding.

    The baseline, in the same process on the same events, is decoding them
    from their Avro bytes: the work that surrounds coding in every worker.
    """
    from processors.coding.rules import code_encounter  # noqa: PLC0415
    from processors.refdata import load_refdata  # noqa: PLC0415

    refdata = load_refdata()
    events = [event for _, event in generate(encounters, seed)]
    codec = codec_for(EHR_ENCOUNTERS.value_schema)
    encoded = [codec.encode(event) for event in events]
    for event in events[:200]:
        code_encounter(event, refdata)  # warm the per-code caches once

    coding = best_rate(lambda: [code_encounter(e, refdata) for e in events], len(events), rounds)
    decoding = best_rate(lambda: [codec.decode(b) for b in encoded], len(events), rounds)
    held = sum(code_encounter(e, refdata).held for e in events)
    return {
        "encounters": len(events),
        "coding_per_s": round(coding, 1),
        "baseline_avro_decode_per_s": round(decoding, 1),
        "ratio_to_baseline": round(coding / decoding, 3),
        "held_share": round(held / len(events), 4),
        "target_per_s": 20000,
    }


def run_adjudication_bench(encounters: int, seed: int, rounds: int = 3) -> dict[str, Any]:
    """Claims/s of the pure adjudication function on one core, against Avro decoding.

    The claims are the ones the coding and claims stages build from a synthetic
    feed; each is adjudicated against its member's accumulators, as the stage
    does. The baseline, in the same process, is decoding the same claims from
    their Avro bytes.
    """
    from pipeline.runtime.dryrun import InProcessPipeline  # noqa: PLC0415
    from processors.adjudication.rules import adjudicate  # noqa: PLC0415
    from processors.memberstate import MemberState  # noqa: PLC0415
    from processors.refdata import load_refdata  # noqa: PLC0415
    from processors.stage import Output  # noqa: PLC0415

    refdata = load_refdata()
    claims = [
        (out.key, out.record)
        for out in InProcessPipeline(refdata, seed).run_all(generate(encounters, seed))
        if isinstance(out, Output) and out.topic is CLAIMS_SUBMITTED
    ]
    codec = codec_for(CLAIMS_SUBMITTED.value_schema)
    encoded = [codec.encode(claim) for _, claim in claims]

    def adjudicate_all(timings: list[float] | None = None) -> None:
        store: dict[bytes, Any] = {}
        for key, claim in claims:
            started = time.perf_counter()
            result = adjudicate(
                claim,
                refdata.payers[claim["payer_id"]],
                MemberState.load(store, key),
                refdata,
                seed,
            )
            result.member_state.commit(store)
            if timings is not None:
                timings.append(time.perf_counter() - started)

    adjudicate_all()  # warm the fee schedule caches once
    rate = best_rate(adjudicate_all, len(claims), rounds)
    decoding = best_rate(lambda: [codec.decode(b) for b in encoded], len(claims), rounds)
    timings: list[float] = []
    adjudicate_all(timings)
    cuts = statistics.quantiles(timings, n=100)
    return {
        "claims": len(claims),
        "adjudication_per_s": round(rate, 1),
        "baseline_avro_decode_per_s": round(decoding, 1),
        "ratio_to_baseline": round(rate / decoding, 3),
        "latency_us": {
            "p50": round(cuts[49] * 1e6, 1),
            "p95": round(cuts[94] * 1e6, 1),
            "p99": round(cuts[98] * 1e6, 1),
        },
        "target_per_s": 20000,
    }

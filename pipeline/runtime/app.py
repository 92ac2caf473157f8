"""The faust application: one thin agent per stage (or one fused agent), and the state table.

Each agent takes batches (``stream.take_events``), hands them to the
:class:`~pipeline.runtime.runner.StageRunner` and sends what it returns through the
app's producer, waiting for every send before the batch's offsets are
acknowledged: at-least-once delivery, made safe by idempotent stages.

Values stay bytes through faust (``raw`` serializers) and are decoded by our own
Avro codec: faust's per-event model machinery costs more than the work itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
import time
from typing import Any, NoReturn

import faust
from aiokafka.errors import MessageSizeTooLargeError
from faust.serializers import codecs
from faust.types import TP
from mode.utils.logging import cry

from pipeline.config import Settings, topic_max_message_bytes
from pipeline.runtime import faust_fixes
from pipeline.runtime.exitcodes import EXIT_STALLED, EXIT_UNDELIVERED
from pipeline.runtime.metrics import Metrics
from pipeline.runtime.runner import (
    BatchState,
    Incoming,
    Outgoing,
    StageRunner,
    clock_partition,
    partition_for,
)
from pipeline.runtime.stallwatch import CHECK_EVERY_S, StallWatch
from pipeline.runtime.topology import ENTRY_STAGES, STAGES
from processors.memberstate import member_of
from processors.stage import Agenda, Stage, StageContext

log = logging.getLogger(__name__)

BATCH_SIZE = 500
BATCH_WINDOW_S = 0.05
# Offsets are committed this often (and every BATCH_SIZE records), so a worker killed
# mid-stream redelivers about the batch in hand. (A commit started from an agent can
# deadlock with a rebalance, which waits for it while it waits for the rebalance.)
COMMIT_INTERVAL_S = 0.2
# A crashed worker's partitions wait this long before they move to another worker.
SESSION_TIMEOUT_S = 6.0
# A batch whose outputs and state writes are not all acknowledged in this time is taken as
# undelivered (the worker exits as above) rather than waited for without end: the
# producer's own retries end well before it, and a broker restart takes seconds.
DELIVERY_TIMEOUT_S = 120.0


class MemberTable(faust.Table):  # type: ignore[type-arg]
    """The member-state table: every row in its member's partition, every write awaited.

    Rows of one member (``processors.memberstate``) share the member key as a
    prefix; the changelog partition is the member key's, so a member's rows are
    restored to the worker that owns its partition of the claim path. The
    futures of the changelog writes are kept so that a batch is acknowledged
    only once its state, like its outputs, is on the broker.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.pending: list[Any] = []

    def partition_for_key(self, key: Any) -> int | None:
        clock = clock_partition(key)
        if clock is not None:
            return clock
        return partition_for(member_of(key), int(self.partitions or 1))

    def on_key_set(self, key: Any, value: Any) -> None:
        self.pending.append(self.send_changelog(self.partition_for_key(key), key, value))
        self._sensor_on_set(self, key, value)

    def on_key_del(self, key: Any) -> None:
        self.pending.append(
            self.send_changelog(
                self.partition_for_key(key), key, value=None, value_serializer="raw"
            )
        )
        self._sensor_on_del(self, key)

    def take_pending(self) -> list[Any]:
        """The changelog writes made since the last call, to await."""
        pending, self.pending = self.pending, []
        return pending


def _row_size(value: Any) -> int:
    return len(codecs.dumps("json", value))


def app_id(settings: Settings) -> str:
    """Consumer group and faust app id: one per topic prefix."""
    return f"{settings.topic_prefix}claims-pipeline"


def build_app(settings: Settings, *, group_id: str | None = None) -> faust.App:
    """The faust app for *settings*, with its agents and state table registered."""
    faust_fixes.apply()
    datadir = settings.data_dir / "faust" / (group_id or app_id(settings))
    datadir.mkdir(parents=True, exist_ok=True)
    app = faust.App(
        group_id or app_id(settings),
        broker=f"kafka://{settings.bootstrap}",
        # faust reads its own environment variables (BROKER_URL, BROKER_CREDENTIALS,
        # APP_STORE, ...) over these arguments: give it none (pipeline.runtime.faust_env).
        env={},
        web_enabled=False,
        store="memory://",
        topic_replication_factor=1,
        topic_partitions=settings.partitions,
        consumer_auto_offset_reset="earliest",
        key_serializer="raw",
        value_serializer="raw",
        table_standby_replicas=0,
        broker_session_timeout=SESSION_TIMEOUT_S,
        broker_heartbeat_interval=1.0,
        broker_commit_interval=COMMIT_INTERVAL_S,
        broker_commit_every=BATCH_SIZE,
        stream_wait_empty=False,
        producer_max_batch_size=65536,
        producer_linger_ms=5,
        producer_max_request_size=topic_max_message_bytes(settings.max_record_bytes),
        datadir=str(datadir),
    )

    @app.task  # type: ignore[untyped-decorator]
    async def drop_monitor() -> None:
        # Per-event sensor bookkeeping costs more than our stage work; the
        # monitor is attached at start, so it is detached once running.
        with contextlib.suppress(KeyError):
            app.sensors.remove(app.monitor)

    _watch_for_stalls(app)

    refdata = settings.refdata()
    table = MemberTable(
        app,
        name="member-accumulators",
        beacon=app.tables.beacon,
        partitions=settings.partitions,
        key_type=bytes,  # raw row-key bytes; values are JSON
        extra_topic_configs={
            "max.message.bytes": str(topic_max_message_bytes(settings.max_record_bytes))
        },
    )
    app.tables.add(table)
    fused = settings.topology == "fused"
    batch_state = BatchState(table, settings.max_record_bytes, _row_size)
    plain = StageContext(refdata=refdata)
    agenda = Agenda()
    stateful = StageContext(
        refdata=refdata,
        state=batch_state,
        seed=settings.seed,
        max_auto_resubmissions=settings.max_auto_resubmissions,
        agenda=agenda,
    )

    def context(stage: Stage) -> StageContext:
        return stateful if stage.stateful else plain

    metrics = Metrics() if settings.metrics_port else None
    runner = StageRunner(
        STAGES,
        context,
        prefix=settings.topic_prefix,
        fused=fused,
        agenda=agenda,
        partitions=settings.partitions,
        metrics=metrics,
        max_record_bytes=settings.max_record_bytes,
    )

    async def reset_runner(*_: Any, **__: Any) -> None:
        # Another worker may have changed these partitions' member states meanwhile.
        runner.reset_partitions()

    async def forget_delivered(*args: Any, **__: Any) -> None:
        # args: the app, then the revoked partitions
        faust_fixes.delivered(app).forget(args[1] if len(args) > 1 else ())

    app.on_partitions_assigned.connect(reset_runner)
    app.on_partitions_revoked.connect(forget_delivered)

    stages = ENTRY_STAGES if fused else STAGES
    if metrics is not None:
        metrics.serve(
            settings,
            group_id or app_id(settings),
            [s.input.full_name(settings.topic_prefix) for s in stages],
        )
    for stage in stages:
        _register_agent(app, settings, runner, stage, batch_state, table)
    if settings.http_port:
        _register_http(app, settings)
    return app


def _register_http(app: faust.App, settings: Settings) -> None:
    """Serve ``POST /fhir`` on the worker, publishing through the app's producer."""
    from aiohttp import web  # noqa: PLC0415

    from pipeline.ingest.directory import billing_for  # noqa: PLC0415
    from pipeline.ingest.http import Limits, build_web_app  # noqa: PLC0415
    from processors.contracts.topics import DEAD_LETTER, EHR_ENCOUNTERS  # noqa: PLC0415

    events_topic = EHR_ENCOUNTERS.full_name(settings.topic_prefix)
    dead_topic = DEAD_LETTER.full_name(settings.topic_prefix)

    async def publish(events: list[tuple[bytes, bytes]], dead_letters: list[bytes]) -> None:
        # Returns once the broker has acknowledged every record: only then is a bundle accepted.
        await _send_all(
            app,
            [Outgoing(events_topic, key, value) for key, value in events]
            + [Outgoing(dead_topic, None, value) for value in dead_letters],
        )

    @app.task  # type: ignore[untyped-decorator]
    async def serve_fhir() -> None:
        limits = Limits.from_settings(settings)
        runner = web.AppRunner(
            build_web_app(publish, billing_for(settings), limits, payers=settings.refdata().payers)
        )
        await runner.setup()
        await web.TCPSite(runner, settings.http_host, settings.http_port).start()
        log.info(
            "accepting FHIR bundles on http://%s:%d/fhir", settings.http_host, settings.http_port
        )


async def _in_order(app: faust.App, stage: str, batch: list[Incoming]) -> list[Incoming]:
    """The records of *batch* that follow, per partition, the last one delivered.

    A partition whose batch starts past the next record to deliver (faust skipped
    records around a rebalance) is sought back to that record, so that every
    member's records are processed in their order; records delivered already are
    left out.
    """
    seen: dict[TP, list[int]] = {}
    for record in batch:
        seen.setdefault(TP(record.topic, record.partition), []).append(record.offset)
    runs = faust_fixes.delivered(app).in_order(app.consumer, seen)
    for tp, (_, end) in runs.items():
        if end < max(seen[tp]) + 1:
            log.warning(
                "stage %s: %s[%d] brought offsets %d-%d with %d not among them; reading the "
                "partition again from %d so that its records are processed in order",
                stage, tp.topic, tp.partition, min(seen[tp]), max(seen[tp]), end, end,
            )  # fmt: skip
            await app.consumer.seek(tp, end)
    return [
        r for r in batch
        if runs[TP(r.topic, r.partition)][0] <= r.offset < runs[TP(r.topic, r.partition)][1]
    ]  # fmt: skip


def _watch_for_stalls(app: faust.App) -> None:
    """Stop the worker when a partition it holds has records waiting and stops moving."""
    watch = StallWatch()

    def position(tp: TP) -> int | None:
        delivered = faust_fixes.delivered(app).next.get(tp)
        if delivered is not None:
            return delivered
        committed = app.consumer._committed_offset.get(tp)  # type: ignore[attr-defined]
        return int(committed) if committed is not None else None

    def highwater(tp: TP) -> int | None:
        try:
            found = app.consumer.highwater(tp)
        except Exception:  # not fetched yet, or the consumer is being rebuilt
            return None
        return int(found) if found is not None else None

    @app.timer(interval=CHECK_EVERY_S)  # type: ignore[untyped-decorator]
    async def watch_for_stalls() -> None:
        if app.rebalancing or not app.flow_control.is_active():
            watch.reset()
            return
        topics = faust_fixes.delivered(app).topics
        held = [tp for tp in app.consumer.assignment() if tp.topic in topics]
        stalls = watch.check(time.monotonic(), held, position, highwater)
        for stall in stalls:
            if faust_fixes.fetch_again(app.consumer, stall.tp):
                log.warning(
                    "%s[%d] has %d records waiting at offset %d, unmoved for %.0f s, and was "
                    "not being fetched; fetching it again",
                    stall.tp.topic,
                    stall.tp.partition,
                    stall.highwater - stall.at,
                    stall.at,
                    stall.still_s,
                )
        stalls = [s for s in stalls if s.still_s >= watch.timeout]
        if not stalls:
            return
        for stall in stalls:
            log.critical(
                "%s[%d] has %d records waiting at offset %d and none was processed for "
                "%.0f s; stopping the worker so that it restarts and reads them again",
                stall.tp.topic,
                stall.tp.partition,
                stall.highwater - stall.at,
                stall.at,
                stall.still_s,
            )
        _stop_for_restart(EXIT_STALLED, stacks=True)


async def _send_all(app: faust.App, outgoing: list[Outgoing]) -> None:
    pending = [await app.producer.send(o.topic, o.key, o.value, None, None, None) for o in outgoing]
    if pending:
        await asyncio.gather(*pending)


def _undelivered(stage: str, exc: BaseException) -> NoReturn:
    """Stop the process without acknowledging the batch: it is processed again on restart."""
    hint = ""
    if isinstance(exc, MessageSizeTooLargeError):
        hint = (
            " The broker refused a record as too large: set CLAIMS_MAX_RECORD_BYTES no "
            "higher than the cluster's message.max.bytes."
        )
    log.critical(
        "stage %s could not deliver a batch (%s: %s); exiting without committing it "
        "so that it is processed again when the worker restarts.%s",
        stage,
        type(exc).__name__,
        exc,
        hint,
    )
    _stop_for_restart(EXIT_UNDELIVERED, stacks=False)


def _stop_for_restart(code: int, *, stacks: bool) -> NoReturn:
    """End the process now, nothing acknowledged, for a supervisor to restart it (*code*:
    pipeline.runtime.exitcodes); with *stacks*, first log where every thread and task stands."""
    if stacks:
        cry(file=sys.stderr)
    logging.shutdown()
    os._exit(code)


async def _deliver(
    app: faust.App, stage: str, outgoing: list[Outgoing], changelog: list[Any]
) -> None:
    """Send *outgoing* and wait for it and the batch's state writes, or stop the worker."""

    async def send() -> None:
        await _send_all(app, outgoing)
        if changelog:
            await asyncio.gather(*changelog)

    try:
        await asyncio.wait_for(send(), DELIVERY_TIMEOUT_S)
    except asyncio.CancelledError:
        raise
    except TimeoutError:
        # Where every thread and task stands, for the log: what was it waiting for?
        cry(file=sys.stderr)
        _undelivered(
            stage,
            TimeoutError(
                f"{len(outgoing)} records and {len(changelog)} state writes not acknowledged "
                f"within {DELIVERY_TIMEOUT_S:g} s"
            ),
        )
    except Exception as exc:
        _undelivered(stage, exc)


def _register_agent(
    app: faust.App,
    settings: Settings,
    runner: StageRunner,
    stage: Stage,
    batch_state: BatchState,
    table: MemberTable,
) -> None:
    faust_fixes.delivered(app).topics.add(stage.input.full_name(settings.topic_prefix))
    topic = app.topic(
        stage.input.full_name(settings.topic_prefix),
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
    )

    async def run_stage(stream: Any) -> None:
        async for events in stream.take_events(BATCH_SIZE, within=BATCH_WINDOW_S):
            # take_events acknowledges the batch when this body ends, even by an exception:
            # so nothing here may raise. A record's own failure is its dead letter (the
            # runner); anything else stops the worker before the acknowledgement.
            try:
                batch = [
                    Incoming(
                        ev.message.topic,
                        ev.message.partition,
                        ev.message.offset,
                        ev.message.key,
                        ev.message.value,
                        int(ev.message.timestamp * 1000),
                    )
                    for ev in events
                ]
                batch = await _in_order(app, stage.name, batch)
                outgoing = runner.process_many(stage, batch)
                ticket = runner.ticket
                batch_state.flush()
                changelog = table.take_pending()
            except Exception as exc:
                log.exception("stage %s failed on a batch", stage.name)
                _undelivered(stage.name, exc)
            await _deliver(app, stage.name, outgoing, changelog)
            done: dict[TP, list[int]] = {}
            for record in batch:
                done.setdefault(TP(record.topic, record.partition), []).append(record.offset)
            faust_fixes.delivered(app).record(app.consumer, done)
            try:
                runner.delivered(ticket)
                batch_state.flush()
                # Not awaited: if these writes are lost, the follow-ups are made again.
                table.take_pending()
            except Exception as exc:
                log.exception("stage %s failed recording a delivered batch", stage.name)
                _undelivered(stage.name, exc)

    name = f"fused-{stage.name}" if settings.topology == "fused" else stage.name
    run_stage.__name__ = f"stage_{name}"
    run_stage.__qualname__ = f"pipeline.runtime.app.stage_{name}"
    app.agent(topic, name=f"claims.{name}")(run_stage)

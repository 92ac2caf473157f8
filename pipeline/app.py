"""The faust application: one thin agent per stage (or one fused agent), and the state table.

Each agent takes batches (``stream.take_events``), hands them to the
:class:`~pipeline.runtime.StageRunner` and sends what it returns through the
app's producer, waiting for every send before the batch's offsets are
acknowledged: at-least-once delivery, made safe by idempotent stages.

Values stay bytes through faust (``raw`` serializers) and are decoded by our own
Avro codec: faust's per-event model machinery costs more than the work itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator, MutableMapping
from datetime import UTC, datetime
from typing import Any

import faust

from pipeline.config import Settings
from pipeline.metrics import Metrics
from pipeline.runtime import ENTRY_STAGES, STAGES, Incoming, Outgoing, StageRunner
from processors.refdata import load_refdata
from processors.stage import Agenda, Stage, StageContext

log = logging.getLogger(__name__)

BATCH_SIZE = 500
BATCH_WINDOW_S = 0.05


class BatchState(MutableMapping[bytes, Any]):
    """Write-back view of a faust table for one batch: one changelog write per key.

    Reads see the batch's own writes; :meth:`flush` writes each changed key to
    the table once.
    """

    def __init__(self, table: MutableMapping[bytes, Any]) -> None:
        self.table = table
        self.dirty: dict[bytes, Any] = {}

    def __getitem__(self, key: bytes) -> Any:
        if key in self.dirty:
            return self.dirty[key]
        return self.table[key]

    def get(self, key: bytes, default: Any = None) -> Any:
        if key in self.dirty:
            return self.dirty[key]
        return self.table.get(key, default)

    def __setitem__(self, key: bytes, value: Any) -> None:
        self.dirty[key] = value

    def __delitem__(self, key: bytes) -> None:
        raise NotImplementedError("member state is never deleted by a stage")

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.table)

    def __len__(self) -> int:
        return len(self.table)

    def flush(self) -> None:
        """Write the batch's changes to the table (and so to its changelog)."""
        for key, value in self.dirty.items():
            self.table[key] = value
        self.dirty.clear()


def app_id(settings: Settings) -> str:
    """Consumer group and faust app id: one per topic prefix."""
    return f"{settings.topic_prefix}claims-pipeline"


def build_app(settings: Settings, *, group_id: str | None = None) -> faust.App:
    """The faust app for *settings*, with its agents and state table registered."""
    datadir = settings.data_dir / "faust" / (group_id or app_id(settings))
    datadir.mkdir(parents=True, exist_ok=True)
    app = faust.App(
        group_id or app_id(settings),
        broker=f"kafka://{settings.bootstrap}",
        web_enabled=False,
        store="memory://",
        topic_replication_factor=1,
        topic_partitions=settings.partitions,
        consumer_auto_offset_reset="earliest",
        key_serializer="raw",
        value_serializer="raw",
        table_standby_replicas=0,
        broker_session_timeout=10.0,
        broker_heartbeat_interval=1.0,
        stream_wait_empty=False,
        producer_max_batch_size=65536,
        producer_linger_ms=5,
        datadir=str(datadir),
    )

    @app.task  # type: ignore[untyped-decorator]
    async def drop_monitor() -> None:
        # Per-event sensor bookkeeping costs more than our stage work; the
        # monitor is attached at start, so it is detached once running.
        with contextlib.suppress(KeyError):
            app.sensors.remove(app.monitor)

    refdata = load_refdata(settings.payers_dir) if settings.payers_dir else load_refdata()
    table = app.Table(
        "member-accumulators",
        partitions=settings.partitions,
        key_type=bytes,  # raw member-key bytes; values are JSON
        # Keyed like the claim path (member key, same partition count, same
        # partitioner), so each member's changelog partition is its stream's.
        use_partitioner=True,
    )
    fused = settings.topology == "fused"
    batch_state = BatchState(table)
    plain = StageContext(refdata=refdata)
    agenda = Agenda()
    stateful = StageContext(refdata=refdata, state=batch_state, seed=settings.seed,
                            max_auto_resubmissions=settings.max_auto_resubmissions,
                            agenda=agenda)

    def context(stage: Stage) -> StageContext:
        return stateful if stage.stateful else plain

    metrics = Metrics() if settings.metrics_port else None
    runner = StageRunner(context, prefix=settings.topic_prefix, fused=fused, agenda=agenda,
                         partitions=settings.partitions, metrics=metrics)
    stages = ENTRY_STAGES if fused else STAGES
    if metrics is not None:
        metrics.serve(settings, group_id or app_id(settings),
                      [s.input.full_name(settings.topic_prefix) for s in stages])
    for stage in stages:
        _register_agent(app, settings, runner, stage, batch_state)
    if settings.http_port:
        _register_http(app, settings)
    return app


def _register_http(app: faust.App, settings: Settings) -> None:
    """Serve ``POST /fhir`` on the worker, publishing through the app's producer."""
    from aiohttp import web  # noqa: PLC0415

    from pipeline.codec import codec_for  # noqa: PLC0415
    from pipeline.ingest.http import build_web_app  # noqa: PLC0415
    from pipeline.topics import DEAD_LETTER, EHR_ENCOUNTERS  # noqa: PLC0415
    from processors.synthetic import member_key, practice_record  # noqa: PLC0415

    events_codec = codec_for(EHR_ENCOUNTERS.value_schema)
    dead_codec = codec_for(DEAD_LETTER.value_schema)

    async def publish(events: list[dict[str, Any]], dead: list[tuple[bytes, str]]) -> None:
        outgoing = [Outgoing(EHR_ENCOUNTERS.full_name(settings.topic_prefix),
                             member_key(e).encode(), events_codec.encode(e)) for e in events]
        outgoing += [Outgoing(DEAD_LETTER.full_name(settings.topic_prefix), b"", dead_codec.encode({
            "stage": "ingest", "error": reason, "error_type": "VALIDATION",
            "source_topic": "ingest:fhir-http", "source_partition": -1, "source_offset": -1,
            "key": None, "value": raw, "record_id": None,
            "failed_at": datetime.now(UTC)})) for raw, reason in dead]
        await _send_all(app, outgoing)

    @app.task  # type: ignore[untyped-decorator]
    async def serve_fhir() -> None:
        runner = web.AppRunner(build_web_app(publish, practice_record()))
        await runner.setup()
        await web.TCPSite(runner, settings.http_host, settings.http_port).start()
        log.info("accepting FHIR bundles on http://%s:%d/fhir", settings.http_host,
                 settings.http_port)


async def _send_all(app: faust.App, outgoing: list[Outgoing]) -> None:
    pending = [
        await app.producer.send(o.topic, o.key, o.value, None, None, None) for o in outgoing
    ]
    if pending:
        await asyncio.gather(*pending)


def _register_agent(app: faust.App, settings: Settings, runner: StageRunner, stage: Stage,
                    batch_state: BatchState) -> None:
    topic = app.topic(
        stage.input.full_name(settings.topic_prefix),
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
    )

    async def run_stage(stream: Any) -> None:
        async for events in stream.take_events(BATCH_SIZE, within=BATCH_WINDOW_S):
            batch = [
                Incoming(
                    ev.message.topic, ev.message.partition, ev.message.offset,
                    ev.message.key, ev.message.value, int(ev.message.timestamp * 1000),
                )
                for ev in events
            ]
            outgoing = runner.process_many(stage, batch)
            batch_state.flush()
            await _send_all(app, outgoing)

    name = f"fused-{stage.name}" if settings.topology == "fused" else stage.name
    run_stage.__name__ = f"stage_{name}"
    run_stage.__qualname__ = f"pipeline.app.stage_{name}"
    app.agent(topic, name=f"claims.{name}")(run_stage)

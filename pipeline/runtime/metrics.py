"""Prometheus metrics of a worker: per-stage throughput, consumer lag, dead letters, denials.

Enabled with ``CLAIMS_METRICS_PORT``: the worker serves ``/metrics`` there.
Counters grow as the runner handles records; the consumer lag of each input
topic is measured against the broker every few seconds in a background thread.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from kafka import KafkaAdminClient, KafkaConsumer
from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server

from pipeline.config import Settings
from processors.contracts.topics import DENIALS_REWORK, TopicSpec

log = logging.getLogger(__name__)

LAG_INTERVAL_S = 5.0


class Metrics:
    """The worker's metrics, in their own registry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.records = Counter(
            "claims_stage_records", "Records a stage handled", ["stage"], registry=self.registry
        )
        self.dead_letters = Counter(
            "claims_dead_letters",
            "Records sent to the dead-letter topic",
            ["stage"],
            registry=self.registry,
        )
        self.rework = Counter(
            "claims_rework_items",
            "Rework items made, by kind and category",
            ["kind", "category"],
            registry=self.registry,
        )
        self.lag = Gauge(
            "claims_consumer_lag",
            "Records on an input topic not yet processed by the pipeline's consumer group",
            ["topic"],
            registry=self.registry,
        )

    def handled(self, stage: str) -> None:
        """One record handled by *stage*."""
        self.records.labels(stage).inc()

    def dead_letter(self, stage: str) -> None:
        """One record *stage* sent to the dead-letter topic."""
        self.dead_letters.labels(stage).inc()

    def published(self, topic: TopicSpec, record: dict[str, Any]) -> None:
        """One record a stage published on *topic*: rework items are counted by kind."""
        if topic.name == DENIALS_REWORK.name:
            self.rework.labels(record["kind"], record["category"]).inc()

    def serve(self, settings: Settings, group_id: str, topics: list[str]) -> None:
        """Serve /metrics on the configured port and keep the lag gauge current."""
        start_http_server(settings.metrics_port, addr=settings.http_host, registry=self.registry)
        stop = threading.Event()
        thread = threading.Thread(
            target=self._measure_lag,
            args=(settings, group_id, topics, stop),
            name="claims-lag",
            daemon=True,
        )
        thread.start()

    def _measure_lag(
        self, settings: Settings, group_id: str, topics: list[str], stop: threading.Event
    ) -> None:
        admin = consumer = None
        while not stop.wait(LAG_INTERVAL_S):
            try:
                admin = admin or KafkaAdminClient(bootstrap_servers=settings.bootstrap)
                consumer = consumer or KafkaConsumer(bootstrap_servers=settings.bootstrap)
                committed = admin.list_group_offsets(group_id).get(group_id, {})
                for topic in topics:
                    parts = [tp for tp in committed if tp.topic == topic]
                    if not parts:
                        continue
                    ends = consumer.end_offsets(parts)
                    self.lag.labels(topic).set(
                        sum(max(ends[tp] - committed[tp].offset, 0) for tp in parts)
                    )
            except Exception as exc:  # the gauge waits for the next round; the worker goes on
                log.warning("consumer lag not measured: %s", type(exc).__name__)

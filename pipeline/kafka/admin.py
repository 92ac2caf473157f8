"""Topic administration: create the registry's topics, count what is on them.

Uses kafka-python's admin and consumer clients (synchronous; CLI and tests).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from kafka import KafkaConsumer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError

from pipeline.config import Settings, topic_max_message_bytes
from processors.contracts.topics import ALL_TOPICS, TopicSpec

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TopicReport:
    """What `create_topics` did for one topic."""

    name: str
    created: bool
    partitions: int


def admin_client(settings: Settings) -> KafkaAdminClient:
    """An admin client for the configured cluster."""
    return KafkaAdminClient(
        bootstrap_servers=settings.bootstrap,
        client_id="claims-admin",
        request_timeout_ms=30000,
    )


def create_topics(
    settings: Settings, specs: Iterable[TopicSpec] = ALL_TOPICS, prefix: str | None = None
) -> list[TopicReport]:
    """Create every topic in *specs* that does not exist yet; idempotent."""
    prefix = settings.topic_prefix if prefix is None else prefix
    admin = admin_client(settings)
    try:
        existing = set(admin.list_topics())
        reports: list[TopicReport] = []
        wanted: list[NewTopic] = []
        for spec in specs:
            name = spec.full_name(prefix)
            if name in existing:
                found = admin.describe_topics([name])[0]
                reports.append(TopicReport(name, False, len(found["partitions"])))
                continue
            partitions = settings.partitions
            config = {
                **spec.config(),
                "max.message.bytes": str(topic_max_message_bytes(settings.max_record_bytes)),
            }
            wanted.append(NewTopic(name, partitions, 1, topic_configs=config))
            reports.append(TopicReport(name, True, partitions))
        if wanted:
            try:
                admin.create_topics(wanted, timeout_ms=30000)
            except TopicAlreadyExistsError:
                log.info("some topics were created concurrently; keeping them")
            admin.wait_for_topics([t.name for t in wanted], timeout_ms=30000)
        return reports
    finally:
        admin.close()


def delete_topics(settings: Settings, names: Iterable[str]) -> None:
    """Delete *names* that exist (tests and benchmark clean-up)."""
    admin = admin_client(settings)
    try:
        existing = set(admin.list_topics())
        doomed = [n for n in names if n in existing]
        if doomed:
            admin.delete_topics(doomed, timeout_ms=30000)
    finally:
        admin.close()


def end_offsets(settings: Settings, topic: str) -> dict[int, int]:
    """Latest offset of each partition of *topic* (its record count when nothing expired)."""
    consumer = KafkaConsumer(bootstrap_servers=settings.bootstrap, client_id="claims-offsets")
    try:
        parts = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(parts)]
        offsets = consumer.end_offsets(tps) if tps else {}
        return {tp.partition: off for tp, off in offsets.items()}
    finally:
        consumer.close()


def topic_count(settings: Settings, topic: str) -> int:
    """Records on *topic* (sum of end offsets)."""
    return sum(end_offsets(settings, topic).values())


def group_state(settings: Settings, group_id: str) -> tuple[str, int]:
    """(state, member count) of consumer group *group_id*."""
    admin = admin_client(settings)
    try:
        info = admin.describe_groups([group_id]).get(group_id, {})
    except KafkaError as exc:
        # A new cluster has no group coordinator until its offsets topic exists.
        return f"Unavailable ({type(exc).__name__})", 0
    finally:
        admin.close()
    return str(info.get("group_state", "Unknown")), len(info.get("members") or [])


def wait_for_group(
    settings: Settings,
    group_id: str,
    members: int,
    timeout: float,
    alive: Callable[[], None] | None = None,
) -> None:
    """Wait until *group_id* is Stable with *members* members (workers joined and assigned).

    Feeding before then works too, but a member joining mid-stream triggers a
    rebalance, and records in flight on a revoked partition are delivered again
    (at-least-once): the outputs are identical, yet they arrive twice.
    """
    deadline = time.monotonic() + timeout
    state, count = "Unknown", 0
    while time.monotonic() < deadline:
        state, count = group_state(settings, group_id)
        if state == "Stable" and count >= members:
            return
        if alive is not None:
            alive()
        time.sleep(0.5)
    raise TimeoutError(
        f"consumer group {group_id} is {state} with {count}/{members} members after "
        f"{timeout:.0f} s; check the worker logs"
    )

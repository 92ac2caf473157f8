"""The dashboard's reader on a real broker: waiting while its topics do not exist, live once
they are created, without a restart."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from kafka import KafkaProducer

from pipeline.config import Settings, load_settings
from pipeline.kafka.admin import create_topics
from pipeline.kafka.deadletters import Source, dead_letter_record, encode_dead_letter
from pipeline.views.dashboard import follow_topics
from pipeline.views.dashboard_state import DashboardState
from processors.contracts.topics import DEAD_LETTER
from processors.contracts.vocab import ErrorType
from tests import waiting

DEADLINE_S = 60.0


def wait_until(condition: Callable[[], bool], what: str) -> None:
    """Poll *condition* until it holds, failing with *what* past the deadline."""
    waiting.wait_until(condition, DEADLINE_S, what)


def send_dead_letter(settings: Settings) -> None:
    """One dead letter on the settings' dead-letter topic."""
    producer = KafkaProducer(bootstrap_servers=settings.bootstrap, acks="all")
    value = encode_dead_letter(
        dead_letter_record(
            "ingest",
            "a test record",
            ErrorType.DECODE,
            Source("ingest:test", value=b"x"),
            max_record_bytes=settings.max_record_bytes,
        )
    )
    producer.send(DEAD_LETTER.full_name(settings.topic_prefix), value=value).get(timeout=30)
    producer.close()


@pytest.fixture
def bare_settings(kafka_bootstrap: str, tmp_path: Path) -> Settings:
    """Settings on the session broker with a fresh prefix whose topics do not exist yet."""
    return load_settings(
        {
            "CLAIMS_BOOTSTRAP_SERVERS": kafka_bootstrap,
            "CLAIMS_TOPIC_PREFIX": f"t{uuid.uuid4().hex[:10]}.",
            "CLAIMS_DATA_DIR": str(tmp_path),
            "CLAIMS_PARTITIONS": "2",
        }
    )


@pytest.fixture
def reading(bare_settings: Settings) -> Iterator[DashboardState]:
    """A dashboard reader following *bare_settings* in a thread; its state."""
    state = DashboardState()
    stop = threading.Event()
    reader = threading.Thread(
        target=follow_topics,
        args=(bare_settings, state, stop),
        kwargs={"look_again": 0.2},
        daemon=True,
    )
    reader.start()
    yield state
    stop.set()
    reader.join(DEADLINE_S)
    assert not reader.is_alive()


def test_missing_topics_leave_it_waiting_and_it_goes_live_once_they_exist(
    bare_settings: Settings, reading: DashboardState
) -> None:
    """Before the topics exist the state waits, naming them, with nothing counted; a topic
    created later is read from its beginning; once all exist it is live and keeps reading."""
    state = reading
    remittances = f"{bare_settings.topic_prefix}claims.remittance"
    wait_until(
        lambda: remittances in (state.snapshot()["source"]["reason"] or ""),
        "the reason names the missing topics",
    )
    snap = state.snapshot()
    assert snap["source"]["status"] == "waiting"
    assert snap["version"] == 0

    create_topics(bare_settings, [DEAD_LETTER])
    send_dead_letter(bare_settings)
    wait_until(
        lambda: state.snapshot()["totals"]["dead_letters"] == 1,
        "the dead letter on the topic created later is read",
    )
    reason = state.snapshot()["source"]["reason"] or ""
    assert state.snapshot()["source"]["status"] == "waiting"
    assert remittances in reason
    assert DEAD_LETTER.full_name(bare_settings.topic_prefix) not in reason

    create_topics(bare_settings)
    wait_until(lambda: state.snapshot()["source"]["status"] == "live", "the reader goes live")
    assert state.snapshot()["source"]["reason"] is None
    send_dead_letter(bare_settings)
    wait_until(
        lambda: state.snapshot()["totals"]["dead_letters"] == 2, "records keep arriving once live"
    )

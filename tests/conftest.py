"""Shared fixtures: a real Kafka broker for the session, fresh topics per test."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pipeline.admin import create_topics
from pipeline.config import Settings, load_settings
from tests.kafka_cluster import kafka_cluster


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """Bootstrap address of the session's real Kafka broker."""
    with kafka_cluster() as bootstrap:
        yield bootstrap


@pytest.fixture
def settings_factory(kafka_bootstrap: str, tmp_path: Path) -> Callable[..., Settings]:
    """Settings on the session broker with a fresh topic prefix, topics created."""

    def make(**changes: object) -> Settings:
        prefix = f"t{uuid.uuid4().hex[:10]}."
        settings = load_settings({
            "CLAIMS_BOOTSTRAP_SERVERS": kafka_bootstrap,
            "CLAIMS_TOPIC_PREFIX": prefix,
            "CLAIMS_DATA_DIR": str(tmp_path / "data"),
            "CLAIMS_PARTITIONS": "2",
        }).with_changes(**changes)
        create_topics(settings)
        return settings

    return make

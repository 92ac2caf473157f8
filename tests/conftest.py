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


def _factory(bootstrap: str, data_dir: Path) -> Callable[..., Settings]:
    def make(**changes: object) -> Settings:
        prefix = f"t{uuid.uuid4().hex[:10]}."
        settings = load_settings({
            "CLAIMS_BOOTSTRAP_SERVERS": bootstrap,
            "CLAIMS_TOPIC_PREFIX": prefix,
            "CLAIMS_DATA_DIR": str(data_dir),
            "CLAIMS_PARTITIONS": "2",
        }).with_changes(**changes)
        create_topics(settings)
        return settings

    return make


@pytest.fixture
def settings_factory(kafka_bootstrap: str, tmp_path: Path) -> Callable[..., Settings]:
    """Settings on the session broker with a fresh topic prefix, topics created."""
    return _factory(kafka_bootstrap, tmp_path / "data")


@pytest.fixture(scope="module")
def module_settings_factory(kafka_bootstrap: str,
                            tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Settings]:
    """:func:`settings_factory` for module-scoped fixtures (a run shared by several tests)."""
    return _factory(kafka_bootstrap, tmp_path_factory.mktemp("data"))

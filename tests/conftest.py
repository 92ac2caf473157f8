"""Shared fixtures: a real Kafka broker for the session, fresh topics per test."""

from __future__ import annotations

import os
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pipeline.config import Settings, load_settings
from pipeline.kafka.admin import create_topics
from tests.kafka_cluster import kafka_cluster

STRAY_THREAD_GRACE_S = 10.0
# A test's folder gives its marker: `pytest -m "not e2e"`, `make test-integration`, ...
FOLDER_MARKERS = ("unit", "integration", "e2e")
TESTS = Path(__file__).resolve().parent
# The test practice, billing for the HL7 fixtures' sending facility (MSH-4 SPRINGFIELD_FM):
# every test and the commands they run see it unless a test removes it.
PROVIDER_DIRECTORY = TESTS / "fixtures" / "providers.json"
os.environ.setdefault("CLAIMS_PROVIDER_DIRECTORY", str(PROVIDER_DIRECTORY))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        parts = item.path.resolve().relative_to(TESTS).parts
        if len(parts) > 1 and parts[0] in FOLDER_MARKERS:
            item.add_marker(getattr(pytest.mark, parts[0]))


EXIT_STATUS = pytest.StashKey[int]()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    session.config.stash[EXIT_STATUS] = int(exitstatus)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    """Name the threads a failed test left running, and end the run without them.

    faust's consumer runs in a non-daemon thread; one left behind by a test that
    failed mid-start would keep the interpreter from ever exiting.
    """
    deadline = time.monotonic() + STRAY_THREAD_GRACE_S
    stray = _stray_threads()
    while stray and time.monotonic() < deadline:
        stray[0].join(timeout=0.5)
        stray = _stray_threads()
    if stray:
        names = ", ".join(sorted(t.name for t in stray))
        sys.stderr.write(f"\nthreads still running after the tests: {names}; not waiting\n")
        sys.stderr.flush()
        sys.stdout.flush()
        os._exit(config.stash.get(EXIT_STATUS, 1) or 1)


def _stray_threads() -> list[threading.Thread]:
    return [
        t
        for t in threading.enumerate()
        if t is not threading.main_thread() and not t.daemon and t.is_alive()
    ]


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """Bootstrap address of the session's real Kafka broker."""
    with kafka_cluster() as bootstrap:
        yield bootstrap


def _factory(bootstrap: str, data_dir: Path) -> Callable[..., Settings]:
    def make(**changes: object) -> Settings:
        prefix = f"t{uuid.uuid4().hex[:10]}."
        settings = load_settings(
            {
                "CLAIMS_BOOTSTRAP_SERVERS": bootstrap,
                "CLAIMS_TOPIC_PREFIX": prefix,
                "CLAIMS_DATA_DIR": str(data_dir),
                "CLAIMS_PARTITIONS": "2",
                "CLAIMS_PROVIDER_DIRECTORY": str(PROVIDER_DIRECTORY),
            }
        ).with_changes(**changes)
        create_topics(settings)
        return settings

    return make


@pytest.fixture
def settings_factory(kafka_bootstrap: str, tmp_path: Path) -> Callable[..., Settings]:
    """Settings on the session broker with a fresh topic prefix, topics created."""
    return _factory(kafka_bootstrap, tmp_path / "data")


@pytest.fixture(scope="module")
def module_settings_factory(
    kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> Callable[..., Settings]:
    """:func:`settings_factory` for module-scoped fixtures (a run shared by several tests)."""
    return _factory(kafka_bootstrap, tmp_path_factory.mktemp("data"))

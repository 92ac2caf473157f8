"""A worker runs on the pipeline's settings whatever faust's own variables say, and never
prints a credential."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

import pipeline.runtime.app  # noqa: F401 - faust imported here before F_LOOP is set for the worker
from pipeline.config import Settings
from pipeline.ingest.feed import publish
from pipeline.ingest.synthetic import generate
from pipeline.kafka.readers import snapshot_offsets
from pipeline.runtime.processes import WorkerPool
from pipeline.views.outcomes import OutcomeCollector

CREDENTIALS_VALUE = "sasl-password-never-printed"
# Each would break or redirect an unguarded worker: another cluster, credentials faust
# refuses with the value in the error, an event loop that is not installed, a store that
# needs rocksdict, other partition counts and acks.
FAUST_VARIABLES = {
    "BROKER_URL": "kafka://127.0.0.1:1",
    "BROKER_CREDENTIALS": CREDENTIALS_VALUE,
    "F_LOOP": "eventlet",
    "APP_STORE": "rocksdb://",
    "TOPIC_PARTITIONS": "17",
    "PRODUCER_ACKS": "0",
}


def test_a_worker_ignores_faust_variables_and_names_them_without_their_values(
    settings_factory: Callable[..., Settings], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With faust's variables set around it, a worker joins our broker and accounts for every
    encounter; its log names each variable it ignored and never holds the secret."""
    settings = settings_factory()
    for name, value in FAUST_VARIABLES.items():
        monkeypatch.setenv(name, value)
    collector = OutcomeCollector(settings, snapshot_offsets(settings))
    with WorkerPool(settings, 1, tmp_path / "logs") as pool:
        pool.wait_ready()
        fed = publish(settings, generate(40, 12), progress=None)
        assert collector.wait_for(fed.sent, timeout=300, progress=None, alive=pool.check_alive)
    collector.close()
    log = pool.logs[0].read_text(errors="replace")
    for name in FAUST_VARIABLES:
        assert f"{name} is set in the environment" in log
    assert CREDENTIALS_VALUE not in log

"""Member accumulators survive a worker restart mid-stream."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from pipeline.config import Settings
from pipeline.feed import publish
from pipeline.outcomes import OutcomeCollector, snapshot_offsets
from pipeline.processes import WorkerPool
from processors.synthetic import generate

pytestmark = pytest.mark.e2e

ENCOUNTERS = 600
SEED = 77


def test_restart_mid_stream_gives_the_same_remittances_as_one_run(
        settings_factory: Callable[..., Settings], tmp_path: Path) -> None:
    """Stopping the worker partway and starting a new one changes no remittance."""
    steady = settings_factory()
    collector = OutcomeCollector(steady, snapshot_offsets(steady))
    with WorkerPool(steady, 1, tmp_path / "steady") as pool:
        pool.wait_ready()
        fed = publish(steady, generate(ENCOUNTERS, SEED), progress=None)
        assert collector.wait_for(fed.sent, timeout=300, progress=None, alive=pool.check_alive)
    collector.close()

    # The same feed in two halves, with the worker stopped and a new one started between
    # them: the second half's claims need the accumulators the first half built.
    restarted = settings_factory()
    events = list(generate(ENCOUNTERS, SEED))
    half = ENCOUNTERS // 2
    collector2 = OutcomeCollector(restarted, snapshot_offsets(restarted))
    with WorkerPool(restarted, 1, tmp_path / "first") as pool:
        pool.wait_ready()
        publish(restarted, events[:half], progress=None)
        assert collector2.wait_for(half, timeout=300, progress=None, alive=pool.check_alive)
    with WorkerPool(restarted, 1, tmp_path / "second") as pool:
        pool.wait_ready()
        publish(restarted, events[half:], progress=None)
        assert collector2.wait_for(fed.sent, timeout=300, progress=None, alive=pool.check_alive)
    collector2.close()

    # Redelivered claims are answered again, identically; member totals are unchanged.
    assert collector2.outcomes.remittances == collector.outcomes.remittances
    assert collector2.outcomes.holds == collector.outcomes.holds

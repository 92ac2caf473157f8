"""Member accumulators survive a worker restart mid-stream, clean or by a crash."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pipeline.config import Settings
from pipeline.ingest.feed import publish
from pipeline.ingest.synthetic import generate
from pipeline.kafka.readers import snapshot_offsets
from pipeline.runtime.processes import WorkerPool
from pipeline.views.outcomes import OutcomeCollector, Outcomes

ENCOUNTERS = 600
SEED = 77


@pytest.fixture(scope="module")
def steady(
    module_settings_factory: Callable[..., Settings], tmp_path_factory: pytest.TempPathFactory
) -> Outcomes:
    """The outcomes of the feed run by one worker without interruption."""
    settings = module_settings_factory()
    collector = OutcomeCollector(settings, snapshot_offsets(settings))
    with WorkerPool(settings, 1, tmp_path_factory.mktemp("steady")) as pool:
        pool.wait_ready()
        fed = publish(settings, generate(ENCOUNTERS, SEED), progress=None)
        assert collector.wait_for(fed.sent, timeout=300, progress=None, alive=pool.check_alive)
    collector.close()
    return collector.outcomes


def member_totals(outcomes: Outcomes) -> dict[str, tuple[int, int]]:
    """Per member: (patient responsibility, paid) summed over their remittances."""
    totals: dict[str, tuple[int, int]] = {}
    for remit in outcomes.remittances.values():
        patient, paid = totals.get(remit["member_key"], (0, 0))
        totals[remit["member_key"]] = (
            patient + remit["patient_responsibility_cents"],
            paid + remit["paid_cents"],
        )
    return totals


def assert_same_outcomes(run: Outcomes, steady: Outcomes) -> None:
    """Every remittance and hold equals the uninterrupted run's; so do member totals."""
    assert run.remittances.keys() == steady.remittances.keys()
    changed: list[Any] = [
        k for k in steady.remittances if run.remittances[k] != steady.remittances[k]
    ]
    assert changed == []
    assert run.holds == steady.holds
    assert member_totals(run) == member_totals(steady)


def test_clean_restart_between_halves_changes_no_remittance(
    steady: Outcomes, settings_factory: Callable[..., Settings], tmp_path: Path
) -> None:
    """The feed in two halves, the worker stopped and a new one started between them."""
    settings = settings_factory()
    events = list(generate(ENCOUNTERS, SEED))
    half = ENCOUNTERS // 2
    collector = OutcomeCollector(settings, snapshot_offsets(settings))
    with WorkerPool(settings, 1, tmp_path / "first") as pool:
        pool.wait_ready()
        publish(settings, events[:half], progress=None)
        assert collector.wait_for(half, timeout=300, progress=None, alive=pool.check_alive)
    # The second half's claims need the accumulators the first half built.
    with WorkerPool(settings, 1, tmp_path / "second") as pool:
        pool.wait_ready()
        publish(settings, events[half:], progress=None)
        assert collector.wait_for(ENCOUNTERS, timeout=300, progress=None, alive=pool.check_alive)
    collector.close()
    assert_same_outcomes(collector.outcomes, steady)


def test_worker_killed_mid_stream_is_replaced_without_changing_a_total(
    steady: Outcomes, settings_factory: Callable[..., Settings], tmp_path: Path
) -> None:
    """SIGKILL while claims are in flight; the replacement worker's answers are the same."""
    settings = settings_factory()
    events = list(generate(ENCOUNTERS, SEED))
    collector = OutcomeCollector(settings, snapshot_offsets(settings))
    with WorkerPool(settings, 1, tmp_path / "crashed") as pool:
        pool.wait_ready()
        publish(settings, events[: ENCOUNTERS // 2], progress=None)
        assert collector.wait_for(
            ENCOUNTERS // 4, timeout=300, progress=None, alive=pool.check_alive
        )
        # The rest of the feed keeps arriving in small chunks; the worker is killed when
        # half of them are out, so it dies with records in flight and more to come.
        rest = events[ENCOUNTERS // 2 :]
        chunks = [rest[i : i + 20] for i in range(0, len(rest), 20)]
        halfway = threading.Event()

        def feed() -> None:
            for n, chunk in enumerate(chunks):
                publish(settings, chunk, progress=None)
                if n == len(chunks) // 2:
                    halfway.set()
                time.sleep(0.05)

        feeder = threading.Thread(target=feed)
        feeder.start()
        assert halfway.wait(timeout=120)
        pool.kill()
        feeder.join()
    in_flight = ENCOUNTERS - len(collector.outcomes.accounted())
    assert in_flight > 0, "the worker finished before it was killed"
    with WorkerPool(settings, 1, tmp_path / "replacement") as pool:
        pool.wait_ready()
        assert collector.wait_for(ENCOUNTERS, timeout=300, progress=None, alive=pool.check_alive)
    collector.close()
    # Redelivered claims are answered again, byte for byte; each remittance is kept once.
    assert_same_outcomes(collector.outcomes, steady)

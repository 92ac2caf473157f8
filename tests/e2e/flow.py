"""What the end-to-end tests share: free ports, a whole run through workers, waiting."""

from __future__ import annotations

import socket
from pathlib import Path

from pipeline.config import Settings
from pipeline.ingest.feed import publish
from pipeline.ingest.synthetic import generate
from pipeline.kafka.readers import record_counts, snapshot_offsets
from pipeline.runtime.processes import WorkerPool
from pipeline.views.outcomes import OutcomeCollector
from tests.waiting import wait_until


def free_port() -> int:
    """A TCP port nobody listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_for_encounters(collector: OutcomeCollector, ids: set[str], timeout: float = 120) -> None:
    """Poll until each encounter in *ids* has a remittance or a hold."""

    def accounted() -> bool:
        collector.poll()
        return ids <= collector.outcomes.accounted()

    wait_until(accounted, timeout, f"encounters {sorted(ids)} accounted for", every=0)


def run_flow(
    settings: Settings,
    tmp_path: Path,
    encounters: int,
    seed: int,
    workers: int = 2,
    malformed: int = 0,
) -> tuple[OutcomeCollector, dict[str, int], int]:
    """Feed *encounters* through *workers* worker processes; return what came out."""
    before = snapshot_offsets(settings)
    collector = OutcomeCollector(settings, before)
    with WorkerPool(settings, workers, tmp_path / "logs") as pool:
        pool.wait_ready()
        fed = publish(
            settings, generate(encounters, seed), malformed=malformed, seed=seed, progress=None
        )
        expected = fed.sent + fed.malformed
        complete = collector.wait_for(expected, timeout=300, progress=None, alive=pool.check_alive)
        # Let any redelivered or duplicated record arrive before checking for duplicates.
        collector.wait_for(expected + 1, timeout=3, progress=None)
    # The workers are stopped: read what they published last, so the outcomes and the topic
    # counts describe the same records.
    collector.wait_for(expected + 1, timeout=2, progress=None)
    collector.close()
    assert complete, f"only {len(collector.outcomes.accounted())} of {expected} accounted for"
    return collector, record_counts(settings, before), fed.sent

"""A worker that stops itself to be restarted is replaced; any other exit fails loudly."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.config import load_settings
from pipeline.runtime.exitcodes import EXIT_STALLED
from pipeline.runtime.processes import WorkerDied, WorkerPool


def exited(code: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen([sys.executable, "-c", f"raise SystemExit({code})"])
    proc.wait()
    return proc


@pytest.fixture
def pool(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> WorkerPool:
    pool = WorkerPool(load_settings({"CLAIMS_DATA_DIR": str(tmp_path)}), 1, tmp_path)
    pool.logs = [tmp_path / "worker-1.log"]
    pool.logs[0].write_text("last words\n")
    spawned = []

    def spawn(log: Path, mode: str) -> subprocess.Popen[bytes]:
        spawned.append(log)
        return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])

    monkeypatch.setattr(pool, "_spawn", spawn)
    return pool


def test_a_worker_that_stopped_for_a_stall_is_replaced(pool: WorkerPool) -> None:
    pool.procs = [exited(EXIT_STALLED)]
    old = pool.procs[0].pid
    pool.check_alive()
    assert pool.self_restarts == [(0, old, EXIT_STALLED)]
    assert pool.procs[0].poll() is None
    assert "stopped itself with 71" in pool.logs[0].read_text()
    pool.procs[0].kill()


def test_a_worker_that_crashed_fails_the_check(pool: WorkerPool) -> None:
    pool.procs = [exited(1)]
    with pytest.raises(WorkerDied, match="exited with 1"):
        pool.check_alive()
    assert pool.self_restarts == []

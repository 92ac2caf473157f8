"""Worker processes: start N pipeline workers as subprocesses and stop them all.

Used by the demo, the benchmark, the crash-injection harness and the
end-to-end tests. Stopping sends SIGTERM (faust shuts down cleanly and
commits), then SIGKILL after a grace period, so nothing this module started
outlives it. A worker can also be killed and replaced on its own, as a
supervisor restarts a crashed process.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

import psutil

from pipeline.config import Settings, to_env
from pipeline.runtime.exitcodes import RESTART_ON


class WorkerDied(RuntimeError):
    """A worker exited while it should be running; the message quotes its log."""


class WorkerPool:
    """N ``claims worker`` subprocesses with their logs under *log_dir*."""

    def __init__(self, settings: Settings, count: int, log_dir: Path) -> None:
        self.settings = settings
        self.count = count
        self.log_dir = log_dir
        self.procs: list[subprocess.Popen[bytes]] = []
        self.logs: list[Path] = []
        # (index, pid, exit status) of each worker that stopped itself and was replaced
        self.self_restarts: list[tuple[int, int, int]] = []

    def start(self) -> WorkerPool:
        """Start the workers (they join the consumer group in the background)."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        for i in range(self.count):
            log = self.log_dir / f"worker-{i + 1}.log"
            self.logs.append(log)
            self.procs.append(self._spawn(log, "wb"))
        return self

    def _spawn(self, log: Path, mode: str) -> subprocess.Popen[bytes]:
        env = {**os.environ, **to_env(self.settings)}
        with log.open(mode) as out:
            return subprocess.Popen(
                [sys.executable, "-m", "pipeline.cli.main", "worker"],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
            )

    def kill_and_restart(self, index: int, timeout: float = 10.0) -> tuple[int, int]:
        """SIGKILL worker *index* (a crash) and start its replacement at once, as a supervisor
        would; returns (old pid, new pid). The replacement appends to the same log."""
        proc = self.procs[index]
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=timeout)
        return proc.pid, self._replace(index, f"killed pid {proc.pid} with SIGKILL").pid

    def restart_exited(self) -> list[tuple[int, int, int]]:
        """Replace every worker that exited on its own; (index, old pid, exit code) of each."""
        replaced = []
        for index, proc in enumerate(self.procs):
            code = proc.poll()
            if code is not None:
                self._replace(index, f"pid {proc.pid} exited with {code}")
                replaced.append((index, proc.pid, code))
        return replaced

    def _replace(self, index: int, why: str) -> subprocess.Popen[bytes]:
        log = self.logs[index]
        with log.open("ab") as out:
            out.write(f"\n--- {why}; replacement started ---\n".encode())
        self.procs[index] = self._spawn(log, "ab")
        return self.procs[index]

    def check_alive(self) -> None:
        """Raise WorkerDied when a worker has exited, unless it stopped itself to be restarted.

        A worker that exits with a status of :data:`RESTART_ON` (its batches uncommitted)
        is replaced, as a supervisor would, and counted in :attr:`self_restarts`.
        """
        for index, (proc, log) in enumerate(zip(self.procs, self.logs, strict=True)):
            code = proc.poll()
            if code in RESTART_ON:
                self.self_restarts.append((index, proc.pid, code))
                self._replace(index, f"pid {proc.pid} stopped itself with {code}")
            elif code is not None:
                tail = log.read_text(errors="replace").splitlines()[-15:]
                raise WorkerDied(
                    f"worker pid {proc.pid} exited with {proc.returncode}; last lines of {log}:\n"
                    + "\n".join(tail)
                )

    def wait_ready(self, timeout: float = 120.0) -> None:
        """Wait until every worker has joined the consumer group and it is stable."""
        from pipeline.kafka.admin import wait_for_group  # noqa: PLC0415 - avoids a client import at start
        from pipeline.runtime.app import app_id  # noqa: PLC0415

        wait_for_group(
            self.settings, app_id(self.settings), self.count, timeout, alive=self.check_alive
        )

    def peak_rss_bytes(self) -> list[int]:
        """Current resident memory of each live worker."""
        out = []
        for proc in self.procs:
            try:
                out.append(psutil.Process(proc.pid).memory_info().rss)
            except psutil.Error:
                out.append(0)
        return out

    def stop(self, grace: float = 20.0) -> None:
        """SIGTERM every worker, then SIGKILL those still running after *grace* seconds."""
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace
        for proc in self.procs:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)

    def kill(self) -> None:
        """SIGKILL every worker at once: a crash, with no chance to commit or flush."""
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
        for proc in self.procs:
            proc.wait(timeout=10)

    def __enter__(self) -> WorkerPool:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

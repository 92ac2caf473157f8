"""Worker processes: start N pipeline workers as subprocesses and stop them all.

Used by the demo, the benchmark and the end-to-end tests. Stopping sends
SIGTERM (faust shuts down cleanly and commits), then SIGKILL after a grace
period, so nothing this module started outlives it.
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

    def start(self) -> WorkerPool:
        """Start the workers (they join the consumer group in the background)."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, **to_env(self.settings)}
        for i in range(self.count):
            log = self.log_dir / f"worker-{i + 1}.log"
            self.logs.append(log)
            with log.open("wb") as out:
                self.procs.append(subprocess.Popen(
                    [sys.executable, "-m", "pipeline.cli", "worker"],
                    stdout=out, stderr=subprocess.STDOUT, env=env,
                ))
        return self

    def check_alive(self) -> None:
        """Raise WorkerDied when a worker has exited."""
        for proc, log in zip(self.procs, self.logs, strict=True):
            if proc.poll() is not None:
                tail = log.read_text(errors="replace").splitlines()[-15:]
                raise WorkerDied(
                    f"worker pid {proc.pid} exited with {proc.returncode}; last lines of {log}:\n"
                    + "\n".join(tail)
                )

    def wait_ready(self, timeout: float = 120.0) -> None:
        """Wait until every worker has joined the consumer group and it is stable."""
        from pipeline.admin import wait_for_group  # noqa: PLC0415 - avoids a client import at start
        from pipeline.app import app_id  # noqa: PLC0415

        wait_for_group(self.settings, app_id(self.settings), self.count, timeout,
                       alive=self.check_alive)

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

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

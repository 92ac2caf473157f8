"""Running a pipeline worker: the faust app in this process until stopped."""

from __future__ import annotations

import logging

import faust

from pipeline.app import build_app
from pipeline.config import Settings


def run_worker(settings: Settings) -> None:
    """Run the stage agents until SIGINT/SIGTERM. Logs at *settings.log_level* (info default).

    Quieter levels than info are raised to info: faust's spinner otherwise turns
    the root logger to DEBUG, which costs every debug call a log record.
    """
    level = settings.log_level.lower()
    if level in ("warn", "warning", "error", "critical"):
        level = "info"
    app = build_app(settings)
    worker = faust.Worker(app, loglevel=level, quiet=True)
    logging.getLogger("faust").setLevel(logging.WARNING)
    worker.execute_from_commandline()

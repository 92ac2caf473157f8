"""Running a pipeline worker: the faust app in this process until stopped."""

from __future__ import annotations

import logging

from pipeline.config import Settings
from pipeline.runtime.faust_env import scrub_faust_env


def run_worker(settings: Settings) -> None:
    """Run the stage agents until SIGINT/SIGTERM. Logs at *settings.log_level* (info default).

    faust's own environment variables are removed first, before faust is imported
    (it reads some at import), so the worker runs on *settings* alone. Quieter levels
    than info are raised to info: faust's spinner otherwise turns the root logger to
    DEBUG, which costs every debug call a log record.
    """
    scrub_faust_env()
    import faust  # noqa: PLC0415 - imported once faust's environment variables are gone

    from pipeline.runtime.app import build_app  # noqa: PLC0415 - imports faust

    level = settings.log_level.lower()
    if level in ("warn", "warning", "error", "critical"):
        level = "info"
    app = build_app(settings)
    worker = faust.Worker(app, loglevel=level, quiet=True)
    logging.getLogger("faust").setLevel(logging.WARNING)
    worker.execute_from_commandline()

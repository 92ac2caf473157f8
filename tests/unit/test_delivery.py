"""A batch the broker never acknowledges stops the worker instead of hanging it."""

from __future__ import annotations

import asyncio
from typing import Any, NoReturn

import pytest

from pipeline.runtime import app as worker_app


class Stopped(Exception):
    """Stands for the worker's exit in this process."""


def test_state_writes_not_acknowledged_in_time_stop_the_worker(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A state write that never completes: after the delivery timeout the batch counts as
    undelivered (the worker exits unacknowledged), and the log says where each task was."""
    reasons: list[str] = []

    def undelivered(stage: str, exc: BaseException) -> NoReturn:
        reasons.append(f"{stage}: {exc}")
        raise Stopped

    monkeypatch.setattr(worker_app, "DELIVERY_TIMEOUT_S", 0.2)
    monkeypatch.setattr(worker_app, "_undelivered", undelivered)

    async def scenario() -> None:
        never: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        await worker_app._deliver(None, "adjudication", [], [never])  # type: ignore[arg-type]

    with pytest.raises(Stopped):
        asyncio.run(scenario())
    assert reasons == ["adjudication: 0 records and 1 state writes not acknowledged within 0.2 s"]
    assert "THREAD" in capsys.readouterr().err

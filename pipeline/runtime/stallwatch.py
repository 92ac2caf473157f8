"""Noticing a partition that has records waiting and has stopped moving.

faust-streaming 0.15 can stop feeding an agent one partition while the others
flow on: the crash-injection harness saw a worker, freshly given its partitions
after a crash, process a batch and then nothing more from one partition for
four minutes, with no error. Nothing in faust reports it. The worker checks
each partition it holds every few seconds: when the broker has records past the
last one the agents delivered, and that has not moved for
:data:`NUDGE_AFTER_S`, the partition is put back among those fetched if faust
left it out (and a warning says so); still stuck at :data:`STALL_TIMEOUT_S`,
the worker stops (its batches uncommitted) so that a supervisor restarts it and
the partition is read again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

STALL_TIMEOUT_S = 90.0
# Before that, a stuck partition is put back among those fetched, in case faust left it out.
NUDGE_AFTER_S = 30.0
CHECK_EVERY_S = 5.0


@dataclass
class Stall:
    """A partition that has not moved: where it stands and how long it has been so."""

    tp: Any
    at: int
    highwater: int
    still_s: float


@dataclass
class StallWatch:
    """Per partition, the delivered position and since when it has not moved."""

    timeout: float = STALL_TIMEOUT_S
    nudge_after: float = NUDGE_AFTER_S
    since: dict[Any, tuple[int | None, float]] = field(default_factory=dict)

    def check(
        self,
        now: float,
        partitions: Iterable[Any],
        position: Callable[[Any], int | None],
        highwater: Callable[[Any], int | None],
    ) -> list[Stall]:
        """The partitions of *partitions* stuck at *now* for :attr:`nudge_after` or more.

        *position* is the next offset the agents have to deliver (None when
        unknown), *highwater* the broker's end offset as last fetched (None
        when not fetched yet). A partition counts as waiting only while the
        broker has records past its position.
        """
        stalls: list[Stall] = []
        held = set(partitions)
        for tp in list(self.since):
            if tp not in held:
                del self.since[tp]
        for tp in held:
            at, end = position(tp), highwater(tp)
            seen, since = self.since.get(tp, (None, now))
            if at is None or end is None or end <= at or at != seen:
                self.since[tp] = (at, now)
                continue
            self.since[tp] = (seen, since)
            if now - since >= min(self.nudge_after, self.timeout):
                stalls.append(Stall(tp, at, end, now - since))
        return stalls

    def reset(self) -> None:
        """Start every partition's clock again (a rebalance or a recovery is under way)."""
        self.since.clear()

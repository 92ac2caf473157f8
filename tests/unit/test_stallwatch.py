"""A partition with records waiting that stops moving is noticed; a moving or done one is not."""

from __future__ import annotations

from pipeline.runtime.stallwatch import StallWatch

P0, P1 = ("ehr.encounters", 0), ("ehr.encounters", 1)


def test_a_partition_stuck_behind_waiting_records_is_a_stall_after_the_timeout() -> None:
    """P0 stays at 2,506 with 106 records past it; P1 moves on: only P0 stalls, at 90 s."""
    watch = StallWatch(timeout=90, nudge_after=90)
    position = {P0: 2506, P1: 100}
    ends = {P0: 2612, P1: 400}
    assert watch.check(0, [P0, P1], position.get, ends.get) == []
    position[P1] = 200
    assert watch.check(60, [P0, P1], position.get, ends.get) == []
    position[P1] = 300
    (stall,) = watch.check(95, [P0, P1], position.get, ends.get)
    assert (stall.tp, stall.at, stall.highwater, stall.still_s) == (P0, 2506, 2612, 95)


def test_a_partition_with_nothing_waiting_never_stalls() -> None:
    """Fully delivered (position at the end offset), or nothing fetched yet: no stall."""
    watch = StallWatch(timeout=10, nudge_after=10)
    for now in (0, 20, 40):
        assert watch.check(now, [P0, P1], {P0: 50, P1: None}.get, {P0: 50, P1: 80}.get) == []


def test_moving_or_a_reset_starts_the_clock_again() -> None:
    """A partition that moves, or a rebalance (reset), is given the whole timeout again."""
    watch = StallWatch(timeout=10, nudge_after=10)
    ends = {P0: 100}.get
    watch.check(0, [P0], {P0: 10}.get, ends)
    watch.check(8, [P0], {P0: 11}.get, ends)
    assert watch.check(15, [P0], {P0: 11}.get, ends) == []
    watch.reset()
    watch.check(16, [P0], {P0: 11}.get, ends)
    assert watch.check(25, [P0], {P0: 11}.get, ends) == []
    assert watch.check(26, [P0], {P0: 11}.get, ends) != []


def test_a_partition_no_longer_held_is_forgotten() -> None:
    watch = StallWatch(timeout=10, nudge_after=10)
    watch.check(0, [P0], {P0: 10}.get, {P0: 100}.get)
    watch.check(5, [], {P0: 10}.get, {P0: 100}.get)
    assert watch.check(12, [P0], {P0: 10}.get, {P0: 100}.get) == []


def test_a_stuck_partition_is_reported_from_the_nudge_on() -> None:
    """Reported from 30 s (to be fetched again), and still at 90 s (the worker stops)."""
    watch = StallWatch(timeout=90, nudge_after=30)
    still = {P0: 10}.get
    ends = {P0: 100}.get
    assert watch.check(0, [P0], still, ends) == []
    assert watch.check(29, [P0], still, ends) == []
    assert [s.still_s for s in watch.check(30, [P0], still, ends)] == [30]
    assert [s.still_s for s in watch.check(90, [P0], still, ends)] == [90]

"""Waiting in tests: one helper instead of a deadline loop per test."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(
    predicate: Callable[[], T | None], timeout: float, describe: str, every: float = 0.1
) -> T:
    """Call *predicate* every *every* seconds until it returns something true; return it.

    Past *timeout* seconds the test fails with *describe* (what never happened).
    """
    deadline = time.monotonic() + timeout
    while True:
        found = predicate()
        if found:
            return found
        if time.monotonic() >= deadline:
            raise AssertionError(f"not within {timeout:g} s: {describe}")
        time.sleep(every)

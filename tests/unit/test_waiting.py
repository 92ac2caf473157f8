"""The tests' one waiting helper: returns what came true, or fails naming what never did."""

from __future__ import annotations

import itertools

import pytest

from tests.waiting import wait_until


def test_returns_the_first_true_value() -> None:
    calls = itertools.count()
    assert wait_until(
        lambda: [n] if (n := next(calls)) >= 2 else [], 5, "three calls", every=0
    ) == [2]


def test_fails_past_the_timeout_with_what_never_happened() -> None:
    with pytest.raises(AssertionError, match=r"not within 0.2 s: the sky falls"):
        wait_until(lambda: False, 0.2, "the sky falls", every=0.05)

"""Checks shared by the X12 tests: pyx12 validation, segments, envelope counts."""

from __future__ import annotations

import io
from pathlib import Path

import pyx12.params
import pyx12.x12n_document


def pyx12_accepts(path: Path) -> bool:
    """True when pyx12 validates *path* against its implementation guide with no errors."""
    ok: bool = pyx12.x12n_document.x12n_document(
        pyx12.params.params(), str(path), fd_997=None, fd_html=io.StringIO()
    )
    return ok


def segments(text: str) -> list[list[str]]:
    """An interchange's segments split into elements."""
    return [s.split("*") for s in text.strip().rstrip("~").split("~")]


def assert_envelope(segs: list[list[str]]) -> None:
    """ISA13 = IEA02, GS06 = GE02, GE01 = transactions, SE01 = segments from ST to SE."""
    isa, gs, ge, iea = segs[0], segs[1], segs[-2], segs[-1]
    assert isa[13] == iea[2]
    assert gs[6] == ge[2]
    starts = [i for i, s in enumerate(segs) if s[0] == "ST"]
    ends = [i for i, s in enumerate(segs) if s[0] == "SE"]
    assert int(ge[1]) == len(starts) == len(ends)
    for st, se in zip(starts, ends, strict=True):
        assert int(segs[se][1]) == se - st + 1
        assert segs[se][2] == segs[st][2]

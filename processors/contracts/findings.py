"""Coding findings: what an edit found on an encounter or claim, as every stage records it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from processors.contracts.records import CodingFinding
from processors.contracts.vocab import Severity

Record = dict[str, Any]

HARD = Severity.HARD
SOFT = Severity.SOFT


def finding(
    edit_id: str, severity: Severity, code: str | None, message: str, edition: str
) -> CodingFinding:
    """A CodingFinding record."""
    return {
        "edit_id": edit_id,
        "severity": severity,
        "code": code,
        "message": message,
        "refdata_version": edition,
    }


def hard_edit_ids(findings: Sequence[Mapping[str, Any]]) -> str:
    """The distinct hard edit ids among *findings*, comma-separated (lifecycle detail)."""
    return ",".join(sorted({f["edit_id"] for f in findings if f["severity"] == HARD}))

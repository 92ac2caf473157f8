"""Coding findings: what an edit found on an encounter or claim, as every stage records it."""

from __future__ import annotations

from typing import Any

Record = dict[str, Any]

HARD = "HARD"
SOFT = "SOFT"


def finding(edit_id: str, severity: str, code: str | None, message: str, edition: str) -> Record:
    """A CodingFinding record."""
    return {
        "edit_id": edit_id,
        "severity": severity,
        "code": code,
        "message": message,
        "refdata_version": edition,
    }


def hard_edit_ids(findings: list[Record]) -> str:
    """The distinct hard edit ids among *findings*, comma-separated (lifecycle detail)."""
    return ",".join(sorted({f["edit_id"] for f in findings if f["severity"] == HARD}))

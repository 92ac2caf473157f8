"""Records in and out of JSON-only stores, dates and times kept exact.

The member state lives in a table whose values are JSON. A claim kept there
(to correct and resubmit it later) has dates and timestamps, which JSON lacks;
they are stored as tagged strings and come back as the same objects.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

DATE_TAG = "$date"
TIME_TAG = "$time"


# Values JSON holds as they are; the common case, so tested first and not recursed into.
_PLAIN = frozenset({str, int, float, bool, type(None)})


def to_json(value: Any) -> Any:
    """*value* with every date and datetime replaced by a tagged ISO string."""
    kind = type(value)
    if kind is dict:
        return {k: v if type(v) in _PLAIN else to_json(v) for k, v in value.items()}
    if kind is list or kind is tuple:
        return [v if type(v) in _PLAIN else to_json(v) for v in value]
    if kind in _PLAIN:
        return value
    if isinstance(value, datetime):
        return {TIME_TAG: value.isoformat()}
    if isinstance(value, date):
        return {DATE_TAG: value.isoformat()}
    if isinstance(value, dict):
        return {k: to_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_json(v) for v in value]
    return value


def from_json(value: Any) -> Any:
    """The record :func:`to_json` stored, with its dates and datetimes back."""
    if isinstance(value, dict):
        if len(value) == 1:
            if DATE_TAG in value:
                return date.fromisoformat(value[DATE_TAG])
            if TIME_TAG in value:
                return datetime.fromisoformat(value[TIME_TAG])
        return {k: from_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [from_json(v) for v in value]
    return value

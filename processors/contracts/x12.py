"""X12 syntax shared by the 837P and 835 writers and readers (ASC X12 005010).

Delimiters, amounts from integer cents, CCYYMMDD dates and element cleaning.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

Record = dict[str, Any]

SEGMENT = "~"
ELEMENT = "*"
COMPONENT = ":"
REPETITION = "^"


def amount(cents: int) -> str:
    """X12 decimal from cents: 17500 -> "175", 1250 -> "12.5"."""
    whole, frac = divmod(abs(cents), 100)
    sign = "-" if cents < 0 else ""
    if frac == 0:
        return f"{sign}{whole}"
    return f"{sign}{whole}.{frac:02d}".rstrip("0")


def d8(day: date) -> str:
    """CCYYMMDD."""
    return day.strftime("%Y%m%d")


def clean(text: str | None) -> str:
    """Text safe inside an element: no delimiters, upper case, trimmed."""
    if not text:
        return ""
    for ch in (SEGMENT, ELEMENT, COMPONENT, REPETITION):
        text = text.replace(ch, " ")
    return " ".join(text.upper().split())


def seg(*elements: object) -> str:
    """One segment, trailing empty elements dropped."""
    items = ["" if e is None else str(e) for e in elements]
    while items and items[-1] == "":
        items.pop()
    return ELEMENT.join(items)


def parse_d8(text: str) -> date:
    """A date from CCYYMMDD."""
    return date(int(text[:4]), int(text[4:6]), int(text[6:8]))


def parse_cents(text: str) -> int:
    """Cents from an X12 decimal: "12.5" -> 1250."""
    whole, _, frac = text.partition(".")
    sign = -1 if whole.startswith("-") else 1
    return sign * (abs(int(whole or "0")) * 100 + int((frac + "00")[:2]))


def envelope(
    functional_id: str,
    version: str,
    sender_id: str,
    receiver_id: str,
    interchange_control: int,
    group_control: int,
    created: datetime,
    usage: str,
    transactions: list[list[str]],
) -> str:
    """One ISA/GS interchange around *transactions* (each a list of segments), closed by
    GE/IEA: *functional_id* is GS01 (HC claims, HP payments), *version* GS08."""
    isa = seg(
        "ISA", "00", " " * 10, "00", " " * 10,
        "ZZ", sender_id.ljust(15)[:15], "ZZ", receiver_id.ljust(15)[:15],
        created.strftime("%y%m%d"), created.strftime("%H%M"), REPETITION, "00501",
        f"{interchange_control:09d}", "0", usage, COMPONENT,
    )  # fmt: skip
    gs = seg(
        "GS", functional_id, sender_id, receiver_id, d8(created.date()),
        created.strftime("%H%M"), group_control, "X", version,
    )  # fmt: skip
    segments = [isa, gs]
    for transaction in transactions:
        segments.extend(transaction)
    segments.append(seg("GE", len(transactions), group_control))
    segments.append(seg("IEA", "1", f"{interchange_control:09d}"))
    return SEGMENT.join(segments) + SEGMENT + "\n"

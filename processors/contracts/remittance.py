"""Remittances as every stage reads them: the claim status codes and what counts as a denial.

CLP02 claim status codes are from the X12 835 005010X221A1 implementation guide.
"""

from __future__ import annotations

from typing import Any

Record = dict[str, Any]

PROCESSED_PRIMARY = "1"
DENIED = "4"
REVERSAL = "22"


def is_reversal(remittance: Record) -> bool:
    """True for a CLP02 22 record that takes back an earlier payment."""
    return bool(remittance["claim_status_code"] == REVERSAL)


def is_denial(remittance: Record) -> bool:
    """True when any money was denied: a denied claim or a line adjusted other than CO-45/PR.

    A reversal (CLP02 22) takes back an earlier payment; it is not a denial.
    """
    if is_reversal(remittance):
        return False
    if remittance["claim_status_code"] == DENIED:
        return True
    return any(denies_money(adj) for line in remittance["lines"] for adj in line["adjustments"])


def denies_money(adjustment: Record) -> bool:
    """True for an adjustment that withholds money: neither patient share (PR) nor CO-45."""
    group = adjustment["group_code"]
    return group != "PR" and not (group == "CO" and adjustment["carc"] == "45")

"""Rework items as every stage makes them: holds before a claim is sent, and their priority.

A ReworkItem says what is wrong, what to do, in which queue and for how much;
the coding and claims stages make hold items, the denials stage the rest.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from processors.contracts.records import CodingFinding
from processors.contracts.vocab import Category, ItemAction, ItemKind, Queue, Severity
from processors.ids import stable_id

Record = dict[str, Any]

# Days before a deadline at which the priority starts to rise (up to double on the day).
URGENT_DAYS = 30


def priority(amount_cents: int, recovery_percent: int, days_left: int | None) -> int:
    """Dollars at stake x likelihood of recovery x urgency (up to 2x as the deadline nears).

    Past its deadline an item can rarely be recovered: it keeps the lowest priority.
    """
    if days_left is not None and days_left < 0:
        return 1
    dollars = amount_cents * recovery_percent / 100 / 100
    urgency = 1.0
    if days_left is not None:
        urgency += (URGENT_DAYS - min(days_left, URGENT_DAYS)) / URGENT_DAYS
    return max(int(dollars * urgency), 1)


# ReworkItem fields most items leave at their default.
ITEM_DEFAULTS: Record = {
    "deadline": None,
    "status": "OPEN",
    "remittance_id": None,
    "payer_claim_control_number": None,
    "service_date": None,
    "deadline_kind": None,
    "correction": None,
    "resubmitted_claim_id": None,
    "related_rework_id": None,
}


def rework_item(fields: Record) -> Record:
    """A ReworkItem record: *fields*, with the optional ones defaulted."""
    return {**ITEM_DEFAULTS, **fields}


def item_reason(
    code: str, group: str | None, line: int | None, message: str, rule_id: str
) -> Record:
    return {
        "code": code,
        "group_code": group,
        "line_number": line,
        "message": message,
        "rule_id": rule_id,
    }


def hold_item(
    kind: ItemKind,
    event: Record,
    claim: Record | None,
    findings: Sequence[CodingFinding],
    member_key: str,
    ruleset_version: str,
) -> Record:
    """The rework item for a coding hold (no claim yet) or a scrubber hold."""
    hard = [f for f in findings if f["severity"] == Severity.HARD]
    coding = kind == ItemKind.CODING_HOLD
    queue = Queue.CODING if coding else Queue.BILLING
    category = Category.CODING if coding else Category.MISSING_INFORMATION
    at_stake = claim["total_charge_cents"] if claim else 0
    return rework_item(
        {
            "rework_id": stable_id("W", kind, event["encounter_id"], *(f["edit_id"] for f in hard)),
            "kind": kind,
            "encounter_id": event["encounter_id"],
            "claim_id": claim["claim_id"] if claim else None,
            "payer_id": claim["payer_id"]
            if claim
            else ((event.get("coverage") or {}).get("payer_id")),
            "member_key": member_key,
            "category": category,
            "action": ItemAction.FIX_CODING if coding else ItemAction.CORRECT_AND_RESUBMIT,
            "queue": queue,
            "priority": priority(at_stake, 90, None),
            "amount_at_stake_cents": at_stake,
            "reasons": [
                item_reason(
                    f["edit_id"], None, None, f["message"], f"{f['edit_id']}@{f['refdata_version']}"
                )
                for f in hard
            ],
            "suggested_fix": " ".join(f["message"] for f in hard),
            "created_at": event["received_at"],
            "ruleset_version": ruleset_version,
            "service_date": event.get("service_date"),
        }
    )

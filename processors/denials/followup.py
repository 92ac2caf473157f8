"""Follow-up in event time: claims the payer has not answered, deadlines coming up.

Pure functions only. The member's state remembers claims awaiting an answer
(kept by the adjudication stage) and open denial items with a deadline (kept by
the denials stage). When business time, as the records of the member's
partition carry it, passes a claim's expected answer date plus a grace period,
:func:`sweep_member` makes a FOLLOW_UP item (a claim status inquiry); when it
comes within :data:`REMINDER_DAYS` of an open item's deadline, a REMINDER item.
Each is made once; an item closed by an action gets no reminder.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from processors.contracts.rework import item_reason, priority, rework_item
from processors.contracts.vocab import ItemKind
from processors.denials.rules import routing_table
from processors.ids import stable_id
from processors.jsonsafe import from_json
from processors.memberstate import (
    DUE_CLAIM,
    DUE_ITEM,
    Awaiting,
    ItemRow,
    MemberState,
    follow_up_due,
)

Record = dict[str, Any]

REMINDER_DAYS = 14
FOLLOW_UP_VERSION = "follow-up-1"


def _at(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=UTC)


def remember_item(state: MemberState, item: Record) -> date | None:
    """Keep an open denial item with a deadline in *state*; returns the day to remind, if any.

    A redelivered item keeps what the state already knows (reminded, closed).
    """
    if item["status"] != "OPEN" or item["deadline"] is None:
        return None
    if state.item(item["rework_id"]) is not None:
        return None
    remind_on: date = item["deadline"] - timedelta(days=REMINDER_DAYS)
    service_date = item["service_date"]
    state.put_item(
        item["rework_id"],
        {
            "claim_id": item["claim_id"],
            "encounter_id": item["encounter_id"],
            "payer_id": item["payer_id"],
            "category": item["category"],
            "action": item["action"],
            "queue": item["queue"],
            "amount_cents": item["amount_at_stake_cents"],
            "deadline": item["deadline"].isoformat(),
            "deadline_kind": item["deadline_kind"],
            "service_date": service_date.isoformat() if service_date else None,
            "year": str((service_date or item["deadline"]).year),
            "remind_on": remind_on.isoformat(),
            "reminded": False,
            "closed": False,
            "suggested_fix": item["suggested_fix"],
        },
    )
    state.set_due(DUE_ITEM + item["rework_id"], remind_on.isoformat())
    return remind_on


def close_item(state: MemberState, rework_id: str) -> bool:
    """Mark *rework_id* closed in *state* (someone acted on it); False when it is unknown."""
    entry = state.item(rework_id)
    if entry is None or entry["closed"]:
        return False
    state.put_item(rework_id, {**entry, "closed": True})
    state.clear_due(DUE_ITEM + rework_id)
    return True


def follow_up_item(
    claim: Record, awaiting: Awaiting, due: date, key: str, timely_filing_days: int
) -> Record:
    """The FOLLOW_UP rework item for a claim the payer has not answered by *due*."""
    route = routing_table()["no_response"]
    waited = (due - date.fromisoformat(awaiting["filed"])).days
    deadline = claim["service_date_from"] + timedelta(days=timely_filing_days)
    return rework_item(
        {
            "rework_id": stable_id("W", "FOLLOW_UP", claim["claim_id"]),
            "kind": ItemKind.FOLLOW_UP,
            "encounter_id": claim["encounter_id"],
            "claim_id": claim["claim_id"],
            "payer_id": claim["payer_id"],
            "member_key": key,
            "category": route.category,
            "action": route.action,
            "queue": route.queue,
            "priority": priority(
                claim["total_charge_cents"], route.recovery_percent, (deadline - due).days
            ),
            "amount_at_stake_cents": claim["total_charge_cents"],
            "reasons": [
                item_reason(
                    "NO-RESPONSE",
                    None,
                    None,
                    f"No answer from {claim['payer_id']} {waited} days after filing; its "
                    f"usual turnaround is {awaiting['turnaround_days']} days.",
                    f"FOLLOW-UP@{FOLLOW_UP_VERSION}",
                )
            ],
            "suggested_fix": route.suggested_fix,
            "created_at": _at(due),
            "deadline": deadline,
            "ruleset_version": FOLLOW_UP_VERSION,
            "service_date": claim["service_date_from"],
            "deadline_kind": "timely_filing",
        }
    )


def reminder_item(rework_id: str, entry: ItemRow, key: str) -> Record:
    """The REMINDER rework item for an open item whose deadline is near."""
    deadline = date.fromisoformat(entry["deadline"])
    remind_on = date.fromisoformat(entry["remind_on"])
    return rework_item(
        {
            "rework_id": stable_id("W", "REMINDER", rework_id),
            "kind": ItemKind.REMINDER,
            "encounter_id": entry["encounter_id"],
            "claim_id": entry["claim_id"],
            "payer_id": entry["payer_id"],
            "member_key": key,
            "category": entry["category"],
            "action": entry["action"],
            "queue": entry["queue"],
            "priority": priority(entry["amount_cents"], 100, (deadline - remind_on).days),
            "amount_at_stake_cents": entry["amount_cents"],
            "reasons": [
                item_reason(
                    "DEADLINE",
                    None,
                    None,
                    f"The {entry['deadline_kind'].replace('_', ' ')} deadline is "
                    f"{deadline.isoformat()}, {(deadline - remind_on).days} days away, and "
                    f"item {rework_id} is still open.",
                    f"REMINDER@{FOLLOW_UP_VERSION}",
                )
            ],
            "suggested_fix": entry["suggested_fix"],
            "created_at": _at(remind_on),
            "deadline": deadline,
            "ruleset_version": FOLLOW_UP_VERSION,
            "service_date": date.fromisoformat(entry["service_date"])
            if entry["service_date"]
            else None,
            "deadline_kind": entry["deadline_kind"],
            "related_rework_id": rework_id,
        }
    )


def sweep_member(
    key: str, state: MemberState, today: date, timely_filing_days: dict[str, int]
) -> list[Record]:
    """Follow-ups and reminders of one member due by *today*, recorded in *state*.

    Returns the rework items to publish; *state* holds what it changed.
    """
    out: list[Record] = []
    due = state.due
    for token in sorted(due, key=lambda t: (not t.startswith(DUE_CLAIM), t)):
        if date.fromisoformat(due[token]) > today:
            continue
        ident = token[2:]
        state.clear_due(token)
        if token.startswith(DUE_CLAIM):
            row = state.claim(ident, forgotten_too=True)
            if row is None or row["answer"] is not None or row["awaiting"] is None:
                continue
            awaiting = row["awaiting"]
            claim = from_json(row["claim"])
            days = timely_filing_days.get(awaiting["payer_id"], 365)
            out.append(follow_up_item(claim, awaiting, follow_up_due(awaiting), key, days))
            continue
        entry = state.item(ident)
        if entry is None or entry["reminded"] or entry["closed"]:
            continue
        out.append(reminder_item(ident, entry, key))
        state.put_item(ident, {**entry, "reminded": True})
    return out


def mark_made(state: MemberState, tokens: list[str]) -> None:
    """Record in *state* that the follow-ups and reminders behind *tokens* were made."""
    for token in tokens:
        if token.startswith(DUE_ITEM):
            entry = state.item(token[len(DUE_ITEM) :])
            if entry is not None and not entry["reminded"]:
                state.put_item(token[len(DUE_ITEM) :], {**entry, "reminded": True})
        state.clear_due(token)

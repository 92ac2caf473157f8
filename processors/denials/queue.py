"""The rework queue as people see it, and the claims they resubmit.

Pure functions only: which items are still open once their actions are
counted, how a person's corrections change a claim, and a claim's history
across its original, corrected and rebilled versions.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from processors.contracts.claim import corrected_claim
from processors.contracts.remittance import is_denial
from processors.contracts.vocab import Decision, LifecycleStatus
from processors.denials.stage import remittance_status
from processors.ids import stable_id

Record = dict[str, Any]

ACTIONS = tuple(Decision)
CLAIM_FIELDS = ("member_id", "group_number", "authorization_number", "referral_number")
LINE_FIELDS = ("add_modifier", "remove_modifier", "procedure_code", "units", "dx_pointers")
# A claim the payer could not process (MA130) is sent again as a new claim, not a replacement.
UNPROCESSABLE = "MA130"


class ChangeError(ValueError):
    """A correction that does not fit the claim; the message says what to fix."""


def latest_items(items: Iterable[Record]) -> dict[str, Record]:
    """The newest version of each rework item, by rework id."""
    out: dict[str, Record] = {}
    for item in items:
        out[item["rework_id"]] = item
    return out


def open_items(items: Iterable[Record], actions: Iterable[Record]) -> list[Record]:
    """Items nobody has acted on yet, highest priority first.

    An item is closed by an automatic correction or by any action a person
    recorded for it (resubmit, appeal, write-off, bill the patient).
    """
    acted = {a["rework_id"] for a in actions}
    found = [
        i
        for i in latest_items(items).values()
        if i["status"] == "OPEN" and i["rework_id"] not in acted
    ]
    return sorted(found, key=lambda i: (-i["priority"], i["rework_id"]))


def matches(
    item: Record, queue: str | None = None, payer: str | None = None, category: str | None = None
) -> bool:
    """True when *item* passes the queue, payer and category filters given."""
    return (
        (queue is None or item["queue"] == queue)
        and (payer is None or item["payer_id"] == payer)
        and (category is None or item["category"] == category)
    )


def parse_change(field: str, value: str) -> Record:
    """A ClaimChange from the CLI's ``field=value`` or ``field=LINE:value`` form."""
    if field in CLAIM_FIELDS:
        return {"field": field, "line_number": None, "value": value}
    if field in LINE_FIELDS:
        line, sep, rest = value.partition(":")
        if not sep or not line.isdigit() or not rest:
            raise ChangeError(f"{field} needs LINE:VALUE, e.g. {field}=2:59")
        return {"field": field, "line_number": int(line), "value": rest}
    raise ChangeError(
        f"cannot change {field!r}; use one of {', '.join((*CLAIM_FIELDS, *LINE_FIELDS))}"
    )


def apply_changes(claim: Record, changes: list[Record]) -> Record:
    """*claim* with *changes* applied; the claim's lines are copied, never edited in place."""
    out = {**claim, "lines": [dict(ln, modifiers=list(ln["modifiers"])) for ln in claim["lines"]]}
    lines = {ln["line_number"]: ln for ln in out["lines"]}
    for change in changes:
        field, value, number = change["field"], change["value"], change["line_number"]
        if field in CLAIM_FIELDS:
            out[field] = value
            continue
        line = lines.get(number)
        if line is None:
            raise ChangeError(f"claim {claim['claim_id']} has no line {number}")
        if field == "add_modifier":
            if value not in line["modifiers"]:
                if len(line["modifiers"]) >= 4:
                    raise ChangeError(f"line {number} already has 4 modifiers")
                line["modifiers"].append(value)
        elif field == "remove_modifier":
            line["modifiers"] = [m for m in line["modifiers"] if m != value]
        elif field == "procedure_code":
            line["procedure_code"] = value
        elif field == "units":
            if not value.isdigit() or int(value) < 1:
                raise ChangeError(f"units on line {number} must be a positive whole number")
            per_unit = line["charge_cents"] // max(line["units"], 1)
            line["units"], line["charge_cents"] = int(value), per_unit * int(value)
        elif field == "dx_pointers":
            pointers = [int(p) for p in value.split(",") if p.strip().isdigit()]
            if not pointers or any(not 1 <= p <= len(claim["diagnoses"]) for p in pointers):
                raise ChangeError(
                    f"pointers on line {number} must name diagnoses 1 to {len(claim['diagnoses'])}"
                )
            line["dx_pointers"] = pointers
    out["total_charge_cents"] = sum(ln["charge_cents"] for ln in out["lines"])
    return out


def resubmission(claim: Record, item: Record, changes: list[Record], at: datetime) -> Record:
    """The claim a person resubmits for a denial item: corrected, filed at *at*.

    A claim the payer adjudicated is replaced (frequency 7, its control number
    referenced); one it could not process (MA130) goes again as a new claim.
    """
    fixed = apply_changes(claim, changes)
    remarks = {r["code"] for r in item["reasons"] if r["group_code"] is None}
    pccn = item.get("payer_claim_control_number")
    if pccn and UNPROCESSABLE not in remarks:
        return corrected_claim(fixed, "7", pccn, at)
    return {
        **fixed,
        "claim_id": stable_id("C", claim["claim_id"], "NEW", at.isoformat()),
        "frequency_code": "1",
        "original_claim_id": claim["claim_id"],
        "payer_claim_control_number": None,
        "created_at": at,
        "resubmission": claim.get("resubmission", 0) + 1,
    }


def person_action(
    item: Record,
    action: str,
    *,
    actor: str,
    at: datetime,
    note: str | None = None,
    claim: Record | None = None,
    changes: list[Record] | None = None,
) -> Record:
    """The ReworkAction a person records with ``claims rework resolve``."""
    if action not in ACTIONS:
        raise ValueError(f"action {action!r}: use one of {', '.join(ACTIONS)}")
    return {
        "action_id": stable_id("A", item["rework_id"], action, at.isoformat()),
        "rework_id": item["rework_id"],
        "claim_id": item["claim_id"],
        "encounter_id": item["encounter_id"],
        "member_key": item["member_key"],
        "action": action,
        "changes": changes or [],
        "claim": claim,
        "note": note,
        "actor": actor,
        "at": at,
    }


@dataclass(frozen=True)
class Event:
    """One line of a claim's history."""

    at: datetime | date
    status: str
    claim_id: str
    detail: str
    charge_cents: int | None = None
    paid_cents: int | None = None
    patient_cents: int | None = None


def _sort_time(value: datetime | date) -> tuple[date, int, float]:
    """Dates (a payer's answer) before the timed events of the same day."""
    if isinstance(value, datetime):
        return value.date(), 1, value.timestamp()
    return value, 0, 0.0


def history(
    claim_id: str,
    claims: Iterable[Record],
    remittances: Iterable[Record],
    items: Iterable[Record],
    actions: Iterable[Record],
) -> list[Event]:
    """Everything that happened to *claim_id*'s encounter, oldest first.

    The encounter's claims (original, split parts, replacements, voids,
    rebills), the payer's answers with their codes and amounts, rework items
    and what was done about them.
    """
    claims = list(claims)
    by_id = {c["claim_id"]: c for c in claims}
    target = by_id.get(claim_id)
    encounter = target["encounter_id"] if target else None
    if encounter is None:
        found = next((r for r in remittances if r["claim_id"] == claim_id), None)
        encounter = found["encounter_id"] if found else None
    if encounter is None:
        return []
    events: list[Event] = []
    for c in claims:
        if c["encounter_id"] != encounter:
            continue
        kind = {"1": "original", "7": "replacement", "8": "void"}.get(
            c["frequency_code"], c["frequency_code"]
        )
        detail = f"{kind} to {c['payer_id']}"
        if c.get("original_claim_id"):
            detail += f", in place of {c['original_claim_id']}"
        events.append(
            Event(
                c["created_at"],
                LifecycleStatus.SUBMITTED,
                c["claim_id"],
                detail,
                charge_cents=c["total_charge_cents"],
            )
        )
    for r in remittances:
        if r["encounter_id"] != encounter:
            continue
        codes = sorted(
            {f"{a['group_code']}-{a['carc']}" for ln in r["lines"] for a in ln["adjustments"]}
            | set(r["rarcs"])
            | {x for ln in r["lines"] for x in ln["rarcs"]}
        )
        events.append(
            Event(
                r["adjudicated_date"],
                remittance_status(r, is_denial(r)),
                r["claim_id"],
                f"{r['payer_id']} control {r['payer_claim_control_number']}: " + " ".join(codes),
                charge_cents=r["total_charge_cents"],
                paid_cents=r["paid_cents"],
                patient_cents=r["patient_responsibility_cents"],
            )
        )
    item_ids = set()
    for item in latest_items(items).values():
        if item["encounter_id"] != encounter:
            continue
        item_ids.add(item["rework_id"])
        detail = (
            f"{item['kind']} {item['rework_id']}: {item['category']}, {item['action']} "
            f"({item['queue']} queue)"
        )
        if item["status"] == "AUTO_CORRECTED":
            detail += f"; corrected automatically: {item['correction']}"
        events.append(
            Event(
                item["created_at"],
                "REWORK",
                item["claim_id"] or claim_id,
                detail,
                charge_cents=item["amount_at_stake_cents"],
            )
        )
    for action in actions:
        if action["rework_id"] not in item_ids or action["actor"] == "auto":
            continue
        detail = f"{action['action']} by {action['actor']}"
        if action.get("claim"):
            detail += f" as {action['claim']['claim_id']}"
        if action.get("note"):
            detail += f": {action['note']}"
        events.append(Event(action["at"], "ACTION", action["claim_id"] or claim_id, detail))
    # At the same moment, an item comes before the action on it, and that before its claim.
    rank = {"REWORK": 0, "ACTION": 1}
    return sorted(events, key=lambda e: (*_sort_time(e.at), rank.get(e.status, 2)))

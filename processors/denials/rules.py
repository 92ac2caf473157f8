"""Denial classification and routing, and the rework items for holds.

Pure functions only. Every denial, partial denial and hold becomes one
ReworkItem saying what is wrong (codes with plain wording), what to do, in which
queue, by when and for how much. Unknown codes go to the triage queue; nothing
is dropped.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import cache
from typing import Any

from processors.adjudication.rules import denies_money, is_denial
from processors.ids import stable_id
from processors.refdata import ADJUSTMENT_CODES_VERSION, REFDATA_DIR, RefData

Record = dict[str, Any]

ROUTING_VERSION = "routing-1"


@dataclass(frozen=True)
class Route:
    """What to do about one denial category."""

    category: str
    action: str
    queue: str
    recovery_percent: int
    suggested_fix: str


@cache
def routing_table() -> dict[str, Route]:
    """The routing policy from denial_routing.csv, by category."""
    with (REFDATA_DIR / "denial_routing.csv").open(newline="") as f:
        return {
            r["category"]: Route(
                r["category"], r["action"], r["queue"], int(r["recovery_percent"]),
                r["suggested_fix"],
            )
            for r in csv.DictReader(f)
        }


def priority(amount_cents: int, recovery_percent: int, days_left: int | None) -> int:
    """Dollars at stake x likelihood of recovery, raised as the deadline nears."""
    weight = amount_cents * recovery_percent // 100 // 100  # dollars likely recovered
    if days_left is not None and days_left <= 30:
        weight *= 2
    return max(weight, 1)



def route_remittance(remittance: Record, refdata: RefData, appeal_days: int,
                     received_at: datetime) -> Record | None:
    """The rework item for a denied or partly denied remittance; None when nothing was denied."""
    if not is_denial(remittance):
        return None
    reasons: list[Record] = []
    at_stake = 0
    by_category: dict[str, int] = {}
    for line in remittance["lines"]:
        for adj in line["adjustments"]:
            if not denies_money(adj):
                continue
            category, wording = refdata.carc.get(adj["carc"],
                                                 ("triage", "Unknown adjustment code."))
            by_category[category] = by_category.get(category, 0) + adj["amount_cents"]
            at_stake += adj["amount_cents"]
            reasons.append({
                "code": adj["carc"],
                "group_code": adj["group_code"],
                "line_number": line["line_number"],
                "message": wording,
                "rule_id": adj["rule_id"],
            })
        reasons.extend(
            {"code": rarc, "group_code": None, "line_number": line["line_number"],
             "message": refdata.rarc.get(rarc, "Unknown remark code."), "rule_id": "RARC"}
            for rarc in line["rarcs"]
        )
    reasons.extend(
        {"code": rarc, "group_code": None, "line_number": None,
         "message": refdata.rarc.get(rarc, "Unknown remark code."), "rule_id": "RARC"}
        for rarc in remittance["rarcs"]
    )
    table = routing_table()
    # The category with the most money denied leads; ties keep claim order.
    lead = max(by_category, key=by_category.__getitem__) if by_category else "triage"
    route = table.get(lead, table["triage"])
    adjudicated: date = remittance["adjudicated_date"]
    deadline = adjudicated + timedelta(days=appeal_days) if appeal_days else None
    days_left = (deadline - adjudicated).days if deadline else None
    return {
        "rework_id": stable_id("W", "DENIAL", remittance["remittance_id"]),
        "kind": "DENIAL",
        "encounter_id": remittance["encounter_id"],
        "claim_id": remittance["claim_id"],
        "payer_id": remittance["payer_id"],
        "member_key": remittance["member_key"],
        "category": route.category,
        "action": route.action,
        "queue": route.queue,
        "priority": priority(at_stake, route.recovery_percent, days_left),
        "amount_at_stake_cents": at_stake,
        "reasons": reasons,
        "suggested_fix": route.suggested_fix,
        "created_at": received_at,
        "deadline": deadline,
        "ruleset_version": f"{ROUTING_VERSION}|{ADJUSTMENT_CODES_VERSION}|"
                           f"{remittance['payer_profile_version']}",
    }


def hold_item(kind: str, event: Record, claim: Record | None, findings: list[Record],
              member_key: str, ruleset_version: str) -> Record:
    """The rework item for a coding hold (no claim yet) or a scrubber hold."""
    hard = [f for f in findings if f["severity"] == "HARD"]
    queue, category = ("coding", "coding") if kind == "CODING_HOLD" else ("billing",
                                                                           "missing_information")
    at_stake = claim["total_charge_cents"] if claim else 0
    return {
        "rework_id": stable_id("W", kind, event["encounter_id"], *(f["edit_id"] for f in hard)),
        "kind": kind,
        "encounter_id": event["encounter_id"],
        "claim_id": claim["claim_id"] if claim else None,
        "payer_id": claim["payer_id"] if claim else (
            (event.get("coverage") or {}).get("payer_id")
        ),
        "member_key": member_key,
        "category": category,
        "action": "fix_coding" if kind == "CODING_HOLD" else "correct_and_resubmit",
        "queue": queue,
        "priority": priority(at_stake, 90, None),
        "amount_at_stake_cents": at_stake,
        "reasons": [
            {"code": f["edit_id"], "group_code": None, "line_number": None,
             "message": f["message"], "rule_id": f"{f['edit_id']}@{f['refdata_version']}"}
            for f in hard
        ],
        "suggested_fix": " ".join(f["message"] for f in hard),
        "created_at": event["received_at"],
        "deadline": None,
        "ruleset_version": ruleset_version,
    }

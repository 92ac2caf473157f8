"""Denial classification and routing, rework items, and patient statements.

Pure functions only. Every denial, partial denial and hold becomes one
ReworkItem saying what is wrong (codes with plain wording), what to do, in which
queue, by when and for how much. A denial is classified from its CARC group,
CARC and RARCs: the most specific row of ``denial_rules.csv`` that matches
wins, else the CARC's category (``carc.csv``) with its default route
(``denial_routing.csv``). Unknown codes go to the triage queue; nothing is
dropped.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import cache
from typing import Any

from processors.contracts.remittance import denies_money, is_denial
from processors.contracts.rework import item_reason, priority, rework_item
from processors.contracts.vocab import Category, ItemAction, ItemKind, Queue
from processors.ids import stable_id
from processors.refdata import ADJUSTMENT_CODES_VERSION, REFDATA_DIR, PayerProfile, RefData

Record = dict[str, Any]

ROUTING_VERSION = "routing-2"
TRIAGE = "triage"
STATEMENT_DUE_DAYS = 30
# Actions that end in a corrected claim; their deadline is the payer's filing limit.
CORRECTION_ACTIONS = ("correct_and_resubmit", "verify_eligibility", "fix_coding")


@dataclass(frozen=True)
class Route:
    """What to do about a denial."""

    category: Category
    action: ItemAction
    queue: Queue
    recovery_percent: int
    suggested_fix: str

    @classmethod
    def from_row(cls, row: dict[str, str], source: str) -> Route:
        """A route from a row of *source* (a CSV file), naming a value it does not know."""
        try:
            return cls(
                Category(row["category"]),
                ItemAction(row["action"]),
                Queue(row["queue"]),
                int(row["recovery_percent"]),
                row["suggested_fix"],
            )
        except ValueError as exc:
            raise ValueError(f"{source}: {exc} (row {row})") from exc


@cache
def routing_table() -> dict[str, Route]:
    """The default route of each denial category, from denial_routing.csv."""
    with (REFDATA_DIR / "denial_routing.csv").open(newline="") as f:
        return {r["category"]: Route.from_row(r, "denial_routing.csv") for r in csv.DictReader(f)}


@cache
def denial_rules() -> dict[tuple[str, str, str], Route]:
    """Routes for particular (group, CARC, RARC) combinations, from denial_rules.csv.

    ``*`` in the group matches any group; an empty RARC matches any remarks.
    """
    with (REFDATA_DIR / "denial_rules.csv").open(newline="") as f:
        return {
            (r["group_code"], r["carc"], r["rarc"]): Route.from_row(r, "denial_rules.csv")
            for r in csv.DictReader(f)
        }


def classify(group: str, carc: str, rarcs: list[str], refdata: RefData) -> Route:
    """The route of one denial adjustment, the most specific rule first."""
    rules = denial_rules()
    for g in (group, "*"):
        for rarc in rarcs:
            found = rules.get((g, carc, rarc))
            if found is not None:
                return found
        found = rules.get((g, carc, ""))
        if found is not None:
            return found
    table = routing_table()
    category = refdata.carc.get(carc, (TRIAGE, ""))[0]
    return table.get(category, table[TRIAGE])


def deadline_for(
    action: str, service_date: date | None, remitted: date, payer: PayerProfile | None
) -> tuple[date | None, str | None]:
    """The last day to act, and what for: an appeal, or a corrected claim."""
    if payer is None or payer.self_pay:
        return None, None
    if action == "appeal":
        return remitted + timedelta(days=payer.appeal_days), "appeal"
    if action in CORRECTION_ACTIONS and service_date is not None:
        # Corrected and rebilled claims must still meet the payer's filing limit.
        return service_date + timedelta(days=payer.timely_filing_days), "corrected_claim"
    return None, None


def route_remittance(
    remittance: Record, refdata: RefData, payer: PayerProfile | None, at: datetime
) -> Record | None:
    """The rework item for a denied or partly denied remittance; None when nothing was denied."""
    if not is_denial(remittance):
        return None
    reasons: list[Record] = []
    money: dict[Route, int] = {}
    at_stake = 0
    claim_rarcs = list(remittance["rarcs"])
    for line in remittance["lines"]:
        for adj in line["adjustments"]:
            if not denies_money(adj):
                continue
            route = classify(adj["group_code"], adj["carc"], line["rarcs"] + claim_rarcs, refdata)
            money[route] = money.get(route, 0) + adj["amount_cents"]
            at_stake += adj["amount_cents"]
            wording = refdata.carc.get(adj["carc"], (TRIAGE, "Unknown adjustment code."))[1]
            reasons.append(
                item_reason(
                    adj["carc"], adj["group_code"], line["line_number"], wording, adj["rule_id"]
                )
            )
        reasons.extend(
            item_reason(
                rarc,
                None,
                line["line_number"],
                refdata.rarc.get(rarc, "Unknown remark code."),
                "RARC",
            )
            for rarc in line["rarcs"]
        )
    reasons.extend(
        item_reason(rarc, None, None, refdata.rarc.get(rarc, "Unknown remark code."), "RARC")
        for rarc in claim_rarcs
    )
    # The route with the most money denied leads; ties keep claim order.
    lead = max(money, key=money.__getitem__) if money else routing_table()[TRIAGE]
    remitted: date = remittance["adjudicated_date"]
    service_date = remittance.get("service_date_from")
    deadline, deadline_kind = deadline_for(lead.action, service_date, remitted, payer)
    days_left = (deadline - remitted).days if deadline else None
    return rework_item(
        {
            "rework_id": stable_id("W", "DENIAL", remittance["remittance_id"]),
            "kind": ItemKind.DENIAL,
            "encounter_id": remittance["encounter_id"],
            "claim_id": remittance["claim_id"],
            "payer_id": remittance["payer_id"],
            "member_key": remittance["member_key"],
            "category": lead.category,
            "action": lead.action,
            "queue": lead.queue,
            "priority": priority(at_stake, lead.recovery_percent, days_left),
            "amount_at_stake_cents": at_stake,
            "reasons": reasons,
            "suggested_fix": lead.suggested_fix,
            "created_at": at,
            "deadline": deadline,
            "ruleset_version": f"{ROUTING_VERSION}|{ADJUSTMENT_CODES_VERSION}|"
            f"{remittance['payer_profile_version']}",
            "remittance_id": remittance["remittance_id"],
            "payer_claim_control_number": remittance["payer_claim_control_number"],
            "service_date": service_date,
            "deadline_kind": deadline_kind,
        }
    )


PATIENT_SHARE_WORDING = {
    "1": "Deductible",
    "2": "Coinsurance",
    "3": "Copay",
}


def patient_statement(remittance: Record, payer: PayerProfile | None) -> Record | None:
    """What the patient owes after *remittance*; None when they owe nothing.

    Self-pay claims owe the whole charge. A reversal gives the patient a credit
    for what the reversed payment made them owe.
    """
    self_pay = payer is not None and payer.self_pay
    due = remittance["patient_responsibility_cents"]
    if due == 0:
        return None
    lines = []
    for line in remittance["lines"]:
        shares = [a for a in line["adjustments"] if a["group_code"] == "PR"]
        patient = line["charge_cents"] if self_pay else sum(a["amount_cents"] for a in shares)
        adjusted = sum(a["amount_cents"] for a in line["adjustments"] if a["group_code"] != "PR")
        reasons = (
            ["Self-pay"]
            if self_pay
            else [PATIENT_SHARE_WORDING.get(a["carc"], "Not covered by the plan") for a in shares]
        )
        lines.append(
            {
                "line_number": line["line_number"],
                "procedure_code": line["procedure_code"],
                "service_date": line.get("service_date") or remittance.get("service_date_from"),
                "charge_cents": line["charge_cents"],
                "insurance_paid_cents": line["paid_cents"],
                "adjusted_cents": adjusted,
                "patient_cents": patient,
                "reasons": reasons,
            }
        )
    stated: date = remittance["adjudicated_date"]
    return {
        "statement_id": stable_id("P", remittance["remittance_id"]),
        "claim_id": remittance["claim_id"],
        "encounter_id": remittance["encounter_id"],
        "remittance_id": remittance["remittance_id"],
        "member_key": remittance["member_key"],
        "patient": remittance.get("patient"),
        "payer_id": remittance["payer_id"],
        "statement_date": stated,
        "due_date": stated + timedelta(days=STATEMENT_DUE_DAYS),
        "amount_due_cents": due,
        "lines": lines,
    }

"""What the dashboard shows, computed from the records on the topics.

:class:`DashboardState` takes records as a consumer reads them and keeps a
snapshot: first-pass and final denial rates by payer, denials by category and
by CARC over time, the open rework queue with its aging, dollars at stake and
the dead-letter count. Only ids, codes and amounts; no patient data. It also
says whether its reader is following every topic (``live``) or is not yet
(``waiting``: a topic not created, the broker out of reach) and why.
"""

from __future__ import annotations

import threading
from collections import Counter
from datetime import date, datetime, timedelta
from typing import Any

from pipeline.views.outcomes import Outcomes
from processors.contracts.remittance import is_denial
from processors.contracts.vocab import ItemKind
from processors.denials.queue import Event, history, open_items

Record = dict[str, Any]
AGING = (
    (0, 30, "0-30 days"),
    (31, 60, "31-60 days"),
    (61, 90, "61-90 days"),
    (91, 10**6, "over 90 days"),
)
QUEUE_ROWS = 500
LIVE, WAITING = "live", "waiting"


def _day(value: date | datetime) -> date:
    return value.date() if isinstance(value, datetime) else value


def _week(day: date) -> str:
    return (day - timedelta(days=day.weekday())).isoformat()


class DashboardState:
    """The dashboard's numbers, updated record by record (thread-safe)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.outcomes = Outcomes()
        self.claims: dict[str, Record] = {}
        self.items: dict[str, Record] = {}
        self.actions: dict[str, Record] = {}
        self.dead_letters = 0
        self.version = 0
        self.source = WAITING
        self.source_reason: str | None = "connecting to the broker"
        # Changes whenever a snapshot would: a record read or the reader's status.
        self.revision = 0

    def set_source(self, status: str, reason: str | None = None) -> None:
        """Record whether the reader follows every topic (LIVE) or not yet (WAITING, *reason*)."""
        with self.lock:
            if (status, reason) != (self.source, self.source_reason):
                self.source, self.source_reason = status, reason
                self.revision += 1

    def add(self, topic: str, record: Record) -> None:
        """Take one record read from *topic* (a registry name, without prefix)."""
        with self.lock:
            if topic == "claims.submitted":
                self.claims[record["claim_id"]] = record
            elif topic == "claims.remittance":
                self.outcomes.remittances[record["remittance_id"]] = record
            elif topic == "denials.rework":
                self.items[record["rework_id"]] = record
                if record["kind"] == ItemKind.DENIAL:
                    self.outcomes.denials[record["rework_id"]] = record
                elif record["kind"] in (ItemKind.CODING_HOLD, ItemKind.SCRUBBER_HOLD):
                    self.outcomes.holds[record["encounter_id"]] = record
            elif topic == "rework.actions":
                self.actions[record["action_id"]] = record
            elif topic == "pipeline.dead-letter":
                self.dead_letters += 1
            else:
                return
            self.version += 1
            self.revision += 1

    def history(self, claim_id: str) -> list[Event]:
        """*claim_id*'s lineage from what has been read so far."""
        with self.lock:
            return history(
                claim_id,
                self.claims.values(),
                self.outcomes.remittances.values(),
                self.items.values(),
                self.actions.values(),
            )

    def snapshot(self) -> Record:
        """Everything the page shows, as JSON-ready data."""
        with self.lock:
            return self._snapshot()

    def _snapshot(self) -> Record:
        answers = self.outcomes.answers()
        chains = self.outcomes.chains()
        by_payer: dict[str, Counter[str]] = {}
        for chain in chains:
            head = answers[chain[0]]
            if head["payer_id"] == "SELFPAY":
                continue  # nothing to deny: the patient owes the charge
            last = answers.get(chain[-1], head)
            c = by_payer.setdefault(head["payer_id"], Counter())
            c["claims"] += 1
            c["first_pass_denied"] += int(is_denial(head))
            c["final_denied"] += int(is_denial(last))
        claims = sum(c["claims"] for c in by_payer.values())
        first = sum(c["first_pass_denied"] for c in by_payer.values())
        final = sum(c["final_denied"] for c in by_payer.values())
        denials = list(self.outcomes.denials.values())
        by_category = Counter(d["category"] for d in denials)
        item_of = {d["claim_id"]: d for d in denials}
        category_first: Counter[str] = Counter()
        category_final: Counter[str] = Counter()
        for chain in chains:
            head = answers[chain[0]]
            last = answers.get(chain[-1], head)
            if chain[0] in item_of:
                category_first[item_of[chain[0]]["category"]] += 1
            if is_denial(last) and chain[-1] in item_of:
                category_final[item_of[chain[-1]]["category"]] += 1
        by_carc = Counter(
            f"{r['group_code']}-{r['code']}"
            for d in denials
            for r in d["reasons"]
            if r["group_code"]
        )
        over_time: dict[str, Counter[str]] = {}
        for d in denials:
            over_time.setdefault(_week(_day(d["created_at"])), Counter())[d["category"]] += 1
        carc_over_time: dict[str, Counter[str]] = {}
        for d in denials:
            week = _week(_day(d["created_at"]))
            codes = carc_over_time.setdefault(week, Counter())
            for r in d["reasons"]:
                if r["group_code"]:
                    codes[f"{r['group_code']}-{r['code']}"] += 1
        opened = open_items(self.items.values(), self.actions.values())
        today = max((_day(i["created_at"]) for i in self.items.values()), default=date.today())
        aging: Counter[str] = Counter()
        queue = []
        for item in opened:
            age = (today - _day(item["created_at"])).days
            bucket = next(label for low, high, label in AGING if low <= age <= high)
            aging[bucket] += 1
            queue.append(
                {
                    "rework_id": item["rework_id"],
                    "kind": item["kind"],
                    "queue": item["queue"],
                    "payer_id": item["payer_id"],
                    "category": item["category"],
                    "claim_id": item["claim_id"],
                    "encounter_id": item["encounter_id"],
                    "amount_cents": item["amount_at_stake_cents"],
                    "age_days": age,
                    "aging": bucket,
                    "priority": item["priority"],
                    "deadline": item["deadline"].isoformat() if item["deadline"] else None,
                    "codes": " ".join(
                        f"{r['group_code']}-{r['code']}" if r["group_code"] else r["code"]
                        for r in item["reasons"]
                    )[:40],
                }
            )
        return {
            "version": self.version,
            "source": {"status": self.source, "reason": self.source_reason},
            "as_of": today.isoformat(),
            "totals": {
                "claims_submitted": len(self.claims),
                "remittances": len(self.outcomes.remittances),
                "insured_claims": claims,
                "denials": len(denials),
                "first_pass_denial_rate": round(first / claims, 4) if claims else 0.0,
                "final_denial_rate": round(final / claims, 4) if claims else 0.0,
                "open_items": len(opened),
                "dollars_at_stake_cents": sum(i["amount_at_stake_cents"] for i in opened),
                "dead_letters": self.dead_letters,
                "auto_corrected": sum(1 for d in denials if d["status"] == "AUTO_CORRECTED"),
            },
            "by_payer": {
                payer: {
                    "claims": c["claims"],
                    "first_pass_rate": round(c["first_pass_denied"] / c["claims"], 4),
                    "final_rate": round(c["final_denied"] / c["claims"], 4),
                }
                for payer, c in sorted(by_payer.items())
            },
            "by_category": dict(by_category.most_common()),
            "by_category_first_and_final": {
                category: {"first_pass": n, "final": category_final[category]}
                for category, n in category_first.most_common()
            },
            "by_carc": dict(by_carc.most_common(12)),
            "over_time": {week: dict(c) for week, c in sorted(over_time.items())},
            "carc_over_time": {week: dict(c) for week, c in sorted(carc_over_time.items())},
            "aging": {label: aging[label] for _, _, label in AGING},
            "queue": queue[:QUEUE_ROWS],
        }

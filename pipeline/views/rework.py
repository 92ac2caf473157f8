"""The rework queue from the command line: list, show and resolve items; a claim's history.

Reads the topics from the beginning (denials.rework, rework.actions,
claims.submitted, claims.remittance), so what it shows is what the pipeline
recorded, and publishes what a person decides as a ReworkAction event on
rework.actions. The workers act on it: a RESUBMIT carries the corrected claim,
which the rework stage sends to the payer.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, TextIO

from kafka import KafkaProducer

from pipeline.config import Settings
from pipeline.kafka.codec import codec_for
from pipeline.kafka.readers import read_topic
from pipeline.views.exports import submitted_claims
from processors.contracts.topics import (
    CLAIMS_REMITTANCE,
    CLAIMS_SUBMITTED,
    DENIALS_REWORK,
    REWORK_ACTIONS,
)
from processors.contracts.vocab import Decision, ItemKind
from processors.denials.queue import (
    Event,
    history,
    latest_items,
    matches,
    open_items,
    person_action,
    resubmission,
)

Record = dict[str, Any]


class ReworkError(ValueError):
    """A request the queue cannot carry out; the message says what to do instead."""


def _values(settings: Settings, spec: Any) -> list[Record]:
    return [value for _, value in read_topic(settings, spec, {}) if value is not None]


@dataclass
class Queue:
    """The rework items and actions on the topics, read once."""

    items: list[Record]
    actions: list[Record]

    @classmethod
    def read(cls, settings: Settings) -> Queue:
        """Read every item and action recorded so far."""
        return cls(_values(settings, DENIALS_REWORK), _values(settings, REWORK_ACTIONS))

    def open(
        self, queue: str | None = None, payer: str | None = None, category: str | None = None
    ) -> list[Record]:
        """Open items passing the filters, highest priority first."""
        return [
            i for i in open_items(self.items, self.actions) if matches(i, queue, payer, category)
        ]

    def item(self, rework_id: str) -> Record:
        """The item *rework_id*; ReworkError when there is none."""
        found = latest_items(self.items).get(rework_id)
        if found is None:
            raise ReworkError(f"no rework item {rework_id}; `claims rework list` shows the ids")
        return found

    def actions_on(self, rework_id: str) -> list[Record]:
        """What was done about *rework_id*, oldest first."""
        return [a for a in self.actions if a["rework_id"] == rework_id]


def money(cents: int | None) -> str:
    """Cents as dollars for people."""
    return "" if cents is None else f"${cents / 100:,.2f}"


def print_items(items: list[Record], out: TextIO) -> None:
    """Open items as a table (ids, never patient data)."""
    print(
        f"{'rework id':<18} {'kind':<13} {'queue':<10} {'category':<24} {'payer':<10} "
        f"{'claim':<18} {'at stake':>11} {'deadline':<10} {'priority':>8}",
        file=out,
    )
    for i in items:
        deadline = i["deadline"].isoformat() if i["deadline"] else "-"
        print(
            f"{i['rework_id']:<18} {i['kind']:<13} {i['queue']:<10} {i['category']:<24} "
            f"{i['payer_id'] or '-':<10} {i['claim_id'] or '-':<18} "
            f"{money(i['amount_at_stake_cents']):>11} {deadline:<10} {i['priority']:>8}",
            file=out,
        )
    print(f"{len(items)} open item(s)", file=out)


def print_item(item: Record, actions: list[Record], out: TextIO) -> None:
    """One item in full: what is wrong, what to do, by when, and what was done."""
    print(f"Rework item {item['rework_id']} ({item['kind']}, {item['status']})", file=out)
    print(
        f"  claim {item['claim_id'] or '-'}  encounter {item['encounter_id']}  "
        f"payer {item['payer_id'] or '-'}  payer control number "
        f"{item['payer_claim_control_number'] or '-'}",
        file=out,
    )
    print(
        f"  {item['category']}: {item['action']} in the {item['queue']} queue, "
        f"{money(item['amount_at_stake_cents'])} at stake, priority {item['priority']}",
        file=out,
    )
    if item["deadline"]:
        print(f"  deadline ({item['deadline_kind']}): {item['deadline'].isoformat()}", file=out)
    print("  reasons:", file=out)
    for r in item["reasons"]:
        code = f"{r['group_code']}-{r['code']}" if r["group_code"] else r["code"]
        line = f"line {r['line_number']}" if r["line_number"] else "claim"
        print(f"    {code:<10} {line:<8} {r['message']}", file=out)
    print(f"  what to do: {item['suggested_fix']}", file=out)
    if item["correction"]:
        print(f"  corrected automatically: {item['correction']}", file=out)
    for a in actions:
        print(
            f"  {a['at']:%Y-%m-%d %H:%M} {a['action']} by {a['actor']}"
            + (f": {a['note']}" if a["note"] else ""),
            file=out,
        )


def latest_claim(settings: Settings, claim_id: str) -> Record:
    """The claim *claim_id* as last submitted; ReworkError when it was never submitted."""
    found = next((c for c in submitted_claims(settings) if c["claim_id"] == claim_id), None)
    if found is None:
        raise ReworkError(
            f"claim {claim_id} was never submitted (a hold is fixed in the source encounter: "
            "correct it in the EHR and send it again)"
        )
    return found


def resolve(
    settings: Settings,
    rework_id: str,
    action: str,
    *,
    actor: str,
    note: str | None = None,
    changes: list[Record] | None = None,
    at: datetime | None = None,
) -> Record:
    """Record a person's decision on *rework_id*; a RESUBMIT carries the corrected claim."""
    queue = Queue.read(settings)
    item = queue.item(rework_id)
    done = queue.actions_on(rework_id)
    if item["status"] != "OPEN" or done:
        raise ReworkError(
            f"rework item {rework_id} is already resolved "
            f"({done[-1]['action'] if done else item['status']})"
        )
    at = at or datetime.now(UTC)
    claim = None
    if action == Decision.RESUBMIT:
        if item["kind"] != ItemKind.DENIAL or not item["claim_id"]:
            raise ReworkError(
                f"{item['kind']} items are fixed at the source: correct the encounter in the "
                "EHR and send it again, then resolve this item with --write-off and a note"
            )
        claim = resubmission(latest_claim(settings, item["claim_id"]), item, changes or [], at)
    record = person_action(
        item, action, actor=actor, at=at, note=note, claim=claim, changes=changes
    )
    producer = KafkaProducer(bootstrap_servers=settings.bootstrap, acks="all")
    try:
        producer.send(
            REWORK_ACTIONS.full_name(settings.topic_prefix),
            key=record["member_key"].encode(),
            value=codec_for(REWORK_ACTIONS.value_schema).encode(record),
        ).get(timeout=30)
    finally:
        producer.close()
    return record


def claim_history(settings: Settings, claim_id: str) -> list[Event]:
    """Every event of *claim_id*'s encounter; empty when the claim is unknown."""
    return history(
        claim_id,
        _values(settings, CLAIMS_SUBMITTED),
        _values(settings, CLAIMS_REMITTANCE),
        _values(settings, DENIALS_REWORK),
        _values(settings, REWORK_ACTIONS),
    )


def print_history(claim_id: str, events: list[Event], out: TextIO) -> None:
    """A claim's history as a table, with amounts."""
    print(f"History of claim {claim_id} and its encounter's other claims:", file=out)
    print(
        f"{'date':<10} {'status':<15} {'claim':<18} {'charge':>11} {'paid':>11} "
        f"{'patient':>10}  detail",
        file=out,
    )
    for e in events:
        day = e.at.date() if isinstance(e.at, datetime) else e.at
        assert isinstance(day, date)
        print(
            f"{day.isoformat():<10} {e.status:<15} {e.claim_id:<18} "
            f"{money(e.charge_cents):>11} {money(e.paid_cents):>11} "
            f"{money(e.patient_cents):>10}  {e.detail}",
            file=out,
        )

"""Reading what the pipeline produced: follow the outcome topics and reconcile.

Every encounter fed ends exactly once as a remittance, a coding hold, a
scrubber hold or a dead letter. :class:`OutcomeCollector` reads those topics
from a starting offset snapshot, matches records to the encounters fed, and
reports progress until each is accounted for. Denial rework items are
collected too (a denial follows a remittance; it is not a terminal outcome).
"""

from __future__ import annotations

import base64
import json
import sys
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any, TextIO

from kafka import KafkaConsumer, TopicPartition

from pipeline.config import Settings
from pipeline.kafka.codec import DecodeError, codec_for
from pipeline.kafka.readers import Offsets
from processors.contracts.remittance import is_denial, is_reversal
from processors.contracts.topics import (
    CLAIMS_LIFECYCLE,
    CLAIMS_REMITTANCE,
    DEAD_LETTER,
    DENIALS_REWORK,
    TopicSpec,
)
from processors.contracts.vocab import ItemKind
from processors.denials.stage import remittance_status

OUTCOME_TOPICS = (CLAIMS_REMITTANCE, DENIALS_REWORK, DEAD_LETTER, CLAIMS_LIFECYCLE)


@dataclass
class Outcomes:
    """Everything collected for one run."""

    # By remittance id: a reversal answers the same claim id as the payment it takes back.
    remittances: dict[str, dict[str, Any]] = field(default_factory=dict)
    holds: dict[str, dict[str, Any]] = field(default_factory=dict)
    denials: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Follow-ups of unanswered claims and deadline reminders, by rework id.
    followups: dict[str, dict[str, Any]] = field(default_factory=dict)
    dead_letters: list[dict[str, Any]] = field(default_factory=list)
    duplicates: Counter[str] = field(default_factory=Counter)
    settled: set[str] = field(default_factory=set)

    def accounted(self) -> set[str]:
        """Encounter ids (or dead-letter keys) that reached a terminal outcome."""
        ids = self.remitted_encounters() | set(self.holds)
        ids.update(d["record_id"] or f"key:{d['key']!r}" for d in self.dead_letters)
        return ids

    def keep(
        self, store: dict[str, dict[str, Any]], kind: str, key: str, value: dict[str, Any]
    ) -> None:
        """Store *value* under *key*, counting a second arrival as a duplicate."""
        if key in store:
            self.duplicates[f"{kind}:{key}"] += 1
        store[key] = value

    def remitted_encounters(self) -> set[str]:
        """Encounters with at least one remittance (a split claim has several)."""
        return {r["encounter_id"] for r in self.remittances.values()}

    def complete(self, expected: int) -> bool:
        """All *expected* outcomes arrived, the denials stage settled every remittance, and
        every automatically resubmitted claim has its answer."""
        settled = all(r["claim_id"] in self.settled for r in self.remittances.values())
        answered = {r["claim_id"] for r in self.remittances.values() if not is_reversal(r)}
        resubmitted = all(
            item["resubmitted_claim_id"] in answered
            for item in self.denials.values()
            if item["resubmitted_claim_id"]
        )
        return len(self.accounted()) >= expected and settled and resubmitted

    def answers(self) -> dict[str, dict[str, Any]]:
        """Each claim's own answer by claim id (reversals left out)."""
        return {r["claim_id"]: r for r in self.remittances.values() if not is_reversal(r)}

    def chains(self) -> list[list[str]]:
        """Claim ids from each first submission through its automatic resubmissions."""
        next_of = {
            item["claim_id"]: item["resubmitted_claim_id"]
            for item in self.denials.values()
            if item["resubmitted_claim_id"]
        }
        later = set(next_of.values())
        out = []
        for claim_id in sorted(self.answers()):
            if claim_id in later:
                continue
            chain = [claim_id]
            while chain[-1] in next_of and len(chain) < 10:
                chain.append(next_of[chain[-1]])
            out.append(chain)
        return out

    def final_states(self) -> dict[str, str]:
        """Each encounter's final state: its last claim's outcome, a hold or a dead letter."""
        answers = self.answers()
        states: dict[str, str] = {}
        for chain in self.chains():
            final = answers.get(chain[-1])
            if final is None:
                state = "AWAITING_ANSWER"
            else:
                state = remittance_status(final, is_denial(final))
            # A split claim's parts share the encounter: the worst outcome stands for it.
            encounter = answers[chain[0]]["encounter_id"]
            states[encounter] = min(states.get(encounter, state), state, key=STATE_ORDER.index)
        for encounter_id, hold in self.holds.items():
            states.setdefault(encounter_id, f"HELD_{hold['kind'].removesuffix('_HOLD')}")
        for dead in self.dead_letters:
            states.setdefault(dead["record_id"] or f"key:{dead['key']!r}", "DEAD_LETTER")
        return states


class OutcomeCollector:
    """Follows the outcome topics from a snapshot and gathers the records of one run."""

    def __init__(self, settings: Settings, start: Offsets) -> None:
        self.settings = settings
        self.outcomes = Outcomes()
        self.consumer = KafkaConsumer(
            bootstrap_servers=settings.bootstrap,
            client_id="claims-outcomes",
            enable_auto_commit=False,
            fetch_max_wait_ms=200,
        )
        tps = []
        for spec in OUTCOME_TOPICS:
            name = spec.full_name(settings.topic_prefix)
            for p in sorted(self.consumer.partitions_for_topic(name) or set()):
                tps.append(TopicPartition(name, p))
        self.consumer.assign(tps)
        for tp in tps:
            self.consumer.seek(
                tp, start.get(tp.topic.removeprefix(settings.topic_prefix), {}).get(tp.partition, 0)
            )
        self._codecs = {
            spec.full_name(settings.topic_prefix): (spec, codec_for(spec.value_schema))
            for spec in OUTCOME_TOPICS
        }

    def poll(self, timeout_ms: int = 500) -> int:
        """Read what has arrived; returns the number of records read."""
        batches = self.consumer.poll(timeout_ms=timeout_ms, max_records=5000)
        n = 0
        for tp, records in batches.items():
            spec, codec = self._codecs[tp.topic]
            for rec in records:
                n += 1
                try:
                    value = codec.decode(rec.value)
                except DecodeError:
                    continue
                self._add(spec, value)
        return n

    def _add(self, spec: TopicSpec, value: dict[str, Any]) -> None:
        out = self.outcomes
        if spec is CLAIMS_REMITTANCE:
            out.keep(out.remittances, "remittance", value["remittance_id"], value)
        elif spec is DENIALS_REWORK:
            if value["kind"] == ItemKind.DENIAL:
                out.keep(out.denials, "denial", value["rework_id"], value)
            elif value["kind"] in (ItemKind.FOLLOW_UP, ItemKind.REMINDER):
                out.keep(out.followups, "follow-up", value["rework_id"], value)
            else:
                out.keep(out.holds, "hold", value["encounter_id"], value)
        elif spec is CLAIMS_LIFECYCLE:
            if value["stage"] == "denials":
                out.settled.add(value["claim_id"])
        else:
            out.dead_letters.append(value)

    def wait_for(
        self, expected: int, timeout: float, progress: TextIO | None = sys.stderr, alive: Any = None
    ) -> bool:
        """Poll until *expected* outcomes arrived or *timeout* passed; True when all arrived."""
        deadline = time.monotonic() + timeout
        last_report = 0.0
        while time.monotonic() < deadline:
            self.poll()
            done = len(self.outcomes.accounted())
            now = time.monotonic()
            if progress is not None and (now - last_report > 2 or done >= expected):
                o = self.outcomes
                print(
                    f"  accounted {done}/{expected}: {len(o.remittances)} remittances, "
                    f"{sum(h['kind'] == 'CODING_HOLD' for h in o.holds.values())} coding holds, "
                    f"{sum(h['kind'] == 'SCRUBBER_HOLD' for h in o.holds.values())} scrubber "
                    f"holds, {len(o.dead_letters)} dead letters",
                    file=progress,
                    flush=True,
                )
                last_report = now
            if self.outcomes.complete(expected):
                return True
            if alive is not None:
                alive()
        return False

    def close(self) -> None:
        """Close the consumer."""
        self.consumer.close()


# Final states from worst to best, to pick one for an encounter billed on several claims.
STATE_ORDER = ["AWAITING_ANSWER", "DENIED", "PARTIALLY_PAID", "REVERSED", "PAID"]


def paid_rates(outcomes: Outcomes) -> dict[str, Any]:
    """First-pass and final paid rates of insured claims, by count and by dollars.

    A claim counts as paid when nothing on it was denied (patient shares and
    contractual write-downs aside). First pass is each claim's first answer;
    final is the answer to its last automatic resubmission.
    """
    answers = outcomes.answers()
    first = final = chains = 0
    first_paid = final_paid = 0
    for chain in outcomes.chains():
        head = answers[chain[0]]
        if head["payer_id"] == "SELFPAY":
            continue
        chains += 1
        last = answers.get(chain[-1], head)
        first += int(not is_denial(head))
        final += int(not is_denial(last))
        first_paid += head["paid_cents"]
        final_paid += last["paid_cents"]
    return {
        "claims": chains,
        "first_pass_paid_rate": round(first / chains, 4) if chains else 0.0,
        "final_paid_rate": round(final / chains, 4) if chains else 0.0,
        "first_pass_paid_cents": first_paid,
        "final_paid_cents": final_paid,
        "auto_corrected": sum(1 for c in outcomes.chains() if len(c) > 1),
    }


def summarize(
    outcomes: Outcomes, fed: int, malformed: int, topic_counts: dict[str, int]
) -> dict[str, Any]:
    """The run's summary: outcomes, money, denial rates by payer and CARC."""
    status: Counter[str] = Counter()
    by_payer: dict[str, Counter[str]] = {}
    money: Counter[str] = Counter()
    for remit in outcomes.remittances.values():
        denied = is_denial(remit)
        st = remittance_status(remit, denied)
        status[st] += 1
        payer = by_payer.setdefault(remit["payer_id"], Counter())
        payer["remittances"] += 1
        payer["denied_or_partial"] += int(denied)
        money["charge_cents"] += remit["total_charge_cents"]
        money["paid_cents"] += remit["paid_cents"]
        money["patient_responsibility_cents"] += remit["patient_responsibility_cents"]
    carcs = Counter(
        f"{r['group_code']}-{r['code']}"
        for item in outcomes.denials.values()
        for r in item["reasons"]
        if r["group_code"]
    )
    holds = Counter(h["kind"] for h in outcomes.holds.values())
    edits = Counter(r["code"] for h in outcomes.holds.values() for r in h["reasons"])
    queues = Counter(i["queue"] for i in [*outcomes.denials.values(), *outcomes.holds.values()])
    return {
        "encounters_fed": fed,
        "malformed_fed": malformed,
        "records_per_topic": topic_counts,
        "outcomes": {
            "remittances": len(outcomes.remittances),
            "paid": status["PAID"],
            "partially_paid": status["PARTIALLY_PAID"],
            "denied": status["DENIED"],
            "coding_holds": holds[ItemKind.CODING_HOLD],
            "scrubber_holds": holds[ItemKind.SCRUBBER_HOLD],
            "dead_letters": len(outcomes.dead_letters),
            "duplicates": sum(outcomes.duplicates.values()),
        },
        "denial_rate_by_payer": {
            payer: {
                "remittances": c["remittances"],
                "denied_or_partial": c["denied_or_partial"],
                "rate": round(c["denied_or_partial"] / c["remittances"], 4),
            }
            for payer, c in sorted(by_payer.items())
        },
        "denials_by_carc": dict(carcs.most_common()),
        "holds_by_edit": dict(edits.most_common()),
        "rework_by_queue": dict(queues.most_common()),
        "money": dict(money),
        "paid_rates": paid_rates(outcomes),
        "follow_ups": dict(Counter(f["kind"] for f in outcomes.followups.values())),
        "final_states": dict(Counter(outcomes.final_states().values()).most_common()),
    }


def jsonable(value: Any) -> Any:
    """*value* with dates as ISO 8601 strings and bytes as base64, ready for JSON."""
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [jsonable(v) for v in value]
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    return value


def write_jsonl(path: Path, records: Iterable[dict[str, Any]]) -> int:
    """Write *records* as JSON lines (dates ISO 8601, bytes base64); returns the count."""
    n = 0
    with path.open("w") as f:
        for record in records:
            f.write(json.dumps(jsonable(record), sort_keys=True) + "\n")
            n += 1
    return n

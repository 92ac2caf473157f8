"""``claims replay``: reprocess a window of encounters into separate topics, and compare.

A replay reads the encounters released in a business-time window from the live
ehr.encounters topic and runs them through all stages again, with workers of
their own, into topics prefixed with the replay's name and a consumer group of
its own: live topics and live consumer groups are only read. Payer profiles and
the seed may differ from the live run's, so an analyst can ask what a payer or
rule change would have done. ``claims replay diff`` reports what changed.
"""

from __future__ import annotations

import re
import sys
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from pipeline.config import Settings
from pipeline.ingest.feed import publish
from pipeline.kafka.admin import create_topics
from pipeline.kafka.readers import read_topic, snapshot_offsets
from pipeline.runtime.processes import WorkerPool
from pipeline.views.outcomes import OutcomeCollector
from processors.contracts.remittance import denies_money, is_denial, is_reversal
from processors.contracts.topics import (
    CLAIMS_REMITTANCE,
    DENIALS_REWORK,
    EHR_ENCOUNTERS,
    member_key,
)
from processors.contracts.vocab import ItemKind
from processors.refdata import RULESET_VERSION

Record = dict[str, Any]
NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,40}$")


class ReplayError(ValueError):
    """A replay that cannot run as asked; the message says what to change."""


def replay_settings(
    live: Settings, name: str, *, seed: int | None = None, payers_dir: Path | None = None
) -> Settings:
    """Settings of replay *name*: its own topic prefix and consumer group, nothing shared."""
    if not NAME.match(name):
        raise ReplayError(f"replay name {name!r}: use lower-case letters, digits, - and _")
    return live.with_changes(
        topic_prefix=f"replay.{name}.{live.topic_prefix}",
        seed=live.seed if seed is None else seed,
        payers_dir=payers_dir or live.payers_dir,
    )


def window(live: Settings, start: datetime, end: datetime) -> list[tuple[str, Record]]:
    """The live encounters released for billing in [start, end), in topic order."""
    out = []
    for _, event in read_topic(live, EHR_ENCOUNTERS, {}):
        if event is not None and start <= event["received_at"] < end:
            out.append((member_key(event), event))
    return out


def run_replay(
    live: Settings,
    name: str,
    start: datetime,
    end: datetime,
    *,
    seed: int | None = None,
    payers_dir: Path | None = None,
    ruleset: str | None = None,
    workers: int = 1,
    progress: TextIO | None = sys.stderr,
    timeout: float = 600,
) -> Record:
    """Replay the window into topics named after *name*; returns a summary."""
    if ruleset is not None and ruleset != RULESET_VERSION:
        raise ReplayError(
            f"ruleset {ruleset!r} is not installed; this build has {RULESET_VERSION!r}"
        )
    settings = replay_settings(live, name, seed=seed, payers_dir=payers_dir)
    events = window(live, start, end)
    if not events:
        raise ReplayError(
            f"no encounters were released between {start.isoformat()} and "
            f"{end.isoformat()} on {live.topic_prefix}ehr.encounters"
        )
    create_topics(settings)
    collector = OutcomeCollector(settings, snapshot_offsets(settings))
    log_dir = settings.data_dir / "replays" / name
    with WorkerPool(settings, workers, log_dir) as pool:
        pool.wait_ready()
        if progress is not None:
            print(
                f"replaying {len(events)} encounters into {settings.topic_prefix}*",
                file=progress,
                flush=True,
            )
        fed = publish(settings, events, progress=None)
        done = collector.wait_for(
            fed.sent, timeout=timeout, progress=progress, alive=pool.check_alive
        )
    collector.close()
    if not done:
        raise ReplayError(f"replay {name} did not finish within {timeout:.0f} s; see {log_dir}")
    return {
        "name": name,
        "prefix": settings.topic_prefix,
        "encounters": fed.sent,
        "remittances": len(collector.outcomes.remittances),
        "rework_items": len(collector.outcomes.denials) + len(collector.outcomes.holds),
    }


@dataclass
class RunView:
    """A run's answers and holds, by encounter."""

    answers: dict[str, list[Record]] = field(default_factory=dict)
    holds: dict[str, Record] = field(default_factory=dict)

    @classmethod
    def read(cls, settings: Settings) -> RunView:
        """Read a run's topics."""
        view = cls()
        for _, r in read_topic(settings, CLAIMS_REMITTANCE, {}):
            if r is not None:
                answers = view.answers.setdefault(r["encounter_id"], [])
                if all(a["remittance_id"] != r["remittance_id"] for a in answers):
                    answers.append(r)
        for _, item in read_topic(settings, DENIALS_REWORK, {}):
            if item is not None and item["kind"] in (ItemKind.CODING_HOLD, ItemKind.SCRUBBER_HOLD):
                view.holds[item["encounter_id"]] = item
        return view

    def outcome(self, encounter_id: str) -> Record:
        """What happened to an encounter: held, or its answers summed, with the rules used."""
        if encounter_id in self.holds:
            hold = self.holds[encounter_id]
            return {
                "state": "HELD",
                "paid_cents": 0,
                "denied": True,
                "rules": sorted(r["code"] for r in hold["reasons"]),
            }
        answers = [a for a in self.answers.get(encounter_id, []) if not is_reversal(a)]
        if not answers:
            return {"state": "ABSENT", "paid_cents": 0, "denied": False, "rules": []}
        rules = sorted(
            {
                adj["rule_id"]
                for a in answers
                for ln in a["lines"]
                for adj in ln["adjustments"]
                if denies_money(adj)
            }
        )
        denied = any(is_denial(a) for a in answers)
        return {
            "state": "DENIED" if denied else "PAID",
            "paid_cents": sum(a["paid_cents"] for a in answers),
            "denied": denied,
            "rules": rules,
        }


def diff(base: RunView, other: RunView, encounters: list[str]) -> Record:
    """Rates, dollars and each encounter whose outcome changed between two runs."""
    changed = []
    totals: Counter[str] = Counter()
    for encounter_id in sorted(encounters):
        a, b = base.outcome(encounter_id), other.outcome(encounter_id)
        totals["encounters"] += 1
        totals["base_denied"] += int(a["denied"])
        totals["other_denied"] += int(b["denied"])
        totals["base_paid_cents"] += a["paid_cents"]
        totals["other_paid_cents"] += b["paid_cents"]
        if a != b:
            changed.append(
                {
                    "encounter_id": encounter_id,
                    "before": a["state"],
                    "after": b["state"],
                    "paid_cents_before": a["paid_cents"],
                    "paid_cents_after": b["paid_cents"],
                    "rules_before": a["rules"],
                    "rules_after": b["rules"],
                    "changed_by": sorted(set(a["rules"]) ^ set(b["rules"])),
                }
            )
    n = totals["encounters"] or 1
    return {
        "encounters": totals["encounters"],
        "denial_rate": {
            "before": round(totals["base_denied"] / n, 4),
            "after": round(totals["other_denied"] / n, 4),
        },
        "paid_cents": {"before": totals["base_paid_cents"], "after": totals["other_paid_cents"]},
        "changed": changed,
    }


def replay_encounters(settings: Settings) -> list[str]:
    """Encounter ids a run was fed."""
    return [e["encounter_id"] for _, e in read_topic(settings, EHR_ENCOUNTERS, {}) if e is not None]


def print_diff(report: Record, out: TextIO) -> None:
    """The diff for a person."""
    rate, paid = report["denial_rate"], report["paid_cents"]
    print(f"{report['encounters']} encounters compared", file=out)
    print(f"  denial rate  {100 * rate['before']:.1f}% -> {100 * rate['after']:.1f}%", file=out)
    print(f"  paid         ${paid['before'] / 100:,.2f} -> ${paid['after'] / 100:,.2f}", file=out)
    print(f"  {len(report['changed'])} encounter(s) changed", file=out)
    for c in report["changed"]:
        print(
            f"    {c['encounter_id']}: {c['before']} -> {c['after']} "
            f"(${c['paid_cents_before'] / 100:,.2f} -> ${c['paid_cents_after'] / 100:,.2f}); "
            f"changed by {', '.join(c['changed_by']) or 'amounts'}",
            file=out,
        )

"""The main job: the whole flow on a synthetic feed, end to end, with a summary.

Starts the local broker if needed, creates the topics, runs the workers,
feeds N encounters, waits (showing progress) until every one is accounted
for, then prints and writes the summary. Whatever it started it stops, on
success, failure or Ctrl-C.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

from pipeline.config import Settings
from pipeline.ingest.feed import publish
from pipeline.ingest.synthetic import generate
from pipeline.kafka.admin import create_topics
from pipeline.kafka.broker import BrokerError, cluster_for
from pipeline.kafka.readers import record_counts, snapshot_offsets
from pipeline.runtime.processes import WorkerDied, WorkerPool
from pipeline.views.exports import submitted_claims, write_835, write_837p, write_fhir_ndjson
from pipeline.views.outcomes import OutcomeCollector, summarize, write_jsonl


def say(message: str) -> None:
    """Progress for the person running the demo, on stderr."""
    print(message, file=sys.stderr, flush=True)


def print_summary(summary: dict[str, Any]) -> None:
    """The summary as a person reads it."""
    o = summary["outcomes"]
    m = summary["money"]
    print()
    print(f"Encounters fed: {summary['encounters_fed']} (+{summary['malformed_fed']} malformed)")
    print("Records per topic:")
    for topic, n in summary["records_per_topic"].items():
        print(f"  {topic:<24} {n:>8}")
    print("Outcomes:")
    print(
        f"  remittances {o['remittances']} (paid {o['paid']}, partially paid "
        f"{o['partially_paid']}, denied {o['denied']})"
    )
    print(
        f"  held for coding {o['coding_holds']}, held by scrubber {o['scrubber_holds']}, "
        f"dead letters {o['dead_letters']}, duplicates {o['duplicates']}"
    )
    print(
        f"  charged ${m.get('charge_cents', 0) / 100:,.2f}, paid "
        f"${m.get('paid_cents', 0) / 100:,.2f}, patient responsibility "
        f"${m.get('patient_responsibility_cents', 0) / 100:,.2f}"
    )
    r = summary["paid_rates"]
    print(
        f"Paid in full, insured claims: first pass {100 * r['first_pass_paid_rate']:.1f}%, "
        f"after automatic corrections {100 * r['final_paid_rate']:.1f}% "
        f"({r['auto_corrected']} claims corrected and resubmitted; paid "
        f"${r['first_pass_paid_cents'] / 100:,.2f} -> ${r['final_paid_cents'] / 100:,.2f})"
    )
    follow = summary["follow_ups"]
    print(
        f"Follow-ups: {follow.get('FOLLOW_UP', 0)} claim status inquiries, "
        f"{follow.get('REMINDER', 0)} deadline reminders"
    )
    print("Final state of each encounter:")
    for state, n in summary["final_states"].items():
        print(f"  {state:<24} {n:>6}")
    print("Denial rate by payer (denied or partly denied / remittances):")
    for payer, r in summary["denial_rate_by_payer"].items():
        print(
            f"  {payer:<10} {r['denied_or_partial']:>5}/{r['remittances']:<6} "
            f"{100 * r['rate']:5.1f}%"
        )
    print("Denials by CARC:")
    for carc, n in summary["denials_by_carc"].items():
        print(f"  {carc:<8} {n:>6}")
    print("Holds by edit:")
    for edit, n in summary["holds_by_edit"].items():
        print(f"  {edit:<28} {n:>6}")


def run_demo(
    settings: Settings,
    *,
    encounters: int,
    seed: int,
    out: Path,
    workers: int = 2,
    keep_broker: bool = False,
    timeout: float = 600.0,
    malformed: int = 5,
) -> int:
    """Run the demo; returns the process exit code."""
    out.mkdir(parents=True, exist_ok=True)
    try:
        with cluster_for(settings, keep=keep_broker, say=say):
            return _run(
                settings,
                encounters=encounters,
                seed=seed,
                out=out,
                workers=workers,
                timeout=timeout,
                malformed=malformed,
            )
    except (BrokerError, WorkerDied) as exc:
        say(f"error: {exc}")
        return 1
    except KeyboardInterrupt:
        say("interrupted; stopping what the demo started")
        return 130


def _run(
    settings: Settings,
    *,
    encounters: int,
    seed: int,
    out: Path,
    workers: int,
    timeout: float,
    malformed: int,
) -> int:
    """Topics, workers, feed, wait, summary: the demo inside a running cluster."""
    for report in create_topics(settings):
        say(f"  {'created' if report.created else 'found  '} topic {report.name}")
    before = snapshot_offsets(settings)
    collector = OutcomeCollector(settings, before)
    say(f"Starting {workers} worker(s) ({settings.topology} topology); logs in {out}/logs")
    with WorkerPool(settings, workers, out / "logs") as pool:
        pool.wait_ready()
        say("Workers joined the consumer group")
        say(f"Feeding {encounters} synthetic encounters (seed {seed}) ...")
        t0 = time.monotonic()
        fed = publish(
            settings, generate(encounters, seed), malformed=malformed, seed=seed, total=encounters
        )
        expected = fed.sent + fed.malformed
        say(f"Fed in {fed.seconds:.1f} s; waiting for every encounter's outcome ...")
        complete = collector.wait_for(expected, timeout, alive=pool.check_alive)
        elapsed = time.monotonic() - t0
    collector.close()
    counts = record_counts(settings, before)
    summary = summarize(collector.outcomes, fed.sent, fed.malformed, counts)
    summary["seconds"] = round(elapsed, 2)
    summary["complete"] = complete
    items = [*collector.outcomes.holds.values(), *collector.outcomes.denials.values()]
    write_jsonl(out / "rework.jsonl", sorted(items, key=lambda i: -i["priority"]))
    write_jsonl(out / "dead-letter.jsonl", collector.outcomes.dead_letters)
    claims = submitted_claims(settings, before)  # read once, written in both formats
    interchanges = write_837p(claims, out / "x12" / "837p")
    summary["x12_837p_files"] = [str(p.relative_to(out)) for p in interchanges]
    advices = write_835(
        list(collector.outcomes.remittances.values()), out / "x12" / "835", settings.refdata()
    )
    summary["x12_835_files"] = [str(p.relative_to(out)) for p in advices]
    summary["fhir_claims"] = write_fhir_ndjson(claims, out / "fhir" / "claims.ndjson")
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print_summary(summary)
    print(
        f"\nWrote {out}/summary.json, rework.jsonl, dead-letter.jsonl, "
        f"x12/837p/ ({len(interchanges)} interchanges), x12/835/ ({len(advices)} "
        f"interchanges), fhir/claims.ndjson "
        f"({elapsed:.1f} s end to end)"
    )
    if not complete:
        missing = expected - len(collector.outcomes.accounted())
        say(
            f"error: {missing} encounters had no outcome after {timeout:.0f} s; "
            f"see the worker logs in {out}/logs"
        )
        return 1
    return 0

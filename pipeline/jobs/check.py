"""``claims check``: an integrator's dry run, no broker.

Maps FHIR bundles or HL7 v2 messages to EncounterEvents and runs them through
the same pure stage functions the workers run (``pipeline.runtime.dryrun``), then
reports per encounter: the coding findings, the claim, the simulated payer's
answer and where a denial would be routed. Mapping errors are reported with
the resource or segment and field at fault.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, TextIO

from pipeline.ingest.practice import PRACTICE_NPI
from pipeline.runtime.dryrun import Failure, InProcessPipeline
from pipeline.views.outcomes import jsonable
from processors.contracts.remittance import denies_money
from processors.contracts.topics import (
    CLAIMS_REMITTANCE,
    CLAIMS_SUBMITTED,
    DENIALS_REWORK,
    ENCOUNTERS_CODED,
    PATIENT_STATEMENTS,
)
from processors.contracts.vocab import ItemKind
from processors.refdata import RefData
from processors.stage import Output

Record = dict[str, Any]


@dataclass
class EncounterReport:
    """What the stages did with one encounter."""

    encounter_id: str
    event_id: str
    source: str
    findings: list[Record] = field(default_factory=list)
    claims: list[Record] = field(default_factory=list)
    answers: list[Record] = field(default_factory=list)
    rework: list[Record] = field(default_factory=list)
    patient_owes_cents: int = 0
    failures: list[str] = field(default_factory=list)

    def as_json(self) -> Record:
        """The report as plain data (ids, codes and amounts; no patient data)."""
        return {
            "encounter_id": self.encounter_id,
            "event_id": self.event_id,
            "source": self.source,
            "findings": [
                {k: f[k] for k in ("edit_id", "severity", "code", "message")} for f in self.findings
            ],
            "claims": [
                {
                    "claim_id": c["claim_id"],
                    "payer_id": c["payer_id"],
                    "frequency_code": c["frequency_code"],
                    "total_charge_cents": c["total_charge_cents"],
                    "lines": [
                        {
                            "procedure_code": ln["procedure_code"],
                            "modifiers": ln["modifiers"],
                            "units": ln["units"],
                            "charge_cents": ln["charge_cents"],
                            "dx_pointers": ln["dx_pointers"],
                        }
                        for ln in c["lines"]
                    ],
                    "diagnoses": c["diagnoses"],
                }
                for c in self.claims
            ],
            "answers": [
                {
                    "claim_id": r["claim_id"],
                    "status": r["claim_status_code"],
                    "paid_cents": r["paid_cents"],
                    "patient_responsibility_cents": r["patient_responsibility_cents"],
                    "adjustments": sorted(
                        {
                            f"{a['group_code']}-{a['carc']}"
                            for ln in r["lines"]
                            for a in ln["adjustments"]
                        }
                    ),
                    "rarcs": r["rarcs"],
                }
                for r in self.answers
            ],
            "rework": [
                {
                    k: i[k]
                    for k in (
                        "rework_id",
                        "kind",
                        "category",
                        "action",
                        "queue",
                        "status",
                        "deadline",
                        "suggested_fix",
                    )
                }
                for i in self.rework
            ],
            "patient_owes_cents": self.patient_owes_cents,
            "failures": self.failures,
        }


@dataclass
class CheckResult:
    """Encounter reports and mapping problems of a dry run."""

    reports: list[EncounterReport] = field(default_factory=list)
    problems: list[Record] = field(default_factory=list)  # {source, issue}


def _collect(report: EncounterReport, outputs: Iterable[Output | Failure]) -> None:
    for out in outputs:
        if isinstance(out, Failure):
            report.failures.append(f"{out.stage} ({out.error_type}): {out.error}")
            continue
        if out.topic is ENCOUNTERS_CODED:
            report.findings = list(out.record["findings"])
        elif out.topic is CLAIMS_SUBMITTED:
            report.claims.append(out.record)
        elif out.topic is CLAIMS_REMITTANCE:
            report.answers.append(out.record)
        elif out.topic is DENIALS_REWORK:
            report.rework.append(out.record)
            if out.record["kind"] == ItemKind.CODING_HOLD:
                report.findings = [
                    {
                        "edit_id": r["code"],
                        "severity": "HARD",
                        "code": None,
                        "message": r["message"],
                    }
                    for r in out.record["reasons"]
                ]
        elif out.topic is PATIENT_STATEMENTS:
            report.patient_owes_cents += out.record["amount_due_cents"]


def run_check(events: list[tuple[str, Record]], refdata: RefData, seed: int) -> CheckResult:
    """Run (source, EncounterEvent) pairs through the stages in process."""
    pipeline = InProcessPipeline(refdata, seed)
    result = CheckResult()
    for source, event in events:
        report = EncounterReport(event["encounter_id"], event["event_id"], source)
        key = (event["coverage"] or {}).get("member_id") or event["patient"]["person_id"]
        _collect(report, pipeline.run(key, event))
        result.reports.append(report)
    return result


def money(cents: int) -> str:
    """Cents as dollars."""
    return f"${cents / 100:,.2f}"


def print_check(result: CheckResult, out: TextIO) -> None:
    """The dry run for a person."""
    for p in result.problems:
        where = f" ({p['where']})" if p.get("where") else ""
        print(f"MAPPING {p['source']}{where}: {p['issue']}", file=out)
    for r in result.reports:
        print(f"\nEncounter {r.encounter_id} (event {r.event_id}, from {r.source})", file=out)
        hard = [f for f in r.findings if f["severity"] == "HARD"]
        soft = [f for f in r.findings if f["severity"] != "HARD"]
        if hard:
            print("  coding: HELD by " + ", ".join(f["edit_id"] for f in hard), file=out)
        else:
            print(
                "  coding: passes"
                + (f" (warnings: {', '.join(f['edit_id'] for f in soft)})" if soft else ""),
                file=out,
            )
        for f in hard:
            print(f"    {f['edit_id']}: {f['message']}", file=out)
        for c in r.claims:
            codes = ", ".join(
                ln["procedure_code"] + "".join(f"-{m}" for m in ln["modifiers"])
                for ln in c["lines"]
            )
            print(
                f"  claim {c['claim_id']} (frequency {c['frequency_code']}) to "
                f"{c['payer_id']}: {codes}; diagnoses {', '.join(c['diagnoses'])}; "
                f"charge {money(c['total_charge_cents'])}",
                file=out,
            )
        for a in r.answers:
            denied = sorted(
                {
                    f"{adj['group_code']}-{adj['carc']}"
                    for ln in a["lines"]
                    for adj in ln["adjustments"]
                    if denies_money(adj)
                }
            )
            status = {"1": "processed", "4": "DENIED", "22": "reversed"}.get(
                a["claim_status_code"], a["claim_status_code"]
            )
            print(
                f"  payer {a['payer_id']}: {status}, paid {money(a['paid_cents'])}, patient "
                f"{money(a['patient_responsibility_cents'])}"
                + (f"; denied {' '.join(denied + a['rarcs'])}" if denied else ""),
                file=out,
            )
        for i in r.rework:
            if i["kind"] == ItemKind.CODING_HOLD:
                continue
            print(
                f"  rework: {i['kind']} {i['category']} -> {i['action']} in the {i['queue']} "
                f"queue ({i['status']})"
                + (f", deadline {i['deadline'].isoformat()}" if i["deadline"] else ""),
                file=out,
            )
            if i["correction"]:
                print(f"    automatic correction: {i['correction']}", file=out)
        for failure in r.failures:
            print(f"  DEAD LETTER {failure}", file=out)
    print(
        f"\n{len(result.reports)} encounter(s) checked, {len(result.problems)} mapping problem(s)",
        file=out,
    )


def write_check_json(result: CheckResult, out: TextIO) -> None:
    """The dry run as JSON lines: one per mapping problem, one per encounter."""
    for p in result.problems:
        out.write(json.dumps({"mapping_problem": p}) + "\n")
    for r in result.reports:
        out.write(json.dumps(jsonable(r.as_json()), sort_keys=True) + "\n")


# Element paths and resource ids vary per encounter; a reason is counted without them.
_RESOURCE_ID = re.compile(r"\b([A-Z][A-Za-z]+)/[A-Za-z0-9\-]+")
_DISPLAY = re.compile(r"\.serviceProvider \([^)]*\)")


def reason_of(issue: str) -> str:
    """A mapping problem as a reason to count: resource ids and names taken out."""
    text = _RESOURCE_ID.sub(r"\1", issue)
    text = _DISPLAY.sub(".serviceProvider", text)
    return text[:200]


def summarize_check(result: CheckResult) -> Record:
    """Encounters seen, billed automatically, sent to a person (by reason), refused (by reason).

    Billed automatically: a claim went out and nothing was held. Sent to a
    person: a coding or scrubber hold (by edit). Refused: the feed's data could
    not be mapped (by reason, ids removed). Also the claims billed under the
    demonstration practice, which a real feed must never be.
    """
    held: Counter[str] = Counter()
    refused: Counter[str] = Counter(reason_of(p["issue"]) for p in result.problems)
    billed = demo = dead = sent = 0
    for r in result.reports:
        holds = [i for i in r.rework if i["kind"] in (ItemKind.CODING_HOLD, ItemKind.SCRUBBER_HOLD)]
        sent += bool(holds)
        for item in holds:
            edits = ",".join(sorted({x["code"] for x in item["reasons"]})) or item["category"]
            held[f"{item['kind']} {edits}"] += 1
        if r.failures:
            dead += 1
        elif r.claims and not holds:
            billed += 1
        demo += sum(1 for c in r.claims if c["billing_provider"]["npi"] == PRACTICE_NPI)
    seen = len(result.reports) + len(result.problems)
    return {
        "encounters_seen": seen,
        "billed_automatically": billed,
        "sent_to_a_person": sent,
        "sent_to_a_person_by_reason": dict(held.most_common()),
        "refused": len(result.problems),
        "refused_by_reason": dict(refused.most_common()),
        "dead_letters": dead,
        "claims_billed_as_the_demonstration_practice": demo,
    }


def print_summary(summary: Record, out: TextIO) -> None:
    """The summary of a dry run as text."""
    seen = summary["encounters_seen"] or 1
    print(f"encounters seen: {summary['encounters_seen']}", file=out)
    for name, label in (
        ("billed_automatically", "billed automatically"),
        ("sent_to_a_person", "sent to a coder or biller"),
        ("refused", "refused"),
        ("dead_letters", "dead-lettered by a stage"),
    ):
        n = summary[name]
        print(f"  {label}: {n} ({100 * n / seen:.1f}%)", file=out)
        for reason, count in (summary.get(f"{name}_by_reason") or {}).items():
            print(f"    {count:6d}  {reason}", file=out)
    print(
        "claims billed as the demonstration practice: "
        f"{summary['claims_billed_as_the_demonstration_practice']}",
        file=out,
    )

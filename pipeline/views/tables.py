"""``claims export table``: the pipeline's records as analyst tables (Parquet, or CSV).

One documented schema per table (:data:`SCHEMAS`), flat columns, amounts in
integer cents, dates as dates. No patient names, birth dates or member ids:
a member appears as ``member_ref``, a one-way hash of the member key.

- claims: one row per submitted claim (originals, replacements, voids, rebills)
- lines: one row per claim line
- remittances: one row per payer answer (reversals included)
- adjustments: one row per CAS adjustment, claim- or line-level
- rework_items: one row per rework item (holds, denials, follow-ups, reminders)
- lineage: per encounter, every claim event in order with cumulative amounts
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from processors.contracts.remittance import denies_money, is_denial, is_reversal
from processors.denials.stage import remittance_status
from processors.ids import stable_id

Record = dict[str, Any]

CENTS = pa.int64()
SCHEMAS: dict[str, pa.Schema] = {
    "claims": pa.schema(
        [
            ("claim_id", pa.string()),
            ("encounter_id", pa.string()),
            ("member_ref", pa.string()),
            ("frequency_code", pa.string()),
            ("original_claim_id", pa.string()),
            ("resubmission", pa.int32()),
            ("payer_id", pa.string()),
            ("plan_type", pa.string()),
            ("place_of_service", pa.string()),
            ("service_date", pa.date32()),
            ("filed_at", pa.timestamp("ms", tz="UTC")),
            ("diagnoses", pa.string()),
            ("line_count", pa.int32()),
            ("total_charge_cents", CENTS),
        ]
    ),
    "lines": pa.schema(
        [
            ("claim_id", pa.string()),
            ("line_number", pa.int32()),
            ("procedure_code", pa.string()),
            ("modifiers", pa.string()),
            ("units", pa.int32()),
            ("charge_cents", CENTS),
            ("dx_pointers", pa.string()),
        ]
    ),
    "remittances": pa.schema(
        [
            ("remittance_id", pa.string()),
            ("claim_id", pa.string()),
            ("encounter_id", pa.string()),
            ("member_ref", pa.string()),
            ("payer_id", pa.string()),
            ("claim_status_code", pa.string()),
            ("outcome", pa.string()),
            ("total_charge_cents", CENTS),
            ("paid_cents", CENTS),
            ("patient_responsibility_cents", CENTS),
            ("denied_cents", CENTS),
            ("payer_claim_control_number", pa.string()),
            ("adjudicated_date", pa.date32()),
            ("payment_trace_number", pa.string()),
            ("payer_profile_version", pa.string()),
        ]
    ),
    "adjustments": pa.schema(
        [
            ("remittance_id", pa.string()),
            ("claim_id", pa.string()),
            ("line_number", pa.int32()),
            ("procedure_code", pa.string()),
            ("group_code", pa.string()),
            ("carc", pa.string()),
            ("amount_cents", CENTS),
            ("rule_id", pa.string()),
            ("rarcs", pa.string()),
        ]
    ),
    "rework_items": pa.schema(
        [
            ("rework_id", pa.string()),
            ("kind", pa.string()),
            ("status", pa.string()),
            ("claim_id", pa.string()),
            ("encounter_id", pa.string()),
            ("payer_id", pa.string()),
            ("category", pa.string()),
            ("action", pa.string()),
            ("queue", pa.string()),
            ("priority", pa.int64()),
            ("amount_at_stake_cents", CENTS),
            ("codes", pa.string()),
            ("created_at", pa.timestamp("ms", tz="UTC")),
            ("deadline", pa.date32()),
            ("deadline_kind", pa.string()),
            ("correction", pa.string()),
            ("resubmitted_claim_id", pa.string()),
            ("related_rework_id", pa.string()),
        ]
    ),
    "lineage": pa.schema(
        [
            ("encounter_id", pa.string()),
            ("seq", pa.int32()),
            ("event_date", pa.date32()),
            ("record", pa.string()),
            ("claim_id", pa.string()),
            ("frequency_code", pa.string()),
            ("original_claim_id", pa.string()),
            ("payer_id", pa.string()),
            ("charge_cents", CENTS),
            ("paid_cents", CENTS),
            ("patient_cents", CENTS),
            ("cumulative_paid_cents", CENTS),
            ("cumulative_patient_cents", CENTS),
        ]
    ),
}


def member_ref(member_key: str) -> str:
    """A stable, one-way reference to a member, for counting without identifying."""
    return stable_id("M", member_key, length=12)


def _day(value: date | datetime | None) -> date | None:
    return value.date() if isinstance(value, datetime) else value


def claim_rows(claims: Iterable[Record]) -> tuple[list[Record], list[Record]]:
    """Rows of the claims and lines tables."""
    rows, lines = [], []
    for c in claims:
        rows.append(
            {
                "claim_id": c["claim_id"],
                "encounter_id": c["encounter_id"],
                "member_ref": member_ref(c["member_id"]),
                "frequency_code": c["frequency_code"],
                "original_claim_id": c.get("original_claim_id"),
                "resubmission": c.get("resubmission", 0),
                "payer_id": c["payer_id"],
                "plan_type": c["plan_type"],
                "place_of_service": c["place_of_service"],
                "service_date": c["service_date_from"],
                "filed_at": c["created_at"],
                "diagnoses": ",".join(c["diagnoses"]),
                "line_count": len(c["lines"]),
                "total_charge_cents": c["total_charge_cents"],
            }
        )
        lines += [
            {
                "claim_id": c["claim_id"],
                "line_number": ln["line_number"],
                "procedure_code": ln["procedure_code"],
                "modifiers": ",".join(ln["modifiers"]),
                "units": ln["units"],
                "charge_cents": ln["charge_cents"],
                "dx_pointers": ",".join(str(p) for p in ln["dx_pointers"]),
            }
            for ln in c["lines"]
        ]
    return rows, lines


def remittance_rows(remittances: Iterable[Record]) -> tuple[list[Record], list[Record]]:
    """Rows of the remittances and adjustments tables."""
    rows, adjustments = [], []
    for r in remittances:
        denied = sum(
            a["amount_cents"] for ln in r["lines"] for a in ln["adjustments"] if denies_money(a)
        )
        rows.append(
            {
                "remittance_id": r["remittance_id"],
                "claim_id": r["claim_id"],
                "encounter_id": r["encounter_id"],
                "member_ref": member_ref(r["member_key"]),
                "payer_id": r["payer_id"],
                "claim_status_code": r["claim_status_code"],
                "outcome": remittance_status(r, is_denial(r)).lower(),
                "total_charge_cents": r["total_charge_cents"],
                "paid_cents": r["paid_cents"],
                "patient_responsibility_cents": r["patient_responsibility_cents"],
                "denied_cents": denied,
                "payer_claim_control_number": r["payer_claim_control_number"],
                "adjudicated_date": r["adjudicated_date"],
                "payment_trace_number": r.get("payment_trace_number"),
                "payer_profile_version": r["payer_profile_version"],
            }
        )
        for a in r["claim_adjustments"]:
            adjustments.append(
                {
                    "remittance_id": r["remittance_id"],
                    "claim_id": r["claim_id"],
                    "line_number": None,
                    "procedure_code": None,
                    "group_code": a["group_code"],
                    "carc": a["carc"],
                    "amount_cents": a["amount_cents"],
                    "rule_id": a["rule_id"],
                    "rarcs": ",".join(r["rarcs"]),
                }
            )
        for ln in r["lines"]:
            adjustments += [
                {
                    "remittance_id": r["remittance_id"],
                    "claim_id": r["claim_id"],
                    "line_number": ln["line_number"],
                    "procedure_code": ln["procedure_code"],
                    "group_code": a["group_code"],
                    "carc": a["carc"],
                    "amount_cents": a["amount_cents"],
                    "rule_id": a["rule_id"],
                    "rarcs": ",".join(ln["rarcs"]),
                }
                for a in ln["adjustments"]
            ]
    return rows, adjustments


def rework_rows(items: Iterable[Record]) -> list[Record]:
    """Rows of the rework_items table (latest version of each item)."""
    latest = {i["rework_id"]: i for i in items}
    return [
        {
            "rework_id": i["rework_id"],
            "kind": i["kind"],
            "status": i["status"],
            "claim_id": i["claim_id"],
            "encounter_id": i["encounter_id"],
            "payer_id": i["payer_id"],
            "category": i["category"],
            "action": i["action"],
            "queue": i["queue"],
            "priority": i["priority"],
            "amount_at_stake_cents": i["amount_at_stake_cents"],
            "codes": " ".join(
                f"{r['group_code']}-{r['code']}" if r["group_code"] else r["code"]
                for r in i["reasons"]
            ),
            "created_at": i["created_at"],
            "deadline": i["deadline"],
            "deadline_kind": i.get("deadline_kind"),
            "correction": i.get("correction"),
            "resubmitted_claim_id": i.get("resubmitted_claim_id"),
            "related_rework_id": i.get("related_rework_id"),
        }
        for i in latest.values()
    ]


RECORD_OF_FREQUENCY = {"1": "original", "7": "replacement", "8": "void"}


def lineage_rows(claims: Iterable[Record], remittances: Iterable[Record]) -> list[Record]:
    """Per encounter, every claim and payer answer in business order, with running totals."""
    events: dict[str, list[tuple[date, int, Record]]] = {}
    for c in claims:
        kind = RECORD_OF_FREQUENCY.get(c["frequency_code"], c["frequency_code"])
        if kind == "original" and c.get("original_claim_id"):
            kind = "rebill"
        events.setdefault(c["encounter_id"], []).append(
            (
                _day(c["created_at"]) or date.min,
                0,
                {
                    "record": kind,
                    "claim_id": c["claim_id"],
                    "frequency_code": c["frequency_code"],
                    "original_claim_id": c.get("original_claim_id"),
                    "payer_id": c["payer_id"],
                    "charge_cents": c["total_charge_cents"],
                    "paid_cents": 0,
                    "patient_cents": 0,
                },
            )
        )
    for r in remittances:
        kind = "reversal" if is_reversal(r) else "payment"
        events.setdefault(r["encounter_id"], []).append(
            (
                r["adjudicated_date"],
                1,
                {
                    "record": kind,
                    "claim_id": r["claim_id"],
                    "frequency_code": r["frequency_code"],
                    "original_claim_id": None,
                    "payer_id": r["payer_id"],
                    "charge_cents": r["total_charge_cents"],
                    "paid_cents": r["paid_cents"],
                    "patient_cents": r["patient_responsibility_cents"],
                },
            )
        )
    rows = []
    for encounter_id in sorted(events):
        paid = patient = 0
        ordered = sorted(events[encounter_id], key=lambda e: (e[0], e[1], e[2]["claim_id"]))
        for seq, (day, _, row) in enumerate(ordered, start=1):
            paid += row["paid_cents"]
            patient += row["patient_cents"]
            rows.append(
                {
                    "encounter_id": encounter_id,
                    "seq": seq,
                    "event_date": day,
                    **row,
                    "cumulative_paid_cents": paid,
                    "cumulative_patient_cents": patient,
                }
            )
    return rows


def build_tables(
    claims: list[Record], remittances: list[Record], items: list[Record]
) -> dict[str, list[Record]]:
    """Every table's rows."""
    claim_table, lines = claim_rows(claims)
    remit_table, adjustments = remittance_rows(remittances)
    return {
        "claims": claim_table,
        "lines": lines,
        "remittances": remit_table,
        "adjustments": adjustments,
        "rework_items": rework_rows(items),
        "lineage": lineage_rows(claims, remittances),
    }


def write_tables(tables: dict[str, list[Record]], out: Path, csv: bool = False) -> list[Path]:
    """Write each table as DIR/<name>.parquet (and .csv with *csv*); returns the files."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, rows in tables.items():
        table = pa.Table.from_pylist(rows, schema=SCHEMAS[name])
        path = out / f"{name}.parquet"
        pq.write_table(table, path)
        written.append(path)
        if csv:
            csv_path = out / f"{name}.csv"
            pa_csv.write_csv(table, csv_path)
            written.append(csv_path)
    return written

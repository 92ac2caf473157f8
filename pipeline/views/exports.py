"""Exports in the formats billing systems read: X12 837P, X12 835 and FHIR Claim NDJSON.

One interchange file per payer batch, named ``<payer>-<interchange control>.x12``.
Control numbers count up from a starting number; the interchange date is the
newest claim's business time (for an 835, the newest payment date), so the
same records give the same bytes.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, time
from pathlib import Path
from typing import Any

from pipeline.config import Settings
from pipeline.kafka.readers import Offsets, latest_records
from processors.adjudication import x12_835
from processors.claims.fhir import to_fhir_claim
from processors.claims.x12 import Envelope, interchange
from processors.contracts.claim import SELF_PAY_ID
from processors.contracts.topics import (
    CLAIMS_REMITTANCE,
    CLAIMS_SUBMITTED,
    DENIALS_REWORK,
)
from processors.refdata import RefData

SENDER_ID = "CLAIMSPIPE"


def write_837p(claims: list[dict[str, Any]], out: Path, first_control: int = 1) -> list[Path]:
    """Write one 837P interchange per payer into *out*; returns the files written.

    Self-pay claims are not sent to a payer and are left out.
    """
    out.mkdir(parents=True, exist_ok=True)
    by_payer: dict[str, list[dict[str, Any]]] = {}
    for claim in claims:
        if claim["payer_id"] != SELF_PAY_ID:
            by_payer.setdefault(claim["payer_id"], []).append(claim)
    written = []
    for control, (payer, batch) in enumerate(sorted(by_payer.items()), start=first_control):
        batch.sort(key=lambda c: (c["created_at"], c["claim_id"]))
        created = max(c["created_at"] for c in batch)
        if created.tzinfo is None:
            created = created.replace(tzinfo=UTC)
        env = Envelope(SENDER_ID, payer, control, control, created)
        path = out / f"{payer}-{control:09d}.x12"
        path.write_text(interchange(batch, env))
        written.append(path)
    return written


def submitted_claims(settings: Settings, start: Offsets | None = None) -> list[dict[str, Any]]:
    """Claims on claims.submitted after *start* (default: from the beginning), latest per id."""
    return latest_records(settings, CLAIMS_SUBMITTED, "claim_id", start)


def export_837p(
    settings: Settings, out: Path, start: Offsets | None = None, first_control: int = 1
) -> list[Path]:
    """Export the claims on claims.submitted as 837P interchanges under *out*."""
    return write_837p(submitted_claims(settings, start), out, first_control)


def write_835(
    remittances: list[dict[str, Any]], out: Path, refdata: RefData, first_control: int = 1
) -> list[Path]:
    """Write one 835 interchange per payer into *out*; returns the files written.

    Self-pay remittances have no payer to send them and are left out.
    """
    out.mkdir(parents=True, exist_ok=True)
    payable = [r for r in remittances if r["payer_id"] != SELF_PAY_ID]
    if not payable:
        return []
    newest = max(r["adjudicated_date"] for r in payable)
    interchanges = x12_835.write_835(
        payable,
        refdata.payers,
        receiver_id=SENDER_ID,
        control_start=first_control,
        created=datetime.combine(newest, time(), tzinfo=UTC),
    )
    written = []
    for name, text in interchanges:
        path = out / name
        path.write_text(text)
        written.append(path)
    return written


def remittances(settings: Settings, start: Offsets | None = None) -> list[dict[str, Any]]:
    """Remittances on claims.remittance after *start* (default: from the beginning).

    Latest per remittance id, not per claim id: a reversal answers the same
    claim id as the payment it takes back, and both belong in the 835.
    """
    return latest_records(settings, CLAIMS_REMITTANCE, "remittance_id", start)


def export_835(
    settings: Settings, out: Path, start: Offsets | None = None, first_control: int = 1
) -> list[Path]:
    """Export the remittances on claims.remittance as 835 interchanges under *out*."""
    return write_835(remittances(settings, start), out, settings.refdata(), first_control)


def write_fhir_ndjson(claims: list[dict[str, Any]], path: Path) -> int:
    """Write one FHIR R4 Claim per line to *path* (self-pay left out); returns the count."""
    path.parent.mkdir(parents=True, exist_ok=True)
    payable = sorted(
        (c for c in claims if c["payer_id"] != SELF_PAY_ID),
        key=lambda c: (c["created_at"], c["claim_id"]),
    )
    with path.open("w") as f:
        for claim in payable:
            f.write(json.dumps(to_fhir_claim(claim), separators=(",", ":")) + "\n")
    return len(payable)


def export_fhir(settings: Settings, path: Path, start: Offsets | None = None) -> int:
    """Export the claims on claims.submitted as FHIR Claim NDJSON at *path*."""
    return write_fhir_ndjson(submitted_claims(settings, start), path)


def export_tables(settings: Settings, out: Path, csv: bool = False) -> list[tuple[Path, int]]:
    """Write the analyst tables from the topics; returns (file, rows) for each file."""
    from pipeline.views.tables import build_tables, write_tables  # noqa: PLC0415

    items = latest_records(settings, DENIALS_REWORK, "rework_id")
    tables = build_tables(submitted_claims(settings), remittances(settings), items)
    counts = {name: len(rows) for name, rows in tables.items()}
    return [(path, counts[path.stem]) for path in write_tables(tables, out, csv)]

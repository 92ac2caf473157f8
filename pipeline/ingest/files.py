"""File adapters: FHIR bundles, HL7 v2 message files and X12 835 files onto the topics.

Good input is published; each bad document or message is kept on the
dead-letter topic with its reason, and the rest of the file still goes
through. The same file twice publishes the same ids.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pipeline.config import Settings
from pipeline.ingest.directory import FeedDirectory
from pipeline.ingest.fhir import BundleError, map_bundle
from pipeline.ingest.remit835 import remittances_from_835
from pipeline.ingest.sink import IngestSink
from pipeline.kafka.readers import latest_records
from processors.contracts.topics import CLAIMS_SUBMITTED
from processors.refdata import PayerProfile

Record = dict[str, Any]


def ingest_fhir(
    paths: list[Path],
    sink: IngestSink,
    billing: FeedDirectory,
    *,
    payers: Mapping[str, PayerProfile] | None = None,
) -> list[str]:
    """Publish every billable Encounter of the bundles; returns the problems found."""
    problems: list[str] = []
    loaded = read_documents(paths)
    context = reference_bundles(loaded)
    for path, docs in loaded:
        events, issues = _events([(path, docs)], billing, None, payers, context)
        sink.encounters([e for _, e in events])
        for issue in issues:
            where = f" at {issue['where']}" if issue.get("where") else ""
            reason = f"{issue['source']}{where}: {issue['issue']}"
            problems.append(reason)
            sink.dead_letter(f"ingest:fhir:{path.name}", -1, path.read_bytes(), reason)
        for source, event in events:
            print(
                f"accepted {source}: encounter {event['encounter_id']} as event {event['event_id']}"
            )
    return problems


def ingest_835(settings: Settings, paths: list[Path], sink: IngestSink) -> list[str]:
    """Publish the claim payments of each 835 file; a file that does not balance is refused."""
    claims = {c["claim_id"]: c for c in latest_records(settings, CLAIMS_SUBMITTED, "claim_id")}
    problems: list[str] = []
    for path in paths:
        raw = path.read_bytes()
        try:
            records = remittances_from_835(raw.decode(errors="replace"), claims)
        except (ValueError, IndexError, KeyError) as exc:
            reason = (
                f"{path.name}: {exc}"
                if isinstance(exc, ValueError)
                else f"{path.name}: not a readable X12 835 ({type(exc).__name__})"
            )
            problems.append(reason)
            sink.dead_letter(f"ingest:835:{path.name}", -1, raw, reason)
            continue
        sink.remittances(records)
        unknown = sum(1 for r in records if r["claim_id"] not in claims)
        print(
            f"accepted {path.name}: {len(records)} claim payment(s)"
            + (f", {unknown} for claims this pipeline did not submit" if unknown else "")
        )
    return problems


def hl7_events(
    paths: list[Path],
    billing: FeedDirectory,
    received_at: datetime | None = None,
    *,
    payers: Mapping[str, PayerProfile] | None = None,
) -> tuple[list[tuple[str, Record]], list[Record]]:
    """EncounterEvents from HL7 v2 message files (ADT registrations first), and problems."""
    from pipeline.ingest.hl7 import map_stream  # noqa: PLC0415

    events: list[tuple[str, Record]] = []
    problems: list[Record] = []
    store: dict[str, Any] = {}  # registrations carry over from one file to the next
    for path in paths:
        for n, outcome in enumerate(
            map_stream(
                path.read_text(errors="replace"),
                billing,
                received_at or datetime.now(UTC),
                store=store,
                payers=payers,
            ),
            start=1,
        ):
            store = outcome.store
            source = f"{path.name}#{n}"
            events += [(source, e) for e in outcome.events]
            problems += [{"source": source, "issue": error} for error in outcome.errors]
    return events, problems


def ingest_hl7(
    paths: list[Path],
    sink: IngestSink,
    billing: FeedDirectory,
    *,
    payers: Mapping[str, PayerProfile] | None = None,
) -> list[str]:
    """Publish the encounters of HL7 v2 message files; bad messages go to the dead letters."""
    from pipeline.ingest.hl7 import map_stream  # noqa: PLC0415

    problems: list[str] = []
    store: dict[str, Any] = {}
    for path in paths:
        for n, outcome in enumerate(
            map_stream(
                path.read_text(errors="replace"),
                billing,
                datetime.now(UTC),
                store=store,
                payers=payers,
            ),
            start=1,
        ):
            store = outcome.store
            sink.encounters(outcome.events)
            if outcome.errors:
                reason = f"{path.name} message {n}: " + "; ".join(outcome.errors)
                problems.append(reason)
                sink.dead_letter(f"ingest:hl7:{path.name}", n, outcome.text.encode(), reason)
    return problems


def fhir_events(
    paths: list[Path],
    billing: FeedDirectory,
    received_at: datetime | None = None,
    *,
    payers: Mapping[str, PayerProfile] | None = None,
    context: list[Record] | None = None,
) -> tuple[list[tuple[str, Record]], list[Record]]:
    """EncounterEvents from FHIR bundle files (JSON, or NDJSON of bundles), and problems.

    Bundles that only describe organizations, locations and practitioners
    (Synthea's ``hospitalInformation`` and ``practitionerInformation`` files) are
    not billed: they resolve the references of the others (*context*, by
    default those among *paths*).
    """
    loaded = read_documents(paths)
    return _events(
        loaded,
        billing,
        received_at,
        payers,
        reference_bundles(loaded) if context is None else context,
    )


Loaded = list[tuple[Path, list[Any] | str]]


def read_documents(paths: list[Path]) -> Loaded:
    """Each file's JSON documents, read once, or why it is not JSON."""
    loaded: Loaded = []
    for path in paths:
        try:
            loaded.append((path, json_documents(path.read_text())))
        except json.JSONDecodeError as exc:
            loaded.append((path, f"not JSON: {exc.msg} at line {exc.lineno}"))
    return loaded


def _events(
    loaded: Loaded,
    billing: FeedDirectory,
    received_at: datetime | None,
    payers: Mapping[str, PayerProfile] | None,
    context: list[Record],
) -> tuple[list[tuple[str, Record]], list[Record]]:
    events: list[tuple[str, Record]] = []
    problems: list[Record] = []
    for path, docs in loaded:
        if isinstance(docs, str):
            problems.append({"source": path.name, "issue": docs})
            continue
        for n, doc in enumerate(docs, start=1):
            source = f"{path.name}#{n}"
            if is_reference_bundle(doc):
                continue
            try:
                mapped = map_bundle(
                    doc, billing, received_at, source="fhir", payers=payers, context=context
                )
            except BundleError as exc:
                problems.append({"source": source, "issue": str(exc)})
                continue
            events += [(source, e) for e in mapped.events]
            problems += [
                {"source": source, "issue": i["diagnostics"], "where": i.get("expression", [""])[0]}
                for i in mapped.issues
            ]
    return events, problems


def json_documents(text: str) -> list[Any]:
    """The documents of a JSON file, or of an NDJSON file (one document per line)."""
    try:
        return [json.loads(text)]
    except json.JSONDecodeError:
        return [json.loads(line) for line in text.splitlines() if line.strip()]


# What a bundle of directory resources holds, and nothing billable.
REFERENCE_TYPES = frozenset(
    {"Organization", "Location", "Practitioner", "PractitionerRole", "HealthcareService"}
)


def is_reference_bundle(doc: Any) -> bool:
    """True for a Bundle of organizations, locations and practitioners only."""
    if not isinstance(doc, dict) or doc.get("resourceType") != "Bundle":
        return False
    kinds = {
        (e.get("resource") or {}).get("resourceType")
        for e in doc.get("entry") or []
        if isinstance(e, dict)
    }
    return bool(kinds) and kinds <= REFERENCE_TYPES


def reference_bundles(loaded: Loaded) -> list[Record]:
    """The reference bundles among the documents read (files not JSON are left out)."""
    return [
        d for _, docs in loaded if not isinstance(docs, str) for d in docs if is_reference_bundle(d)
    ]

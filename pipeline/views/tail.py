"""``claims denials tail``: follow denials.rework live, as a table or JSON lines.

Starts at the end of the topic (new items only) or at the items published
since a time given with ``--from``; filters by payer, category and queue; stops on Ctrl-C, after
``--max`` items, or after ``--idle`` seconds without a new one.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any, TextIO

from kafka import KafkaConsumer, TopicPartition

from pipeline.config import Settings
from pipeline.kafka.codec import DecodeError, codec_for
from pipeline.views.outcomes import jsonable
from processors.contracts.topics import DENIALS_REWORK
from processors.contracts.vocab import ItemKind
from processors.denials.queue import matches as queue_matches

Record = dict[str, Any]
KINDS = (ItemKind.DENIAL, ItemKind.FOLLOW_UP, ItemKind.REMINDER)


def follow(
    settings: Settings,
    since: datetime | None = None,
    *,
    idle: float | None = None,
    poll_ms: int = 500,
) -> Iterator[Record]:
    """Rework items as they arrive on denials.rework (from *since*, else from now)."""
    name = DENIALS_REWORK.full_name(settings.topic_prefix)
    consumer = KafkaConsumer(
        bootstrap_servers=settings.bootstrap,
        enable_auto_commit=False,
        client_id="claims-denials-tail",
    )
    try:
        parts = [TopicPartition(name, p) for p in sorted(consumer.partitions_for_topic(name) or [])]
        consumer.assign(parts)
        if since is None:
            consumer.seek_to_end(*parts)
        else:
            found = consumer.offsets_for_times({tp: int(since.timestamp() * 1000) for tp in parts})
            ends = consumer.end_offsets(parts)
            for tp in parts:
                at = found.get(tp)
                consumer.seek(tp, at.offset if at is not None else ends[tp])
        codec = codec_for(DENIALS_REWORK.value_schema)
        last = time.monotonic()
        while idle is None or time.monotonic() - last < idle:
            for records in consumer.poll(timeout_ms=poll_ms).values():
                for record in records:
                    try:
                        item = codec.decode(record.value)
                    except DecodeError:
                        continue
                    last = time.monotonic()
                    yield item
    finally:
        consumer.close()


def matches(item: Record, payer: str | None, category: str | None, queue: str | None) -> bool:
    """True for a denial-side item passing the filters given."""
    return item["kind"] in KINDS and queue_matches(item, queue, payer, category)


HEADER = (
    f"{'at':<10} {'kind':<9} {'payer':<10} {'category':<24} {'queue':<10} "
    f"{'claim':<18} {'codes':<22} {'at stake':>10} {'deadline':<10}"
)


def row(item: Record) -> str:
    """One item as a table row (ids and codes, never patient data)."""
    codes = " ".join(
        f"{r['group_code']}-{r['code']}" if r["group_code"] else r["code"] for r in item["reasons"]
    )[:22]
    deadline = item["deadline"].isoformat() if item["deadline"] else "-"
    return (
        f"{item['created_at']:%Y-%m-%d} {item['kind'][:9]:<9} {item['payer_id'] or '-':<10} "
        f"{item['category']:<24} {item['queue']:<10} {item['claim_id'] or '-':<18} "
        f"{codes:<22} {item['amount_at_stake_cents'] / 100:>10,.2f} {deadline:<10}"
    )


def tail(
    settings: Settings,
    out: TextIO,
    *,
    payer: str | None = None,
    category: str | None = None,
    queue: str | None = None,
    as_json: bool = False,
    since: datetime | None = None,
    limit: int | None = None,
    idle: float | None = None,
) -> int:
    """Print matching items as they arrive; returns how many were printed."""
    if not as_json:
        print(HEADER, file=out, flush=True)
    shown = 0
    for item in follow(settings, since, idle=idle):
        if not matches(item, payer, category, queue):
            continue
        if as_json:
            out.write(json.dumps(jsonable(item), sort_keys=True) + "\n")
        else:
            out.write(row(item) + "\n")
        out.flush()
        shown += 1
        if limit is not None and shown >= limit:
            break
    return shown

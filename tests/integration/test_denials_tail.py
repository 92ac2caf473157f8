"""`claims denials tail` follows denials.rework on a real broker, filtered."""

from __future__ import annotations

import dataclasses
import io
import json
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

from kafka import KafkaProducer

from pipeline.config import Settings
from pipeline.kafka.codec import codec_for
from pipeline.views.tail import tail
from processors.adjudication.rules import adjudicate
from processors.claims.rules import build_claim
from processors.coding.rules import code_encounter
from processors.contracts.rework import hold_item
from processors.contracts.topics import DENIALS_REWORK
from processors.contracts.vocab import ItemKind
from processors.denials.rules import route_remittance
from processors.refdata import load_refdata
from tests.builders import coverage, encounter

REFDATA = load_refdata()
AT = datetime(2026, 3, 20, tzinfo=UTC)


def denial(payer_id: str, member_id: str, encounter_id: str) -> dict[str, Any]:
    """A denial item: coverage that ended before the visit, at *payer_id*."""
    plan = {"PPO-SIM": "12", "HMO-SIM": "HM"}[payer_id]
    event = encounter(
        encounter_id=encounter_id,
        coverage=coverage(payer_id, member_id, plan, terminated=date(2026, 1, 1)),
    )
    coded = code_encounter(event, REFDATA).coded
    assert coded is not None
    claim = build_claim(coded, REFDATA).claim
    payer = dataclasses.replace(REFDATA.payers[payer_id], denial_rates={})
    item = route_remittance(adjudicate(claim, payer, None, REFDATA).remittance, REFDATA, payer, AT)
    assert item is not None
    return item


def test_tail_prints_new_denials_that_pass_the_filters(
    settings_factory: Callable[..., Settings],
) -> None:
    """Two PPO denials among an HMO denial and a coding hold: --payer PPO-SIM shows the two."""
    settings = settings_factory()
    since = datetime.now(UTC) - timedelta(seconds=1)
    items = [
        denial("PPO-SIM", "PPO123456789", "E1"),
        denial("HMO-SIM", "HMO123456789", "E2"),
        hold_item(
            ItemKind.CODING_HOLD,
            encounter(encounter_id="E3", diagnoses=["M545"]),
            None,
            code_encounter(encounter(diagnoses=["M545"]), REFDATA).findings,
            "PPO1",
            REFDATA.ruleset_version,
        ),
        denial("PPO-SIM", "PPO987654321", "E4"),
    ]
    producer = KafkaProducer(bootstrap_servers=settings.bootstrap)
    codec = codec_for(DENIALS_REWORK.value_schema)
    for item in items:
        producer.send(
            DENIALS_REWORK.full_name(settings.topic_prefix),
            key=item["member_key"].encode(),
            value=codec.encode(item),
        )
    producer.flush()
    producer.close()

    out = io.StringIO()
    shown = tail(settings, out, payer="PPO-SIM", as_json=True, since=since, limit=2, idle=30)
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert shown == 2
    assert sorted(i["encounter_id"] for i in lines) == ["E1", "E4"]
    assert {i["category"] for i in lines} == {"eligibility"}

    table = io.StringIO()
    assert tail(settings, table, queue="front_desk", since=since, limit=3, idle=5) == 3
    header, *rows = table.getvalue().splitlines()
    assert header.split()[:3] == ["at", "kind", "payer"]
    assert all("CO-27" in r for r in rows)

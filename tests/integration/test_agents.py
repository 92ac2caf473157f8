"""Each faust agent on a real broker: from its input topic to its output topics."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from pipeline.config import Settings
from pipeline.kafka.codec import codec_for
from pipeline.runtime.app import build_app
from pipeline.runtime.topology import STAGE_BY_NAME
from processors.claims.rules import build_claim
from processors.coding.rules import code_encounter
from processors.contracts.topics import (
    CLAIMS_LIFECYCLE,
    CLAIMS_REMITTANCE,
    CLAIMS_SUBMITTED,
    DEAD_LETTER,
    DENIALS_REWORK,
    EHR_ENCOUNTERS,
    ENCOUNTERS_CODED,
    TopicSpec,
)
from processors.refdata import load_refdata
from tests.builders import encounter


def send(settings: Settings, spec: TopicSpec, items: list[tuple[bytes | None, bytes]]) -> None:
    """Send raw (key, value) pairs to *spec*'s topic."""
    producer = KafkaProducer(bootstrap_servers=settings.bootstrap)
    for key, value in items:
        producer.send(spec.full_name(settings.topic_prefix), key=key, value=value)
    producer.flush()
    producer.close()


def read(settings: Settings, spec: TopicSpec, count: int, timeout: float = 60.0) -> list[Any]:
    """Read and decode *count* records from the start of *spec*'s topic, within *timeout*."""
    name = spec.full_name(settings.topic_prefix)
    consumer = KafkaConsumer(bootstrap_servers=settings.bootstrap)
    parts = [TopicPartition(name, p) for p in sorted(consumer.partitions_for_topic(name) or [])]
    consumer.assign(parts)
    consumer.seek_to_beginning(*parts)
    codec = codec_for(spec.value_schema)
    found: list[Any] = []
    deadline = time.monotonic() + timeout
    while len(found) < count and time.monotonic() < deadline:
        for records in consumer.poll(timeout_ms=500).values():
            found.extend(codec.decode(r.value) for r in records)
    consumer.close()
    return found


def run_app_until(settings: Settings, done: Callable[[], bool], timeout: float = 90.0) -> None:
    """Run the faust app in this process until *done()* holds or *timeout* passes."""
    app = build_app(settings)
    app.finalize()

    async def main() -> None:
        await app.start()
        try:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if await asyncio.to_thread(done):
                    return
                await asyncio.sleep(0.5)
            raise AssertionError("agents did not produce the expected records in time")
        finally:
            await app.stop()

    # A start-up that never finishes (e.g. a stuck table recovery) fails the test too.
    asyncio.run(asyncio.wait_for(main(), timeout + 60))


def counted(settings: Settings, spec: TopicSpec, at_least: int) -> Callable[[], bool]:
    """A condition: *spec*'s topic holds at least *at_least* records."""
    from pipeline.kafka.admin import topic_count

    return lambda: topic_count(settings, spec.full_name(settings.topic_prefix)) >= at_least


def test_coding_agent_codes_clean_encounters_and_holds_header_codes(
    settings_factory: Callable[..., Settings],
) -> None:
    """ehr.encounters -> encounters.coded for a clean visit, -> denials.rework for M54.5."""
    settings = settings_factory()
    codec = codec_for(EHR_ENCOUNTERS.value_schema)
    send(
        settings,
        EHR_ENCOUNTERS,
        [
            (b"PPO123456789", codec.encode(encounter(encounter_id="ENC-A"))),
            (b"PPO123456789", codec.encode(encounter(encounter_id="ENC-B", diagnoses=["M545"]))),
        ],
    )
    run_app_until(settings, counted(settings, DENIALS_REWORK, 1))
    coded = read(settings, ENCOUNTERS_CODED, 1)
    holds = read(settings, DENIALS_REWORK, 1)
    assert [c["encounter"]["encounter_id"] for c in coded] == ["ENC-A"]
    assert holds[0]["kind"] == "CODING_HOLD"
    assert holds[0]["reasons"][0]["code"] == "ICD-BILLABLE"
    statuses = {s["status"] for s in read(settings, CLAIMS_LIFECYCLE, 2)}
    assert {"CODED", "HELD_CODING"} <= statuses


def test_claims_and_adjudication_agents_turn_a_coded_encounter_into_a_remittance(
    settings_factory: Callable[..., Settings],
) -> None:
    """encounters.coded -> claims.submitted -> claims.remittance with the claim's id."""
    settings = settings_factory()
    refdata = load_refdata()
    coded = code_encounter(encounter(encounter_id="ENC-C"), refdata).coded
    assert coded is not None
    send(
        settings,
        ENCOUNTERS_CODED,
        [(b"PPO123456789", codec_for(ENCOUNTERS_CODED.value_schema).encode(coded))],
    )
    run_app_until(settings, counted(settings, CLAIMS_REMITTANCE, 1))
    claims = read(settings, CLAIMS_SUBMITTED, 1)
    remits = read(settings, CLAIMS_REMITTANCE, 1)
    assert remits[0]["claim_id"] == claims[0]["claim_id"]
    assert remits[0]["total_charge_cents"] == claims[0]["total_charge_cents"]


def test_denials_agent_routes_a_denied_claim_to_rework(
    settings_factory: Callable[..., Settings],
) -> None:
    """A claim for a terminated member comes back CO-27 and lands in the front-desk queue."""
    from datetime import date

    from tests.builders import coverage

    settings = settings_factory()
    refdata = load_refdata()
    event = encounter(encounter_id="ENC-D", coverage=coverage(terminated=date(2026, 1, 31)))
    coded = code_encounter(event, refdata).coded
    assert coded is not None
    claim = build_claim(coded, refdata).claim
    send(
        settings,
        CLAIMS_SUBMITTED,
        [(b"PPO123456789", codec_for(CLAIMS_SUBMITTED.value_schema).encode(claim))],
    )
    run_app_until(settings, counted(settings, DENIALS_REWORK, 1))
    item = read(settings, DENIALS_REWORK, 1)[0]
    assert item["kind"] == "DENIAL"
    assert item["category"] == "eligibility"
    assert item["queue"] == "front_desk"
    assert {(r["group_code"], r["code"]) for r in item["reasons"] if r["group_code"]} == {
        ("CO", "27")
    }


def test_garbage_and_incomplete_events_go_to_dead_letter_and_the_stage_keeps_going(
    settings_factory: Callable[..., Settings],
) -> None:
    """Non-Avro bytes and an event without services are dead-lettered; the next is coded."""
    settings = settings_factory()
    codec = codec_for(EHR_ENCOUNTERS.value_schema)
    send(
        settings,
        EHR_ENCOUNTERS,
        [
            (b"k1", b"not avro at all"),
            (b"k2", codec.encode(encounter(encounter_id="ENC-EMPTY", procedures=[]))),
            (b"k3", codec.encode(encounter(encounter_id="ENC-OK"))),
        ],
    )
    run_app_until(settings, counted(settings, ENCOUNTERS_CODED, 1))
    letters = read(settings, DEAD_LETTER, 2)
    by_type = {d["error_type"]: d for d in letters}
    assert set(by_type) == {"DECODE", "VALIDATION"}
    assert by_type["DECODE"]["value"] == b"not avro at all"
    assert by_type["DECODE"]["source_topic"] == EHR_ENCOUNTERS.full_name(settings.topic_prefix)
    assert by_type["DECODE"]["source_offset"] >= 0
    assert by_type["VALIDATION"]["record_id"] == "ENC-EMPTY"
    assert "procedures" in by_type["VALIDATION"]["error"]
    assert [c["encounter"]["encounter_id"] for c in read(settings, ENCOUNTERS_CODED, 1)] == [
        "ENC-OK"
    ]
    assert STAGE_BY_NAME["coding"].input is EHR_ENCOUNTERS


def test_member_accumulators_survive_a_worker_restart(
    settings_factory: Callable[..., Settings],
) -> None:
    """A restarted worker recovers the member's deductible from the changelog and applies it."""
    settings = settings_factory()
    refdata = load_refdata()
    codec = codec_for(CLAIMS_SUBMITTED.value_schema)

    def claim_for(encounter_id: str, code: str) -> dict[str, Any]:
        from tests.builders import procedure

        coded = code_encounter(
            encounter(encounter_id=encounter_id, procedures=[procedure(code)]), refdata
        ).coded
        assert coded is not None
        return build_claim(coded, refdata).claim

    send(settings, CLAIMS_SUBMITTED, [(b"PPO123456789", codec.encode(claim_for("E1", "80053")))])
    run_app_until(settings, counted(settings, CLAIMS_REMITTANCE, 1))
    send(settings, CLAIMS_SUBMITTED, [(b"PPO123456789", codec.encode(claim_for("E2", "85025")))])
    run_app_until(settings, counted(settings, CLAIMS_REMITTANCE, 2))

    # At-least-once: a claim redelivered after the restart is answered again, identically.
    by_id: dict[str, dict[str, Any]] = {}
    for remit in read(settings, CLAIMS_REMITTANCE, 2):
        assert by_id.setdefault(remit["remittance_id"], remit) == remit
    first, second = sorted(by_id.values(), key=lambda r: r["encounter_id"])
    ppo = refdata.payers["PPO-SIM"]
    met = first["lines"][0]["adjustments"]
    deductible_after_first = sum(a["amount_cents"] for a in met if a["carc"] == "1")
    assert deductible_after_first > 0
    # Uninterrupted, the second claim sees the first's deductible: same result after a restart.
    from processors.adjudication.rules import adjudicate, new_member_state

    uninterrupted = adjudicate(
        claim_for("E1", "80053"), ppo, new_member_state(b"M"), refdata, settings.seed
    )
    expected = adjudicate(
        claim_for("E2", "85025"), ppo, uninterrupted.member_state, refdata, settings.seed
    )
    assert second == expected.remittance


def test_an_oversized_output_is_dead_lettered_and_every_good_record_comes_through(
    settings_factory: Callable[..., Settings],
) -> None:
    """8,000 lines of an unknown code (a 1.5 MB hold) among 400 encounters: 400 coded, 1 letter."""
    from tests.builders import procedure

    settings = settings_factory()
    codec = codec_for(EHR_ENCOUNTERS.value_schema)
    good = [
        (b"PPO123456789", codec.encode(encounter(encounter_id=f"ENC-{i}", event_id=f"EV-{i}")))
        for i in range(400)
    ]
    huge = encounter(encounter_id="ENC-HUGE", procedures=[procedure("0000T")] * 8000)
    send(
        settings, EHR_ENCOUNTERS, [*good[:200], (b"PPO123456789", codec.encode(huge)), *good[200:]]
    )
    send(
        settings,
        EHR_ENCOUNTERS,
        [(None, codec.encode(encounter(encounter_id="ENC-NOKEY", event_id="EV-NOKEY")))],
    )
    run_app_until(settings, counted(settings, ENCOUNTERS_CODED, 401))
    coded = read(settings, ENCOUNTERS_CODED, 401)
    ids = sorted(c["encounter"]["encounter_id"] for c in coded)
    assert ids == sorted([f"ENC-{i}" for i in range(400)] + ["ENC-NOKEY"])
    (letter,) = read(settings, DEAD_LETTER, 1)
    assert (letter["error_type"], letter["record_id"]) == ("OVERSIZE", "ENC-HUGE")
    assert letter["value"] is not None, "the 88 KB input fits beside the reason"
    assert topic_records(settings, DEAD_LETTER) == 1


def topic_records(settings: Settings, spec: TopicSpec) -> int:
    """How many records *spec*'s topic holds."""
    from pipeline.kafka.admin import topic_count

    return int(topic_count(settings, spec.full_name(settings.topic_prefix)))


def test_a_member_with_5000_claims_keeps_every_state_record_small(
    settings_factory: Callable[..., Settings],
) -> None:
    """5,000 claims of one member: all answered, no worker crash, state records stay small."""
    from datetime import UTC, date, datetime, timedelta
    from datetime import time as time_of_day

    from pipeline.runtime.app import app_id
    from tests.builders import built_claim, coverage, procedure

    settings = settings_factory()
    base = built_claim(
        procedures=[procedure("99213"), procedure("80053")],
        coverage=coverage(effective=date(2025, 1, 1)),
    )
    codec = codec_for(CLAIMS_SUBMITTED.value_schema)
    items: list[tuple[bytes | None, bytes]] = []
    for i in range(5000):
        day = date(2026, 1, 1) + timedelta(days=i % 360)
        claim = {
            **base,
            "claim_id": f"C{i:016d}",
            "encounter_id": f"E{i:08d}",
            "service_date_from": day,
            "service_date_to": day,
            "created_at": datetime.combine(day + timedelta(days=1), time_of_day(9), UTC),
            "lines": [{**ln, "service_date": day} for ln in base["lines"]],
        }
        items.append((b"PPO123456789", codec.encode(claim)))
    send(settings, CLAIMS_SUBMITTED, items)
    run_app_until(settings, counted(settings, CLAIMS_REMITTANCE, 5000), timeout=240)
    changelog = f"{app_id(settings)}-member-accumulators-changelog"
    consumer = KafkaConsumer(bootstrap_servers=settings.bootstrap)
    parts = [TopicPartition(changelog, p) for p in consumer.partitions_for_topic(changelog) or []]
    consumer.assign(parts)
    consumer.seek_to_beginning(*parts)
    ends = consumer.end_offsets(parts)
    sizes: dict[bytes, int] = {}
    deadline = time.monotonic() + 60
    while any(consumer.position(p) < ends[p] for p in parts):
        assert time.monotonic() < deadline, "the changelog could not be read in time"
        for records in consumer.poll(timeout_ms=500).values():
            for r in records:
                sizes[r.key] = max(sizes.get(r.key, 0), len(r.value or b""))
    consumer.close()
    assert sizes[b"PPO123456789"] < 4096, "the member row does not grow with its claims"
    assert max(sizes.values()) < 64 * 1024
    assert topic_records(settings, DEAD_LETTER) == 0

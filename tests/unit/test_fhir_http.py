"""``POST /fhir`` without a broker: limits, content types, bad input, acknowledgements, the loop."""

from __future__ import annotations

import asyncio
import copy
import itertools
import json
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from pipeline.ingest import http
from pipeline.ingest.directory import FeedDirectory
from pipeline.ingest.fhir import map_bundle
from pipeline.ingest.http import Limits, build_web_app, nested_deeper_than, read_bundle
from pipeline.ingest.practice import practice_record
from pipeline.kafka.codec import codec_for
from processors.contracts.topics import DEAD_LETTER, EHR_ENCOUNTERS, member_key
from tests import fhir_bundles as fb
from tests.fhir_bundles import FIXTURES

Record = dict[str, Any]
PRACTICE = practice_record()
FEED = FeedDirectory(given=PRACTICE)
FHIR_JSON = "application/fhir+json"
DEAD = codec_for(DEAD_LETTER.value_schema)
EVENTS = codec_for(EHR_ENCOUNTERS.value_schema)
OFFICE_VISIT = (FIXTURES / "office-visit.json").read_bytes()
AWKWARD = (FIXTURES / "awkward.json").read_bytes()
DEADLINE_S = 30.0


class Broker:
    """A publish that keeps what it is given, as a broker acknowledging every record would."""

    def __init__(self) -> None:
        self.events: list[tuple[bytes, bytes]] = []
        self.dead_letters: list[Record] = []
        self.calls = 0

    async def __call__(self, events: list[tuple[bytes, bytes]], dead: list[bytes]) -> None:
        self.calls += 1
        self.events += events
        self.dead_letters += [DEAD.decode(d) for d in dead]


Answer = tuple[int, dict[str, str], Record]


async def _post(
    app: web.Application,
    body: bytes | Callable[[], AsyncIterator[bytes]],
    content_type: str | None = FHIR_JSON,
) -> Answer:
    async with TestClient(TestServer(app)) as client:
        headers = {"Content-Type": content_type} if content_type else {}
        data = body if isinstance(body, bytes) else body()
        response = await client.post("/fhir", data=data, headers=headers)
        return response.status, dict(response.headers), json.loads(await response.read())


def post(
    body: bytes,
    content_type: str | None = FHIR_JSON,
    *,
    limits: Limits | None = None,
    broker: Callable[[list[tuple[bytes, bytes]], list[bytes]], Awaitable[None]] | None = None,
) -> Answer:
    """POST *body* to a fresh app publishing to *broker*; (status, headers, JSON answer)."""
    app = build_web_app(broker or Broker(), FEED, limits)
    return asyncio.run(_post(app, body, content_type))


def diagnostics(answer: Record) -> str:
    """Every diagnostics text of an OperationOutcome (or of the 202's outcome)."""
    outcome = answer.get("outcome", answer)
    assert outcome["resourceType"] == "OperationOutcome"
    return " | ".join(i["diagnostics"] for i in outcome["issue"])


def visits(count: int, procedures: int | list[int] = 2) -> Record:
    """A bundle of one patient's *count* office visits (five shared entries, then per visit an
    Encounter, two Conditions and *procedures* Procedures: one number, or one per visit)."""
    per_visit = procedures if isinstance(procedures, list) else [procedures] * count
    resources = [
        fb.patient(),
        fb.payer_org("PPO-SIM", "Commercial PPO (simulated)"),
        fb.practice(),
        fb.coverage("cov1", "PPO-SIM", "PPO123456789", 1),
        fb.practitioner("dr1", "Lindqvist", "Erik", fb.DOCTOR_NPI),
    ]
    for i, count_here in enumerate(per_visit):
        eid = f"e{i}"
        resources += [
            fb.encounter(eid, diagnoses=(f"c{i}a", f"c{i}b")),
            fb.condition(f"c{i}a", "I10", eid=eid),
            fb.condition(f"c{i}b", "E11.9", eid=eid),
        ]
        resources += [
            fb.procedure(f"p{i}-{j}", "99214" if j == 0 else "36415", eid=eid, reasons=(f"c{i}a",))
            for j in range(count_here)
        ]
    entries = [
        {"fullUrl": f"urn:uuid:{r['resourceType'].lower()}-{r['id']}", "resource": r}
        for r in resources
    ]
    return {
        "resourceType": "Bundle",
        "id": "visits",
        "type": "collection",
        "timestamp": "2026-03-03T15:00:00Z",
        "entry": entries,
    }


class TestAccepted:
    def test_a_bundle_is_accepted_with_its_event_ids_once_published(self) -> None:
        """202 names the accepted event; the event published is the one mapped, keyed by member."""
        broker = Broker()
        status, _, answer = post(OFFICE_VISIT, broker=broker)
        assert status == 202
        assert answer["encounter_ids"] == ["V-ENC1"]
        ((key, value),) = broker.events
        event = EVENTS.decode(value)
        assert event["event_id"] == answer["event_ids"][0]
        assert key == member_key(event).encode()  # the key the claim path is partitioned by
        assert broker.dead_letters == []

    def test_the_answer_waits_for_the_broker_to_acknowledge(self) -> None:
        """Until publish returns (Kafka acked) the request is not answered; then it is 202."""
        released = asyncio.Event()
        called = asyncio.Event()

        async def slow(events: list[tuple[bytes, bytes]], dead: list[bytes]) -> None:
            called.set()
            await released.wait()

        async def scenario() -> tuple[bool, int]:
            app = build_web_app(slow, FEED)
            request = asyncio.create_task(_post(app, OFFICE_VISIT))
            await asyncio.wait_for(called.wait(), DEADLINE_S)
            await asyncio.sleep(0)  # the handler is parked on publish, not finishing
            answered_early = request.done()
            released.set()
            status, _, _ = await asyncio.wait_for(request, DEADLINE_S)
            return answered_early, status

        answered_early, status = asyncio.run(scenario())
        assert not answered_early
        assert status == 202

    @pytest.mark.parametrize(
        "content_type",
        [
            "application/json",
            "application/fhir+json; charset=utf-8",
            "application/json; charset=UTF-8",
        ],
    )
    def test_json_content_types_with_a_utf8_charset_are_read(self, content_type: str) -> None:
        """application/json and application/fhir+json, with or without charset=utf-8, are read."""
        status, _, _ = post(OFFICE_VISIT, content_type)
        assert status == 202


class TestRefusedAtTheDoor:
    @pytest.mark.parametrize(
        "content_type",
        ["text/plain", "application/xml", "application/fhir+json; charset=iso-8859-1", None],
    )
    def test_other_content_types_are_415(self, content_type: str | None) -> None:
        """A body that is not FHIR JSON in UTF-8 (or has no content type) is answered 415."""
        broker = Broker()
        status, _, answer = post(OFFICE_VISIT, content_type, broker=broker)
        assert status == 415
        assert "application/fhir+json" in diagnostics(answer)
        assert broker.calls == 0

    def test_a_body_over_the_byte_limit_is_413_with_an_outcome(self) -> None:
        """A body longer than max_bytes is refused 413 before it is read; nothing is published."""
        broker = Broker()
        status, _, answer = post(OFFICE_VISIT, limits=Limits(max_bytes=1024), broker=broker)
        assert status == 413
        assert "1,024 bytes" in diagnostics(answer)
        assert broker.calls == 0

    def test_a_chunked_body_over_the_byte_limit_is_413_too(self) -> None:
        """Without a Content-Length the limit holds while reading: 413, nothing published."""
        broker = Broker()

        async def chunks() -> AsyncIterator[bytes]:
            for start in range(0, len(OFFICE_VISIT), 500):
                yield OFFICE_VISIT[start : start + 500]

        app = build_web_app(broker, FEED, Limits(max_bytes=1024))
        status, _, answer = asyncio.run(_post(app, chunks))
        assert status == 413
        assert answer["resourceType"] == "OperationOutcome"
        assert broker.calls == 0

    def test_a_bundle_with_more_entries_than_the_limit_is_413(self) -> None:
        """A Bundle with more entries than max_entries is refused 413, naming both counts."""
        broker = Broker()
        status, _, answer = post(OFFICE_VISIT, limits=Limits(max_entries=5), broker=broker)
        assert status == 413
        assert answer["issue"][0]["code"] == "too-costly"
        assert "13 entries" in diagnostics(answer)
        assert broker.calls == 0

    def test_the_defaults_take_a_several_megabyte_bundle(self) -> None:
        """The default limits read a 5,000-entry, multi-megabyte bundle (real Synthea sizes)."""
        body = json.dumps(visits(1000)).encode()
        assert len(body) > 2_000_000
        status, _, answer = post(body)
        assert status == 202
        assert len(answer["event_ids"]) == 1000


class TestBadInput:
    @pytest.mark.parametrize(
        ("body", "reason"),
        [
            (b"{not json", "not JSON"),
            (b"\xff\xfe{}", "not UTF-8"),
            (b'{"resourceType": "Bundle", "n": ' + b"1" * 5000 + b"}", "not JSON"),
            (b"[" * 100_000 + b"]" * 100_000, "more than 64 levels"),
            (b'{"a":' * 50_000 + b"1" + b"}" * 50_000, "more than 64 levels"),
            (b'{"resourceType": "Patient"}', "not a FHIR Bundle"),
            (
                b'{"resourceType": "Bundle", "type": "collection", "entry": {"a": 1}}',
                "Bundle.entry is not an array",
            ),
        ],
    )
    def test_unreadable_bodies_are_400_and_dead_lettered_whole(
        self, body: bytes, reason: str
    ) -> None:
        """Not JSON, not UTF-8, a huge number, deep nesting, not a Bundle: 400 with an
        OperationOutcome, and the raw bytes on the dead-letter topic with the reason."""
        broker = Broker()
        status, _, answer = post(body, broker=broker)
        assert status == 400
        assert reason in diagnostics(answer)
        (dead,) = broker.dead_letters
        assert dead["value"] == body
        assert reason in dead["error"]
        assert dead["source_topic"] == "ingest:fhir-http"
        assert broker.events == []

    def test_a_non_json_body_over_a_megabyte_is_400_with_its_size_kept(self) -> None:
        """1.5 MB of garbage is 400, not 500: its dead letter records the size, not the bytes."""
        broker = Broker()
        body = b"x" * 1_500_000
        status, _, answer = post(body, broker=broker)
        assert status == 400
        assert "not JSON" in diagnostics(answer)
        (dead,) = broker.dead_letters
        assert dead["value"] is None
        assert dead["value_size"] == len(body)

    def test_an_unbillable_encounter_is_reported_and_dead_lettered_without_phi(self) -> None:
        """The billable encounter is accepted; the other is named in the outcome and its dead
        letter, which carry no name, birth date or member id."""
        broker = Broker()
        status, _, answer = post(AWKWARD, broker=broker)
        assert status == 202
        assert answer["encounter_ids"] == ["V-ENC3"]
        (dead,) = broker.dead_letters
        assert dead["error"].startswith("Condition/c5.code")
        assert dead["record_id"] == "Condition/c5"
        assert dead["value"] == AWKWARD
        text = json.dumps(answer) + dead["error"]
        for phi in ("Baker", "1990-07-30", "HMO123456789"):
            assert phi not in text

    def test_wrongly_typed_elements_never_fail_the_request(self) -> None:
        """Hundreds of bundles with elements of the wrong JSON type are all answered 202 or 400."""
        rng = random.Random(20260301)
        junk: list[Any] = [
            None,
            1,
            "x",
            [],
            {},
            [1],
            {"a": 1},
            True,
            2.5,
            [[1]],
            {"reference": ["x"]},
        ]

        def mutate(node: Any) -> None:
            if isinstance(node, dict) and node:
                key = rng.choice(list(node))
                if rng.random() < 0.3:
                    node[key] = copy.deepcopy(rng.choice(junk))
                else:
                    mutate(node[key])
            elif isinstance(node, list) and node:
                index = rng.randrange(len(node))
                if rng.random() < 0.3:
                    node[index] = copy.deepcopy(rng.choice(junk))
                else:
                    mutate(node[index])

        statuses = set()
        for _ in range(400):
            bundle = copy.deepcopy(rng.choice([fb.office_visit(), fb.awkward()]))
            for _ in range(rng.randint(1, 4)):
                mutate(bundle)
            answer = read_bundle(json.dumps(bundle).encode(), FEED, Limits())
            statuses.add(answer.status)
            assert answer.status in (202, 400)
            assert answer.status == 202 or answer.dead_letters
        assert statuses == {202, 400}

    def test_a_mapping_failure_is_400_and_dead_lettered_as_internal(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Should the mapper fail on an input, the answer is 400 and the input an INTERNAL
        dead letter naming the exception, never a 500."""

        def broken(*_: object, **__: object) -> None:
            raise RuntimeError("a bug")

        monkeypatch.setattr(http, "map_bundle", broken)
        broker = Broker()
        status, _, answer = post(OFFICE_VISIT, broker=broker)
        assert status == 400
        assert "RuntimeError" in diagnostics(answer)
        (dead,) = broker.dead_letters
        assert dead["error_type"] == "INTERNAL"
        assert dead["value"] == OFFICE_VISIT

    def test_nesting_is_measured_outside_strings(self) -> None:
        """Brackets inside JSON strings (escaped quotes too) do not count as nesting."""
        assert not nested_deeper_than(json.dumps({"note": "[" * 500 + '\\"{' * 100}).encode(), 3)
        assert nested_deeper_than(b'{"a": [[[{"b": 1}]]]}', 4)
        assert not nested_deeper_than(b'{"a": [[[{"b": 1}]]]}', 5)


class TestRecordSizeLimit:
    def test_an_event_over_the_record_limit_is_refused_and_the_rest_accepted(self) -> None:
        """An encounter whose event exceeds max_record_bytes is named in the outcome (too-long)
        and dead-lettered OVERSIZE; the small one is sent."""
        bundle = visits(2, procedures=[400, 2])
        sizes = {e["encounter_id"]: len(EVENTS.encode(e)) for e in map_bundle(bundle, FEED).events}
        assert sizes["V-E0"] > 2000 > sizes["V-E1"]
        broker = Broker()
        body = json.dumps(bundle).encode()
        status, _, answer = post(body, limits=Limits(max_record_bytes=2000), broker=broker)
        assert status == 202
        assert answer["encounter_ids"] == ["V-E1"]
        issue = next(i for i in answer["outcome"]["issue"] if i["code"] == "too-long")
        assert "V-E0" in issue["diagnostics"]
        assert "2,000-byte record limit" in issue["diagnostics"]
        assert [EVENTS.decode(v)["encounter_id"] for _, v in broker.events] == ["V-E1"]
        (dead,) = broker.dead_letters
        assert (dead["error_type"], dead["record_id"]) == ("OVERSIZE", "V-E0")
        assert dead["value"] is None  # the bundle is larger than a dead letter may keep
        assert dead["value_size"] == len(body)

    def test_a_bundle_whose_only_event_is_too_large_is_400(self) -> None:
        """Nothing left to accept: 400 with the too-long issue, and the dead letter."""
        broker = Broker()
        status, _, answer = post(
            json.dumps(visits(1, procedures=400)).encode(),
            limits=Limits(max_record_bytes=2000),
            broker=broker,
        )
        assert status == 400
        assert answer["issue"][0]["code"] == "too-long"
        assert broker.events == []
        assert [d["error_type"] for d in broker.dead_letters] == ["OVERSIZE"]


class TestBrokerTrouble:
    def test_a_failed_send_is_503_with_retry_after_and_no_ids(self) -> None:
        """When publishing raises, the answer is 503 with Retry-After and claims nothing."""

        async def down(events: list[tuple[bytes, bytes]], dead: list[bytes]) -> None:
            raise ConnectionError("no broker")

        status, headers, answer = post(OFFICE_VISIT, broker=down)
        assert status == 503
        assert headers["Retry-After"] == str(http.RETRY_AFTER_SECONDS)
        assert answer["issue"][0]["code"] == "transient"
        assert "event_ids" not in answer

    def test_a_send_not_acknowledged_in_time_is_503(self) -> None:
        """Kafka silent past the ack timeout: 503, well before the publish would return."""

        async def silent(events: list[tuple[bytes, bytes]], dead: list[bytes]) -> None:
            await asyncio.sleep(60)

        started = time.monotonic()
        status, headers, _ = post(OFFICE_VISIT, limits=Limits(ack_timeout=0.3), broker=silent)
        assert status == 503
        assert "Retry-After" in headers
        assert time.monotonic() - started < 10

    def test_dead_letters_that_cannot_be_sent_make_a_400_a_503(self) -> None:
        """Bad input is answered 400 only once its dead letter is stored; else 503."""

        async def down(events: list[tuple[bytes, bytes]], dead: list[bytes]) -> None:
            raise ConnectionError("no broker")

        status, _, _ = post(b"{not json", broker=down)
        assert status == 503


class TestEventLoop:
    def _max_gap_while_posting(self, body: bytes) -> tuple[float, float, int, Record]:
        """POST *body* while a ticker runs on the same loop.

        Returns the longest gap between ticks, the request's whole time, the status
        and the answer.
        """

        async def scenario() -> tuple[float, float, int, Record]:
            ticks: list[float] = []
            done = asyncio.Event()

            async def ticker() -> None:
                while not done.is_set():
                    ticks.append(time.monotonic())
                    await asyncio.sleep(0.01)

            task = asyncio.create_task(ticker())
            started = time.monotonic()
            status, _, answer = await _post(build_web_app(Broker(), FEED), body)
            took = time.monotonic() - started
            done.set()
            await task
            gaps = [b - a for a, b in itertools.pairwise(ticks)]
            return max(gaps), took, status, answer

        return asyncio.run(scenario())

    def test_mapping_runs_off_the_event_loop(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """A mapping that takes a second leaves the loop free: it keeps ticking throughout."""

        def slow_map(*args: Any, **kwargs: Any) -> Any:
            time.sleep(1.0)
            return map_bundle(*args, **kwargs)

        monkeypatch.setattr(http, "map_bundle", slow_map)
        gap, _, status, _ = self._max_gap_while_posting(OFFICE_VISIT)
        assert status == 202
        assert gap < 0.3

    def test_a_5000_entry_bundle_keeps_the_loop_responsive(self) -> None:
        """While a 5,000-entry bundle is read, mapped and encoded the loop keeps running: no
        stall takes three quarters of the request (done on the loop, one stall would be all
        of it; ``json.loads`` of the body holds the interpreter lock for about half)."""
        gap, took, status, answer = self._max_gap_while_posting(json.dumps(visits(1000)).encode())
        assert status == 202
        assert len(answer["event_ids"]) == 1000
        assert gap < took * 0.75

    def test_mapping_time_grows_linearly_with_the_bundle(self) -> None:
        """A 20,000-entry bundle maps in seconds, not minutes (no scan of the bundle per
        encounter)."""
        bundle = visits(4000)
        started = time.monotonic()
        mapped = map_bundle(bundle, FEED)
        assert len(mapped.events) == 4000
        assert time.monotonic() - started < 5

"""Member state: recorded decisions, partial writes, bounded rows, and version 1 rows."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from pipeline.kafka.codec import codec_for
from pipeline.runtime.runner import BatchState, Incoming, StageRunner
from pipeline.runtime.topology import STAGE_BY_NAME, STAGES
from processors.adjudication.rules import adjudicate, service_fingerprint
from processors.contracts.claim import corrected_claim
from processors.contracts.topics import CLAIMS_SUBMITTED, DEAD_LETTER
from processors.memberstate import (
    ROW_SHAPES,
    STATE_VERSION,
    MemberState,
    is_member_row,
    member_of,
    next_due,
    row_kind,
    stale_rows,
)
from processors.refdata import load_refdata
from processors.stage import Agenda, StageContext
from tests.builders import built_claim, coverage, procedure

REFDATA = load_refdata()
PPO = dataclasses.replace(REFDATA.payers["PPO-SIM"], denial_rates={})
NO_NOISE = dataclasses.replace(REFDATA, payers={**REFDATA.payers, "PPO-SIM": PPO})
MEMBER = b"PPO123456789"
FIXTURE = Path(__file__).parent.parent / "fixtures" / "member_state_v1.json"
# One member's rows as version 2 wrote them: a dry run of 3,000 synthetic encounters
# (seed 7, payer seed 2026), the member with the most kinds of rows.
FIXTURE_V2 = Path(__file__).parent.parent / "fixtures" / "member_state_v2.json"
ADJUDICATION = STAGE_BY_NAME["adjudication"]
CLAIM_CODEC = codec_for(CLAIMS_SUBMITTED.value_schema)


def decide(store: dict[bytes, Any], claim: dict[str, Any]) -> list[dict[str, Any]]:
    """Adjudicate *claim* as the stage does: load, decide, commit."""
    result = adjudicate(claim, PPO, MemberState.load(store, claim["member_id"].encode()), REFDATA)
    result.member_state.commit(store)
    return result.remittances


def nth_claim(base: dict[str, Any], i: int) -> dict[str, Any]:
    """Claim number *i* of one member: its own id and encounter, a service date in 2026."""
    day = date(2026, 1, 1) + timedelta(days=i % 360)
    filed = datetime.combine(day + timedelta(days=1), time(9), UTC)
    lines = [{**ln, "service_date": day} for ln in base["lines"]]
    return {
        **base,
        "claim_id": f"C{i:016d}",
        "encounter_id": f"E{i:08d}",
        "service_date_from": day,
        "service_date_to": day,
        "created_at": filed,
        "lines": lines,
    }


class TestRecordedDecisions:
    def test_a_redelivered_claim_gets_its_first_answer_after_the_state_moved_on(self) -> None:
        """A paid, A voided, B (the same service) paid: A again is still paid, not CO-18."""
        store: dict[bytes, Any] = {}
        a = built_claim(encounter_id="EA")
        (first,) = decide(store, a)
        void = corrected_claim(a, "8", first["payer_claim_control_number"])
        decide(store, void)
        (b_answer,) = decide(store, built_claim(encounter_id="EB"))
        assert b_answer["claim_status_code"] == "1", "A's service was freed by the void"
        assert decide(store, a) == [first]

    def test_a_write_that_lost_its_member_row_is_completed_on_redelivery(self) -> None:
        """Claim rows on the broker, member row lost: redelivery answers and counts them once."""
        claims = [
            built_claim(encounter_id=f"E{i}", procedures=[procedure(code)])
            for i, code in enumerate(("80053", "85025", "80061"))
        ]
        whole: dict[bytes, Any] = {}
        answers = [decide(whole, c) for c in claims]

        crashed: dict[bytes, Any] = {}
        decide(crashed, claims[0])
        batch = MemberState.load(crashed, MEMBER)
        for c in claims[1:]:
            batch = adjudicate(c, PPO, batch, REFDATA).member_state
        for key, value in batch.changes():  # every row but the member row reached the broker
            if not is_member_row(key):
                crashed[key] = value
        assert crashed[MEMBER]["seq"] == 1

        assert [decide(crashed, c) for c in claims] == answers
        assert crashed == whole

    def test_the_same_claim_twice_leaves_the_state_as_it_was(self) -> None:
        """Deciding a recorded claim again writes nothing."""
        store: dict[bytes, Any] = {}
        c = built_claim(procedures=[procedure("80053")])
        decide(store, c)
        again = adjudicate(c, PPO, MemberState.load(store, MEMBER), REFDATA)
        assert again.member_state.changes() == []


class TestBoundedState:
    def test_a_member_with_5000_claims_keeps_a_small_member_row(self) -> None:
        """5,000 claims of one member through the stage: the member row stays under 1 KB."""
        base = built_claim(
            procedures=[procedure("99213"), procedure("80053")],
            coverage=coverage(effective=date(2025, 1, 1)),
        )
        table: dict[bytes, Any] = {}
        state = BatchState(table)
        context = StageContext(NO_NOISE, state, agenda=Agenda())
        runner = StageRunner(STAGES, lambda stage: context, agenda=context.agenda)
        answered = 0
        for start in range(0, 5000, 500):
            batch = [
                Incoming(
                    CLAIMS_SUBMITTED.name, 0, i, MEMBER, CLAIM_CODEC.encode(nth_claim(base, i)), 0
                )
                for i in range(start, start + 500)
            ]
            out = runner.process_many(ADJUDICATION, batch)
            state.flush()
            assert not [o for o in out if o.topic == DEAD_LETTER.name]
            answered += sum(1 for o in out if o.topic == "claims.remittance")
        assert answered == 5000
        member_row = len(json.dumps(table[MEMBER]))
        largest = max(len(json.dumps(v)) for v in table.values())
        assert member_row < 1024, member_row
        assert largest < 16 * 1024, largest
        assert table[MEMBER]["seq"] == 5000

    def test_a_state_row_over_the_limit_dead_letters_its_record_and_the_rest_go_on(self) -> None:
        """A limit between two claims' row sizes: the larger is dead-lettered, the next decided."""
        big = built_claim(
            encounter_id="EBIG",
            procedures=[
                procedure("99213"),
                procedure("80053"),
                procedure("85025"),
                procedure("80061"),
            ],
        )
        other = {**built_claim(encounter_id="EOK"), "member_id": "PPO000000002"}
        sizes = []
        for c in (big, other):
            scratch: dict[bytes, Any] = {}
            decide(scratch, c)
            sizes.append(
                max(
                    len(k) + len(json.dumps(v, separators=(",", ":"), default=str))
                    for k, v in scratch.items()
                )
            )
        assert sizes[0] > sizes[1]
        table: dict[bytes, Any] = {}
        state = BatchState(table, max_row_bytes=(sizes[0] + sizes[1]) // 2)
        context = StageContext(NO_NOISE, state)
        runner = StageRunner(STAGES, lambda stage: context)
        out = runner.process_many(
            ADJUDICATION,
            [
                Incoming(CLAIMS_SUBMITTED.name, 0, 0, MEMBER, CLAIM_CODEC.encode(big), 0),
                Incoming(
                    CLAIMS_SUBMITTED.name, 0, 1, b"PPO000000002", CLAIM_CODEC.encode(other), 0
                ),
            ],
        )
        state.flush()
        letters = [
            codec_for(DEAD_LETTER.value_schema).decode(o.value)
            for o in out
            if o.topic == DEAD_LETTER.name
        ]
        assert [(d["error_type"], d["record_id"], d["source_offset"]) for d in letters] == [
            ("OVERSIZE", "EBIG", 0)
        ]
        assert "CLAIMS_MAX_RECORD_BYTES" in letters[0]["error"]
        assert not any(member_of(k) == MEMBER for k in table), "nothing of the refused claim"
        assert runner.processed["adjudication"] == 1


def shape_problems(key: bytes, row: dict[str, Any]) -> list[str]:
    """How *row* differs from the TypedDict its key's kind declares (empty when it fits)."""
    shape: Any = ROW_SHAPES[row_kind(key)]
    keys = set(row)
    missing = shape.__required_keys__ - keys
    unknown = keys - shape.__required_keys__ - shape.__optional_keys__
    return [f"{row_kind(key)} row lacks {k}" for k in sorted(missing)] + [
        f"{row_kind(key)} row has undeclared {k}" for k in sorted(unknown)
    ]


class TestVersion2:
    def load_fixture(self) -> dict[bytes, Any]:
        """The rows as the changelog holds them: JSON values under the row keys."""
        return {k.encode(): v for k, v in json.loads(FIXTURE_V2.read_text()).items()}

    def test_the_fixture_holds_every_kind_of_row(self) -> None:
        """Member, claim, service and item rows, with an open item due."""
        store = self.load_fixture()
        assert {row_kind(k) for k in store} == set(ROW_SHAPES)
        (member,) = [k for k in store if is_member_row(k)]
        assert store[member]["v"] == STATE_VERSION == 2
        assert store[member]["due"]

    def test_rows_written_by_version_2_fit_the_declared_shapes(self) -> None:
        """Every row of the fixture has exactly the keys its TypedDict declares."""
        store = self.load_fixture()
        assert [p for k, v in store.items() for p in shape_problems(k, v)] == []

    def test_rows_written_now_fit_the_declared_shapes(self) -> None:
        """The rows a dry run writes today (every kind) fit the TypedDicts too."""
        from pipeline.ingest.synthetic import generate
        from pipeline.runtime.dryrun import InProcessPipeline

        pipe = InProcessPipeline(REFDATA, 2026)
        for _ in pipe.run_all(generate(600, 7)):
            pass
        rows = {k: v for k, v in pipe.state.items() if not k.startswith(b"\x00")}
        assert {row_kind(k) for k in rows} == set(ROW_SHAPES)
        assert [p for k, v in rows.items() for p in shape_problems(k, v)] == []

    def test_a_row_with_a_key_the_shape_does_not_declare_is_found(self) -> None:
        """The shape check can fail: an extra or a missing key is named."""
        store = self.load_fixture()
        (member,) = [k for k in store if is_member_row(k)]
        row = {**store[member], "claims": {}}
        del row["seq"]
        assert shape_problems(member, row) == [
            "member row lacks seq",
            "member row has undeclared claims",
        ]

    def test_version_2_rows_load_as_they_are(self) -> None:
        """Loading the rows changes none of them, and the due date is the earliest one."""
        store = self.load_fixture()
        (member,) = [k for k in store if is_member_row(k)]
        state = MemberState.load(store, member)
        assert state.rows() == store
        assert state.writes == {}
        due = min(date.fromisoformat(d) for d in store[member]["due"].values())
        assert state.next_due() == due
        for key, row in store.items():
            if row_kind(key) == "claim":
                assert state.claim(key.rsplit(b"\x00", 1)[1].decode()) == row

    def test_a_denied_claim_on_file_redelivered_gets_its_recorded_answer(self) -> None:
        """The claim kept in a version 2 claim row, sent again: the recorded lines, no writes."""
        from processors.jsonsafe import from_json

        store = self.load_fixture()
        kept = [(k, v) for k, v in store.items() if row_kind(k) == "claim" and v["claim"]]
        assert kept
        for key, row in kept:
            claim = from_json(row["claim"])
            payer = REFDATA.payers[claim["payer_id"]]
            result = adjudicate(claim, payer, MemberState.load(store, member_of(key)), REFDATA)
            (remittance,) = result.remittances
            assert remittance["claim_status_code"] == row["answer"]["status"]
            paid = [ln["paid_cents"] for ln in remittance["lines"]]
            assert paid == [ln["paid_cents"] for ln in row["answer"]["lines"]]
            assert result.member_state.writes == {}


class TestVersion1:
    def load_fixture(self) -> dict[bytes, Any]:
        """Member rows as version 1 wrote them (whole state in one JSON value)."""
        return {k.encode(): v for k, v in json.loads(FIXTURE.read_text()).items()}

    def test_version_1_rows_load_with_their_accumulators_claims_and_items(self) -> None:
        """Every v1 member loads: same years, every claim and open item found, due dates kept."""
        for member, old in self.load_fixture().items():
            state = MemberState.load({member: old}, member)
            assert state.row["v"] == STATE_VERSION
            assert state.row["years"] == old["years"]
            for claim_id, entry in old["claims"].items():
                found = state.claim(claim_id, forgotten_too=True)
                assert found is not None
                assert found["answer"] == entry.get("answer")
            for fingerprint, claim_id in old["services"].items():
                assert state.service(fingerprint) == claim_id
            pending = {
                rid
                for rid, i in (old.get("items") or {}).items()
                if not i["reminded"] and not i["closed"]
            }
            assert {t[2:] for t in state.due if t.startswith("I:")} == pending
            awaiting = [
                e for e in old["claims"].values() if e.get("awaiting") and not e.get("answer")
            ]
            assert (next_due(state.row) is not None) == bool(pending or awaiting)

    def test_a_version_1_claim_redelivered_is_answered_as_before(self) -> None:
        """A claim v1 decided, redelivered after the upgrade: the same remittance, no change."""
        store: dict[bytes, Any] = {}
        c = built_claim(procedures=[procedure("80053")])
        (answer,) = decide(store, c)
        old = {
            "years": {"2026": store[MEMBER]["years"]["2026"]},
            "claims": {
                c["claim_id"]: {
                    "before": {"deductible": 0, "out_of_pocket": 0, "uses": {}},
                    "answer": {
                        **store[MEMBER + b"\x00C\x00" + c["claim_id"].encode()]["answer"],
                        "lines": json.loads(json.dumps(answer["lines"], default=str)),
                    },
                    "claim": None,
                }
            },
            "services": {service_fingerprint(c): c["claim_id"]},
        }
        upgraded = adjudicate(c, PPO, MemberState.load({MEMBER: old}, MEMBER), REFDATA)
        assert upgraded.remittances == [answer]
        assert upgraded.member_state.row["years"] == old["years"]

    def test_stale_rows_are_the_forgotten_years_rows(self) -> None:
        """After a 2026 claim, the 2024 claim's rows are stale and nothing else is."""
        store: dict[bytes, Any] = {}
        for year in (2024, 2025, 2026):
            decide(
                store,
                built_claim(
                    encounter_id=f"E{year}",
                    procedures=[procedure("80053")],
                    service_date=date(year, 3, 2),
                    received_at=datetime(year, 3, 3, tzinfo=UTC),
                    coverage=coverage(effective=date(2024, 1, 1)),
                ),
            )
        stale = set(stale_rows(store, list(store)))
        assert stale
        assert all(store[k]["year"] == "2024" for k in stale)
        assert {store[k]["year"] for k in store if k not in stale and not is_member_row(k)} == {
            "2025",
            "2026",
        }


def test_runner_removes_stale_rows_two_housekeeping_passes_apart() -> None:
    """Rows found stale at one pass are deleted at the next, not before."""
    now = [0.0]
    table: dict[bytes, Any] = {}
    state = BatchState(table)
    context = StageContext(NO_NOISE, state, agenda=Agenda())
    runner = StageRunner(STAGES, lambda stage: context, agenda=context.agenda, clock=lambda: now[0])

    def feed(year: int, offset: int) -> None:
        c = built_claim(
            encounter_id=f"E{year}",
            procedures=[procedure("80053")],
            service_date=date(year, 3, 2),
            received_at=datetime(year, 3, 3, tzinfo=UTC),
            coverage=coverage(effective=date(2024, 1, 1)),
        )
        runner.process_many(
            ADJUDICATION,
            [Incoming(CLAIMS_SUBMITTED.name, 0, offset, MEMBER, CLAIM_CODEC.encode(c), 0)],
        )
        state.flush()

    def years() -> list[str]:
        return sorted(
            v["year"] for k, v in table.items() if member_of(k) == MEMBER and not is_member_row(k)
        )

    feed(2024, 0)
    feed(2026, 1)  # forgets 2024; the first pass is scheduled, nothing removed
    assert years().count("2024") == 2
    now[0] += 601
    feed(2026, 2)  # a pass: finds the 2024 rows stale
    assert years().count("2024") == 2
    now[0] += 601
    feed(2026, 3)  # the next pass removes them
    assert "2024" not in years()

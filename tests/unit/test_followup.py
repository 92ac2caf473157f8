"""Follow-ups in event time: unanswered claims and deadlines coming up, swept by business date."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from pipeline.kafka.codec import codec_for
from pipeline.runtime.runner import Incoming, StageRunner
from pipeline.runtime.topology import STAGE_BY_NAME, STAGES
from processors.adjudication.rules import adjudicate, new_member_state
from processors.contracts.topics import CLAIMS_REMITTANCE, CLAIMS_SUBMITTED
from processors.denials.followup import REMINDER_DAYS, close_item, remember_item, sweep_member
from processors.denials.rules import route_remittance
from processors.memberstate import GRACE_DAYS, MemberState, next_due
from processors.refdata import RefData, load_refdata
from processors.stage import Agenda, Stage, StageContext
from tests.builders import built_claim as claim
from tests.builders import procedure

REFDATA = load_refdata()
PPO = dataclasses.replace(REFDATA.payers["PPO-SIM"], denial_rates={})
SILENT = dataclasses.replace(PPO, denial_rates={"no_response": 0.999})
TIMELY = {"PPO-SIM": 90}
MRI = {"procedures": [procedure("99213"), procedure("72148")], "diagnoses": ["M5450"]}


def unanswered() -> tuple[dict[str, Any], MemberState]:
    """A claim the payer never answers, and the member state that remembers it."""
    c = claim()
    return c, adjudicate(c, SILENT, None, REFDATA, seed=1).member_state


class TestFollowUp:
    def test_no_follow_up_before_turnaround_and_grace(self) -> None:
        """Filed 2026-03-03, turnaround 10 days, grace 15: nothing due on 2026-03-27."""
        _, state = unanswered()
        due = date(2026, 3, 3) + timedelta(days=PPO.turnaround_days + GRACE_DAYS)
        assert next_due(state.row) == due
        assert sweep_member("PPO123456789", state.fork(), due - timedelta(days=1), TIMELY) == []

    def test_claim_status_inquiry_once_business_time_passes_the_due_date(self) -> None:
        """On the due date one FOLLOW_UP item; the next sweep makes no other."""
        c, state = unanswered()
        due = next_due(state.row)
        assert due is not None
        (item,) = sweep_member("PPO123456789", state, due, TIMELY)
        assert (item["kind"], item["action"], item["queue"]) == (
            "FOLLOW_UP",
            "claim_status_inquiry",
            "billing",
        )
        assert item["claim_id"] == c["claim_id"]
        assert item["created_at"] == datetime.combine(due, time(0), tzinfo=UTC)
        assert item["deadline"] == c["service_date_from"] + timedelta(days=90)
        assert sweep_member("PPO123456789", state, due + timedelta(days=30), TIMELY) == []
        assert next_due(state.row) is None


def open_item() -> dict[str, Any]:
    """An open authorization denial, appealable for 180 days."""
    c = claim(**MRI)
    remit = adjudicate(c, PPO, None, REFDATA).remittance
    item = route_remittance(
        remit, REFDATA, PPO, datetime.combine(remit["adjudicated_date"], time(0), tzinfo=UTC)
    )
    assert item is not None
    return item


class TestReminders:
    def test_reminder_comes_two_weeks_before_the_deadline(self) -> None:
        """An open item gets one REMINDER on its deadline minus 14 days."""
        item = open_item()
        state = new_member_state(b"K")
        remind_on = remember_item(state, item)
        assert remind_on == item["deadline"] - timedelta(days=REMINDER_DAYS)
        assert sweep_member("K", state.fork(), remind_on - timedelta(days=1), TIMELY) == []
        (reminder,) = sweep_member("K", state, remind_on, TIMELY)
        assert (reminder["kind"], reminder["related_rework_id"]) == ("REMINDER", item["rework_id"])
        assert reminder["deadline"] == item["deadline"]
        assert sweep_member("K", state, item["deadline"], TIMELY) == []

    def test_an_item_someone_acted_on_gets_no_reminder(self) -> None:
        """Closed by an action before the reminder date: nothing is due."""
        item = open_item()
        state = new_member_state(b"K")
        remember_item(state, item)
        assert close_item(state, item["rework_id"])
        assert next_due(state.row) is None
        assert sweep_member("K", state, item["deadline"], TIMELY) == []
        assert not close_item(state, item["rework_id"])

    def test_redelivered_item_keeps_what_the_state_knows(self) -> None:
        """Remembering the same item again does not reopen a closed one."""
        item = open_item()
        state = new_member_state(b"K")
        remember_item(state, item)
        close_item(state, item["rework_id"])
        assert remember_item(state, item) is None
        entry = state.item(item["rework_id"])
        assert entry is not None
        assert entry["closed"] is True
        assert next_due(state.row) is None


class TestAgenda:
    def test_members_come_due_by_partition_and_date(self) -> None:
        """pop_due returns the members due by the date, once."""
        agenda = Agenda()
        agenda.add(0, b"A", date(2026, 3, 1))
        agenda.add(0, b"B", date(2026, 4, 1))
        agenda.add(1, b"C", date(2026, 1, 1))
        agenda.add(0, b"A", date(2026, 5, 1))  # a later date does not push an earlier one back
        assert agenda.pop_due(0, date(2026, 3, 15)) == [b"A"]
        assert agenda.pop_due(0, date(2026, 3, 15)) == []
        assert agenda.pop_due(1, date(2026, 12, 31)) == [b"C"]


def runner(refdata: RefData, state: dict[bytes, Any]) -> StageRunner:
    """A stage runner with one shared state and agenda, as a worker has."""
    agenda = Agenda()
    stateful = StageContext(refdata, state, seed=1, agenda=agenda)
    plain = StageContext(refdata)

    def contexts(stage: Stage) -> StageContext:
        return stateful if stage.stateful else plain

    return StageRunner(STAGES, contexts, agenda=agenda, partitions=1)


def test_runner_sweeps_when_the_partitions_business_date_passes_the_due_date() -> None:
    """A silent payer's claim, then later claims in the partition: a FOLLOW_UP is published."""
    refdata = dataclasses.replace(REFDATA, payers={**REFDATA.payers, "PPO-SIM": SILENT})
    state: dict[bytes, Any] = {}
    run = runner(refdata, state)
    codec = codec_for(CLAIMS_SUBMITTED.value_schema)
    first = claim()
    later = claim(
        encounter_id="E2",
        service_date=date(2026, 4, 20),
        received_at=datetime(2026, 4, 21, 15, tzinfo=UTC),
    )
    adjudication = STAGE_BY_NAME["adjudication"]
    out = run.process_many(
        adjudication,
        [Incoming(CLAIMS_SUBMITTED.name, 0, 0, b"PPO123456789", codec.encode(first), 0)],
    )
    assert [o.topic for o in out] == []
    out = run.process_many(
        adjudication,
        [Incoming(CLAIMS_SUBMITTED.name, 0, 1, b"PPO123456789", codec.encode(later), 0)],
    )
    follow_ups = [
        codec_for("claims.ReworkItem").decode(o.value) for o in out if o.topic == "denials.rework"
    ]
    assert [(f["kind"], f["claim_id"]) for f in follow_ups] == [("FOLLOW_UP", first["claim_id"])]
    assert not any(o.topic == CLAIMS_REMITTANCE.name for o in out)


def test_a_restarted_runner_rebuilds_its_agenda_from_the_state_store() -> None:
    """A new runner over the same state finds the awaited claim and follows it up."""
    refdata = dataclasses.replace(REFDATA, payers={**REFDATA.payers, "PPO-SIM": SILENT})
    state: dict[bytes, Any] = {}
    codec = codec_for(CLAIMS_SUBMITTED.value_schema)
    adjudication = STAGE_BY_NAME["adjudication"]
    first = claim()
    runner(refdata, state).process_many(
        adjudication,
        [Incoming(CLAIMS_SUBMITTED.name, 0, 0, b"PPO123456789", codec.encode(first), 0)],
    )
    later = claim(
        encounter_id="E2",
        service_date=date(2026, 4, 20),
        received_at=datetime(2026, 4, 21, 15, tzinfo=UTC),
    )
    later["member_id"] = "PPO000000001"
    out = runner(refdata, state).process_many(
        adjudication,
        [Incoming(CLAIMS_SUBMITTED.name, 0, 1, b"PPO000000001", codec.encode(later), 0)],
    )
    kinds = [
        codec_for("claims.ReworkItem").decode(o.value)["kind"]
        for o in out
        if o.topic == "denials.rework"
    ]
    assert kinds == ["FOLLOW_UP"]


def test_adjudicating_another_claim_keeps_the_members_open_items() -> None:
    """The payer's update of the member state leaves the rework items the state holds."""
    item = open_item()
    state = adjudicate(claim(**MRI), PPO, None, REFDATA).member_state
    remember_item(state, item)
    after = adjudicate(
        claim(encounter_id="E9", procedures=[procedure("80053")]), PPO, state, REFDATA
    ).member_state
    assert after.item(item["rework_id"]) == state.item(item["rework_id"])
    assert after.due == state.due


def follow_ups(out: list[Any]) -> list[str]:
    """The kinds of the rework items among a batch's outputs."""
    return [
        codec_for("claims.ReworkItem").decode(o.value)["kind"]
        for o in out
        if o.topic == "denials.rework"
    ]


def test_a_follow_up_lost_before_delivery_is_made_again_and_once_delivered_never() -> None:
    """The state records a follow-up only once its batch is delivered; a crash before, again."""
    refdata = dataclasses.replace(REFDATA, payers={**REFDATA.payers, "PPO-SIM": SILENT})
    state: dict[bytes, Any] = {}
    codec = codec_for(CLAIMS_SUBMITTED.value_schema)
    adjudication = STAGE_BY_NAME["adjudication"]
    first = claim()
    later = claim(
        encounter_id="E2",
        service_date=date(2026, 4, 20),
        received_at=datetime(2026, 4, 21, 15, tzinfo=UTC),
    )
    later["member_id"] = "PPO000000001"
    runner(refdata, state).process_many(
        adjudication,
        [Incoming(CLAIMS_SUBMITTED.name, 0, 0, b"PPO123456789", codec.encode(first), 0)],
    )
    batch = [Incoming(CLAIMS_SUBMITTED.name, 0, 1, b"PPO000000001", codec.encode(later), 0)]

    crashed = runner(refdata, state)
    assert follow_ups(crashed.process_many(adjudication, batch)) == ["FOLLOW_UP"]
    # The worker dies before the batch is delivered: the next one makes the follow-up again.
    survivor = runner(refdata, state)
    assert follow_ups(survivor.process_many(adjudication, batch)) == ["FOLLOW_UP"]
    assert follow_ups(survivor.process_many(adjudication, batch)) == [], "not twice in flight"
    survivor.delivered(survivor.ticket - 1)
    assert follow_ups(runner(refdata, state).process_many(adjudication, batch)) == []


def test_a_worker_taking_a_partition_over_goes_on_from_its_business_date() -> None:
    """The partition's business date is kept: a new runner seeing only older records sweeps."""
    refdata = dataclasses.replace(REFDATA, payers={**REFDATA.payers, "PPO-SIM": SILENT})
    state: dict[bytes, Any] = {}
    codec = codec_for(CLAIMS_SUBMITTED.value_schema)
    adjudication = STAGE_BY_NAME["adjudication"]
    late = claim(
        encounter_id="E9",
        service_date=date(2026, 4, 20),
        received_at=datetime(2026, 4, 21, 15, tzinfo=UTC),
    )
    late["member_id"] = "PPO000000009"
    runner(refdata, state).process_many(
        adjudication,
        [Incoming(CLAIMS_SUBMITTED.name, 0, 0, b"PPO000000009", codec.encode(late), 0)],
    )
    # A claim filed 2026-03-03 (due for a status inquiry on 2026-03-28) reaches a new worker:
    # by the partition's own records that date has not come, by the partition's clock it has.
    out = runner(refdata, state).process_many(
        adjudication,
        [Incoming(CLAIMS_SUBMITTED.name, 0, 1, b"PPO123456789", codec.encode(claim()), 0)],
    )
    assert follow_ups(out) == ["FOLLOW_UP"]


def test_a_partition_given_back_is_swept_with_what_another_worker_remembered() -> None:
    """After a reassignment the runner reads its agenda again: another worker's item is due."""
    refdata = dataclasses.replace(REFDATA, payers={**REFDATA.payers, "PPO-SIM": SILENT})
    state: dict[bytes, Any] = {}
    codec = codec_for(CLAIMS_SUBMITTED.value_schema)
    adjudication = STAGE_BY_NAME["adjudication"]
    mine = runner(refdata, state)
    other = claim(encounter_id="E0")
    other["member_id"] = "PPO000000003"
    mine.process_many(
        adjudication,
        [Incoming(CLAIMS_SUBMITTED.name, 0, 0, b"PPO000000003", codec.encode(other), 0)],
    )
    # Meanwhile another worker had the partition and adjudicated this member's claim.
    runner(refdata, state).process_many(
        adjudication,
        [Incoming(CLAIMS_SUBMITTED.name, 0, 1, b"PPO123456789", codec.encode(claim()), 0)],
    )
    later = claim(
        encounter_id="E2",
        service_date=date(2026, 4, 20),
        received_at=datetime(2026, 4, 21, 15, tzinfo=UTC),
    )
    later["member_id"] = "PPO000000001"
    batch = [Incoming(CLAIMS_SUBMITTED.name, 0, 2, b"PPO000000001", codec.encode(later), 0)]
    mine.reset_partitions()
    kinds = follow_ups(mine.process_many(adjudication, batch))
    assert kinds.count("FOLLOW_UP") == 2, "the other worker's member is followed up too"

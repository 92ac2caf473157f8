"""The crash-injection harness's pure parts: input, kill plan, comparison, recovery figures."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

from pipeline.jobs.chaos import (
    Sample,
    TopicContents,
    chaos_input,
    compare_topic,
    differing_fields,
    identify,
    kill_plan,
    measure_recovery,
)
from pipeline.kafka.codec import codec_for
from processors.contracts.topics import CLAIMS_LIFECYCLE, CLAIMS_REMITTANCE, DEAD_LETTER


def contents(**copies: list[bytes]) -> TopicContents:
    """A topic whose records under each id have the given content digests, in order."""
    found = TopicContents()
    for rid, digests in copies.items():
        found.copies[rid] = Counter(digests)
        found.latest[rid] = digests[-1]
        found.records += len(digests)
    return found


class TestInput:
    def test_same_arguments_give_the_same_bytes_and_timestamps(self):
        """Both runs are fed byte-identical records with the same timestamps."""
        first = chaos_input(50, 3, 4, base_ms=1_000)
        assert first == chaos_input(50, 3, 4, base_ms=1_000)
        assert len(first) == 54
        assert [r.timestamp_ms for r in first] == list(range(1_000, 1_054))

    def test_malformed_records_are_spread_through_the_feed(self):
        """Bad records sit among the encounters, not all at the end."""
        records = chaos_input(100, 3, 4, base_ms=0)
        bad = [i for i, r in enumerate(records) if r.key.startswith(b"BAD")]
        assert len(bad) == 4
        assert bad[0] < 40


class TestKillPlan:
    def test_one_kill_per_segment_with_the_broker_in_the_middle(self):
        """Kills fall inside successive segments of the feed; the broker kill is the middle one."""
        plan = kill_plan(1000, 4, 2, broker_kill=True, seed=1)
        assert [k.kind for k in plan] == ["worker", "worker", "broker", "worker", "worker"]
        segment = 1000 / 6
        for j, kill in enumerate(plan):
            assert j * segment < kill.at < kill.segment_end <= (j + 1) * segment + 1
        assert {k.worker for k in plan if k.kind == "worker"} <= {0, 1}

    def test_the_seed_decides_the_plan(self):
        """The same seed gives the same plan; the plan depends on it."""
        assert kill_plan(1000, 5, 3, True, 9) == kill_plan(1000, 5, 3, True, 9)
        assert kill_plan(1000, 5, 3, True, 9) != kill_plan(1000, 5, 3, True, 10)

    def test_no_broker_kill_plans_only_workers(self):
        """Without a broker kill every kill is a worker's."""
        assert {k.kind for k in kill_plan(500, 3, 2, broker_kill=False, seed=2)} == {"worker"}


class TestCompare:
    def test_lost_extra_differing_and_duplicates_are_counted_apart(self):
        """A missing id is lost, a new one extra, a changed one differing; an identical second
        copy is a duplicate, not a difference."""
        reference = contents(a=[b"1"], b=[b"2"], c=[b"3"], d=[b"4"])
        chaos = contents(a=[b"1", b"1"], c=[b"3x"], d=[b"4"], e=[b"5"])
        report, differing = compare_topic(CLAIMS_REMITTANCE, reference, chaos)
        assert (report["lost"], report["extra"], report["differing"]) == (1, 1, 1)
        assert report["duplicate_copies"] == 1
        assert report["examples"]["lost"] == ["b"]
        assert report["examples"]["extra"] == ["e"]
        assert differing == {"c"}

    def test_a_second_copy_that_differs_is_a_difference(self):
        """A decision made twice with different answers is not a harmless redelivery."""
        report, _ = compare_topic(CLAIMS_REMITTANCE, contents(a=[b"1"]), contents(a=[b"1", b"2"]))
        assert report["differing"] == 1

    def test_the_lifecycle_compares_each_claims_latest_status(self):
        """claims.lifecycle is compacted: only the latest record per claim matters."""
        reference = contents(c1=[b"coded", b"paid"])
        same_end = contents(c1=[b"coded", b"coded", b"paid"])
        regressed = contents(c1=[b"coded", b"paid", b"coded"])
        assert compare_topic(CLAIMS_LIFECYCLE, reference, same_end)[0]["differing"] == 0
        assert compare_topic(CLAIMS_LIFECYCLE, reference, same_end)[0]["duplicate_copies"] == 1
        assert compare_topic(CLAIMS_LIFECYCLE, reference, regressed)[0]["differing"] == 1

    def test_dead_letters_are_compared_without_the_runs_prefix(self):
        """Two runs on different prefixes give the same dead letter the same id and content."""
        record = {
            "stage": "coding",
            "error": "empty value",
            "error_type": "DECODE",
            "source_partition": 0,
            "source_offset": 3,
            "key": b"BAD-1",
            "value": b"",
            "record_id": None,
            "value_size": 0,
            "failed_at": datetime(2026, 1, 5, tzinfo=UTC),
        }
        codec = codec_for(DEAD_LETTER.value_schema)
        ref = {**record, "source_topic": "p1.ehr.encounters"}
        run = {**record, "source_topic": "p2.ehr.encounters"}
        ref_id, ref_normal = identify(DEAD_LETTER, b"BAD-1", codec.encode(ref), ref, "p1.")
        run_id, run_normal = identify(DEAD_LETTER, b"BAD-1", codec.encode(run), run, "p2.")
        assert ref_id == run_id
        assert ref_id.startswith("coding|ehr.encounters|key:")
        assert ref_normal == run_normal

    def test_differing_fields_name_what_changed(self):
        """The report names the fields that differ, not their values."""
        reference = [{"paid_cents": 100, "claim_id": "C1"}]
        chaos = [{"paid_cents": 100, "claim_id": "C1"}, {"paid_cents": 80, "claim_id": "C1"}]
        assert differing_fields(reference, chaos, latest_only=False) == ["paid_cents"]


def sample(
    at: float,
    group: str = "Stable",
    members: str = "ab",
    progress: tuple[int, ...] = (0, 0),
    lag: tuple[int, ...] = (5, 5),
    up: bool = True,
) -> Sample:
    """A sampler observation."""
    return Sample(at, up, group, frozenset(members), progress, lag, sum(progress))


class TestRecovery:
    def test_a_worker_kill_recovers_once_the_new_group_is_stable_and_every_partition_moves(self):
        """Stable with a new membership, then output on both partitions; the stall spans the
        gap in each partition's output."""
        samples = [
            sample(9.5, progress=(10, 10)),
            sample(10.0, progress=(11, 11)),  # the kill is at 10.0
            sample(11.0, progress=(11, 12)),
            sample(14.0, group="PreparingRebalance", members="ac", progress=(11, 12)),
            sample(20.0, members="ac", progress=(11, 12)),  # stable again
            sample(20.5, members="ac", progress=(12, 12)),
            sample(21.0, members="ac", progress=(13, 14)),  # both flow
        ]
        figures = measure_recovery(samples, 10.0, 2, frozenset("ab"), after=10.0)
        assert figures is not None
        assert figures["group_stable_s"] == 10.0
        assert figures["flowing_s"] == 11.0
        assert figures["partition_stall_s"] == {"0": 10.5, "1": 10.0}

    def test_not_recovered_while_the_old_membership_stands(self):
        """Stable with the members of before the kill is not a recovery from it."""
        samples = [sample(10.0), sample(11.0, progress=(1, 1))]
        assert measure_recovery(samples, 10.0, 2, frozenset("ab"), after=10.0) is None

    def test_a_partition_with_nothing_to_do_does_not_hold_recovery_back(self):
        """A partition without pending input counts as flowing."""
        samples = [
            sample(10.0, members="ac", lag=(0, 3)),
            sample(11.0, members="ac", progress=(0, 1), lag=(0, 2)),
        ]
        figures = measure_recovery(samples, 9.0, 2, frozenset("ab"), after=9.0)
        assert figures is not None
        assert figures["flowing_s"] == 2.0

"""faust's offset bookkeeping, corrected: a committed offset is one every record before was done."""

from __future__ import annotations

import asyncio

import faust
import pytest
from faust.types import TP, ConsumerMessage

from pipeline.runtime import faust_fixes

TOPIC = TP("claims.submitted", 0)


@pytest.fixture
def consumer() -> faust.types.transports.ConsumerT:
    """faust's consumer object, with the corrections installed (not connected)."""
    faust_fixes.apply()
    app = faust.App("offsets-test", broker="kafka://127.0.0.1:1", env={})
    app.topics._acking_topics.add(TOPIC.topic)  # type: ignore[attr-defined]  # as an agent would
    return app.consumer


def message(offset: int, *, tracked: bool = True) -> ConsumerMessage:
    """A record at *offset*; *tracked* when a stream has taken it up."""
    msg = ConsumerMessage(TOPIC.topic, TOPIC.partition, offset, 0.0, 0, None, b"k", b"v", None)
    msg.tracked = tracked
    return msg


def take(consumer: faust.types.transports.ConsumerT, msg: ConsumerMessage) -> ConsumerMessage:
    """Track *msg* as a stream does when it takes it up."""
    consumer._unacked_messages.add(msg)  # type: ignore[attr-defined]
    return msg


def test_the_record_at_the_committed_offset_unacknowledged_holds_the_commit(consumer) -> None:
    """Committed 2585, 2586-2589 done, 2585 still in flight: nothing to commit (faust #606)."""
    consumer._committed_offset[TOPIC] = 2585
    take(consumer, message(2585))
    for offset in range(2586, 2590):
        assert consumer.ack(take(consumer, message(offset)))
    assert consumer._new_offset(TOPIC) is None


def test_the_commit_follows_once_the_head_is_acknowledged(consumer) -> None:
    """When 2585 is done too, the commit covers 2585-2589."""
    consumer._committed_offset[TOPIC] = 2585
    head = take(consumer, message(2585))
    for offset in range(2586, 2590):
        consumer.ack(take(consumer, message(offset)))
    consumer.ack(head)
    assert consumer._new_offset(TOPIC) == 2590


def test_no_commit_passes_a_record_still_in_flight(consumer) -> None:
    """With no committed offset yet, 10 done, 11 in flight, 12-13 done: commit up to 11."""
    for offset in (10, 12, 13):
        consumer.ack(take(consumer, message(offset)))
    take(consumer, message(11))
    assert consumer._new_offset(TOPIC) == 11


def test_a_record_no_stream_took_up_is_not_acknowledged(consumer) -> None:
    """A record skipped during a rebalance (never tracked) does not count as done."""
    consumer._committed_offset[TOPIC] = 40
    skipped = message(40, tracked=False)
    assert not consumer.ack(skipped)
    assert not skipped.acked
    assert consumer._new_offset(TOPIC) is None


def test_applying_twice_wraps_once(consumer) -> None:
    """apply() is idempotent: acknowledging still works after a second call."""
    faust_fixes.apply()
    consumer._committed_offset[TOPIC] = 5
    assert consumer.ack(take(consumer, message(5)))
    assert consumer._new_offset(TOPIC) == 6


def test_a_partition_read_past_a_skipped_record_is_sought_back_to_it(consumer) -> None:
    """Skipped at 438 with 439-441 read: the partition is read again from 438, once."""
    sought: list[tuple[TP, int]] = []

    async def seek(tp: TP, offset: int) -> None:
        sought.append((tp, offset))

    consumer.assignment = lambda: {TOPIC}
    consumer.seek = seek
    consumer._read_offset[TOPIC] = 441

    async def skip_then_wait() -> None:
        consumer.ack(message(439, tracked=False))
        consumer.ack(message(438, tracked=False))
        await asyncio.sleep(faust_fixes.RESEEK_DELAY_S * 3)

    asyncio.run(skip_then_wait())
    assert sought == [(TOPIC, 438)]


def test_a_partition_not_yet_read_to_the_skipped_record_is_left_alone(consumer) -> None:
    """After a seek back to the committed offset 400, a record skipped at 438 comes again."""
    sought: list[tuple[TP, int]] = []

    async def seek(tp: TP, offset: int) -> None:
        sought.append((tp, offset))

    consumer.assignment = lambda: {TOPIC}
    consumer.seek = seek
    consumer._read_offset[TOPIC] = 400

    async def skip_then_wait() -> None:
        consumer.ack(message(438, tracked=False))
        await asyncio.sleep(faust_fixes.RESEEK_DELAY_S * 3)

    asyncio.run(skip_then_wait())
    assert sought == []


def test_a_commit_never_passes_a_record_whose_outputs_were_not_delivered(consumer) -> None:
    """380-532 acknowledged, 387-532 delivered: nothing commits until 380-386 are delivered."""
    record = faust_fixes.delivered(consumer.app)
    record.topics.add(TOPIC.topic)
    consumer._committed_offset[TOPIC] = 380
    for offset in range(380, 533):
        consumer.ack(take(consumer, message(offset)))
    record.record(consumer, {TOPIC: list(range(387, 533))})
    assert consumer._new_offset(TOPIC) is None
    record.record(consumer, {TOPIC: list(range(380, 387))})
    assert consumer._new_offset(TOPIC) == 533


def test_after_a_revocation_delivery_counts_from_the_committed_offset(consumer) -> None:
    """Forgotten on revocation, the record starts again at the new committed offset."""
    record = faust_fixes.delivered(consumer.app)
    record.topics.add(TOPIC.topic)
    consumer._committed_offset[TOPIC] = 10
    record.record(consumer, {TOPIC: [10, 11]})
    record.forget([TOPIC])
    consumer._committed_offset[TOPIC] = 40
    record.record(consumer, {TOPIC: [40, 41, 42]})
    assert record.limit(TOPIC) == 43


def test_a_partition_left_out_of_fetching_is_put_back(consumer, monkeypatch) -> None:
    """Taken out while its stream buffer was full and never signalled back: fetched again.
    A partition paused on purpose (a table recovery) is left alone."""
    monkeypatch.setattr(consumer, "assignment", lambda: {TOPIC})
    consumer._get_active_partitions()
    consumer.on_buffer_full(TOPIC)
    assert TOPIC not in consumer._get_active_partitions()
    assert faust_fixes.fetch_again(consumer, TOPIC)
    assert TOPIC in consumer._get_active_partitions()
    assert not faust_fixes.fetch_again(consumer, TOPIC)
    consumer.pause_partitions([TOPIC])
    assert not faust_fixes.fetch_again(consumer, TOPIC)


def test_a_batch_past_records_never_handed_over_is_not_processed_out_of_order(consumer) -> None:
    """Delivered up to 396; a batch brings 396, 399-401 (397-398 skipped): only 396 now, the
    rest once 397-398 come; 390-395 again (read twice) are left out."""
    record = faust_fixes.delivered(consumer.app)
    record.topics.add(TOPIC.topic)
    consumer._committed_offset[TOPIC] = 390
    record.record(consumer, {TOPIC: list(range(390, 396))})
    assert record.in_order(consumer, {TOPIC: [393, 394, 395, 396, 399, 400, 401]}) == {
        TOPIC: (396, 397)
    }
    assert record.in_order(consumer, {TOPIC: [396, 397, 398, 399]}) == {TOPIC: (396, 400)}


def test_before_any_delivery_the_run_starts_at_the_committed_offset(consumer) -> None:
    consumer._committed_offset[TOPIC] = 50
    assert faust_fixes.delivered(consumer.app).in_order(consumer, {TOPIC: [52, 53]}) == {
        TOPIC: (50, 50)
    }

"""Corrections to faust-streaming's offset bookkeeping, so a committed offset is processed.

faust-streaming 0.15.3 can commit an offset past a record that was never
processed, and a worker killed after that commit skips the record for good
(the crash-injection harness, ``claims chaos``, lost one encounter in two runs
of five this way, always around a rebalance):

1. A stream that receives a record while flow control is suspended (during a
   rebalance or a table recovery) or from an earlier group generation skips it
   *and acknowledges it*. Usually the record is fetched again after the seek
   to the committed offset, but its acknowledgement already counts, so the next
   commit can go past it before it is processed; and when the seek came before
   the skip, the record is never fetched again. Here a record no stream took up
   (never tracked) is not acknowledged, and its partition is sought back to it
   if the consumer has read past it.
2. ``Consumer._new_offset`` treats a single missing offset at the head of the
   acknowledged run as a gap it may skip (``min(acked) - committed > 1``), so
   a record still in flight at the committed offset is committed over
   (faust-streaming issue #606, fix proposed in pull request #707). Here the
   commit never passes the committed offset while the record there is not
   acknowledged, nor any record a stream is still processing.

3. Around a rebalance faust's acknowledgements can run ahead of processing
   (the crash-injection harness saw a commit pass 153 records, seven of them
   never processed). So a commit also never passes the first record whose
   outputs the agents have not reported delivered (:class:`Delivered`).

:func:`apply` installs these on faust's consumer class; it is idempotent.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, cast

from faust.transport.consumer import Consumer
from faust.types.tuples import ack_lock
from faust.utils.functional import consecutive_numbers

_APPLIED = "_claims_offset_fixes"
log = logging.getLogger(__name__)


RESEEK_DELAY_S = 0.2


def _ack(original: Any) -> Any:
    def ack(self: Consumer, message: Any) -> bool:
        """Acknowledge *message*, unless no stream took it up: then it is read again."""
        with ack_lock:
            if not message.tracked:
                _read_again(self, message.tp, message.offset)
                return False
        return bool(original(self, message))

    return ack


def _read_again(consumer: Consumer, tp: Any, offset: int) -> None:
    """Have *tp* read again from *offset*, the lowest record a stream skipped, once idle."""
    floors: dict[Any, int] = consumer.__dict__.setdefault("_claims_skipped", {})
    floors[tp] = min(offset, floors.get(tp, offset))
    if consumer.__dict__.get("_claims_reseek") is None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # not consuming: nothing to seek
            return
        consumer.__dict__["_claims_reseek"] = loop.create_task(_reseek(consumer))


async def _reseek(consumer: Consumer) -> None:
    """Seek back each partition whose skipped records the consumer has already read past.

    Seeking back to the lowest skipped record never passes a record not yet
    read; what is read twice is processed twice (at-least-once), never lost.
    """
    try:
        await asyncio.sleep(RESEEK_DELAY_S)
        floors: dict[Any, int] = consumer.__dict__.pop("_claims_skipped", {})
        assigned = consumer.assignment()
        for tp, offset in floors.items():
            read = consumer._read_offset.get(tp)
            if tp in assigned and read is not None and read >= offset:
                log.warning(
                    "reading %s[%d] again from %d: a stream skipped it during a rebalance",
                    tp.topic,
                    tp.partition,
                    offset,
                )
                await consumer.seek(tp, offset)
    except Exception:  # the record is read again at the next rebalance or restart
        log.warning("could not seek back to a skipped record", exc_info=True)
    finally:
        consumer.__dict__["_claims_reseek"] = None


def _in_flight_floor(consumer: Consumer, tp: Any) -> int | None:
    """The lowest offset of *tp* a stream has taken up and not acknowledged yet."""
    offsets = [m.offset for m in list(consumer._unacked_messages) if m.tp == tp and not m.acked]
    return min(offsets, default=None)


class Delivered:
    """Per partition, the offset before which every record's outputs are on the broker.

    The agents report each batch once it is delivered; a commit never goes
    past the first record not delivered yet, whatever faust's acknowledgements
    say (they can run ahead of processing around a rebalance).
    """

    def __init__(self) -> None:
        self.topics: set[str] = set()
        self.next: dict[Any, int] = {}
        self.ahead: dict[Any, set[int]] = {}

    def record(self, consumer: Any, offsets: dict[Any, list[int]]) -> None:
        """*offsets* (per partition) were processed and their outputs delivered."""
        for tp, done in offsets.items():
            expected = self.next.get(tp)
            if expected is None:
                committed = consumer._committed_offset.get(tp)
                expected = committed if committed is not None else min(done)
            ahead = self.ahead.setdefault(tp, set())
            ahead.update(o for o in done if o >= expected)
            while expected in ahead:
                ahead.discard(expected)
                expected += 1
            self.next[tp] = expected

    def in_order(self, consumer: Any, offsets: dict[Any, list[int]]) -> dict[Any, tuple[int, int]]:
        """Which of *offsets* (per partition, as a batch brought them) to process now.

        Per partition: the run that starts at the next offset to deliver, as
        ``(first, end)``. A record before it was delivered already (read again);
        a record past a gap comes after records faust never handed over (skipped
        around a rebalance), so processing it now would decide a member's claims
        out of order: the partition is read again from the gap instead. The
        next offset is the committed one until a batch is delivered.
        """
        runs: dict[Any, tuple[int, int]] = {}
        for tp, seen in offsets.items():
            expected = self.next.get(tp)
            if expected is None:
                committed = consumer._committed_offset.get(tp)
                expected = committed if committed is not None else min(seen)
            end = expected
            for offset in sorted(seen):
                if offset == end:
                    end += 1
            runs[tp] = (expected, end)
        return runs

    def forget(self, tps: Any) -> None:
        """Start again for *tps* (revoked: a new assignment starts at the committed offset)."""
        for tp in tps:
            self.next.pop(tp, None)
            self.ahead.pop(tp, None)

    def limit(self, tp: Any) -> int | None:
        """The highest offset a commit of *tp* may name; -1 when nothing was delivered yet."""
        if tp.topic not in self.topics:
            return None
        return self.next.get(tp, -1)


def delivered(app: Any) -> Delivered:
    """The delivery record of *app*'s agents (kept on the app, not its consumer).

    Naming ``app.consumer`` before the app runs would build the consumer, and its
    thread, on whatever event loop is current then rather than the one the app
    starts on.
    """
    found = app.__dict__.get("_claims_delivered")
    if found is None:
        found = app.__dict__["_claims_delivered"] = Delivered()
    return cast(Delivered, found)


def new_offset(self: Consumer, tp: Any) -> int | None:
    """The offset to commit for *tp*: one past the acknowledged run that starts at the head."""
    acked = self._acked[tp]
    if not acked:
        return None
    gap_for_tp = self._gap[tp]
    if gap_for_tp:
        # Offsets a compacted or transactional topic never delivers count as acknowledged.
        max_offset = max(acked)
        candidates = sorted(gap_for_tp.overlap(0, max_offset), key=lambda x: x.begin)
        if candidates:
            filled: list[int] = []
            for entry in candidates:
                filled.extend(range(entry.begin, entry.end))
            acked.extend(filled)
            gap_for_tp.chop(0, max(filled[-1], max_offset + 1))
    acked.sort()
    committed = self._committed_offset[tp]
    if committed is not None and acked[0] > committed:
        return None  # the record at the committed offset is not acknowledged yet
    batch = next(consecutive_numbers(acked))
    floor = _in_flight_floor(self, tp)
    limit = delivered(self.app).limit(tp)
    if limit is not None:
        floor = limit if floor is None else min(floor, limit)
    if floor is not None and batch[-1] >= floor:
        batch = [offset for offset in batch if offset < floor]
        if not batch:
            return None
    acked[: len(batch)] = []
    self._acked_index[tp].difference_update(batch)
    return int(batch[-1]) + 1


def _logged_pause(original: Any) -> Any:
    def on_buffer_full(self: Consumer, tp: Any) -> None:
        before = tp in self._buffered_partitions
        original(self, tp)
        if not before and tp in self._buffered_partitions:
            log.info("not fetching %s[%d] until its stream buffer drains", tp.topic, tp.partition)

    return on_buffer_full


def _logged_resume(original: Any) -> Any:
    def on_buffer_drop(self: Consumer, tp: Any) -> None:
        before = tp in self._buffered_partitions
        original(self, tp)
        if before and tp not in self._buffered_partitions:
            log.info("fetching %s[%d] again: its stream buffer drained", tp.topic, tp.partition)

    return on_buffer_drop


def fetch_again(consumer: Any, tp: Any) -> bool:
    """Put *tp* back among the partitions fetched if faust left it out; True if it had.

    A partition taken out while its stream buffer was full comes back only when
    the buffer signals it drained; one paused on purpose (a table recovery) is
    left alone.
    """
    if tp in consumer._paused_partitions or tp not in consumer.assignment():
        return False
    active = consumer._get_active_partitions()
    if tp in active:
        return False
    consumer._buffered_partitions.discard(tp)
    active.add(tp)
    return True


def apply() -> None:
    """Install the corrections on faust's consumer class (once per process)."""
    if getattr(Consumer, _APPLIED, False):
        return
    Consumer.ack = _ack(Consumer.ack)  # type: ignore[method-assign]
    Consumer._new_offset = new_offset  # type: ignore[method-assign]
    Consumer.on_buffer_full = _logged_pause(Consumer.on_buffer_full)  # type: ignore[method-assign]
    Consumer.on_buffer_drop = _logged_resume(Consumer.on_buffer_drop)  # type: ignore[method-assign]
    setattr(Consumer, _APPLIED, True)

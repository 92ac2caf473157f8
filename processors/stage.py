"""What every stage is: an input topic and a pure handler from one record to outputs.

A handler never touches Kafka, the clock or the environment. It gets the
record's key and decoded value plus a :class:`StageContext` (reference data and,
for stateful stages, a key-value store) and returns the records to publish.
The runtime in ``pipeline.runtime.runner`` decodes, calls it, encodes and sends, and
sends anything that fails to the dead-letter topic; the dry run
(``pipeline.runtime.dryrun``) calls it the same way, with no broker.

A stage declares what it may publish (:attr:`Stage.outputs`) and any
:class:`Sweep` it needs, so the runner needs to know no stage by name. Bad data
is refused by raising :class:`Rejected`; :func:`failure_reason` says what
becomes of any exception, for the runner and the dry run alike.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any, cast

from processors.contracts.records import ClaimStatus
from processors.contracts.topics import CLAIMS_LIFECYCLE, TopicSpec
from processors.contracts.vocab import ErrorType, LifecycleStatus
from processors.memberstate import MemberState
from processors.refdata import RefData

Record = dict[str, Any]


@dataclass(frozen=True)
class Output:
    """One record a stage publishes."""

    topic: TopicSpec
    key: bytes
    record: Record  # one of processors.contracts.records, as the topic's schema says


class Agenda:
    """Which members have something due on which business day, by partition.

    Handlers add to it (:meth:`StageContext.remind`); the runtime asks it, after
    each batch, for the members due by the partition's business date and sweeps
    them. It is an index of what the member states hold, so a worker rebuilds it
    from its state store after a restart.
    """

    def __init__(self) -> None:
        self.due: dict[int, dict[bytes, date]] = {}  # each member's earliest due date
        # Per partition, (date, member) in date order; entries the dict no longer holds
        # with that date are stale and skipped, so a sweep only looks at what is due.
        self._heaps: dict[int, list[tuple[date, bytes]]] = {}
        self.loaded: set[int] = set()

    def add(self, partition: int, key: bytes, when: date) -> None:
        """Remember that *key* has something due on *when*."""
        members = self.due.setdefault(partition, {})
        if key not in members or when < members[key]:
            members[key] = when
            heapq.heappush(self._heaps.setdefault(partition, []), (when, key))

    def clear(self) -> None:
        """Forget everything (it is read again from the state store)."""
        self.due.clear()
        self._heaps.clear()
        self.loaded.clear()

    def pop_due(self, partition: int, today: date) -> list[bytes]:
        """Members of *partition* with something due by *today*, forgotten until re-added."""
        members = self.due.get(partition, {})
        heap = self._heaps.get(partition, [])
        found = []
        while heap and heap[0][0] <= today:
            when, key = heapq.heappop(heap)
            if members.get(key) == when:
                del members[key]
                found.append(key)
        return sorted(found)


@dataclass
class StageContext:
    """What a handler may use besides its input: reference data, its state store, the seed.

    *seed* fixes the payer simulator's noise draws (hash of seed, claim id, payer);
    *max_auto_resubmissions* caps the automatic corrections of one encounter's claim.
    """

    refdata: RefData
    state: MutableMapping[bytes, Any] = field(default_factory=dict)
    seed: int = 0
    max_auto_resubmissions: int = 2
    agenda: Agenda | None = None
    partition: int = -1

    def remind(self, key: bytes, when: date) -> None:
        """Ask for this member to be swept when business time reaches *when*."""
        if self.agenda is not None and self.partition >= 0:
            self.agenda.add(self.partition, key, when)

    def remind_due(self, key: bytes, state: MemberState) -> None:
        """Ask for this member to be swept when its next follow-up or reminder falls due."""
        due = state.next_due()
        if due is not None:
            self.remind(key, due)


Handler = Callable[[bytes, Record, StageContext], list[Output]]


class Rejected(ValueError):
    """A record a stage refuses because of its data; it is dead-lettered with *error_type*.

    Handlers raise it (or a subclass) for input no rule can fix; the message says
    what is wrong and what to do, and becomes the dead letter's reason.
    """

    def __init__(self, message: str, error_type: ErrorType = ErrorType.VALIDATION) -> None:
        super().__init__(message)
        self.error_type = error_type


class UndeclaredOutput(RuntimeError):
    """A handler returned a record for a topic its stage does not declare."""


def failure_reason(exc: Exception) -> tuple[str, ErrorType]:
    """The dead letter's reason and error type for an exception a handler raised."""
    if isinstance(exc, Rejected):
        return str(exc), exc.error_type
    if isinstance(exc, ValueError):
        return str(exc), ErrorType.VALIDATION
    if isinstance(exc, KeyError | TypeError | AttributeError):
        return (
            f"{type(exc).__name__}: {exc} (a required field is missing or has the wrong type)"
        ), ErrorType.VALIDATION
    return f"{type(exc).__name__}: {exc} (the stage failed on this record)", ErrorType.INTERNAL


@dataclass(frozen=True)
class Sweep:
    """Records a stage makes because business time passed, not in answer to a record.

    After each batch the runner asks, for every member due by the partition's
    business date, :attr:`due` for the records to publish on :attr:`output`. It
    calls them on a copy of the member's state and notes which due tokens the
    copy gave up; once what it published is delivered, :attr:`made` records them
    in the real state (a worker that dies before makes them again).
    """

    output: TopicSpec
    due: Callable[[str, MemberState, date, StageContext], list[Record]]
    made: Callable[[MemberState, list[str]], None]


@dataclass(frozen=True)
class Stage:
    """A pipeline stage: its name, the topic it reads, its handler and what it publishes."""

    name: str
    input: TopicSpec
    handle: Handler
    outputs: tuple[TopicSpec, ...]
    # Stateful stages share the member state (a faust table on a worker).
    stateful: bool = False
    # Read from Kafka in the fused topology too: its input also comes from outside (new
    # encounters, people's actions), not only from the stage before it.
    entry: bool = False
    # For an entry stage: which records an earlier stage makes for it are handled at
    # once, in the same process and order, rather than read back from the topic.
    at_once: Callable[[bytes, Record], bool] | None = None
    sweep: Sweep | None = None
    _declared: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_declared", frozenset(spec.name for spec in self.outputs))

    def run(self, key: bytes, record: Record, context: StageContext) -> list[Output]:
        """Call the handler; an output to a topic not in :attr:`outputs` is a fault."""
        outputs = self.handle(key, record, context)
        for out in outputs:
            if out.topic.name not in self._declared:
                raise UndeclaredOutput(
                    f"stage {self.name} returned a record for {out.topic.name}, "
                    f"which it does not declare among its outputs"
                )
        return outputs


def lifecycle(
    claim_id: str,
    encounter_id: str,
    status: LifecycleStatus,
    stage: str,
    at: Any,
    *,
    charge: int = 0,
    paid: int = 0,
    patient: int = 0,
    payer_id: str | None = None,
    detail: str | None = None,
) -> Output:
    """The claims.lifecycle record a stage writes when it changes a claim's status."""
    record: ClaimStatus = {
        "claim_id": claim_id,
        "encounter_id": encounter_id,
        "status": status,
        "stage": stage,
        "at": at,
        "charge_cents": charge,
        "paid_cents": paid,
        "patient_responsibility_cents": patient,
        "payer_id": payer_id,
        "detail": detail,
        "history": [status],
    }
    return Output(CLAIMS_LIFECYCLE, claim_id.encode(), cast(Record, record))

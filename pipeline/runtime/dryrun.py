"""Run the pipeline's stage functions in one process, with no broker.

The same pure handlers the workers run, chained in memory: each output whose
topic is a stage's input goes to that stage at once. The adjudication stage's
member accumulators live in a dict here instead of a faust table. What comes
out is every record each stage would have published, in order, so a dry run
and a run on Kafka give the same records for the same feed and seed.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from pipeline.runtime.topology import STAGE_BY_INPUT, STAGES
from processors.contracts.topics import EHR_ENCOUNTERS
from processors.refdata import RefData
from processors.stage import Output, Record, Stage, StageContext, failure_reason


@dataclass(frozen=True)
class Failure:
    """A record a stage could not handle: it would have gone to the dead-letter topic.

    *error* and *error_type* are what its dead letter would say
    (:func:`processors.stage.failure_reason`, as the runner gives them).
    """

    stage: str
    key: bytes
    record: Record
    error: str
    error_type: str


class InProcessPipeline:
    """The four stages chained in memory, with their state kept between calls."""

    def __init__(self, refdata: RefData, seed: int = 0, max_auto_resubmissions: int = 2) -> None:
        self.state: dict[bytes, Any] = {}
        self._contexts = {
            stage.name: StageContext(
                refdata, self.state if stage.stateful else {}, seed, max_auto_resubmissions
            )
            for stage in STAGES
        }

    def run(
        self, key: bytes | str, event: Record, stage: Stage | None = None
    ) -> Iterator[Output | Failure]:
        """Every record the stages publish for one encounter event, in order.

        *stage* starts elsewhere than at the encounter: a claim at adjudication,
        an action at the rework stage.
        """
        if isinstance(key, str):
            key = key.encode()
        first = stage or STAGE_BY_INPUT[EHR_ENCOUNTERS.name]
        queue: list[tuple[Stage, bytes, Record]] = [(first, key, event)]
        while queue:
            stage, record_key, record = queue.pop(0)
            try:
                outputs = stage.run(record_key, record, self._contexts[stage.name])
            except Exception as exc:  # any failure is the record's dead letter
                reason, error_type = failure_reason(exc)
                yield Failure(stage.name, record_key, record, reason, error_type)
                continue
            for out in outputs:
                yield out
                following = STAGE_BY_INPUT.get(out.topic.name)
                if following is not None:
                    queue.append((following, out.key, out.record))

    def run_all(self, events: Iterable[tuple[bytes | str, Record]]) -> Iterator[Output | Failure]:
        """:meth:`run` over a whole feed."""
        for key, event in events:
            yield from self.run(key, event)

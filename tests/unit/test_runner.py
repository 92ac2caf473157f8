"""The stage runner: every record ends in its outputs or one dead letter, never in silence."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Any

import pytest

from pipeline.kafka.codec import codec_for
from pipeline.runtime.dryrun import Failure, InProcessPipeline
from pipeline.runtime.runner import BatchState, Incoming, Outgoing, StageRunner
from pipeline.runtime.topology import STAGE_BY_NAME, STAGES
from processors.contracts.topics import (
    CLAIMS_REMITTANCE,
    CLAIMS_SUBMITTED,
    DEAD_LETTER,
    EHR_ENCOUNTERS,
    REWORK_ACTIONS,
)
from processors.refdata import load_refdata
from processors.stage import Output, Stage, StageContext
from tests.builders import built_claim, encounter, procedure

REFDATA = load_refdata()
EVENTS = codec_for(EHR_ENCOUNTERS.value_schema)
LETTERS = codec_for(DEAD_LETTER.value_schema)
CLAIMS = codec_for(CLAIMS_SUBMITTED.value_schema)
REMITS = codec_for(CLAIMS_REMITTANCE.value_schema)
CODING = STAGE_BY_NAME["coding"]


def _no_procedures() -> tuple[Stage, dict[str, Any], str, str]:
    return CODING, encounter(encounter_id="ENC-X", procedures=[]), "VALIDATION", "procedures"


def _unknown_payer() -> tuple[Stage, dict[str, Any], str, str]:
    claim = built_claim(encounter_id="ENC-P")
    claim["payer_id"] = "NOPAYER"
    return STAGE_BY_NAME["adjudication"], claim, "VALIDATION", "has no profile"


def _resubmit_without_claim() -> tuple[Stage, dict[str, Any], str, str]:
    action: dict[str, Any] = {
        "action_id": "ACT-1",
        "rework_id": "RW-1",
        "encounter_id": "ENC-R",
        "member_key": "PPO123456789",
        "changes": [],
        "claim_id": None,
        "action": "RESUBMIT",
        "actor": "auto",
        "note": None,
        "at": datetime(2026, 3, 2, tzinfo=UTC),
        "claim": None,
    }
    return STAGE_BY_NAME["rework"], action, "VALIDATION", "without the corrected claim"


BAD_RECORDS = {
    "encounter without services": _no_procedures,
    "claim for a payer without a profile": _unknown_payer,
    "resubmission without its claim": _resubmit_without_claim,
}


def runner(**options: Any) -> StageRunner:
    """A runner with plain contexts (no broker, no faust)."""
    context = StageContext(REFDATA, BatchState({}))
    return StageRunner(STAGES, lambda stage: context, **options)


def incoming(event: dict[str, Any], offset: int, key: bytes | None = b"PPO123456789") -> Incoming:
    """*event* as read from ehr.encounters at *offset*."""
    return Incoming(EHR_ENCOUNTERS.name, 0, offset, key, EVENTS.encode(event), 1_760_000_000_000)


def letters(out: list[Outgoing]) -> list[dict[str, Any]]:
    """The dead letters among *out*, decoded."""
    return [LETTERS.decode(o.value) for o in out if o.topic == DEAD_LETTER.name]


def huge_encounter() -> dict[str, Any]:
    """One encounter with 8,000 lines of a code the practice does not bill (a 1.5 MB hold)."""
    return encounter(encounter_id="ENC-HUGE", procedures=[procedure("0000T") for _ in range(8000)])


class TestOversize:
    def test_an_output_over_the_limit_dead_letters_its_input_and_the_batch_goes_on(self) -> None:
        """The 8,000-line encounter among 400 good ones: one dead letter, 400 coded, none lost."""
        good = [encounter(encounter_id=f"ENC-{i}", event_id=f"EV-{i}") for i in range(400)]
        batch = [incoming(e, i) for i, e in enumerate(good[:200])]
        batch.append(incoming(huge_encounter(), 200))
        batch += [incoming(e, 201 + i) for i, e in enumerate(good[200:])]
        run = runner()
        out = run.process_many(CODING, batch)
        (letter,) = letters(out)
        assert (letter["error_type"], letter["record_id"], letter["source_offset"]) == (
            "OVERSIZE",
            "ENC-HUGE",
            200,
        )
        assert "denials.rework" in letter["error"]
        assert "1,000,000" in letter["error"]
        coded = [o for o in out if o.topic == "encounters.coded"]
        assert len(coded) == 400
        assert all(len(o.value) + len(o.key or b"") <= run.max_record_bytes for o in out)

    def test_a_value_too_large_to_keep_is_dead_lettered_by_reference(self) -> None:
        """Under a 64 KB limit the 8,000-line encounter's dead letter keeps its size and offset."""
        run = runner(max_record_bytes=64 * 1024)
        raw = incoming(huge_encounter(), 7)
        assert raw.value is not None
        assert len(raw.value) > 64 * 1024
        (letter,) = letters(run.process(CODING, raw))
        assert letter["value"] is None
        assert letter["value_size"] == len(raw.value)
        assert (letter["source_topic"], letter["source_offset"]) == (EHR_ENCOUNTERS.name, 7)


class TestKeys:
    def test_a_record_without_a_key_goes_back_keyed_by_its_member(self) -> None:
        """No key: the same bytes are sent to the same topic under the member key, not coded."""
        event = encounter()
        (out,) = runner().process(CODING, incoming(event, 3, key=None))
        assert (out.topic, out.key) == (EHR_ENCOUNTERS.name, b"PPO123456789")
        assert out.value == EVENTS.encode(event)

    def test_an_empty_key_is_no_key(self) -> None:
        """An empty key is treated like a missing one."""
        (out,) = runner().process(CODING, incoming(encounter(), 3, key=b""))
        assert out.key == b"PPO123456789"

    def test_a_record_that_names_no_member_and_has_no_key_is_dead_lettered(self) -> None:
        """Self-pay with no person id and no key: NO_KEY, with the offset."""
        event = encounter(coverage=None)
        event["patient"]["person_id"] = ""
        (letter,) = letters(runner().process(CODING, incoming(event, 9, key=None)))
        assert (letter["error_type"], letter["source_offset"]) == ("NO_KEY", 9)


class TestFailures:
    def test_an_unexpected_failure_is_the_records_dead_letter(self) -> None:
        """A handler that raises something other than a data error: INTERNAL, batch goes on."""

        def broken(key: bytes, record: dict[str, Any], ctx: StageContext) -> list[Any]:
            if record["encounter_id"] == "ENC-BAD":
                raise RuntimeError("boom")
            return CODING.handle(key, record, ctx)

        stage = Stage("coding", EHR_ENCOUNTERS, broken, outputs=CODING.outputs)
        out = runner().process_many(
            stage,
            [
                incoming(encounter(encounter_id="ENC-BAD"), 0),
                incoming(encounter(encounter_id="ENC-OK"), 1),
            ],
        )
        (letter,) = letters(out)
        assert letter["error_type"] == "INTERNAL"
        assert "RuntimeError: boom" in letter["error"]
        assert [o.topic for o in out].count("encounters.coded") == 1

    @pytest.mark.parametrize("fused", [False, True])
    @pytest.mark.parametrize("case", sorted(BAD_RECORDS))
    def test_the_dry_run_and_the_runner_refuse_the_same_records_alike(
        self, case: str, fused: bool
    ) -> None:
        """Each bad record is one dead letter from the runner and one failure in the dry run:
        the same stage, error type and reason, and nothing else published for it."""
        stage, record, error_type, says = BAD_RECORDS[case]()
        source = Incoming(
            stage.input.name,
            0,
            0,
            b"PPO123456789",
            codec_for(stage.input.value_schema).encode(record),
            1_760_000_000_000,
        )
        out = runner(fused=fused).process(stage, source)
        (letter,) = letters(out)
        assert len(out) == 1
        dry = list(InProcessPipeline(REFDATA).run(b"PPO123456789", record, stage))
        assert len(dry) == 1
        (failure,) = dry
        assert isinstance(failure, Failure)
        assert (failure.stage, failure.error_type, failure.error) == (
            letter["stage"],
            letter["error_type"],
            letter["error"],
        )
        assert (letter["stage"], letter["error_type"]) == (stage.name, error_type)
        assert says in letter["error"]

    def test_a_record_for_a_topic_the_stage_does_not_declare_is_refused_alike(self) -> None:
        """A handler that publishes where its stage does not say it will: INTERNAL in both."""

        def strays(key: bytes, record: dict[str, Any], ctx: StageContext) -> list[Output]:
            return [*CODING.handle(key, record, ctx), Output(REWORK_ACTIONS, key, {})]

        stage = dataclasses.replace(CODING, handle=strays)
        event = encounter(encounter_id="ENC-STRAY")
        (letter,) = letters(runner().process(stage, incoming(event, 0)))
        (failure,) = InProcessPipeline(REFDATA).run(b"PPO123456789", event, stage)
        assert isinstance(failure, Failure)
        assert letter["error_type"] == failure.error_type == "INTERNAL"
        assert letter["error"] == failure.error
        assert "does not declare" in failure.error


class TestFusedChain:
    def test_a_members_own_correction_is_decided_right_after_its_denial(self) -> None:
        """Fused: CO-97 on a line for its own problem -> 59 added and the replacement decided
        in the same pass; the action read back from rework.actions sends nothing again."""
        payers = {pid: dataclasses.replace(p, denial_rates={}) for pid, p in REFDATA.payers.items()}
        refdata = dataclasses.replace(REFDATA, payers=payers)
        context = StageContext(refdata, BatchState({}))
        fused = StageRunner(STAGES, lambda stage: context, fused=True)
        c = built_claim(
            procedures=[
                procedure("12001", refs=[0]),
                procedure("96372", refs=[1], modifiers=["XS"]),
            ],
            diagnoses=["S61411A", "J4521"],
        )
        c["lines"][1]["modifiers"] = []
        key = c["member_id"].encode()
        submitted = Incoming(CLAIMS_SUBMITTED.name, 0, 0, key, CLAIMS.encode(c), 1_760_000_000_000)
        out = fused.process(STAGE_BY_NAME["adjudication"], submitted)
        remits = [REMITS.decode(o.value) for o in out if o.topic == CLAIMS_REMITTANCE.name]
        sent = [CLAIMS.decode(o.value) for o in out if o.topic == CLAIMS_SUBMITTED.name]
        (action,) = [o for o in out if o.topic == REWORK_ACTIONS.name]
        assert [s["frequency_code"] for s in sent] == ["7"]
        assert sent[0]["lines"][1]["modifiers"] == ["59"]
        assert [r["claim_id"] for r in remits][-1] == sent[0]["claim_id"]
        back = Incoming(REWORK_ACTIONS.name, 0, 0, action.key, action.value, 1_760_000_000_000)
        assert fused.process(STAGE_BY_NAME["rework"], back) == []

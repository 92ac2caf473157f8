"""People work the rework queue from the CLI; the workers act on what they decide."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from pipeline.cli.main import main
from pipeline.config import Settings, to_env
from pipeline.ingest.feed import publish
from pipeline.ingest.synthetic import generate
from pipeline.kafka.readers import read_topic, snapshot_offsets
from pipeline.runtime.processes import WorkerPool
from pipeline.views.outcomes import OutcomeCollector
from pipeline.views.rework import Queue, claim_history, resolve
from processors.contracts.topics import CLAIMS_LIFECYCLE
from tests.waiting import wait_until

ENCOUNTERS = 600


def wait_for_answer(collector: OutcomeCollector, claim_id: str, timeout: float = 120) -> dict:
    """The payer's answer to *claim_id*, once it arrives."""

    def answer() -> dict | None:
        collector.poll()
        return collector.outcomes.answers().get(claim_id)

    found: dict = wait_until(answer, timeout, f"the payer answers {claim_id}", every=0)
    return found


def test_a_person_resubmits_writes_off_and_reads_the_history(
    settings_factory: Callable[..., Settings],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Resubmit with the authorization number, write another off; both show in the history."""
    settings = settings_factory()
    for name, value in to_env(settings).items():
        monkeypatch.setenv(name, value)
    collector = OutcomeCollector(settings, snapshot_offsets(settings))
    with WorkerPool(settings, 1, tmp_path / "logs") as pool:
        pool.wait_ready()
        fed = publish(settings, generate(ENCOUNTERS, 21), progress=None)
        assert collector.wait_for(fed.sent, timeout=300, progress=None, alive=pool.check_alive)

        # The queue lists the open denials; one is an MRI without its authorization.
        assert main(["rework", "list", "--queue", "appeals"]) == 0
        listed = capsys.readouterr().out
        queue = Queue.read(settings)
        auth = next(
            i
            for i in queue.open(category="authorization")
            if any(r["code"] == "197" for r in i["reasons"])
        )
        assert auth["queue"] == "appeals"
        assert auth["rework_id"] in listed
        assert main(["rework", "show", auth["rework_id"]]) == 0
        assert "what to do:" in capsys.readouterr().out

        # Resubmitted with the number the payer issued: the replacement is paid.
        action = resolve(
            settings,
            auth["rework_id"],
            "RESUBMIT",
            actor="tester",
            note="authorization found",
            changes=[
                {"field": "authorization_number", "line_number": None, "value": "PA123456789"}
            ],
        )
        new_id = action["claim"]["claim_id"]
        answer = wait_for_answer(collector, new_id)
        assert not any(a["carc"] == "197" for ln in answer["lines"] for a in ln["adjustments"])
        assert answer["original_payer_claim_control_number"] == auth["payer_claim_control_number"]

        # Another item written off: recorded on the claim's status, gone from the queue.
        other = next(
            i
            for i in Queue.read(settings).open()
            if i["kind"] == "DENIAL" and i["rework_id"] != auth["rework_id"]
        )
        assert (
            main(
                [
                    "rework",
                    "resolve",
                    other["rework_id"],
                    "--write-off",
                    "--note",
                    "small balance",
                    "--by",
                    "tester",
                ]
            )
            == 0
        )
        assert main(["rework", "resolve", other["rework_id"], "--appeal"]) == 2
        wait_until(
            lambda: (
                "WRITTEN_OFF"
                in [
                    v["status"]
                    for _, v in read_topic(settings, CLAIMS_LIFECYCLE, {})
                    if v is not None and v["claim_id"] == other["claim_id"]
                ]
            ),
            60,
            "the write-off is on claims.lifecycle",
        )
    collector.close()
    remaining = {i["rework_id"] for i in Queue.read(settings).open()}
    assert not remaining & {auth["rework_id"], other["rework_id"]}

    # The history runs from the original through the person's action to the replacement.
    events = claim_history(settings, auth["claim_id"])
    statuses = [e.status for e in events]
    assert statuses[0] == "SUBMITTED"
    assert "ACTION" in statuses
    assert events[-1].claim_id == new_id
    capsys.readouterr()
    assert main(["status", auth["claim_id"]]) == 0
    printed = capsys.readouterr().out
    assert new_id in printed
    assert "RESUBMIT by tester" in printed
    assert main(["status", "CNOSUCHCLAIM"]) == 2

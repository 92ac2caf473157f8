"""HL7 v2 feeds on a real broker: the MLLP listener and the file reader, through the workers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from pipeline.cli.main import main
from pipeline.config import Settings, to_env
from pipeline.ingest.mllp import send_mllp
from pipeline.kafka.readers import read_topic, snapshot_offsets
from pipeline.runtime.processes import WorkerPool
from pipeline.views.outcomes import OutcomeCollector
from processors.contracts.topics import DEAD_LETTER, EHR_ENCOUNTERS
from tests.e2e.flow import free_port, wait_for_encounters
from tests.waiting import wait_until

FIXTURES = Path(__file__).parent.parent / "fixtures" / "hl7"


def msa(ack: str) -> str:
    """MSA-1 of an ACK: AA, AE or AR."""
    return next(s for s in ack.split("\r") if s.startswith("MSA|")).split("|")[1]


def test_mllp_listener_acks_every_message_and_feeds_the_pipeline(
    settings_factory: Callable[..., Settings], tmp_path: Path
) -> None:
    """Registration and charges are accepted (AA) and billed; bad messages get AR/AE and are
    kept on the dead-letter topic; the listener keeps serving."""
    settings = settings_factory()
    port = free_port()
    env = {**os.environ, **to_env(settings)}
    listener = subprocess.Popen(
        [sys.executable, "-m", "pipeline.cli.main", "ingest", "mllp", "--port", str(port)],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    collector = OutcomeCollector(settings, snapshot_offsets(settings))
    try:
        with WorkerPool(settings, 1, tmp_path / "logs") as pool:
            pool.wait_ready()
            messages = [
                (FIXTURES / name).read_text()
                for name in (
                    "adt_a04_two_insurances.hl7",
                    "garbage.txt",
                    "dft_p03_registered_patient.hl7",
                    "oru_r01_unsupported.hl7",
                    "dft_p03_icd9_diagnosis.hl7",
                    "dft_p03_office_visit.hl7",
                )
            ]

            def sent() -> list[str] | None:
                try:
                    return send_mllp("127.0.0.1", port, messages)
                except OSError:  # the listener is not up yet
                    return None

            acks = wait_until(sent, 30, "the MLLP listener takes the messages", every=0.3)
            assert [msa(a) for a in acks] == ["AA", "AR", "AA", "AR", "AE", "AA"]
            assert "DG1^" in acks[4]
            wait_for_encounters(collector, {"V-20260305-0007", "V-20260302-0042"})
    finally:
        listener.send_signal(signal.SIGINT)
        listener.wait(timeout=20)
    collector.close()
    dead = [d for _, d in read_topic(settings, DEAD_LETTER, {}) if d is not None]
    assert sorted(d["source_offset"] for d in dead) == [2, 4, 5]
    assert all(d["source_topic"] == "ingest:mllp" for d in dead)
    assert all(d["value"] for d in dead)


def test_hl7_file_twice_publishes_the_same_events(
    settings_factory: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`claims ingest hl7` on the same files twice: the same event ids, bad ones refused."""
    settings = settings_factory()
    for name, value in to_env(settings).items():
        monkeypatch.setenv(name, value)
    files = [
        str(FIXTURES / n)
        for n in (
            "adt_a04_two_insurances.hl7",
            "dft_p03_registered_patient.hl7",
            "dft_p03_unknown_payer.hl7",
        )
    ]
    assert main(["ingest", "hl7", *files]) == 1  # the unknown payer is refused
    assert main(["ingest", "hl7", *files]) == 1
    events = [e for _, e in read_topic(settings, EHR_ENCOUNTERS, {}) if e is not None]
    assert len(events) == 2
    assert events[0]["event_id"] == events[1]["event_id"]
    dead = [d for _, d in read_topic(settings, DEAD_LETTER, {}) if d is not None]
    assert len(dead) == 2
    assert "IN1" in dead[0]["error"]

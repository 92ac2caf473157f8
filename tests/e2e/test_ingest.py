"""EHR feeds and payer files in, through running workers on a real broker."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pipeline.cli.main import main
from pipeline.config import Settings, to_env
from pipeline.kafka.readers import read_topic, snapshot_offsets
from pipeline.runtime.processes import WorkerPool
from pipeline.views.exports import export_835
from pipeline.views.outcomes import OutcomeCollector
from processors.contracts.remittance import is_denial
from processors.contracts.topics import CLAIMS_SUBMITTED, DEAD_LETTER, EHR_ENCOUNTERS
from tests.e2e.flow import free_port, run_flow, wait_for_encounters
from tests.fhir_bundles import FIXTURES
from tests.waiting import wait_until


def post(port: int, body: bytes) -> tuple[int, dict[str, Any]]:
    """POST *body* to the worker's /fhir; (status, JSON answer)."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/fhir",
        data=body,
        method="POST",
        headers={"Content-Type": "application/fhir+json"},
    )

    def answered() -> tuple[int, dict[str, Any]] | None:
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310 - localhost
                return answer.status, json.loads(answer.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())
        except (ConnectionError, urllib.error.URLError):  # the worker is not listening yet
            return None

    return wait_until(answered, 60, "the worker answers POST /fhir", every=0.5)


def test_fhir_bundles_over_http_and_from_files(
    settings_factory: Callable[..., Settings], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """POST /fhir answers 202 with event ids or 400 with an OperationOutcome; the same bundle
    again from a file gives the same ids and no new claim."""
    port = free_port()
    settings = settings_factory(http_port=port)
    for name, value in to_env(settings).items():
        monkeypatch.setenv(name, value)
    start = snapshot_offsets(settings)
    collector = OutcomeCollector(settings, start)
    with WorkerPool(settings, 1, tmp_path / "logs") as pool:
        pool.wait_ready()
        status, answer = post(port, (FIXTURES / "office-visit.json").read_bytes())
        assert status == 202
        assert answer["encounter_ids"] == ["V-ENC1"]
        event_ids = answer["event_ids"]

        status, answer = post(port, b"{not json")
        assert status == 400
        assert answer["resourceType"] == "OperationOutcome"

        status, answer = post(port, (FIXTURES / "awkward.json").read_bytes())
        assert status == 202
        assert answer["encounter_ids"] == ["V-ENC3"]
        assert answer["outcome"]["issue"][0]["expression"] == ["Condition/c5.code"]

        wait_for_encounters(collector, {"V-ENC1", "V-ENC3"})
        claims_before = {
            c["claim_id"] for _, c in read_topic(settings, CLAIMS_SUBMITTED, {}) if c is not None
        }

        # The same bundle again, from a file: same event id, and no new claim downstream.
        assert main(["ingest", "fhir", str(FIXTURES / "office-visit.json")]) == 0

        def all_events() -> list[dict[str, Any]]:
            found = [e for _, e in read_topic(settings, EHR_ENCOUNTERS, {}) if e is not None]
            return found if len(found) >= 3 else []

        events = wait_until(all_events, 60, "the file's event is on ehr.encounters")
        assert [e["event_id"] for e in events if e["encounter_id"] == "V-ENC1"] == event_ids * 2
        collector.wait_for(10_000, timeout=5, progress=None)
    collector.close()
    claims_after = [c for _, c in read_topic(settings, CLAIMS_SUBMITTED, {}) if c is not None]
    assert {c["claim_id"] for c in claims_after} == claims_before
    answers = [r for r in collector.outcomes.remittances.values() if r["encounter_id"] == "V-ENC1"]
    assert len(answers) == 1  # the second pass repeated the same remittance, byte for byte
    dead = [d for _, d in read_topic(settings, DEAD_LETTER, {}) if d is not None]
    assert {d["source_topic"] for d in dead} == {"ingest:fhir-http"}
    assert len(dead) == 2


def test_payer_835_files_are_routed_like_simulated_answers(
    settings_factory: Callable[..., Settings], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An 835 from a payer becomes remittances, each denial one rework item; twice is once."""
    source = settings_factory()
    collector, _, _ = run_flow(source, tmp_path / "source", 200, seed=8, workers=1)
    files = export_835(source, tmp_path / "835")
    assert files

    target = settings_factory()
    for name, value in to_env(target).items():
        monkeypatch.setenv(name, value)
    received = OutcomeCollector(target, snapshot_offsets(target))
    with WorkerPool(target, 1, tmp_path / "target") as pool:
        pool.wait_ready()
        assert main(["ingest", "835", *map(str, files)]) == 0
        assert main(["ingest", "835", *map(str, files)]) == 0  # the same files again
        sent = [r for r in collector.outcomes.remittances.values() if r["payer_id"] != "SELFPAY"]
        denied = sum(1 for r in sent if is_denial(r))

        def all_received() -> bool:
            received.poll()
            return (
                len(received.outcomes.remittances) >= len(sent)
                and len(received.outcomes.denials) >= denied
            )

        wait_until(all_received, 120, "every 835 payment and its denial item arrived", every=0)
        received.wait_for(10_000, timeout=3, progress=None)
    received.close()
    assert len(received.outcomes.remittances) == len(sent)
    assert len(received.outcomes.denials) == denied
    assert {d["category"] for d in received.outcomes.denials.values()} >= {"eligibility"}
    # Broken file: refused with the reason, kept on the dead-letter topic.
    broken = tmp_path / "broken.x12"
    text = files[0].read_text()
    start = text.index("CLP*")
    clp = text[start : text.index("~", start)].split("*")
    clp[4] = f"{float(clp[4]) + 0.01:.2f}"  # a payment that no longer balances
    broken.write_text(text[:start] + "*".join(clp) + text[text.index("~", start) :])
    assert main(["ingest", "835", str(broken)]) == 1
    dead = [d for _, d in read_topic(target, DEAD_LETTER, {}) if d is not None]
    assert [d["source_topic"] for d in dead] == ["ingest:835:broken.x12"]
    assert clp[1] in dead[0]["error"]

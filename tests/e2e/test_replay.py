"""Replays into their own topics, never touching live ones, and the diff against live."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from pipeline.config import Settings
from pipeline.ingest.synthetic import generate
from pipeline.jobs.replay import RunView, diff, replay_encounters, replay_settings, run_replay
from pipeline.kafka.readers import record_counts, snapshot_offsets
from processors.refdata import PAYERS_DIR
from tests.e2e.flow import run_flow

START, END = datetime(2000, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC)


def test_replay_with_the_same_rules_changes_nothing_and_a_payer_change_is_traced(
    settings_factory: Callable[..., Settings], tmp_path: Path
) -> None:
    """Same rules and seed: an empty diff. A stricter PPO: each changed claim is a PPO claim,
    traced to the rule that changed it. Live topics are only read."""
    live = settings_factory()
    _, _, fed = run_flow(live, tmp_path / "live", 200, seed=12, workers=1)
    zero: dict[str, dict[int, int]] = {name: {} for name in snapshot_offsets(live)}
    live_before = record_counts(live, zero)

    summary = run_replay(live, "same", START, END, progress=None)
    assert summary["encounters"] == fed
    same = replay_settings(live, "same")
    report = diff(RunView.read(live), RunView.read(same), replay_encounters(same))
    assert report["encounters"] == fed
    assert report["changed"] == []
    assert report["denial_rate"]["before"] == report["denial_rate"]["after"]

    payers = tmp_path / "payers"
    shutil.copytree(PAYERS_DIR, payers)
    ppo = json.loads((payers / "commercial-ppo.json").read_text())
    ppo["denial_rates"] = {"excluded_service": 0.9}
    (payers / "commercial-ppo.json").write_text(json.dumps(ppo))
    run_replay(live, "strict-ppo", START, END, payers_dir=payers, progress=None)
    strict = replay_settings(live, "strict-ppo")
    report = diff(RunView.read(live), RunView.read(strict), replay_encounters(strict))
    assert report["changed"]
    # Encounters billed to the PPO, first or after a rebill from a plan that had ended.
    ppo_encounters = {
        e["encounter_id"]
        for _, e in generate(200, 12)
        if "PPO-SIM"
        in {c["payer_id"] for c in [e["coverage"] or {"payer_id": None}, *e["other_coverages"]]}
    }
    assert {c["encounter_id"] for c in report["changed"]} <= ppo_encounters
    assert any("NOISE-EXCLUDED-SERVICE" in c["changed_by"] for c in report["changed"])
    assert report["paid_cents"]["after"] < report["paid_cents"]["before"]

    # The live run's topics are as they were.
    assert record_counts(live, zero) == live_before

"""Worker SIGKILLs and a broker kill -9 mid-stream leave every topic as an uninterrupted run does.

The harness starts a broker of its own (under the test's temporary folder, on
free ports) rather than the session's: killing the shared broker would break
the tests running beside this one.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.config import Settings, load_settings
from pipeline.jobs.chaos import ChaosOptions, run_chaos
from pipeline.runtime.exitcodes import EXIT_STALLED

ENCOUNTERS = 2000
KILLS = 3


@pytest.fixture
def own_broker_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Settings with no cluster named, so the harness runs (and kills) a broker of its own."""
    monkeypatch.delenv("CLAIMS_BOOTSTRAP_SERVERS", raising=False)
    return load_settings({"CLAIMS_DATA_DIR": str(tmp_path / "data"), "CLAIMS_PARTITIONS": "4"})


@pytest.mark.parametrize("topology", ["staged", "fused"])
def test_kills_lose_add_and_change_no_record(
    own_broker_settings: Settings, tmp_path: Path, topology: str
) -> None:
    """2,000 encounters through 3 worker SIGKILLs and a broker kill -9: every topic holds the
    reference run's records (redelivered identical copies aside), and each kill recovered."""
    options = ChaosOptions(
        encounters=ENCOUNTERS,
        kills=KILLS,
        topologies=(topology,),
        seed=11,
        recovery_timeout=90,
        settle_timeout=240,
    )
    report = run_chaos(own_broker_settings, options, tmp_path / "out")
    result = report["topologies"][topology]

    kills = result["chaos"]["kills"]
    assert [k["kind"] for k in kills].count("worker") == KILLS
    assert [k["kind"] for k in kills].count("broker") == 1
    assert all(k["flowing_s"] >= k["group_stable_s"] > 0 for k in kills)
    # A worker may stop itself when a partition stops moving (pipeline.runtime.stallwatch, exit 71),
    # and is restarted like a killed one; any other exit of its own is a failure.
    unplanned = [*result["reference"]["unplanned_restarts"], *result["chaos"]["unplanned_restarts"]]
    assert [r for r in unplanned if r["exit_code"] != EXIT_STALLED] == []
    assert result["reference"]["settled"]
    assert result["chaos"]["settled"]
    assert result["topics"]["ehr.encounters"]["chaos_records"] == report["input_records"]
    assert result["topics"]["pipeline.dead-letter"]["ids"] >= options.malformed
    wrong = {
        topic: {k: t[k] for k in ("lost", "extra", "differing", "examples")}
        for topic, t in result["topics"].items()
        if t["lost"] or t["extra"] or t["differing"]
    }
    assert wrong == {}
    assert (tmp_path / "out" / "chaos.json").is_file()

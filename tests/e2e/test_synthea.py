"""Synthea as a second, real feed: generated in the session, checked, never billed as the demo.

Synthea 3.3.0 (from Maven Central, cached like the Kafka jars) writes two
patients with a year of history; ``claims check --summary`` must account for
every one of their encounters (billed, sent to a person, or refused with a
reason), read the organization and practitioner files as references rather
than as bundles to bill, and bill nothing under the demonstration practice.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.cli.main import main
from pipeline.ingest.directory import load_directory
from pipeline.ingest.synthea import SyntheaRun, run_synthea


@pytest.fixture(scope="module")
def synthea(tmp_path_factory: pytest.TempPathFactory) -> SyntheaRun:
    return run_synthea(tmp_path_factory.mktemp("synthea"), 2, 11, years=1)


def encounters_in(paths: list[Path]) -> int:
    return sum(
        1
        for path in paths
        for entry in json.loads(path.read_text())["entry"]
        if entry["resource"]["resourceType"] == "Encounter"
    )


def test_synthea_writes_bundles_reference_files_and_a_directory(synthea: SyntheaRun) -> None:
    assert len(synthea.bundles) >= 2
    names = sorted(p.name.split("Information")[0] for p in synthea.side_files)
    assert names == ["hospital", "practitioner"]
    directory = load_directory(synthea.directory)  # every entry can bill: NPI, TIN, ZIP+4
    entries = json.loads(synthea.directory.read_text())["organizations"]
    assert entries
    assert all(e["synthetic"] for e in entries)
    assert len({e["npi"] for e in entries}) == len(entries)
    assert directory.find(entries[0]["identifiers"]) is not None
    members = json.loads(synthea.roster.read_text())["members"]
    assert members
    assert all(m["member_id"] and m["payer"] and m["start"] for m in members)


def test_check_accounts_for_every_encounter_and_bills_none_as_the_demo(
    synthea: SyntheaRun, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CLAIMS_PROVIDER_DIRECTORY", str(synthea.directory))
    monkeypatch.setenv("CLAIMS_MEMBER_ROSTER", str(synthea.roster))
    files = [*synthea.bundles, *synthea.side_files]
    main(["check", "--summary", "--json", *map(str, files)])
    summary = json.loads(capsys.readouterr().out)
    assert summary["encounters_seen"] == encounters_in(synthea.bundles)
    accounted = (
        summary["billed_automatically"]
        + summary["sent_to_a_person"]
        + summary["refused"]
        + summary["dead_letters"]
    )
    assert accounted == summary["encounters_seen"]
    assert summary["claims_billed_as_the_demonstration_practice"] == 0
    reasons = summary["refused_by_reason"]
    assert sum(reasons.values()) == summary["refused"]
    assert not [r for r in reasons if "holds no Encounter" in r or not r.strip()]

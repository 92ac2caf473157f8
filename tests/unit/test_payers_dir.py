"""CLAIMS_PAYERS_DIR means the same at every entry point: one settings-built RefData."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.cli.main import main
from pipeline.config import load_settings
from tests.builders import payers_dir_with_acme

HL7 = Path(__file__).parent.parent / "fixtures" / "hl7"


@pytest.fixture
def payers_dir(tmp_path: Path) -> Path:
    """The shipped profiles plus ACME-HEALTH, the payer the HL7 fixture's IN1 names."""
    return payers_dir_with_acme(tmp_path / "payers")


def check(capsys: pytest.CaptureFixture[str], *paths: Path) -> list[dict[str, object]]:
    main(["check", "--json", *map(str, paths)])
    return [json.loads(line) for line in capsys.readouterr().out.splitlines() if line]


def test_claims_check_of_hl7_bills_a_payer_of_the_payers_folder(
    payers_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """IN1 names ACME-HEALTH: unknown to the shipped profiles (a mapping problem), billed and
    answered by its profile once CLAIMS_PAYERS_DIR holds it."""
    monkeypatch.delenv("CLAIMS_PAYERS_DIR", raising=False)
    shipped = check(capsys, HL7 / "dft_p03_unknown_payer.hl7")
    assert [r for r in shipped if "mapping_problem" in r]
    assert not [r for r in shipped if "claims" in r]

    monkeypatch.setenv("CLAIMS_PAYERS_DIR", str(payers_dir))
    (report,) = check(capsys, HL7 / "dft_p03_unknown_payer.hl7")
    claims = report["claims"]
    assert isinstance(claims, list)
    assert [c["payer_id"] for c in claims] == ["ACME-HEALTH"]
    assert report["answers"]


def test_the_settings_reference_data_is_the_payers_folders(payers_dir: Path) -> None:
    """Workers, ingest, check, exports, demo and replay all take Settings.refdata()."""
    custom = load_settings({"CLAIMS_PAYERS_DIR": str(payers_dir)}).refdata()
    shipped = load_settings({}).refdata()
    assert custom.payers["ACME-HEALTH"].name == "Acme Health Indemnity"
    assert "ACME-HEALTH" not in shipped.payers
    assert custom.procedures is shipped.procedures or custom.procedures == shipped.procedures

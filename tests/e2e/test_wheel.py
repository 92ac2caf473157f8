"""An installed wheel works away from the source tree: schemas, infra and pages travel with it.

The wheel is built from this checkout and installed, without its dependencies,
into a fresh virtual environment; the dependencies are lent from the running
environment by a path file (so the test needs no package index). The commands
then run from an empty folder, so nothing of the checkout is importable.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[2]
OFFICE_VISIT = PROJECT / "tests" / "fixtures" / "fhir" / "office-visit.json"


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with the project's wheel installed in it; returns its bin folder."""
    root = tmp_path_factory.mktemp("wheel")
    dist = root / "dist"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(dist), "."],
        cwd=PROJECT,
        check=True,
        timeout=600,
    )
    (wheel,) = dist.glob("claims_pipeline-*.whl")
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    bin_dir = venv / "bin"
    subprocess.run(
        [str(bin_dir / "python"), "-m", "pip", "install", "--no-deps", "--quiet", str(wheel)],
        check=True,
        timeout=600,
    )
    purelib = subprocess.run(
        [str(bin_dir / "python"), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    # Dependencies from the running environment; its own path files (the editable
    # install of this checkout among them) are not read from a folder added this way.
    lent = {sysconfig.get_path("purelib"), sysconfig.get_path("platlib")}
    (Path(purelib) / "lent-dependencies.pth").write_text("\n".join(sorted(lent)) + "\n")
    return bin_dir


def run(bin_dir: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """A command of the installed environment, from *cwd*, with no path of the checkout."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "CLAIMS_DATA_DIR")}
    env["XDG_DATA_HOME"] = str(cwd / "xdg")
    return subprocess.run(
        [str(bin_dir / args[0]), *args[1:]],
        check=False,
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_installed_package_is_the_wheel_and_carries_its_data(
    installed: Path, tmp_path: Path
) -> None:
    """pipeline comes from the venv; schemas, the broker's infra and the dashboard page too."""
    probe = (
        "import json, pipeline, pipeline.config as c, pipeline.kafka.broker as b, "
        "pipeline.kafka.codec as k, pipeline.views.dashboard as d; "
        "print(json.dumps({'package': pipeline.__file__, 'installed': c.INSTALLED, "
        "'root': str(c.PROJECT_ROOT), 'pom': b.POM.is_file(), 'page': d.PAGE.is_file(), "
        "'schemas': len(list(k.SCHEMAS_DIR.glob('*.avsc'))), "
        "'data': str(c.load_settings().data_dir)}))"
    )
    done = run(installed, tmp_path, "python", "-c", probe)
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    venv = str(installed.parent)
    assert found["package"].startswith(venv)
    assert found["installed"] is True
    assert found["root"].startswith(venv)
    assert found["pom"]
    assert found["page"]
    assert found["schemas"] == len(list((PROJECT / "schemas").glob("*.avsc")))
    assert found["data"] == str(tmp_path / "xdg" / "claims-pipeline")


def test_claims_check_runs_from_the_wheel(installed: Path, tmp_path: Path) -> None:
    """The integrator's dry run on a FHIR bundle: mapped, coded, claimed and adjudicated."""
    done = run(installed, tmp_path, "claims", "check", "--json", str(OFFICE_VISIT))
    assert done.returncode == 0, done.stderr
    (report,) = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
    assert report["encounter_id"] == "V-ENC1"
    assert report["findings"] == []
    assert report["failures"] == []
    (claim,) = report["claims"]
    assert [ln["procedure_code"] for ln in claim["lines"]] == ["99214", "83036", "36415"]
    (answer,) = report["answers"]
    assert answer["claim_id"] == claim["claim_id"]
    assert answer["paid_cents"] > 0


def test_the_schema_registry_travels_with_the_wheel(installed: Path, tmp_path: Path) -> None:
    """claims schemas check compares the bundled .avsc files with the bundled registry."""
    done = run(installed, tmp_path, "claims", "schemas", "check")
    assert done.returncode == 0, done.stderr + done.stdout
    assert "every schema matches its newest registered version" in done.stdout

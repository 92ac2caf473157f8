"""Synthea, the synthetic patient generator, as a second feed of real FHIR R4.

``claims synthea generate`` fetches Synthea 3.3.0 from Maven Central once
(``infra/synthea/pom.xml``, into the data folder's cache), runs it for a fixed
seed and reference date (so the same arguments give the same patients), and
leaves in the output folder:

- ``fhir/*.json``: one transaction Bundle per patient, with the
  ``hospitalInformation*.json`` and ``practitionerInformation*.json`` batches
  their conditional references point to;
- ``members.json``: a member roster (``CLAIMS_MEMBER_ROSTER``) from Synthea's own
  ``payer_transitions.csv``: each patient's payer, member id and dates, which its
  FHIR output leaves out (it carries no Coverage);
- ``providers.json``: a provider directory for Synthea's organizations, which
  carry no NPI or tax id. Synthea's organizations are fictional, so their
  billing NPI (valid check digit), tax id and ZIP+4 are made up here, from the
  organization's id, and every entry says ``"synthetic": true``. A real feed's
  directory is written by the integrator (README, "Provider directory").
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from pipeline.config import PROJECT_ROOT, default_data_dir
from pipeline.jars import classpath, fetch_jars, last_lines
from processors.ids import stable_id
from processors.npi import npi_check_digit

SYNTHEA_POM = PROJECT_ROOT / "infra" / "synthea" / "pom.xml"
SYNTHEA_SYSTEM = "https://github.com/synthetichealth/synthea"
# Synthea's clock: the same reference date and seeds give the same population.
DEFAULT_REFERENCE_DATE = date(2026, 11, 1)
# Taxonomy of a clinic billing for its clinicians (NUCC: 261QP2300X Primary Care clinic).
CLINIC_TAXONOMY = "261QP2300X"


class SyntheaError(RuntimeError):
    """Synthea could not be fetched or run; the message says why."""


@dataclass(frozen=True)
class SyntheaRun:
    """What one run of Synthea wrote."""

    out: Path
    bundles: list[Path]
    side_files: list[Path]
    directory: Path
    roster: Path
    seconds: float


def synthea_command(
    jars: Path,
    out: Path,
    patients: int,
    seed: int,
    *,
    state: str | None = None,
    years: int | None = None,
    reference: date = DEFAULT_REFERENCE_DATE,
) -> list[str]:
    """The java command line that runs Synthea for these arguments."""
    if patients < 1:
        raise SyntheaError(f"--patients {patients}: Synthea needs at least one patient")
    command = [
        "java",
        "-cp",
        classpath(jars),
        "App",
        "-p",
        str(patients),
        "-s",
        str(seed),
        "-cs",
        str(seed),
        "-r",
        reference.strftime("%Y%m%d"),
        f"--exporter.baseDirectory={out}",
        "--exporter.fhir.export=true",
        "--exporter.hospital.fhir.export=true",
        "--exporter.practitioner.fhir.export=true",
        "--exporter.csv.export=true",
        "--exporter.ccda.export=false",
        "--generate.only_alive_patients=true",
    ]
    if years is not None:
        command.append(f"--exporter.years_of_history={years}")
    if state:
        command.append(state)
    return command


def run_synthea(
    out: Path,
    patients: int,
    seed: int,
    *,
    state: str | None = None,
    years: int | None = None,
    reference: date = DEFAULT_REFERENCE_DATE,
    jars_dir: Path | None = None,
) -> SyntheaRun:
    """Run Synthea into *out* (its ``fhir/`` folder is replaced) and write the directory."""
    jars = fetch_jars(
        SYNTHEA_POM,
        jars_dir or default_data_dir(os.environ) / "synthea-jars",
        what="Synthea",
        expect="synthea-*.jar",
    )
    fhir = out / "fhir"
    if fhir.exists():
        for old in fhir.glob("*.json"):
            old.unlink()
    out.mkdir(parents=True, exist_ok=True)
    command = synthea_command(
        jars, out, patients, seed, state=state, years=years, reference=reference
    )
    started = time.monotonic()
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        tail = last_lines(result.stderr or result.stdout)
        raise SyntheaError(f"Synthea exited with {result.returncode}:\n{tail}")
    bundles = sorted(
        p
        for p in fhir.glob("*.json")
        if not p.name.startswith(("hospitalInformation", "practitionerInformation"))
    )
    side = sorted(
        p
        for p in fhir.glob("*.json")
        if p.name.startswith(("hospitalInformation", "practitionerInformation"))
    )
    if not bundles:
        raise SyntheaError(f"Synthea wrote no patient bundle into {fhir}")
    directory = out / "providers.json"
    write_directory(directory, organizations(side))
    roster = out / "members.json"
    write_roster(roster, out / "csv")
    return SyntheaRun(out, bundles, side, directory, roster, time.monotonic() - started)


def organizations(side_files: Iterable[Path]) -> list[dict[str, Any]]:
    """The Organization resources of Synthea's hospital information batches."""
    found = []
    for path in side_files:
        bundle = json.loads(path.read_text())
        for entry in bundle.get("entry") or []:
            resource = entry.get("resource") or {}
            if resource.get("resourceType") == "Organization":
                found.append(resource)
    return found


def _digits(seed: str, n: int) -> str:
    """*n* decimal digits drawn from the hash of *seed* (stable across runs)."""
    return str(int(stable_id("", seed)[:15], 16) % 10**n).zfill(n)


def directory_entry(organization: dict[str, Any]) -> dict[str, Any]:
    """The provider directory entry of a Synthea organization, with made-up billing ids."""
    ident = next(
        (i["value"] for i in organization.get("identifier") or [] if i.get("value")),
        organization.get("id", ""),
    )
    first_nine = "1" + _digits(f"npi:{ident}", 8)
    address = (organization.get("address") or [{}])[0]
    lines = list(address.get("line") or [])
    zip5 = str(address.get("postalCode") or "")[:5]
    return {
        "identifiers": [f"{SYNTHEA_SYSTEM}|{ident}"],
        "name": organization.get("name") or ident,
        "npi": first_nine + str(npi_check_digit(first_nine)),
        "tin": "9" + _digits(f"tin:{ident}", 8),
        "taxonomy": CLINIC_TAXONOMY,
        "address": {
            "line1": lines[0] if lines else "",
            "line2": lines[1] if len(lines) > 1 else None,
            "city": address.get("city") or "",
            "state": address.get("state") or "",
            "postal_code": zip5 + _digits(f"zip4:{ident}", 4) if len(zip5) == 5 else zip5,
        },
        "synthetic": True,
    }


def write_directory(path: Path, orgs: list[dict[str, Any]]) -> None:
    """Write the provider directory of *orgs* to *path*."""
    entries = sorted((directory_entry(o) for o in orgs), key=lambda e: e["identifiers"][0])
    path.write_text(
        json.dumps(
            {
                "about": (
                    "Billing providers of Synthea's fictional organizations. Their NPIs, "
                    "tax ids and ZIP+4 codes are made up from the organization ids."
                ),
                "organizations": entries,
            },
            indent=1,
        )
        + "\n"
    )


# Synthea's PLAN_OWNERSHIP: who holds the plan, as the patient's relationship to them.
OWNERSHIP = {"self": "self", "": "self", "guardian": "child", "spouse": "spouse"}


def write_roster(path: Path, csv_dir: Path) -> int:
    """Write the member roster of Synthea's payer transitions to *path*; returns its rows."""
    with (csv_dir / "payers.csv").open(newline="") as f:
        payer_names = {r["Id"]: r["NAME"] for r in csv.DictReader(f)}
    members = []
    with (csv_dir / "payer_transitions.csv").open(newline="") as f:
        for row in csv.DictReader(f):
            ownership = (row.get("PLAN_OWNERSHIP") or "").strip().lower()
            members.append(
                {
                    "patient": [f"{SYNTHEA_SYSTEM}|{row['PATIENT']}"],
                    "payer": payer_names.get(row["PAYER"], row["PAYER"]),
                    "member_id": row["MEMBERID"] or row["PATIENT"],
                    "start": row["START_DATE"][:10],
                    "end": row["END_DATE"][:10] or None,
                    "relationship": OWNERSHIP.get(ownership, "other"),
                }
            )
    path.write_text(
        json.dumps(
            {
                "about": "Synthea's payer transitions: each patient's payer and member id by date.",
                "members": members,
            },
            indent=1,
        )
        + "\n"
    )
    return len(members)

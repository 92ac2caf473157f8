"""Builders of valid records for tests: override only what a test is about."""

from __future__ import annotations

import copy
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from processors.npi import npi_check_digit

Record = dict[str, Any]


def npi(first_nine: str) -> str:
    """A valid NPI with the given first nine digits."""
    return first_nine + str(npi_check_digit(first_nine))


ADDRESS: Record = {
    "line1": "100 Main St",
    "line2": None,
    "city": "Springfield",
    "state": "IL",
    "postal_code": "62701",
}


def person(
    person_id: str = "P00000001", birth_date: date = date(1980, 3, 4), sex: str = "F"
) -> Record:
    """A patient or subscriber."""
    return {
        "person_id": person_id,
        "last_name": "Rivera",
        "first_name": "Ana",
        "birth_date": birth_date,
        "sex": sex,
        "address": dict(ADDRESS),
    }


def coverage(
    payer_id: str = "PPO-SIM",
    member_id: str = "PPO123456789",
    plan_type: str = "12",
    effective: date = date(2025, 1, 1),
    terminated: date | None = None,
    patient: Record | None = None,
) -> Record:
    """Coverage with the patient as subscriber."""
    return {
        "payer_id": payer_id,
        "payer_name": f"{payer_id} plan",
        "plan_type": plan_type,
        "member_id": member_id,
        "group_number": "GRP100",
        "relationship": "18",
        "subscriber": patient or person(),
        "effective_date": effective,
        "termination_date": terminated,
    }


def procedure(
    code: str = "99213",
    units: int = 1,
    refs: list[int] | None = None,
    modifiers: list[str] | None = None,
) -> Record:
    """A documented service."""
    return {
        "code": code,
        "modifiers": modifiers or [],
        "units": units,
        "diagnosis_refs": [0] if refs is None else refs,
        "charge_cents": None,
    }


def encounter(**overrides: Any) -> Record:
    """A clean office visit for hypertension under the PPO, overridable field by field."""
    patient = person()
    event: Record = {
        "event_id": "EV-1",
        "encounter_id": "ENC-1",
        "source": "synthetic",
        "received_at": datetime(2026, 3, 3, 15, 0, tzinfo=UTC),
        "service_date": date(2026, 3, 2),
        "place_of_service": "11",
        "patient": patient,
        "coverage": coverage(patient=patient),
        "other_coverages": [],
        "billing_provider": {
            "npi": npi("123456789"),
            "entity_type": "2",
            "name": "Springfield Family Medicine",
            "first_name": None,
            "taxonomy": "207Q00000X",
            "tin": "371234567",
            "address": {**ADDRESS, "postal_code": "627011234"},
        },
        "rendering_provider": {
            "npi": npi("198765432"),
            "entity_type": "1",
            "name": "Okafor",
            "first_name": "Chidi",
            "taxonomy": "207Q00000X",
            "tin": None,
            "address": None,
        },
        "referring_provider": None,
        "diagnoses": ["I10"],
        "procedures": [procedure()],
        "authorization_number": None,
        "referral_number": None,
        "documented_minutes": 25,
        "mdm_level": "low",
        "established_patient": None,
        "uncoded": [],
    }
    event.update(copy.deepcopy(overrides))
    return event


def built_claim(**overrides: Any) -> Record:
    """The claim the coding and claims stages build for ``encounter(**overrides)``."""
    from processors.claims.rules import build_claim
    from processors.coding.rules import code_encounter
    from processors.refdata import load_refdata

    refdata = load_refdata()
    coded = code_encounter(encounter(**overrides), refdata).coded
    assert coded is not None, "the encounter was held by the coding edits"
    claim: Record = build_claim(coded, refdata).claim
    return claim


def payers_dir_with_acme(folder: Path) -> Path:
    """The shipped payer profiles in *folder*, plus ACME-HEALTH (a copy of the PPO without
    noise denials): the payer the HL7 fixtures' IN1 names and no shipped profile has."""
    import json
    import shutil

    from processors.refdata import PAYERS_DIR

    shutil.copytree(PAYERS_DIR, folder)
    profile = json.loads((folder / "commercial-ppo.json").read_text())
    profile.update(
        payer_id="ACME-HEALTH",
        name="Acme Health Indemnity",
        member_id_pattern="^ACM[0-9]{9}$",
        denial_rates={},
    )
    (folder / "acme.json").write_text(json.dumps(profile))
    return folder

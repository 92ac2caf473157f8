"""FHIR R4 Claim output: fhir.resources accepts it, and it says what the 837P says."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fhir.resources.R4B.claim import Claim
from pydantic import ValidationError

from pipeline.views.exports import write_fhir_ndjson
from processors.claims.fhir import to_fhir_claim
from tests.unit.test_x12_837p import replacement, synthetic_claims


@pytest.fixture(scope="module")
def claims() -> list[dict[str, Any]]:
    """Several hundred synthetic claims with replacements and voids."""
    found = [c for c in synthetic_claims(600, seed=33) if c["payer_id"] != "SELFPAY"]
    return (
        found
        + [replacement(c, "7") for c in found[:10]]
        + [replacement(c, "8") for c in found[10:15]]
    )


def test_fhir_resources_validates_every_claim(claims: list[dict[str, Any]]) -> None:
    """Every Claim (with its contained Patient, Coverage, providers) validates as R4."""
    assert len(claims) > 400
    for claim in claims:
        Claim.model_validate(to_fhir_claim(claim))


def test_validation_can_fail() -> None:
    """A Claim without its required patient is rejected."""
    resource = to_fhir_claim(synthetic_claims(5, seed=1)[0])
    del resource["patient"]
    with pytest.raises(ValidationError):
        Claim.model_validate(resource)


def test_content_matches_the_claim_record(claims: list[dict[str, Any]]) -> None:
    """Ids, diagnoses, codes, modifiers, units, pointers, charges and NPIs carry over."""
    for claim in claims:
        fhir = to_fhir_claim(claim)
        assert fhir["id"] == claim["claim_id"]
        assert round(fhir["total"]["value"] * 100) == claim["total_charge_cents"]
        assert [
            d["diagnosisCodeableConcept"]["coding"][0]["code"].replace(".", "")
            for d in fhir["diagnosis"]
        ] == claim["diagnoses"]
        for item, line in zip(fhir["item"], claim["lines"], strict=True):
            assert item["productOrService"]["coding"][0]["code"] == line["procedure_code"]
            assert [m["coding"][0]["code"] for m in item.get("modifier", [])] == line["modifiers"]
            assert item["quantity"]["value"] == line["units"]
            assert item["diagnosisSequence"] == line["dx_pointers"]
            assert round(item["net"]["value"] * 100) == line["charge_cents"]
        contained = {r["id"]: r for r in fhir["contained"]}
        assert contained["billing"]["identifier"][0]["value"] == claim["billing_provider"]["npi"]
        assert (
            contained["rendering"]["identifier"][0]["value"] == (claim["rendering_provider"]["npi"])
        )
        assert contained["coverage"]["subscriberId"] == claim["member_id"]


def test_replacements_reference_the_prior_claim(claims: list[dict[str, Any]]) -> None:
    """Frequency 7 and 8 claims name the original claim and the payer's control number."""
    voids = [to_fhir_claim(c) for c in claims if c["frequency_code"] == "8"]
    assert voids
    assert all(v["status"] == "cancelled" for v in voids)
    for claim in (c for c in claims if c["frequency_code"] in ("7", "8")):
        related = to_fhir_claim(claim)["related"][0]
        assert related["claim"]["identifier"]["value"] == claim["original_claim_id"]
        assert related["reference"]["value"] == claim["payer_claim_control_number"]


def test_ndjson_export_writes_one_claim_per_line(
    claims: list[dict[str, Any]], tmp_path: Path
) -> None:
    """The export is one JSON Claim per line, each valid."""
    path = tmp_path / "fhir" / "claims.ndjson"
    assert write_fhir_ndjson(claims, path) == len(claims)
    lines = path.read_text().splitlines()
    assert len(lines) == len(claims)
    Claim.model_validate(json.loads(lines[0]))

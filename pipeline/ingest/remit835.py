"""Real X12 835 files in: the payer's claim payments as Remittance events.

Pure functions only. :func:`remittances_from_835` reads an 835 interchange
(``processors.adjudication.x12_835.parse_835`` checks that every claim, line
and payment balances, or rejects the file with the reason) and fills in what
our Remittance record needs and the 835 does not carry: a deterministic
remittance id (the same file twice gives the same ids), the encounter and
member of claims this pipeline submitted, and provenance.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from processors.adjudication.x12_835 import parse_835
from processors.ids import stable_id

Record = dict[str, Any]
PAYER_RULE = "PAYER-835"


def _provider(payee: Record | None) -> Record | None:
    if not payee or not payee.get("npi"):
        return None
    address = payee.get("address")
    if address is not None:
        address = {
            "line1": address.get("line1") or "",
            "line2": address.get("line2"),
            "city": address.get("city") or "",
            "state": address.get("state") or "",
            "postal_code": address.get("postal_code") or "",
        }
    return {
        "npi": payee["npi"],
        "entity_type": "2",
        "name": payee.get("name") or "",
        "first_name": None,
        "taxonomy": None,
        "tin": payee.get("tin"),
        "address": address,
    }


def remittances_from_835(text: str, claims: Mapping[str, Record]) -> list[Record]:
    """Remittance records for every claim payment in the 835 *text*.

    *claims* maps claim ids (CLP01, our patient control numbers) to the claims
    we submitted, to find each payment's encounter and member. A payment for a
    claim we do not know keeps its claim id as its encounter id.
    """
    out = []
    for parsed in parse_835(text):
        claim = claims.get(parsed["claim_id"]) or {}
        payer_id = parsed.get("payer_id") or claim.get("payer_id") or "UNKNOWN"
        lines = []
        for line in parsed["lines"]:
            adjustments = [{**a, "rule_id": PAYER_RULE} for a in line["adjustments"]]
            patient = sum(a["amount_cents"] for a in adjustments if a["group_code"] == "PR")
            allowed = line["allowed_cents"]
            lines.append(
                {
                    "line_number": line["line_number"],
                    "procedure_code": line["procedure_code"],
                    "modifiers": line["modifiers"],
                    "units": line["units"],
                    "charge_cents": line["charge_cents"],
                    "allowed_cents": allowed
                    if allowed is not None
                    else line["paid_cents"] + patient,
                    "paid_cents": line["paid_cents"],
                    "adjustments": adjustments,
                    "rarcs": line["rarcs"],
                    "service_date": line.get("service_date"),
                }
            )
        status = parsed["claim_status_code"]
        record = {
            "remittance_id": stable_id(
                "R",
                "835",
                payer_id,
                parsed.get("payment_trace_number"),
                parsed["claim_id"],
                status,
                parsed["payer_claim_control_number"],
            ),
            "claim_id": parsed["claim_id"],
            "encounter_id": claim.get("encounter_id") or parsed["claim_id"],
            "member_key": claim.get("member_id") or parsed.get("member_key") or parsed["claim_id"],
            "payer_id": payer_id,
            "claim_status_code": status,
            "total_charge_cents": parsed["total_charge_cents"],
            "paid_cents": parsed["paid_cents"],
            "patient_responsibility_cents": parsed["patient_responsibility_cents"],
            "plan_type": parsed.get("plan_type") or claim.get("plan_type") or "",
            "payer_claim_control_number": parsed["payer_claim_control_number"],
            "frequency_code": parsed.get("frequency_code") or "1",
            "adjudicated_date": parsed["adjudicated_date"],
            "claim_adjustments": [
                {**a, "rule_id": PAYER_RULE} for a in parsed["claim_adjustments"]
            ],
            "lines": lines,
            "rarcs": parsed["rarcs"],
            "payer_profile_version": f"{payer_id}@835",
            "in_response_to": parsed["claim_id"],
            "original_payer_claim_control_number": parsed.get(
                "original_payer_claim_control_number"
            ),
            "service_date_from": parsed.get("service_date_from") or claim.get("service_date_from"),
            "service_date_to": parsed.get("service_date_to") or claim.get("service_date_to"),
            "payer_received_date": parsed.get("payer_received_date"),
            "payment_method": parsed.get("payment_method") or "NON",
            "payment_trace_number": parsed.get("payment_trace_number") or "",
            "patient": claim.get("patient"),
            "subscriber": None,
            "payee": claim.get("billing_provider") or _provider(parsed.get("payee")),
            "rendering_npi": parsed.get("rendering_npi"),
            "rendering_provider": claim.get("rendering_provider"),
            "place_of_service": parsed.get("place_of_service") or claim.get("place_of_service"),
        }
        out.append(record)
    return out

"""The denials stage: claims.remittance -> denials.rework and the claim's final status."""

from __future__ import annotations

from datetime import UTC, datetime, time

from pipeline.topics import CLAIMS_REMITTANCE, DENIALS_REWORK
from processors.denials.rules import route_remittance
from processors.stage import Output, Record, Stage, StageContext, lifecycle


def remittance_status(remittance: Record, denied: bool) -> str:
    """PAID, PARTIALLY_PAID, DENIED or REVERSED, as billing staff read a remittance."""
    if remittance["claim_status_code"] == "22":
        return "REVERSED"
    if remittance["claim_status_code"] == "4":
        return "DENIED"
    return "PARTIALLY_PAID" if denied else "PAID"


def handle(key: bytes, remittance: Record, ctx: StageContext) -> list[Output]:
    """Route a denial to the rework queue; record the claim's outcome either way."""
    payer = ctx.refdata.payer(remittance["payer_id"])
    appeal_days = payer.appeal_days if payer else 0
    at = datetime.combine(remittance["adjudicated_date"], time(0), tzinfo=UTC)
    item = route_remittance(remittance, ctx.refdata, appeal_days, at)
    outputs = [] if item is None else [Output(DENIALS_REWORK, key, item)]
    detail = None
    if item is not None:
        detail = ",".join(sorted({f"{r['group_code']}-{r['code']}" for r in item["reasons"]
                                  if r["group_code"]}))
    outputs.append(lifecycle(
        remittance["claim_id"], remittance["encounter_id"],
        remittance_status(remittance, item is not None), "denials", at,
        charge=remittance["total_charge_cents"], paid=remittance["paid_cents"],
        patient=remittance["patient_responsibility_cents"], payer_id=remittance["payer_id"],
        detail=detail,
    ))
    return outputs


STAGE = Stage("denials", CLAIMS_REMITTANCE, handle)

"""The claims stage: encounters.coded -> claims.submitted, or a hold in the billing queue."""

from __future__ import annotations

from processors.claims.rules import build_claim
from processors.contracts.findings import hard_edit_ids
from processors.contracts.rework import hold_item
from processors.contracts.topics import (
    CLAIMS_LIFECYCLE,
    CLAIMS_SUBMITTED,
    DENIALS_REWORK,
    ENCOUNTERS_CODED,
)
from processors.contracts.vocab import ItemKind, LifecycleStatus
from processors.stage import Output, Record, Stage, StageContext, lifecycle


def handle(key: bytes, coded: Record, ctx: StageContext) -> list[Output]:
    """Build and scrub the claims; submit them or hold them for billing staff."""
    result = build_claim(coded, ctx.refdata)
    at = coded["encounter"]["received_at"]
    if result.held:
        claim = result.claim
        item = hold_item(
            ItemKind.SCRUBBER_HOLD,
            coded["encounter"],
            claim,
            result.findings,
            key.decode(),
            ctx.refdata.ruleset_version,
        )
        detail = hard_edit_ids(result.findings)
        return [
            Output(DENIALS_REWORK, key, item),
            lifecycle(
                claim["claim_id"],
                claim["encounter_id"],
                LifecycleStatus.HELD_SCRUBBER,
                "claims",
                at,
                charge=claim["total_charge_cents"],
                payer_id=claim["payer_id"],
                detail=detail,
            ),
        ]
    outputs = []
    for claim in result.claims:
        outputs.append(Output(CLAIMS_SUBMITTED, key, claim))
        outputs.append(
            lifecycle(
                claim["claim_id"],
                claim["encounter_id"],
                LifecycleStatus.SUBMITTED,
                "claims",
                at,
                charge=claim["total_charge_cents"],
                payer_id=claim["payer_id"],
            )
        )
    return outputs


STAGE = Stage(
    "claims",
    ENCOUNTERS_CODED,
    handle,
    outputs=(CLAIMS_SUBMITTED, DENIALS_REWORK, CLAIMS_LIFECYCLE),
)

"""The resubmit stage: rework.actions -> claims.submitted and the claim's status.

A RESUBMIT action carries the corrected claim, built by an automatic correction
or by a person with ``claims rework resolve --resubmit``; this stage sends it to
the payer. Appeals, write-offs and patient billing are recorded in the claim's
status. The action is keyed by the member of the claim it carries, the key of
claims.submitted, so the claim lands in its member's partition.
"""

from __future__ import annotations

from pipeline.topics import CLAIMS_SUBMITTED, REWORK_ACTIONS
from processors.stage import Output, Record, Stage, StageContext, lifecycle

STATUS_OF_ACTION = {
    "APPEAL": "APPEALED",
    "WRITE_OFF": "WRITTEN_OFF",
    "BILL_PATIENT": "BILLED_TO_PATIENT",
}


class ActionWithoutClaim(ValueError):
    """A RESUBMIT action that carries no claim; it is dead-lettered."""


def handle(_key: bytes, action: Record, _ctx: StageContext) -> list[Output]:
    """Send a resubmitted claim, or record what was done about a claim."""
    at = action["at"]
    if action["action"] == "RESUBMIT":
        claim = action.get("claim")
        if claim is None:
            raise ActionWithoutClaim(
                f"action {action['action_id']} on rework item {action['rework_id']} is a "
                "RESUBMIT without the corrected claim; resolve the item again"
            )
        return [
            Output(CLAIMS_SUBMITTED, claim["member_id"].encode(), claim),
            lifecycle(claim["claim_id"], claim["encounter_id"], "SUBMITTED", "rework", at,
                      charge=claim["total_charge_cents"], payer_id=claim["payer_id"],
                      detail=f"replaces {claim.get('original_claim_id')}"),
        ]
    status = STATUS_OF_ACTION.get(action["action"])
    if status is None:
        raise ValueError(f"action {action['action_id']}: unknown action {action['action']!r}; "
                         f"use RESUBMIT, {', '.join(STATUS_OF_ACTION)}")
    claim_id = action.get("claim_id") or f"ENC-{action['encounter_id']}"
    return [lifecycle(claim_id, action["encounter_id"], status, "rework", at,
                      detail=action.get("note"))]


STAGE = Stage("rework", REWORK_ACTIONS, handle)

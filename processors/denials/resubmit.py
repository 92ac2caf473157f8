"""The resubmit stage: rework.actions -> claims.submitted and the claim's status.

A RESUBMIT action carries the corrected claim, built by an automatic correction
or by a person with ``claims rework resolve --resubmit``; this stage sends it to
the payer. Appeals, write-offs and patient billing are recorded in the claim's
status. Any action closes its item in the member's state, so no reminder
follows it. A RESUBMIT of a claim id the payer has already decided is not sent
again.
"""

from __future__ import annotations

import logging

from processors.contracts.topics import CLAIMS_LIFECYCLE, CLAIMS_SUBMITTED, REWORK_ACTIONS
from processors.contracts.vocab import Decision, LifecycleStatus
from processors.denials.followup import close_item
from processors.memberstate import MemberState
from processors.stage import Output, Record, Rejected, Stage, StageContext, lifecycle

STATUS_OF_ACTION = {
    Decision.APPEAL: LifecycleStatus.APPEALED,
    Decision.WRITE_OFF: LifecycleStatus.WRITTEN_OFF,
    Decision.BILL_PATIENT: LifecycleStatus.BILLED_TO_PATIENT,
}

log = logging.getLogger(__name__)


class ActionWithoutClaim(Rejected):
    """A RESUBMIT action that carries no claim; it is dead-lettered."""


def handle(key: bytes, action: Record, ctx: StageContext) -> list[Output]:
    """Send a resubmitted claim, or record what was done about a claim.

    The action arrives keyed by the member whose rework item it closes. A
    corrected claim for another member (a rebill to another plan) is passed on
    to that member's partition as the same action, and sent from there.
    """
    at = action["at"]
    state = MemberState.load(ctx.state, key)
    if close_item(state, action["rework_id"]):
        state.commit(ctx.state)
    if action["action"] == Decision.RESUBMIT:
        claim = action.get("claim")
        if claim is None:
            raise ActionWithoutClaim(
                f"action {action['action_id']} on rework item {action['rework_id']} is a "
                "RESUBMIT without the corrected claim; resolve the item again"
            )
        member = claim["member_id"].encode()
        if member != key:
            return [Output(REWORK_ACTIONS, member, action)]
        if state.claim(claim["claim_id"], forgotten_too=True) is not None:
            # The payer has decided this claim id already: this action was applied before
            # (the fused topology applies an automatic correction as it is made, then reads
            # it back from the topic), or it was sent twice. Sending it again would only
            # repeat the payer's answer.
            log.info(
                "action %s: claim %s was already sent and decided; not sent again",
                action["action_id"],
                claim["claim_id"],
            )
            return []
        return [
            Output(CLAIMS_SUBMITTED, member, claim),
            lifecycle(
                claim["claim_id"],
                claim["encounter_id"],
                LifecycleStatus.SUBMITTED,
                "rework",
                at,
                charge=claim["total_charge_cents"],
                payer_id=claim["payer_id"],
                detail=f"replaces {claim.get('original_claim_id')}",
            ),
        ]
    status = STATUS_OF_ACTION.get(action["action"])
    if status is None:
        raise Rejected(
            f"action {action['action_id']}: unknown action {action['action']!r}; "
            f"use RESUBMIT, {', '.join(STATUS_OF_ACTION)}"
        )
    claim_id = action.get("claim_id") or f"ENC-{action['encounter_id']}"
    return [
        lifecycle(claim_id, action["encounter_id"], status, "rework", at, detail=action.get("note"))
    ]


def sent_from_here(key: bytes, action: Record) -> bool:
    """True for a RESUBMIT of a claim of *key*'s own member (sent from this partition)."""
    claim = action.get("claim")
    return (
        action["action"] == Decision.RESUBMIT
        and claim is not None
        and str(claim["member_id"]).encode() == key
    )


STAGE = Stage(
    "rework",
    REWORK_ACTIONS,
    handle,
    outputs=(CLAIMS_SUBMITTED, REWORK_ACTIONS, CLAIMS_LIFECYCLE),
    stateful=True,
    entry=True,
    at_once=sent_from_here,
)

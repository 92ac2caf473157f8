"""The adjudication stage: claims.submitted -> claims.remittance, with member accumulators.

The member's accumulators live in the stage's state store under the member key,
the same key the claim path is partitioned by, so they sit beside the stream
that changes them.
"""

from __future__ import annotations

from processors.adjudication.rules import adjudicate
from processors.contracts.topics import CLAIMS_REMITTANCE, CLAIMS_SUBMITTED
from processors.memberstate import MemberState
from processors.stage import Output, Record, Rejected, Stage, StageContext


class UnknownPayer(Rejected):
    """The claim names a payer with no profile; it is dead-lettered."""


def handle(key: bytes, claim: Record, ctx: StageContext) -> list[Output]:
    """Adjudicate one claim against its payer profile and the member's accumulators."""
    payer = ctx.refdata.payer(claim["payer_id"])
    if payer is None:
        raise UnknownPayer(
            f"claim {claim['claim_id']} names payer {claim['payer_id']!r}, which has no profile; "
            "add a payer profile file or fix the claim's payer"
        )
    result = adjudicate(claim, payer, MemberState.load(ctx.state, key), ctx.refdata, ctx.seed)
    result.member_state.commit(ctx.state)
    ctx.remind_due(key, result.member_state)
    return [Output(CLAIMS_REMITTANCE, key, remittance) for remittance in result.remittances]


STAGE = Stage("adjudication", CLAIMS_SUBMITTED, handle, outputs=(CLAIMS_REMITTANCE,), stateful=True)

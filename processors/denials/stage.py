"""The denials stage: claims.remittance -> denials.rework, statements, corrections, status.

Every denied or partly denied remittance becomes exactly one rework item. When
an automatic correction applies (``processors.denials.corrections``), the item
is marked AUTO_CORRECTED and a RESUBMIT action carrying the corrected claim goes
to rework.actions, keyed by this member. An open item with a deadline is kept in
the member's state, for a reminder as the deadline nears. The denied claim is
read from the member's state, where the adjudication stage kept it; the state
is keyed by member like this stage's input, so it is local.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time

from processors.contracts.remittance import DENIED, is_reversal
from processors.contracts.topics import (
    CLAIMS_LIFECYCLE,
    CLAIMS_REMITTANCE,
    DENIALS_REWORK,
    PATIENT_STATEMENTS,
    REWORK_ACTIONS,
)
from processors.contracts.vocab import LifecycleStatus
from processors.denials.corrections import auto_correct, resubmit_action
from processors.denials.followup import mark_made, remember_item, sweep_member
from processors.denials.rules import patient_statement, route_remittance
from processors.jsonsafe import from_json
from processors.memberstate import MemberState
from processors.stage import Output, Record, Stage, StageContext, Sweep, lifecycle


def remittance_status(remittance: Record, denied: bool) -> LifecycleStatus:
    """PAID, PARTIALLY_PAID, DENIED or REVERSED, as billing staff read a remittance."""
    if is_reversal(remittance):
        return LifecycleStatus.REVERSED
    if remittance["claim_status_code"] == DENIED:
        return LifecycleStatus.DENIED
    return LifecycleStatus.PARTIALLY_PAID if denied else LifecycleStatus.PAID


def claim_on_file(state: MemberState, claim_id: str) -> Record | None:
    """The denied claim the adjudication stage kept in the member's state, if any."""
    entry = state.claim(claim_id, forgotten_too=True)
    if entry is None or entry["claim"] is None:
        return None
    claim: Record = from_json(entry["claim"])
    return claim


def handle(key: bytes, remittance: Record, ctx: StageContext) -> list[Output]:
    """Route a denial to the rework queue; bill the patient; record the claim's outcome."""
    payer = ctx.refdata.payer(remittance["payer_id"])
    at = datetime.combine(remittance["adjudicated_date"], time(0), tzinfo=UTC)
    item = route_remittance(remittance, ctx.refdata, payer, at)
    outputs: list[Output] = []
    status = remittance_status(remittance, item is not None)
    detail = None
    if item is not None:
        detail = ",".join(
            sorted({f"{r['group_code']}-{r['code']}" for r in item["reasons"] if r["group_code"]})
        )
        state = MemberState.load(ctx.state, key)
        claim = claim_on_file(state, remittance["claim_id"])
        correction = (
            None
            if claim is None
            else auto_correct(claim, remittance, ctx.refdata, ctx.max_auto_resubmissions)
        )
        if correction is not None:
            item.update(
                status="AUTO_CORRECTED",
                correction=correction.description,
                resubmitted_claim_id=correction.claim["claim_id"],
            )
            action = resubmit_action(correction, item, at)
            outputs.append(Output(REWORK_ACTIONS, key, action))
        remind_on = remember_item(state, item)
        if remind_on is not None:
            state.commit(ctx.state)
            ctx.remind(key, remind_on)
        outputs.append(Output(DENIALS_REWORK, key, item))
    statement = patient_statement(remittance, payer)
    if statement is not None:
        outputs.append(Output(PATIENT_STATEMENTS, key, statement))
    outputs.append(
        lifecycle(
            remittance["claim_id"],
            remittance["encounter_id"],
            status,
            "denials",
            at,
            charge=remittance["total_charge_cents"],
            paid=remittance["paid_cents"],
            patient=remittance["patient_responsibility_cents"],
            payer_id=remittance["payer_id"],
            detail=detail,
        )
    )
    return outputs


def due_follow_ups(member: str, state: MemberState, today: date, ctx: StageContext) -> list[Record]:
    """The follow-ups and reminders of *member* due by *today* (the stage's sweep)."""
    return sweep_member(member, state, today, ctx.refdata.timely_filing_days)


STAGE = Stage(
    "denials",
    CLAIMS_REMITTANCE,
    handle,
    outputs=(REWORK_ACTIONS, DENIALS_REWORK, PATIENT_STATEMENTS, CLAIMS_LIFECYCLE),
    stateful=True,
    sweep=Sweep(DENIALS_REWORK, due_follow_ups, mark_made),
)

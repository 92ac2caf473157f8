"""The coding stage: ehr.encounters -> encounters.coded, or a hold in the coding queue."""

from __future__ import annotations

from processors.coding.rules import code_encounter
from processors.contracts.findings import hard_edit_ids
from processors.contracts.rework import hold_item
from processors.contracts.topics import (
    CLAIMS_LIFECYCLE,
    DENIALS_REWORK,
    EHR_ENCOUNTERS,
    ENCOUNTERS_CODED,
)
from processors.contracts.vocab import ItemKind, LifecycleStatus
from processors.ids import claim_id_for
from processors.stage import Output, Record, Stage, StageContext, lifecycle


def handle(key: bytes, event: Record, ctx: StageContext) -> list[Output]:
    """Code one encounter; hold it for a coder when a hard edit fails."""
    result = code_encounter(event, ctx.refdata)
    claim_id = claim_id_for(event["encounter_id"])
    if result.held or result.coded is None:
        item = hold_item(
            ItemKind.CODING_HOLD,
            event,
            None,
            result.findings,
            key.decode(),
            ctx.refdata.ruleset_version,
        )
        detail = hard_edit_ids(result.findings)
        return [
            Output(DENIALS_REWORK, key, item),
            lifecycle(
                claim_id,
                event["encounter_id"],
                LifecycleStatus.HELD_CODING,
                "coding",
                event["received_at"],
                detail=detail,
            ),
        ]
    return [
        Output(ENCOUNTERS_CODED, key, result.coded),
        lifecycle(
            claim_id, event["encounter_id"], LifecycleStatus.CODED, "coding", event["received_at"]
        ),
    ]


STAGE = Stage(
    "coding",
    EHR_ENCOUNTERS,
    handle,
    outputs=(ENCOUNTERS_CODED, DENIALS_REWORK, CLAIMS_LIFECYCLE),
    entry=True,
)

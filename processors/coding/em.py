"""Office E/M levels: which code the documented time or medical decision making supports."""

from __future__ import annotations

from processors.refdata import RefData

MDM_ORDER = ("straightforward", "low", "moderate", "high")


def supported_em_code(
    level_code: str, minutes: int | None, mdm: str | None, refdata: RefData
) -> str | None:
    """The highest E/M code of *level_code*'s family that time or MDM supports."""
    billed = refdata.em_levels[level_code]
    family = [
        lv
        for lv in refdata.em_levels.values()
        if lv.patient == billed.patient and lv.min_minutes > 0
    ]
    best: str | None = None
    for level in sorted(family, key=lambda lv: lv.min_minutes):
        by_time = minutes is not None and minutes >= level.min_minutes
        by_mdm = mdm in MDM_ORDER and MDM_ORDER.index(mdm) >= MDM_ORDER.index(level.mdm_level)
        if by_time or by_mdm:
            best = level.code
    return best

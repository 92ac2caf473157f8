"""NCCI procedure-to-procedure edits applied to a claim's lines (CMS NCCI PTP, practitioner).

The coding edits hold an encounter that breaks one; the payer simulator denies
the column 2 line (CO-97). Both ask the same question here.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from processors.refdata import PtpEdit, RefData

Record = dict[str, Any]

E_AND_M = ("office_visit_new", "office_visit_established")
PREVENTIVE = "preventive_visit"
# NCCI lets an E/M through a PTP edit with 25 (or 57) only; 59 and X{EPSU} never apply to it.
EM_NCCI_MODIFIERS = frozenset({"25", "57"})


def ncci_bypass_modifiers(column2_category: str, refdata: RefData) -> frozenset[str]:
    """Modifiers that let a column 2 code through a modifier-indicator-1 edit."""
    if column2_category in (*E_AND_M, PREVENTIVE):
        return EM_NCCI_MODIFIERS
    return refdata.distinct_service_modifiers


def ptp_conflicts(
    procedures: list[Record], service_date: date, refdata: RefData, categories: dict[str, str]
) -> list[tuple[int, int, PtpEdit]]:
    """(column 1 index, column 2 index, edit) for each PTP edit the lines break.

    An edit holds when it is active on *service_date* and its modifier indicator
    is 0, or 1 without a bypass modifier on the column 2 line; indicator 9 never
    holds.
    """
    out: list[tuple[int, int, PtpEdit]] = []
    for i, first in enumerate(procedures):
        for j, second in enumerate(procedures):
            if i == j or first["code"] == second["code"]:
                continue
            for edit in refdata.ptp.get((first["code"], second["code"]), ()):
                if not edit.active_on(service_date) or edit.modifier_indicator == "9":
                    continue
                if edit.modifier_indicator == "1":
                    bypass = ncci_bypass_modifiers(categories.get(second["code"], ""), refdata)
                    if set(second.get("modifiers", [])) & bypass:
                        continue
                out.append((i, j, edit))
    return out

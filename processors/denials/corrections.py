"""Automatic corrections: denials a rule can fix safely, and the claim that fixes them.

Pure functions only. A correction is made only when the claim itself shows the
fix is right, and only a configured number of times per encounter, so nothing
loops:

- OTHER-COVERAGE: an eligibility denial (the payer does not know the member, or
  coverage had not started or had ended) when the registration holds another
  plan that covers the date of service. The claim is sent, as a new original,
  to that payer.
- DISTINCT-SERVICE-MODIFIER: a line bundled into another (CO-97 or CO-236, NCCI)
  that carries no NCCI-associated modifier although it treats a diagnosis no
  other line on the claim treats: a separately identifiable problem is
  documented. The line gets 25 (an E/M) or 59 (any other service) and the claim
  is replaced (frequency 7, referencing the payer's claim control number).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any

from processors.contracts.claim import corrected_claim
from processors.contracts.remittance import denies_money
from processors.contracts.vocab import Decision
from processors.ids import stable_id
from processors.refdata import RefData

Record = dict[str, Any]

ELIGIBILITY_CARCS = frozenset({"26", "27", "31", "109", "140"})
BUNDLING_CARCS = frozenset({"97", "236"})
EM_CATEGORIES = frozenset({"office_visit_new", "office_visit_established", "preventive_visit"})
MAX_MODIFIERS = 4
# Corrected claims go out at the start of the business day the remittance is posted.
RESUBMIT_TIME = time(13, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Correction:
    """A corrected claim and why it is safe to send."""

    rule_id: str
    description: str
    claim: Record


def denied_carcs(remittance: Record) -> set[str]:
    """CARCs of the adjustments that withheld money (not CO-45, not patient shares)."""
    return {
        a["carc"] for line in remittance["lines"] for a in line["adjustments"] if denies_money(a)
    }


def _covers(coverage: Record, on: date) -> bool:
    ended = coverage.get("termination_date")
    return bool(coverage["effective_date"] <= on and (ended is None or on <= ended))


def _filed_at(remittance: Record) -> datetime:
    return datetime.combine(remittance["adjudicated_date"], RESUBMIT_TIME)


def other_coverage(claim: Record, remittance: Record, refdata: RefData) -> Correction | None:
    """Rebill an eligibility denial to another plan that covered the date of service."""
    if remittance["claim_status_code"] != "4" or not denied_carcs(remittance) <= ELIGIBILITY_CARCS:
        return None
    on = claim["service_date_from"]
    for coverage in claim.get("other_coverages") or []:
        payer = refdata.payer(coverage["payer_id"])
        if coverage["payer_id"] == claim["payer_id"] or payer is None or payer.self_pay:
            continue
        if not _covers(coverage, on):
            continue
        old = {
            "payer_id": claim["payer_id"],
            "payer_name": claim["payer_name"],
            "plan_type": claim["plan_type"],
            "member_id": claim["member_id"],
            "group_number": claim["group_number"],
            "relationship": claim["relationship"],
            "subscriber": claim["subscriber"],
            "effective_date": claim["coverage_effective_date"] or on,
            "termination_date": claim["coverage_termination_date"],
        }
        rebilled = {
            **claim,
            "claim_id": stable_id("C", claim["claim_id"], "REBILL", coverage["payer_id"]),
            "frequency_code": "1",
            "original_claim_id": claim["claim_id"],
            "payer_claim_control_number": None,
            "created_at": _filed_at(remittance),
            "resubmission": claim.get("resubmission", 0) + 1,
            "payer_id": coverage["payer_id"],
            "payer_name": coverage["payer_name"],
            "plan_type": coverage["plan_type"],
            "member_id": coverage["member_id"],
            "group_number": coverage.get("group_number"),
            "relationship": coverage["relationship"],
            "subscriber": coverage["subscriber"],
            "coverage_effective_date": coverage["effective_date"],
            "coverage_termination_date": coverage.get("termination_date"),
            "other_coverages": [old, *(c for c in claim["other_coverages"] if c is not coverage)],
        }
        return Correction(
            "OTHER-COVERAGE",
            f"Rebilled to {coverage['payer_id']}, which covered the date of service, as claim "
            f"{rebilled['claim_id']}.",
            rebilled,
        )
    return None


def _category(code: str, refdata: RefData) -> str:
    proc = refdata.procedures.get(code)
    return proc.category if proc else ""


def distinct_service_modifier(
    claim: Record, remittance: Record, refdata: RefData
) -> Correction | None:
    """Add 25 or 59 to a bundled line that treats a problem no other line treats."""
    lines = {ln["line_number"]: ln for ln in claim["lines"]}
    fixes: dict[int, str] = {}
    for paid_line in remittance["lines"]:
        carcs = {a["carc"] for a in paid_line["adjustments"] if a["group_code"] == "CO"}
        if not carcs & BUNDLING_CARCS:
            continue
        line = lines.get(paid_line["line_number"])
        if line is None or len(line["modifiers"]) >= MAX_MODIFIERS:
            return None
        if set(line["modifiers"]) & (refdata.distinct_service_modifiers | {"25", "57"}):
            return None  # the distinct service was already claimed; a person must appeal
        own = set(line["dx_pointers"])
        others = set().union(
            *(set(ln["dx_pointers"]) for n, ln in lines.items() if n != line["line_number"])
        )
        if not own or own & others:
            return None  # no separate problem is documented for it
        em = _category(line["procedure_code"], refdata) in EM_CATEGORIES
        fixes[line["line_number"]] = "25" if em else "59"
    if not fixes:
        return None
    replacement = corrected_claim(
        claim, "7", remittance["payer_claim_control_number"], _filed_at(remittance)
    )
    replacement["lines"] = [
        {**ln, "modifiers": [*ln["modifiers"], fixes[ln["line_number"]]]}
        if ln["line_number"] in fixes
        else ln
        for ln in claim["lines"]
    ]
    added = ", ".join(f"{mod} on line {n}" for n, mod in sorted(fixes.items()))
    return Correction(
        "DISTINCT-SERVICE-MODIFIER",
        f"Added {added}: the line treats a diagnosis no other line treats; replacement claim "
        f"{replacement['claim_id']}.",
        replacement,
    )


CORRECTIONS = (other_coverage, distinct_service_modifier)


def auto_correct(
    claim: Record, remittance: Record, refdata: RefData, max_resubmissions: int
) -> Correction | None:
    """The first safe correction for a denied *claim*, if it may still be resubmitted."""
    if claim.get("resubmission", 0) >= max_resubmissions:
        return None
    for rule in CORRECTIONS:
        found = rule(claim, remittance, refdata)
        if found is not None:
            return found
    return None


def resubmit_action(correction: Correction, item: Record, at: datetime) -> Record:
    """The ReworkAction that records an automatic correction and carries its claim."""
    claim = correction.claim
    return {
        "action_id": stable_id("A", item["rework_id"], correction.rule_id),
        "rework_id": item["rework_id"],
        "claim_id": item["claim_id"],
        "encounter_id": item["encounter_id"],
        "member_key": item["member_key"],
        "action": Decision.RESUBMIT,
        "changes": [],
        "claim": claim,
        "note": f"{correction.rule_id}: {correction.description}",
        "actor": "auto",
        "at": at,
    }

"""Payer adjudication simulator.

Pure functions only. :func:`adjudicate` decides a claim as the payer profile
says a payer would, given what the member has met this plan year, and returns
the 835-shaped Remittance together with the member's updated accumulators.
Amounts are integer cents; every adjustment names the rule that made it.

Idempotent by construction: the accumulators remember, per claim, what the
member had met before it, so a redelivered or replayed claim is decided again
from the same starting point and gives the same remittance.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from processors.ids import stable_id
from processors.refdata import PayerProfile, RefData

Record = dict[str, Any]
MemberState = dict[str, Any]

DENIED = "4"
PROCESSED_PRIMARY = "1"
OFFICE_VISIT_CATEGORIES = ("office_visit_new", "office_visit_established")


@dataclass(frozen=True)
class Adjudication:
    """A remittance and the member state after it."""

    remittance: Record
    member_state: MemberState


def new_member_state() -> MemberState:
    """Accumulators of a member the payer has not seen yet."""
    return {"years": {}, "claims": {}, "services": {}}


def _as_date(value: date | datetime) -> date:
    return value.date() if isinstance(value, datetime) else value


def service_fingerprint(claim: Record) -> str:
    """What makes two claims the same service: date, rendering NPI, codes and units."""
    codes = sorted(f"{ln['procedure_code']}x{ln['units']}" for ln in claim["lines"])
    return stable_id(
        "S", claim["service_date_from"].isoformat(), claim["rendering_provider"]["npi"], *codes
    )


def _adjustment(group: str, carc: str, amount: int, rule_id: str) -> Record:
    return {"group_code": group, "carc": carc, "amount_cents": amount, "rule_id": rule_id}


def _line(line: Record, allowed: int, paid: int, adjustments: list[Record],
          rarcs: list[str]) -> Record:
    return {
        "line_number": line["line_number"],
        "procedure_code": line["procedure_code"],
        "modifiers": list(line["modifiers"]),
        "units": line["units"],
        "charge_cents": line["charge_cents"],
        "allowed_cents": allowed,
        "paid_cents": paid,
        "adjustments": adjustments,
        "rarcs": rarcs,
    }


def _deny_line(line: Record, group: str, carc: str, rule_id: str,
               rarcs: list[str] | None = None) -> Record:
    return _line(line, 0, 0, [_adjustment(group, carc, line["charge_cents"], rule_id)],
                 rarcs or [])


def claim_denial(claim: Record, payer: PayerProfile,
                 state: MemberState) -> tuple[str, str, list[str]] | None:
    """The claim-level denial a payer applies before pricing, as (CARC, rule id, RARCs)."""
    service_date = claim["service_date_from"]
    if not payer.member_id_valid(claim["member_id"]):
        return "31", "ELIG-MEMBER-NOT-FOUND", []
    effective = claim.get("coverage_effective_date")
    terminated = claim.get("coverage_termination_date")
    if effective is not None and service_date < effective:
        return "26", "ELIG-NOT-YET-EFFECTIVE", ["N30"]
    if terminated is not None and service_date > terminated:
        return "27", "ELIG-TERMINATED", ["N30"]
    filed = _as_date(claim["created_at"])
    if (filed - service_date).days > payer.timely_filing_days:
        return "29", "TIMELY-FILING", []
    seen = state["services"].get(service_fingerprint(claim))
    if seen is not None and seen != claim["claim_id"]:
        return "18", "DUPLICATE-SERVICE", ["M86"]
    return None


def _price_lines(claim: Record, payer: PayerProfile, refdata: RefData,
                 met_deductible: int, met_oop: int) -> tuple[list[Record], int, int]:
    """Price and cost-share each line; returns (lines, deductible applied, PR total)."""
    out: list[Record] = []
    deductible_left = max(payer.deductible_cents - met_deductible, 0)
    oop_left = (
        None if payer.out_of_pocket_max_cents is None
        else max(payer.out_of_pocket_max_cents - met_oop, 0)
    )
    copay_taken = False
    deductible_applied = 0
    patient_total = 0
    for line in claim["lines"]:
        code = line["procedure_code"]
        proc = refdata.procedures.get(code)
        category = proc.category if proc else ""
        rule = next((r for r in payer.non_covered.values() if code in r["codes"]), None)
        if rule is not None:
            out.append(_deny_line(line, rule["group"], rule["carc"], f"NON-COVERED-{code}",
                                  ["N130"]))
            continue
        if category in payer.authorization_required and not claim.get("authorization_number"):
            out.append(_deny_line(line, "CO", "197", f"AUTH-REQUIRED-{category}"))
            continue
        charge = line["charge_cents"]
        allowed = charge * payer.allowed_percent_of_charge // 100
        adjustments: list[Record] = []
        if charge > allowed:
            adjustments.append(_adjustment("CO", "45", charge - allowed, "FEE-SCHEDULE"))
        shares: list[Record] = []
        if code not in payer.no_cost_share:
            remaining = allowed
            copay = payer.copay_cents.get(category, 0)
            if copay and not copay_taken and category in OFFICE_VISIT_CATEGORIES:
                copay = min(copay, remaining)
                copay_taken = True
                shares.append(_adjustment("PR", "3", copay, "COPAY"))
                remaining -= copay
            ded = min(deductible_left, remaining)
            if ded:
                deductible_left -= ded
                deductible_applied += ded
                shares.append(_adjustment("PR", "1", ded, "DEDUCTIBLE"))
                remaining -= ded
            coins = remaining * payer.coinsurance_percent // 100
            if coins:
                shares.append(_adjustment("PR", "2", coins, "COINSURANCE"))
        if oop_left is not None:
            capped: list[Record] = []
            for share in shares:
                amount = min(share["amount_cents"], oop_left)
                oop_left -= amount
                if amount:
                    capped.append({**share, "amount_cents": amount})
            shares = capped
        patient = sum(s["amount_cents"] for s in shares)
        patient_total += patient
        adjustments.extend(shares)
        out.append(_line(line, allowed, allowed - patient, adjustments, []))
    return out, deductible_applied, patient_total


def adjudicate(claim: Record, payer: PayerProfile, state: MemberState | None,
               refdata: RefData) -> Adjudication:
    """Decide *claim* as *payer* would, given the member's accumulators *state*."""
    state = copy.deepcopy(state) if state else new_member_state()
    service_date: date = claim["service_date_from"]
    year = str(service_date.year)
    previous = state["claims"].get(claim["claim_id"])
    if previous is not None:
        met_deductible, met_oop = previous["before"]
    else:
        acc = state["years"].get(year, [0, 0])
        met_deductible, met_oop = acc[0], acc[1]

    rarcs: list[str] = []
    if payer.self_pay:
        lines = [_line(ln, ln["charge_cents"], 0, [], []) for ln in claim["lines"]]
        deductible_applied, patient_total, status = 0, claim["total_charge_cents"], "1"
    else:
        denial = claim_denial(claim, payer, state)
        if denial is not None:
            carc, rule_id, rarcs = denial
            lines = [_deny_line(ln, "CO", carc, rule_id) for ln in claim["lines"]]
            deductible_applied, patient_total = 0, 0
        else:
            lines, deductible_applied, patient_total = _price_lines(
                claim, payer, refdata, met_deductible, met_oop
            )
        paid_any = any(ln["allowed_cents"] > 0 for ln in lines)
        status = PROCESSED_PRIMARY if paid_any else DENIED

    if previous is None:
        state["claims"][claim["claim_id"]] = {"before": [met_deductible, met_oop]}
        state["years"][year] = [met_deductible + deductible_applied, met_oop + patient_total]
        if status != DENIED:
            state["services"].setdefault(service_fingerprint(claim), claim["claim_id"])

    filed = _as_date(claim["created_at"])
    remittance = {
        "remittance_id": stable_id("R", claim["claim_id"], payer.payer_id, payer.profile_version),
        "claim_id": claim["claim_id"],
        "encounter_id": claim["encounter_id"],
        "member_key": claim["member_id"],
        "payer_id": payer.payer_id,
        "claim_status_code": status,
        "total_charge_cents": claim["total_charge_cents"],
        "paid_cents": sum(ln["paid_cents"] for ln in lines),
        "patient_responsibility_cents": patient_total,
        "plan_type": claim["plan_type"],
        "payer_claim_control_number": stable_id("", payer.payer_id, claim["claim_id"], length=14),
        "frequency_code": claim["frequency_code"],
        "adjudicated_date": filed + timedelta(days=payer.turnaround_days),
        "claim_adjustments": [],
        "lines": lines,
        "rarcs": rarcs,
        "payer_profile_version": f"{payer.payer_id}@{payer.profile_version}",
    }
    return Adjudication(remittance=remittance, member_state=state)


def is_denial(remittance: Record) -> bool:
    """True when any money was denied: a denied claim or a line adjusted other than CO-45/PR."""
    if remittance["claim_status_code"] == DENIED:
        return True
    return any(
        denies_money(adj) for line in remittance["lines"] for adj in line["adjustments"]
    )


def denies_money(adjustment: Record) -> bool:
    """True for an adjustment that withholds money: neither patient share (PR) nor CO-45."""
    group = adjustment["group_code"]
    return group != "PR" and not (group == "CO" and adjustment["carc"] == "45")

"""Payer adjudication simulator.

Pure functions only. :func:`adjudicate` decides a claim as the payer profile
says a payer would, given what the member has met this plan year, and returns
835-shaped remittances together with the member's updated accumulators.
Amounts are integer cents; every adjustment names the rule that made it.

The order is a payer's: eligibility, timely filing and duplicates decide the
whole claim; then each line is checked against the payer's coverage,
authorization, medical-necessity, bundling and frequency rules and priced from
its fee schedule; then the member's copay, deductible and coinsurance are
taken, capped by the out-of-pocket maximum. A profile may add denials at
configured rates per category (``denial_rates``) to reflect real-world noise;
the draw is a hash of (seed, claim id, payer), never ``random``.

Replacement (frequency 7) and void (8) claims first reverse the payment of the
claim they replace (CLP02 22, every amount negated, the member's accumulators
given back), then a replacement is decided as a new claim.

Decided once: the member state records each claim's remittances with what the
claim did to the accumulators (``processors.memberstate``), so a redelivered
claim gets its recorded answer back instead of being decided again from a
state that has moved on.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import lru_cache
from typing import Any

from processors.contracts.remittance import (
    DENIED,
    PROCESSED_PRIMARY,
    REVERSAL,
    is_denial,
)
from processors.ids import stable_id, unit_draw
from processors.memberstate import (
    DUE_CLAIM,
    KEPT_PLAN_YEARS,
    STATE_VERSION,
    Accumulators,
    Answer,
    Awaiting,
    ClaimRow,
    Effects,
    MemberState,
    follow_up_due,
    keepable,
)
from processors.refdata import PayerProfile, RefData
from processors.refdata.fees import FACILITY_PLACES_OF_SERVICE, NATIONAL_LOCALITY
from processors.refdata.ncci import ptp_conflicts

Record = dict[str, Any]

REPLACEMENT = "7"
VOID = "8"
SIMULATOR_VERSION = "adjudication-2"

# Medicare PFS status indicators that are never paid, as (CARC, RARC, rule id). Status X
# and E codes are outside the PFS but may be paid elsewhere (labs on the CLFS, vaccines
# at ASP, vaccine administration on its own schedule), so they are priced, not denied.
PFS_STATUS_DENIALS: dict[str, tuple[str, str, str]] = {
    "N": ("96", "N130", "PFS-STATUS-N-NONCOVERED"),
    "B": ("97", "N20", "PFS-STATUS-B-BUNDLED"),
    "P": ("97", "N20", "PFS-STATUS-P-BUNDLED"),
    "I": ("181", "", "PFS-STATUS-I-NOT-VALID-FOR-MEDICARE"),
}

# Noise categories decided for the whole claim; the others deny one line.
CLAIM_LEVEL_NOISE = (
    "eligibility",
    "registration",
    "coordination_of_benefits",
    "missing_information",
    "duplicate",
)
# Line categories each line-level noise category may strike (None: any line).
NOISE_LINE_CATEGORIES: dict[str, tuple[str, ...] | None] = {
    "excluded_service": (
        "minor_procedure",
        "injection",
        "drug",
        "vaccine",
        "imaging",
        "advanced_imaging",
        "diagnostic",
        "lab",
    ),
    "benefit_limit": (
        "preventive_visit",
        "imaging",
        "advanced_imaging",
        "lab",
        "diagnostic",
        "minor_procedure",
        "injection",
    ),
    "authorization": ("advanced_imaging", "imaging", "minor_procedure", "drug", "injection"),
    "medical_necessity": (
        "lab",
        "imaging",
        "advanced_imaging",
        "diagnostic",
        "minor_procedure",
        "drug",
        "injection",
    ),
    "coding": None,
    "bundling": None,
}
MISSING_INFORMATION_RARCS = ("N290", "M76", "N382")


@dataclass(frozen=True)
class Adjudication:
    """The remittances a claim produces and the member state after them.

    *remittances* holds the reversal of a replaced or voided claim first, when
    there is one, then the claim's own remittance (absent for a void).
    """

    remittances: list[Record]
    member_state: MemberState

    @property
    def remittance(self) -> Record:
        """The last remittance: the claim's own answer (or a void's reversal)."""
        if not self.remittances:
            raise LookupError("the payer did not answer this claim")
        return self.remittances[-1]


def new_member_state(member: bytes = b"") -> MemberState:
    """The state of a member the payer has not seen yet."""
    return MemberState.load({}, member)


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


def _line(
    line: Record, allowed: int, paid: int, adjustments: list[Record], rarcs: list[str]
) -> Record:
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


@dataclass(frozen=True, slots=True)
class LineDenial:
    """Why a payer pays nothing for a line."""

    group: str
    carc: str
    rule_id: str
    rarcs: tuple[str, ...] = ()


def _deny_line(line: Record, denial: LineDenial) -> Record:
    return _line(
        line,
        0,
        0,
        [_adjustment(denial.group, denial.carc, line["charge_cents"], denial.rule_id)],
        list(denial.rarcs),
    )


def noise_category(payer: PayerProfile, seed: int, claim_id: str) -> str | None:
    """The real-world-noise denial category drawn for this claim, if any."""
    if not payer.denial_rates:
        return None
    draw = unit_draw(seed, claim_id, payer.payer_id)
    for category, rate in payer.denial_rates.items():
        if draw < rate:
            return category
        draw -= rate
    return None


def claim_denial(
    claim: Record, payer: PayerProfile, paid_by: str | None, noise: str | None = None, seed: int = 0
) -> LineDenial | None:
    """The claim-level denial a payer applies before pricing, if any.

    *paid_by* is the claim that already paid this service for the member, if any.
    """
    service_date = claim["service_date_from"]
    if not payer.member_id_valid(claim["member_id"]):
        return LineDenial("CO", "31", "ELIG-MEMBER-NOT-FOUND")
    effective = claim.get("coverage_effective_date")
    terminated = claim.get("coverage_termination_date")
    if effective is not None and service_date < effective:
        return LineDenial("CO", "26", "ELIG-NOT-YET-EFFECTIVE", ("N30",))
    if terminated is not None and service_date > terminated:
        return LineDenial("CO", "27", "ELIG-TERMINATED", ("N30",))
    filed = _as_date(claim["created_at"])
    if (filed - service_date).days > payer.timely_filing_days:
        return LineDenial("CO", "29", "TIMELY-FILING")
    if paid_by is not None and paid_by != claim["claim_id"]:
        return LineDenial("CO", "18", "DUPLICATE-SERVICE", ("M86",))
    for name in payer.required_claim_fields:
        if not claim.get(name):
            return LineDenial("CO", "16", f"MISSING-{name.upper().replace('_', '-')}", ("MA130",))
    if noise == "eligibility":
        return LineDenial("CO", "27", "NOISE-ELIGIBILITY", ("N30",))
    if noise == "registration":
        return LineDenial("CO", "31", "NOISE-REGISTRATION")
    if noise == "coordination_of_benefits":
        return LineDenial("CO", "22", "NOISE-COB")
    if noise == "duplicate":
        return LineDenial("CO", "18", "NOISE-DUPLICATE")
    if noise == "missing_information":
        pick = unit_draw(seed, claim["claim_id"], payer.payer_id, "rarc")
        rarc = MISSING_INFORMATION_RARCS[int(pick * len(MISSING_INFORMATION_RARCS))]
        return LineDenial("CO", "16", "NOISE-MISSING-INFORMATION", (rarc,))
    return None


@dataclass
class _Pricing:
    """What pricing a claim's lines needs besides the lines."""

    claim: Record
    payer: PayerProfile
    refdata: RefData
    year: Accumulators
    categories: list[str]
    locality: str
    facility: bool


def _line_diagnoses(claim: Record, line: Record) -> list[str]:
    codes = claim["diagnoses"]
    return [codes[p - 1] for p in line.get("dx_pointers", []) if 0 < p <= len(codes)]


def limit_key(code: str, category: str, payer: PayerProfile) -> str | None:
    """The ``frequency_limits`` entry counting *code*: the code's own, else its category's."""
    if code in payer.frequency_limits:
        return code
    return category if category in payer.frequency_limits else None


def _line_rule_denials(p: _Pricing) -> dict[int, LineDenial]:
    """Line index -> the payer rule that denies it (before noise)."""
    claim, payer, refdata = p.claim, p.payer, p.refdata
    fees = refdata.fees
    out: dict[int, LineDenial] = {}
    uses = dict(p.year["uses"])
    for i, line in enumerate(claim["lines"]):
        code, category = line["procedure_code"], p.categories[i]
        rule = next((r for r in payer.non_covered.values() if code in r["codes"]), None)
        if rule is not None:
            out[i] = LineDenial(rule["group"], rule["carc"], f"NON-COVERED-{code}", ("N130",))
            continue
        rvu = fees.rvus.get(code) if fees and payer.pfs_status_rules else None
        if rvu is not None and rvu.status in PFS_STATUS_DENIALS:
            carc, rarc, rule_id = PFS_STATUS_DENIALS[rvu.status]
            out[i] = LineDenial("CO", carc, rule_id, (rarc,) if rarc else ())
            continue
        if category in payer.authorization_required:
            number = claim.get("authorization_number")
            if not number:
                out[i] = LineDenial("CO", "197", f"AUTH-REQUIRED-{category}")
                continue
            if not payer.authorization_valid(number):
                out[i] = LineDenial("CO", "15", f"AUTH-INVALID-{category}", ("N54",))
                continue
        if category in payer.referral_required and not claim.get("referral_number"):
            out[i] = LineDenial("CO", "288", f"REFERRAL-REQUIRED-{category}")
            continue
        policy = refdata.coverage.get(code)
        if (
            policy is not None
            and policy.policy_id in payer.coverage_policies
            and not policy.covers(_line_diagnoses(claim, line))
        ):
            rarc = "N386" if policy.kind == "NCD" else "N115"
            out[i] = LineDenial("CO", "50", f"COVERAGE-{policy.policy_id}", (rarc,))
            continue
        limited = limit_key(code, category, payer)
        if limited is not None:
            if uses.get(limited, 0) >= payer.frequency_limits[limited]:
                out[i] = LineDenial("CO", "119", f"FREQUENCY-{limited}", ("N130",))
                continue
            uses[limited] = uses.get(limited, 0) + 1
    procedures = [
        {"code": ln["procedure_code"], "modifiers": ln["modifiers"]} for ln in claim["lines"]
    ]
    categories = {
        ln["procedure_code"]: c for ln, c in zip(claim["lines"], p.categories, strict=True)
    }
    for i, j, _edit in ptp_conflicts(procedures, claim["service_date_from"], refdata, categories):
        if i not in out and j not in out:
            out[j] = LineDenial(
                "CO", "97", f"NCCI-PTP-{claim['lines'][i]['procedure_code']}", ("N20",)
            )
    return out


def _noise_line_denial(
    p: _Pricing, noise: str, seed: int, denied: dict[int, LineDenial]
) -> tuple[int, LineDenial] | None:
    """The line a line-level noise category strikes, and how."""
    wanted = NOISE_LINE_CATEGORIES.get(noise, ())
    candidates = [
        i
        for i, category in enumerate(p.categories)
        if i not in denied
        and (wanted is None or category in wanted)
        and not (noise == "bundling" and i == 0)
    ]
    if not candidates:
        return None
    claim_id = p.claim["claim_id"]
    index = candidates[int(unit_draw(seed, claim_id, p.payer.payer_id, "line") * len(candidates))]
    if noise == "excluded_service":
        return index, LineDenial(
            "CO", p.payer.excluded_service_carc, "NOISE-EXCLUDED-SERVICE", ("N130",)
        )
    if noise == "benefit_limit":
        return index, LineDenial("CO", "119", "NOISE-BENEFIT-LIMIT", ("N130",))
    if noise == "authorization":
        if p.claim.get("authorization_number"):
            return index, LineDenial("CO", "15", "NOISE-AUTHORIZATION", ("N54",))
        return index, LineDenial("CO", "197", "NOISE-AUTHORIZATION")
    if noise == "medical_necessity":
        rarcs = ("N115",) if p.payer.fee_basis == "medicare" and p.payer.pfs_status_rules else ()
        return index, LineDenial("CO", "50", "NOISE-MEDICAL-NECESSITY", rarcs)
    if noise == "coding":
        return index, LineDenial("CO", "11", "NOISE-CODING")
    return index, LineDenial("CO", "97", "NOISE-BUNDLING", ("M15",))


def allowed_cents(line: Record, p: _Pricing) -> tuple[int, str]:
    """The payer's allowed amount for *line* and the rule that priced it."""
    charge, code, units = line["charge_cents"], line["procedure_code"], line["units"]
    payer, fees = p.payer, p.refdata.fees
    if payer.fee_basis == "medicare" and fees is not None:
        medicare = fees.medicare_cents(code, units, p.locality, p.facility)
        if medicare is not None:
            fee = medicare * payer.percent_of_medicare // 100
            return min(charge, fee), f"FEE-SCHEDULE-{fees.edition}"
    return charge * payer.allowed_percent_of_charge // 100, "FEE-PERCENT-OF-CHARGE"


def _price_lines(p: _Pricing, denied: dict[int, LineDenial]) -> tuple[list[Record], Accumulators]:
    """Price and cost-share each line; returns the lines and what the year accumulated."""
    payer, claim = p.payer, p.claim
    out: list[Record] = []
    deductible_left = max(payer.deductible_cents - p.year["deductible"], 0)
    oop_left = (
        None
        if payer.out_of_pocket_max_cents is None
        else max(payer.out_of_pocket_max_cents - p.year["out_of_pocket"], 0)
    )
    applied: Accumulators = {"deductible": 0, "out_of_pocket": 0, "uses": {}}
    copay_taken = False
    for i, line in enumerate(claim["lines"]):
        if i in denied:
            out.append(_deny_line(line, denied[i]))
            continue
        code, category = line["procedure_code"], p.categories[i]
        limited = limit_key(code, category, payer)
        if limited is not None:
            applied["uses"][limited] = applied["uses"].get(limited, 0) + 1
        charge = line["charge_cents"]
        allowed, fee_rule = allowed_cents(line, p)
        adjustments: list[Record] = []
        if charge > allowed:
            adjustments.append(_adjustment("CO", "45", charge - allowed, fee_rule))
        shares: list[Record] = []
        copay = payer.copay_cents.get(category, 0)
        if code in payer.no_cost_share:
            pass
        elif copay:
            # A copay service costs the member its copay, once per visit, and nothing else:
            # the deductible and coinsurance do not apply to it.
            copay = 0 if copay_taken else min(copay, allowed)
            copay_taken = True
            if copay:
                shares.append(_adjustment("PR", "3", copay, "COPAY"))
        else:
            remaining = allowed
            ded = min(deductible_left, remaining)
            if ded:
                deductible_left -= ded
                applied["deductible"] += ded
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
        applied["out_of_pocket"] += patient
        adjustments.extend(shares)
        out.append(_line(line, allowed, allowed - patient, adjustments, []))
    return out, applied


def _locality(claim: Record, payer: PayerProfile, refdata: RefData) -> str:
    if payer.pfs_locality:
        return payer.pfs_locality
    address = claim["billing_provider"].get("address") or {}
    found = refdata.fees.locality_for_state(address.get("state", "")) if refdata.fees else None
    return found or NATIONAL_LOCALITY


@lru_cache(maxsize=4096)
def payment_trace_number(payer_id: str, payee_npi: str, paid_on: date) -> str:
    """TRN02: the EFT trace or check number of one payer's payment to one payee on one day."""
    digest = stable_id("", payer_id, payee_npi, paid_on.isoformat(), length=12)
    return f"{int(digest, 16) % 10**10:010d}"


def _remittance(
    claim: Record,
    payer: PayerProfile,
    lines: list[Record],
    status: str,
    rarcs: list[str],
    *,
    claim_id: str | None = None,
    frequency: str | None = None,
    pccn: str | None = None,
    original_pccn: str | None = None,
) -> Record:
    filed = _as_date(claim["created_at"])
    paid_on = filed + timedelta(days=payer.turnaround_days)
    answered = claim_id or claim["claim_id"]
    patient_total = sum(
        a["amount_cents"] for ln in lines for a in ln["adjustments"] if a["group_code"] == "PR"
    )
    line_dates = {ln["line_number"]: ln.get("service_date") for ln in claim["lines"]}
    lines = [
        {**ln, "service_date": line_dates.get(ln["line_number"]) or claim["service_date_from"]}
        for ln in lines
    ]
    payee = claim["billing_provider"]
    subscriber = claim["subscriber"] if claim.get("relationship", "18") != "18" else None
    return {
        "remittance_id": stable_id(
            "R", answered, status, claim["claim_id"], payer.payer_id, payer.profile_version
        ),
        "claim_id": answered,
        "encounter_id": claim["encounter_id"],
        "member_key": claim["member_id"],
        "payer_id": payer.payer_id,
        "claim_status_code": status,
        "total_charge_cents": sum(ln["charge_cents"] for ln in lines),
        "paid_cents": sum(ln["paid_cents"] for ln in lines),
        "patient_responsibility_cents": patient_total,
        "plan_type": claim["plan_type"],
        "payer_claim_control_number": pccn or stable_id("", payer.payer_id, answered, length=14),
        "frequency_code": frequency or claim["frequency_code"],
        "adjudicated_date": paid_on,
        "claim_adjustments": [],
        "lines": lines,
        "rarcs": rarcs,
        "payer_profile_version": f"{payer.payer_id}@{payer.profile_version}|{SIMULATOR_VERSION}",
        "in_response_to": claim["claim_id"],
        "original_payer_claim_control_number": original_pccn,
        "service_date_from": claim["service_date_from"],
        "service_date_to": claim.get("service_date_to") or claim["service_date_from"],
        "payer_received_date": filed,
        "payment_method": payer.payment_method,
        "payment_trace_number": payment_trace_number(payer.payer_id, payee["npi"], paid_on),
        "patient": claim["patient"],
        "subscriber": subscriber,
        "payee": payee,
        "rendering_npi": (claim.get("rendering_provider") or {}).get("npi"),
        "rendering_provider": claim.get("rendering_provider"),
        "place_of_service": claim.get("place_of_service"),
    }


def _negated(lines: list[Record]) -> list[Record]:
    return [
        {
            **ln,
            "charge_cents": -ln["charge_cents"],
            "allowed_cents": -ln["allowed_cents"],
            "paid_cents": -ln["paid_cents"],
            "adjustments": [{**a, "amount_cents": -a["amount_cents"]} for a in ln["adjustments"]],
        }
        for ln in lines
    ]


def _kept_lines(lines: list[Record]) -> list[Record]:
    """A copy of adjudicated lines to keep in the state (never shared with a remittance)."""
    return [
        {
            **ln,
            "modifiers": list(ln["modifiers"]),
            "rarcs": list(ln["rarcs"]),
            "adjustments": [dict(a) for a in ln["adjustments"]],
        }
        for ln in lines
    ]


def _reversal_of(claim: Record, payer: PayerProfile, original_id: str, answer: Answer) -> Record:
    return _remittance(
        claim,
        payer,
        _negated(answer["lines"]),
        REVERSAL,
        [],
        claim_id=original_id,
        frequency=answer["frequency"],
        pccn=answer["pccn"],
    )


def _void_denial(claim: Record, payer: PayerProfile) -> Record:
    lines = [
        _deny_line(ln, LineDenial("CO", "16", "VOID-NO-PAYMENT-ON-FILE", ("MA130",)))
        for ln in claim["lines"]
    ]
    return _remittance(claim, payer, lines, DENIED, ["MA130"])


def recorded_answer(
    claim: Record, payer: PayerProfile, state: MemberState, row: ClaimRow
) -> list[Record]:
    """The remittances the payer sent for *claim*, rebuilt from its claim row."""
    out: list[Record] = []
    original_id = row["reversal"]
    if original_id:
        original = state.claim(original_id, forgotten_too=True)
        if original is not None and original["answer"] is not None:
            out.append(_reversal_of(claim, payer, original_id, original["answer"]))
    if row["void_denied"]:
        out.append(_void_denial(claim, payer))
    answer = row["answer"]
    if answer is not None:
        out.append(
            _remittance(
                claim,
                payer,
                _kept_lines(answer["lines"]),
                answer["status"],
                list(answer["rarcs"]),
                original_pccn=answer["original_pccn"],
            )
        )
    return out


def _reverse(
    claim: Record, payer: PayerProfile, state: MemberState, effects: Effects
) -> Record | None:
    """Reverse the payment of the claim *claim* replaces or voids; None when nothing to reverse.

    The member's accumulators get back what the original claim took from
    them, once: a claim already reversed by another is not reversed again.
    """
    original_id = claim.get("original_claim_id")
    if not original_id:
        return None
    original = state.claim(original_id)
    answer = original["answer"] if original is not None else None
    if answer is None:
        return None
    if answer["status"] == DENIED:
        return None  # nothing was paid or owed, so there is nothing to take back
    year = str(answer["year"])
    by = state.reversed_by(original_id, year)
    if by not in (None, claim["claim_id"]):
        return None
    if by is None:
        acc = state.year(year)
        applied = answer["applied"]
        acc["deductible"] -= applied["deductible"]
        acc["out_of_pocket"] -= applied["out_of_pocket"]
        uses = {k: v - applied["uses"].get(k, 0) for k, v in acc["uses"].items()}
        acc["uses"] = {k: n for k, n in uses.items() if n}
        state.set_year(year, acc)
        state.mark_reversed(original_id, year, claim["claim_id"])
        effects["years"][year] = acc
        effects["reversed"].append([original_id, year])
        if state.service(answer["fingerprint"]) == original_id:
            state.drop_service(answer["fingerprint"])
            effects["services_dropped"].append(answer["fingerprint"])
    return _reversal_of(claim, payer, original_id, answer)


def _self_pay(claim: Record, payer: PayerProfile, state: MemberState) -> Adjudication:
    lines = [_line(ln, ln["charge_cents"], 0, [], []) for ln in claim["lines"]]
    remittance = _remittance(claim, payer, lines, PROCESSED_PRIMARY, [])
    remittance["patient_responsibility_cents"] = claim["total_charge_cents"]
    return Adjudication([remittance], state)


def _apply_effects(state: MemberState, row: ClaimRow, effects: Effects) -> None:
    """Apply what a recorded claim did to the member row, which a crash kept from counting it."""
    for year, acc in effects["years"].items():
        state.set_year(year, acc)
    for original_id, year in effects["reversed"]:
        state.mark_reversed(original_id, year, row["claim_id"])
    for fingerprint in effects["services_dropped"]:
        state.drop_service(fingerprint)
    added = effects["service"]
    if added is not None:
        state.put_service(added[0], row["claim_id"], added[1])
    for token, when in effects["due"].items():
        state.set_due(token, when)
    if effects["first_year"] is not None:
        state.forget_before(effects["first_year"])
    state.advance(row["seq"])


def _record(
    state: MemberState,
    claim: Record,
    effects: Effects,
    *,
    year: str,
    answer: Answer | None,
    keep_claim: bool,
    reversal: str | None,
    void_denied: bool = False,
    awaiting: Awaiting | None = None,
) -> None:
    """Keep the payer's answer to *claim* as its claim row, and count it in the member row.

    The row holds what rebuilds the remittances (:func:`recorded_answer`): the
    answer's lines and status, the claim reversed, whether a void was denied.
    """
    seq = state.seq + 1
    first_year = int(year) - KEPT_PLAN_YEARS + 1
    if state.first_year is None or first_year > state.first_year:
        effects["first_year"] = first_year
    state.put_claim(
        claim["claim_id"],
        {
            "v": STATE_VERSION,
            "seq": seq,
            "claim_id": claim["claim_id"],
            "year": year,
            "answer": answer,
            "reversal": reversal,
            "void_denied": void_denied,
            "claim": keepable(claim) if keep_claim else None,
            "awaiting": awaiting,
            "effects": effects,
        },
    )
    if effects["first_year"] is not None:
        state.forget_before(effects["first_year"])
    state.advance(seq)


def adjudicate(
    claim: Record, payer: PayerProfile, state: MemberState | None, refdata: RefData, seed: int = 0
) -> Adjudication:
    """Decide *claim* as *payer* would, given the member's accumulators *state*.

    A claim the state already holds an answer for gets that answer again,
    whatever has happened since: a redelivered claim is never decided twice.
    """
    state = (state or new_member_state(claim["member_id"].encode())).fork()
    if payer.self_pay:
        return _self_pay(claim, payer, state)
    previous = state.claim(claim["claim_id"], forgotten_too=True)
    if previous is not None and previous["effects"] is not None:
        if previous["seq"] > state.seq:
            _apply_effects(state, previous, previous["effects"])
        return Adjudication(recorded_answer(claim, payer, state, previous), state)
    if previous is not None:  # decided by version 1: again from what it started from
        before = previous.get("before")
        again = _decide(claim, payer, state.fork(), refdata, seed, before, record=False)
        return Adjudication(again.remittances, state)
    return _decide(claim, payer, state, refdata, seed, None, record=True)


def _decide(
    claim: Record,
    payer: PayerProfile,
    state: MemberState,
    refdata: RefData,
    seed: int,
    before: Accumulators | None,
    *,
    record: bool,
) -> Adjudication:
    effects: Effects = {
        "years": {},
        "reversed": [],
        "services_dropped": [],
        "service": None,
        "due": {},
        "first_year": None,
    }
    out: list[Record] = []
    reversed_id: str | None = None
    if claim["frequency_code"] in (REPLACEMENT, VOID):
        reversal = _reverse(claim, payer, state, effects)
        if reversal is not None:
            out.append(reversal)
            reversed_id = reversal["claim_id"]
        if claim["frequency_code"] == VOID:
            if reversal is None:  # no payment on file to take back
                out.append(_void_denial(claim, payer))
            if record:
                _record(
                    state,
                    claim,
                    effects,
                    year=str(claim["service_date_from"].year),
                    answer=None,
                    keep_claim=False,
                    reversal=reversed_id,
                    void_denied=reversal is None,
                )
            return Adjudication(out, state)

    service_date: date = claim["service_date_from"]
    year_key = str(service_date.year)
    year = before if before is not None else state.year(year_key)

    noise = noise_category(payer, seed, claim["claim_id"])
    if noise == "no_response":
        # The payer never received the claim (or lost it): no answer at all. The claim is
        # kept so a follow-up can find it when the payer's turnaround has long passed.
        if record:
            awaiting: Awaiting = {
                "payer_id": payer.payer_id,
                "filed": _as_date(claim["created_at"]).isoformat(),
                "turnaround_days": payer.turnaround_days,
            }
            effects["due"][DUE_CLAIM + claim["claim_id"]] = follow_up_due(awaiting).isoformat()
            state.set_due(
                DUE_CLAIM + claim["claim_id"], effects["due"][DUE_CLAIM + claim["claim_id"]]
            )
            _record(
                state,
                claim,
                effects,
                year=year_key,
                answer=None,
                keep_claim=True,
                reversal=reversed_id,
                awaiting=awaiting,
            )
        return Adjudication(out, state)
    fingerprint = service_fingerprint(claim)
    denial = claim_denial(claim, payer, state.service(fingerprint), noise, seed)
    claim_rarcs: list[str] = []
    applied: Accumulators = {"deductible": 0, "out_of_pocket": 0, "uses": {}}
    if denial is not None:
        lines = [
            _deny_line(ln, LineDenial(denial.group, denial.carc, denial.rule_id))
            for ln in claim["lines"]
        ]
        claim_rarcs = list(denial.rarcs)
    else:
        categories = [
            (
                refdata.procedures[ln["procedure_code"]].category
                if ln["procedure_code"] in refdata.procedures
                else ""
            )
            for ln in claim["lines"]
        ]
        pricing = _Pricing(
            claim,
            payer,
            refdata,
            year,
            categories,
            _locality(claim, payer, refdata),
            claim.get("place_of_service") in FACILITY_PLACES_OF_SERVICE,
        )
        denied = _line_rule_denials(pricing)
        if noise is not None:
            struck = _noise_line_denial(pricing, noise, seed, denied)
            if struck is not None:
                denied[struck[0]] = struck[1]
        lines, applied = _price_lines(pricing, denied)
    paid_any = any(ln["allowed_cents"] > 0 for ln in lines)
    status = PROCESSED_PRIMARY if paid_any else DENIED
    original_pccn = (
        claim.get("payer_claim_control_number") if claim["frequency_code"] == REPLACEMENT else None
    )
    remittance = _remittance(claim, payer, lines, status, claim_rarcs, original_pccn=original_pccn)
    out.append(remittance)
    if not record:
        return Adjudication(out, state)

    uses = dict(year["uses"])
    for category, n in applied["uses"].items():
        uses[category] = uses.get(category, 0) + n
    after: Accumulators = {
        "deductible": year["deductible"] + applied["deductible"],
        "out_of_pocket": year["out_of_pocket"] + applied["out_of_pocket"],
        "uses": uses,
    }
    state.set_year(year_key, after)
    effects["years"][year_key] = after
    if status != DENIED and state.service(fingerprint) is None:
        state.put_service(fingerprint, claim["claim_id"], year_key)
        effects["service"] = [fingerprint, year_key]
    answer: Answer = {
        "year": year_key,
        "applied": applied,
        "fingerprint": fingerprint,
        "pccn": remittance["payer_claim_control_number"],
        "status": status,
        "frequency": claim["frequency_code"],
        "lines": _kept_lines(lines),
        "rarcs": claim_rarcs,
        "original_pccn": original_pccn,
    }
    # A denied claim is kept so the rework stage can correct and resubmit it.
    _record(
        state,
        claim,
        effects,
        year=year_key,
        answer=answer,
        keep_claim=is_denial(remittance),
        reversal=reversed_id,
    )
    return Adjudication(out, state)

"""Properties every remittance holds, over random claims, payers and member states."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from processors.adjudication.rules import adjudicate, new_member_state
from processors.claims.rules import build_claim
from processors.coding.rules import code_encounter
from processors.contracts.claim import corrected_claim
from processors.contracts.remittance import DENIED, REVERSAL
from processors.memberstate import MemberState
from processors.refdata import load_refdata
from tests.builders import encounter

REFDATA = load_refdata()
PAYERS = sorted(p for p, profile in REFDATA.payers.items() if not profile.self_pay)
MEMBER_IDS = {
    "PPO-SIM": "PPO123456789",
    "HMO-SIM": "HMO123456789",
    "MCD-SIM": "123456789012",
    "MCR-B-SIM": "1EG4TE5MK73",
}
DIAGNOSES = ["I10", "E119", "E785", "R5383", "M5450", "J069", "Z0000", "S61411A", "M1711"]
MODIFIERS = ["25", "59", "XS", "RT", "LT", "95"]
TEMPLATE = build_claim(code_encounter(encounter(), REFDATA).coded, REFDATA).claim  # type: ignore[arg-type]


@st.composite
def lines(draw: st.DrawFn) -> list[dict[str, Any]]:
    """One to eight service lines with any known code, units, modifiers and charge."""
    count = draw(st.integers(1, 8))
    out = []
    for n in range(1, count + 1):
        out.append(
            {
                "line_number": n,
                "procedure_code": draw(st.sampled_from(sorted(REFDATA.procedures))),
                "modifiers": draw(st.lists(st.sampled_from(MODIFIERS), max_size=2, unique=True)),
                "charge_cents": draw(st.integers(1, 2_000_000)),
                "units": draw(st.integers(1, 40)),
                "place_of_service": "11",
                "dx_pointers": draw(
                    st.lists(st.integers(1, 4), min_size=1, max_size=4, unique=True)
                ),
                "service_date": None,
            }
        )
    return out


@st.composite
def claims(draw: st.DrawFn) -> tuple[dict[str, Any], str]:
    """A random claim for a random payer."""
    payer_id = draw(st.sampled_from(PAYERS))
    service = draw(st.dates(date(2025, 1, 1), date(2026, 12, 31)))
    claim_lines = draw(lines())
    claim = {
        **TEMPLATE,
        "claim_id": draw(st.from_regex(r"C[0-9A-F]{16}", fullmatch=True)),
        "payer_id": payer_id,
        "member_id": draw(st.sampled_from([MEMBER_IDS[payer_id], "BAD1"])),
        "plan_type": REFDATA.payers[payer_id].plan_type,
        "service_date_from": service,
        "service_date_to": service,
        "created_at": datetime.combine(service, datetime.min.time(), UTC)
        + timedelta(days=draw(st.integers(0, 400))),
        "place_of_service": draw(st.sampled_from(["11", "22", "02"])),
        "diagnoses": draw(st.lists(st.sampled_from(DIAGNOSES), min_size=4, max_size=4)),
        "lines": claim_lines,
        "total_charge_cents": sum(ln["charge_cents"] for ln in claim_lines),
        "authorization_number": draw(st.sampled_from([None, "PA123456789", "X1"])),
        "group_number": draw(st.sampled_from([None, "GRP100"])),
        "coverage_effective_date": date(2024, 1, 1),
        "coverage_termination_date": draw(st.sampled_from([None, date(2026, 6, 30)])),
    }
    return claim, payer_id


@st.composite
def member_states(draw: st.DrawFn) -> MemberState:
    """Accumulators part way through the years a claim may fall in."""
    state = new_member_state()
    for year in ("2025", "2026"):
        state.set_year(
            year,
            {
                "deductible": draw(st.integers(0, 300_000)),
                "out_of_pocket": draw(st.integers(0, 900_000)),
                "uses": {"preventive_visit": draw(st.integers(0, 2))},
            },
        )
    return state


def assert_balanced(remit: dict[str, Any]) -> None:
    """Charge minus every adjustment equals paid, for each line and for the claim."""
    for line in remit["lines"]:
        adjusted = sum(a["amount_cents"] for a in line["adjustments"])
        assert line["charge_cents"] - adjusted == line["paid_cents"], line
    claim_adjusted = sum(a["amount_cents"] for a in remit["claim_adjustments"])
    line_adjusted = sum(a["amount_cents"] for ln in remit["lines"] for a in ln["adjustments"])
    assert remit["total_charge_cents"] - claim_adjusted - line_adjusted == remit["paid_cents"]
    assert remit["total_charge_cents"] == sum(ln["charge_cents"] for ln in remit["lines"])
    patient = sum(
        a["amount_cents"]
        for ln in remit["lines"]
        for a in ln["adjustments"]
        if a["group_code"] == "PR"
    )
    assert remit["patient_responsibility_cents"] == patient


def assert_sensible(remit: dict[str, Any]) -> None:
    """Outside reversals: nothing negative, paid <= allowed <= charge, real adjustments only."""
    for line in remit["lines"]:
        assert 0 <= line["paid_cents"] <= line["allowed_cents"] <= line["charge_cents"]
        assert all(a["amount_cents"] > 0 for a in line["adjustments"])
        assert all(a["group_code"] in ("CO", "PR", "OA", "PI") for a in line["adjustments"])


@settings(max_examples=400, deadline=None)
@given(claims(), member_states(), st.integers(0, 2**31))
def test_every_remittance_balances(
    drawn: tuple[dict[str, Any], str], state: MemberState, seed: int
) -> None:
    """Whatever the claim, payer, accumulators and seed, the 835 balancing rules hold."""
    claim, payer_id = drawn
    result = adjudicate(claim, REFDATA.payers[payer_id], state, REFDATA, seed)
    for remit in result.remittances:
        assert_balanced(remit)
        assert_sensible(remit)
        assert remit["claim_status_code"] in ("1", "4")


@settings(max_examples=150, deadline=None)
@given(claims(), member_states(), st.integers(0, 2**31))
def test_reversal_balances_and_undoes_the_accumulators(
    drawn: tuple[dict[str, Any], str], state: MemberState, seed: int
) -> None:
    """A void's reversal balances with negated amounts and gives back what the claim took."""
    claim, payer_id = drawn
    payer = REFDATA.payers[payer_id]
    first = adjudicate(claim, payer, state, REFDATA, seed)
    void = corrected_claim(claim, "8", first.remittance["payer_claim_control_number"])
    result = adjudicate(void, payer, first.member_state, REFDATA, seed)
    (reversal,) = result.remittances
    if first.remittance["claim_status_code"] == DENIED:
        # Nothing was paid or owed: the payer has nothing to reverse and denies the void.
        assert reversal["claim_status_code"] == DENIED
        assert_balanced(reversal)
        assert result.member_state.row["years"] == first.member_state.row["years"]
        return
    assert reversal["claim_status_code"] == REVERSAL
    assert_balanced(reversal)
    assert reversal["paid_cents"] == -first.remittance["paid_cents"]
    year = str(claim["service_date_from"].year)
    after, before = result.member_state.year(year), state.year(year)
    assert (after["deductible"], after["out_of_pocket"]) == (
        before["deductible"],
        before["out_of_pocket"],
    )
    assert {k: n for k, n in after["uses"].items() if n} == {
        k: n for k, n in before["uses"].items() if n
    }

"""Denial routing and rework items."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime
from typing import Any

from processors.adjudication.rules import adjudicate, new_member_state
from processors.claims.rules import build_claim
from processors.coding.rules import code_encounter
from processors.denials.rules import hold_item, priority, route_remittance, routing_table
from processors.denials.stage import handle
from processors.refdata import load_refdata
from processors.stage import StageContext
from tests.builders import coverage, encounter, procedure

REFDATA = load_refdata()
# Without noise denials: each test's outcome comes from its own claim.
PPO = dataclasses.replace(REFDATA.payers["PPO-SIM"], denial_rates={})
AT = datetime(2026, 3, 20, tzinfo=UTC)


def remittance(**overrides: Any) -> dict[str, Any]:
    """The PPO's remittance for an encounter with *overrides*."""
    coded = code_encounter(encounter(**overrides), REFDATA).coded
    assert coded is not None
    claim = build_claim(coded, REFDATA).claim
    return adjudicate(claim, PPO, new_member_state(), REFDATA).remittance


def test_a_paid_claim_makes_no_rework_item() -> None:
    """Contractual and patient-responsibility adjustments are not denials."""
    assert route_remittance(remittance(), REFDATA, PPO.appeal_days, AT) is None


def test_terminated_coverage_goes_to_the_front_desk_to_verify_eligibility() -> None:
    """CO-27 is an eligibility denial: verify coverage, front desk queue, full charge at stake."""
    remit = remittance(coverage=coverage(terminated=date(2026, 1, 1)))
    item = route_remittance(remit, REFDATA, PPO.appeal_days, AT)
    assert item is not None
    assert (item["category"], item["action"], item["queue"]) == (
        "eligibility", "verify_eligibility", "front_desk")
    assert item["amount_at_stake_cents"] == remit["total_charge_cents"]
    assert item["deadline"] == remit["adjudicated_date"].fromordinal(
        remit["adjudicated_date"].toordinal() + PPO.appeal_days)
    assert any(r["code"] == "N30" for r in item["reasons"])


def test_the_category_with_most_money_denied_leads() -> None:
    """A visit paid and an MRI denied for authorization: the item is an authorization item."""
    remit = remittance(procedures=[procedure("99213"), procedure("72148")], diagnoses=["M5450"])
    item = route_remittance(remit, REFDATA, PPO.appeal_days, AT)
    assert item is not None
    assert item["category"] == "authorization"
    assert [r["line_number"] for r in item["reasons"] if r["group_code"]] == [2]


def test_unknown_carc_routes_to_triage_not_dropped() -> None:
    """A CARC missing from the table still yields an item, in the triage queue."""
    remit = remittance(coverage=coverage(terminated=date(2026, 1, 1)))
    for line in remit["lines"]:
        for adj in line["adjustments"]:
            adj["carc"] = "B99"
    item = route_remittance(remit, REFDATA, PPO.appeal_days, AT)
    assert item is not None
    assert item["queue"] == "triage"


def test_every_carc_category_has_a_route() -> None:
    """Each category used in carc.csv is in the routing table."""
    table = routing_table()
    assert {category for category, _ in REFDATA.carc.values()} <= set(table)


def test_priority_grows_with_money_and_nearing_deadlines() -> None:
    """More dollars or a deadline within 30 days raises the priority."""
    assert priority(100_000, 50, None) > priority(10_000, 50, None)
    assert priority(100_000, 50, 10) > priority(100_000, 50, 90)


def test_coding_hold_item_names_the_edits_and_the_coding_queue() -> None:
    """A coding hold carries each hard finding as a reason and goes to coding."""
    result = code_encounter(encounter(diagnoses=["M545"]), REFDATA)
    item = hold_item("CODING_HOLD", encounter(), None, result.findings, "PPO123456789",
                     REFDATA.ruleset_version)
    assert item["queue"] == "coding"
    assert item["claim_id"] is None
    assert [r["code"] for r in item["reasons"]] == ["ICD-BILLABLE"]
    assert "M54.50" in item["suggested_fix"]


def test_denials_stage_records_the_final_status_on_the_lifecycle() -> None:
    """A denied remittance yields a rework item and a DENIED lifecycle record."""
    remit = remittance(coverage=coverage(terminated=date(2026, 1, 1)))
    outputs = handle(b"PPO123456789", remit, StageContext(REFDATA))
    assert [o.topic.name for o in outputs] == ["denials.rework", "claims.lifecycle"]
    assert outputs[1].record["status"] == "DENIED"
    assert outputs[1].key == remit["claim_id"].encode()

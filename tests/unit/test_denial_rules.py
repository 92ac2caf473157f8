"""Denial classification, rework items, automatic corrections and patient statements."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from processors.adjudication.rules import adjudicate
from processors.coding.rules import code_encounter
from processors.contracts.rework import hold_item, priority
from processors.contracts.vocab import ItemKind
from processors.denials.corrections import (
    auto_correct,
    distinct_service_modifier,
    other_coverage,
)
from processors.denials.resubmit import handle as resubmit
from processors.denials.rules import (
    classify,
    denial_rules,
    patient_statement,
    route_remittance,
    routing_table,
)
from processors.denials.stage import handle
from processors.memberstate import MemberState
from processors.refdata import load_refdata
from processors.stage import StageContext
from tests.builders import built_claim as claim
from tests.builders import coverage, encounter, procedure

REFDATA = load_refdata()
# Without noise denials: each test's outcome comes from its own claim.
PPO = dataclasses.replace(REFDATA.payers["PPO-SIM"], denial_rates={})
HMO = dataclasses.replace(REFDATA.payers["HMO-SIM"], denial_rates={})
AT = datetime(2026, 3, 20, tzinfo=UTC)
TERMINATED = {"coverage": coverage(terminated=date(2026, 1, 1))}
NEW_PLAN = coverage("HMO-SIM", "HMO987654321", "HM", effective=date(2026, 1, 2))


def answered(c: dict[str, Any], payer: Any = PPO) -> tuple[dict[str, Any], dict[bytes, Any]]:
    """The payer's remittance for *c* and the state store holding the member's state after it."""
    store: dict[bytes, Any] = {}
    result = adjudicate(c, payer, MemberState.load(store, c["member_id"].encode()), REFDATA)
    result.member_state.commit(store)
    return result.remittance, store


def remittance(**overrides: Any) -> dict[str, Any]:
    """The PPO's remittance for an encounter with *overrides*."""
    return answered(claim(**overrides))[0]


class TestClassification:
    def test_a_paid_claim_makes_no_rework_item(self) -> None:
        """Contractual and patient-responsibility adjustments are not denials."""
        assert route_remittance(remittance(), REFDATA, PPO, AT) is None

    def test_terminated_coverage_goes_to_the_front_desk_to_verify_eligibility(self) -> None:
        """CO-27 with N30: verify coverage, front desk, full charge, corrected-claim deadline."""
        remit = remittance(**TERMINATED)
        item = route_remittance(remit, REFDATA, PPO, AT)
        assert item is not None
        assert (item["category"], item["action"], item["queue"]) == (
            "eligibility",
            "verify_eligibility",
            "front_desk",
        )
        assert item["amount_at_stake_cents"] == remit["total_charge_cents"]
        assert item["deadline"] == remit["service_date_from"] + timedelta(
            days=PPO.timely_filing_days
        )
        assert item["deadline_kind"] == "corrected_claim"
        assert item["payer_claim_control_number"] == remit["payer_claim_control_number"]
        assert any(r["code"] == "N30" for r in item["reasons"])

    def test_appeal_deadline_counts_from_the_remittance(self) -> None:
        """An authorization denial is appealed within the payer's appeal days."""
        remit = remittance(procedures=[procedure("99213"), procedure("72148")], diagnoses=["M5450"])
        item = route_remittance(remit, REFDATA, PPO, AT)
        assert item is not None
        assert (item["action"], item["deadline_kind"]) == ("appeal", "appeal")
        assert item["deadline"] == remit["adjudicated_date"] + timedelta(days=PPO.appeal_days)

    def test_the_route_with_most_money_denied_leads(self) -> None:
        """A visit paid and an MRI denied for authorization: the item is an authorization item."""
        remit = remittance(procedures=[procedure("99213"), procedure("72148")], diagnoses=["M5450"])
        item = route_remittance(remit, REFDATA, PPO, AT)
        assert item is not None
        assert item["category"] == "authorization"
        assert [r["line_number"] for r in item["reasons"] if r["group_code"]] == [2]

    def test_remark_code_refines_the_route(self) -> None:
        """CO-16 alone is missing information for billing; with N382 it goes to the front desk."""
        plain = classify("CO", "16", [], REFDATA)
        with_remark = classify("CO", "16", ["N382"], REFDATA)
        assert (plain.queue, with_remark.queue) == ("billing", "front_desk")
        assert with_remark.action == "verify_eligibility"

    def test_unknown_carc_routes_to_triage_not_dropped(self) -> None:
        """A CARC missing from the table still yields an item, in the triage queue."""
        remit = remittance(**TERMINATED)
        remit["rarcs"] = []
        for line in remit["lines"]:
            for adj in line["adjustments"]:
                adj["carc"] = "B99"
        item = route_remittance(remit, REFDATA, PPO, AT)
        assert item is not None
        assert (item["queue"], item["category"]) == ("triage", "triage")

    def test_every_carc_category_has_a_route(self) -> None:
        """Each category used in carc.csv and denial_rules.csv is in the routing table."""
        table = routing_table()
        assert {category for category, _ in REFDATA.carc.values()} <= set(table)
        assert {r.category for r in denial_rules().values()} <= set(table)

    def test_every_carc_the_simulator_uses_has_wording(self) -> None:
        """Each CARC and RARC a payer profile or rule can produce is in the code tables."""
        produced = {
            "1",
            "2",
            "3",
            "11",
            "15",
            "16",
            "18",
            "22",
            "26",
            "27",
            "29",
            "31",
            "45",
            "49",
            "50",
            "96",
            "97",
            "119",
            "181",
            "197",
            "204",
            "288",
        }
        assert produced <= set(REFDATA.carc)
        remarks = {
            "M15",
            "M76",
            "M86",
            "MA130",
            "N20",
            "N30",
            "N54",
            "N115",
            "N130",
            "N290",
            "N382",
            "N386",
        }
        assert remarks <= set(REFDATA.rarc)

    def test_priority_grows_with_money_and_nearing_deadlines(self) -> None:
        """More dollars or a nearer deadline raises the priority; a missed one drops it."""
        assert priority(100_000, 50, None) > priority(10_000, 50, None)
        assert priority(100_000, 50, 10) > priority(100_000, 50, 90)
        assert priority(100_000, 50, 0) == 2 * priority(100_000, 50, 90)
        assert priority(100_000, 50, -1) == 1


class TestHolds:
    def test_coding_hold_item_names_the_edits_and_the_coding_queue(self) -> None:
        """A coding hold carries each hard finding as a reason and goes to coding."""
        result = code_encounter(encounter(diagnoses=["M545"]), REFDATA)
        item = hold_item(
            ItemKind.CODING_HOLD,
            encounter(),
            None,
            result.findings,
            "PPO123456789",
            REFDATA.ruleset_version,
        )
        assert item["queue"] == "coding"
        assert item["claim_id"] is None
        assert [r["code"] for r in item["reasons"]] == ["ICD-BILLABLE"]
        assert "M54.50" in item["suggested_fix"]
        assert item["status"] == "OPEN"


class TestCorrections:
    def test_eligibility_denial_is_rebilled_to_the_plan_that_covered_the_date(self) -> None:
        """Old plan ended, new HMO plan on file: a new original claim to the HMO."""
        c = claim(**TERMINATED, other_coverages=[NEW_PLAN])
        remit, _ = answered(c)
        fix = other_coverage(c, remit, REFDATA)
        assert fix is not None
        new = fix.claim
        assert (new["payer_id"], new["member_id"], new["frequency_code"]) == (
            "HMO-SIM",
            "HMO987654321",
            "1",
        )
        assert new["original_claim_id"] == c["claim_id"]
        assert new["claim_id"] != c["claim_id"]
        assert new["resubmission"] == 1
        assert new["other_coverages"][0]["payer_id"] == "PPO-SIM"
        assert new["created_at"].date() == remit["adjudicated_date"]

    def test_other_coverage_that_had_ended_is_not_used(self) -> None:
        """A plan on file that did not cover the date of service is no fix."""
        ended = {**NEW_PLAN, "termination_date": date(2026, 2, 1)}
        c = claim(**TERMINATED, other_coverages=[ended])
        remit, _ = answered(c)
        assert other_coverage(c, remit, REFDATA) is None

    def test_rebilled_claim_is_paid_by_the_new_plan(self) -> None:
        """The HMO answers the rebilled claim without an eligibility denial."""
        c = claim(**TERMINATED, other_coverages=[NEW_PLAN])
        remit, _ = answered(c)
        fix = other_coverage(c, remit, REFDATA)
        assert fix is not None
        fix.claim["group_number"] = "GRP100"
        again, _ = answered(fix.claim, HMO)
        assert again["claim_status_code"] == "1"

    def bundled(self, distinct: bool) -> tuple[dict[str, Any], dict[str, Any]]:
        """An injection denied CO-97 beside a repair; for a separate problem when *distinct*."""
        c = claim(
            procedures=[
                procedure("12001", refs=[0]),
                procedure("96372", refs=[1] if distinct else [0], modifiers=["XS"]),
            ],
            diagnoses=["S61411A", "J4521"],
        )
        c["lines"][1]["modifiers"] = []
        remit, _ = answered(c)
        assert remit["lines"][1]["adjustments"][0]["carc"] == "97"
        return c, remit

    def test_bundled_line_for_a_separate_problem_gets_59_and_is_replaced(self) -> None:
        """CO-97 on a line treating its own diagnosis: 59 added, frequency 7 with the PCCN."""
        c, remit = self.bundled(distinct=True)
        fix = distinct_service_modifier(c, remit, REFDATA)
        assert fix is not None
        new = fix.claim
        assert new["lines"][1]["modifiers"] == ["59"]
        assert new["lines"][0]["modifiers"] == c["lines"][0]["modifiers"]
        assert (new["frequency_code"], new["payer_claim_control_number"]) == (
            "7",
            remit["payer_claim_control_number"],
        )

    def test_bundled_line_sharing_the_diagnosis_is_left_to_a_person(self) -> None:
        """The same injection for the same diagnosis: nothing shows a distinct service."""
        c, remit = self.bundled(distinct=False)
        assert distinct_service_modifier(c, remit, REFDATA) is None

    def test_corrections_stop_at_the_configured_number_of_resubmissions(self) -> None:
        """A claim already resubmitted the maximum number of times is not corrected again."""
        c = claim(**TERMINATED, other_coverages=[NEW_PLAN])
        remit, _ = answered(c)
        assert auto_correct(c, remit, REFDATA, max_resubmissions=1) is not None
        c["resubmission"] = 1
        assert auto_correct(c, remit, REFDATA, max_resubmissions=1) is None


class TestDenialsStage:
    def test_denial_yields_an_item_and_a_denied_status(self) -> None:
        """A denied remittance: one rework item and a DENIED lifecycle record."""
        c = claim(**TERMINATED)
        remit, state = answered(c)
        outputs = handle(b"PPO123456789", remit, StageContext(REFDATA, state))
        assert [o.topic.name for o in outputs] == ["denials.rework", "claims.lifecycle"]
        assert outputs[1].record["status"] == "DENIED"
        assert outputs[1].key == remit["claim_id"].encode()

    def test_correctable_denial_is_marked_and_resubmitted_through_an_action(self) -> None:
        """The item says AUTO_CORRECTED and a RESUBMIT action carries the new claim."""
        c = claim(**TERMINATED, other_coverages=[NEW_PLAN])
        remit, state = answered(c)
        outputs = handle(b"PPO123456789", remit, StageContext(REFDATA, state))
        by_topic = {o.topic.name: o for o in outputs}
        item = by_topic["denials.rework"].record
        action = by_topic["rework.actions"]
        assert item["status"] == "AUTO_CORRECTED"
        assert item["resubmitted_claim_id"] == action.record["claim"]["claim_id"]
        assert action.key == b"PPO123456789"
        assert action.record["actor"] == "auto"
        # The rebilled claim belongs to the new plan's member: the action is passed on to
        # that member's partition, and the claim is sent from there.
        (forward,) = resubmit(action.key, action.record, StageContext(REFDATA))
        assert (forward.topic.name, forward.key) == ("rework.actions", b"HMO987654321")
        sent = resubmit(forward.key, forward.record, StageContext(REFDATA))
        assert sent[0].topic.name == "claims.submitted"
        assert sent[0].key == b"HMO987654321"
        assert sent[0].record == action.record["claim"]

    def test_without_the_claim_on_file_the_denial_is_left_for_a_person(self) -> None:
        """A remittance whose claim the state does not hold (e.g. a real 835) is not corrected."""
        c = claim(**TERMINATED, other_coverages=[NEW_PLAN])
        remit, _ = answered(c)
        outputs = handle(b"PPO123456789", remit, StageContext(REFDATA))
        item = next(o.record for o in outputs if o.topic.name == "denials.rework")
        assert item["status"] == "OPEN"

    def test_patient_share_yields_a_statement(self) -> None:
        """A lab under the deductible: the patient is billed the deductible, line by line."""
        remit, state = answered(claim(procedures=[procedure("80053")]))
        outputs = handle(b"PPO123456789", remit, StageContext(REFDATA, state))
        statement = next(o.record for o in outputs if o.topic.name == "patients.statements")
        assert statement["amount_due_cents"] == remit["patient_responsibility_cents"] > 0
        assert statement["lines"][0]["reasons"] == ["Deductible"]
        assert statement["due_date"] == remit["adjudicated_date"] + timedelta(days=30)


class TestStatements:
    def test_nothing_owed_means_no_statement(self) -> None:
        """A fully denied claim leaves the patient owing nothing."""
        assert patient_statement(remittance(**TERMINATED), PPO) is None

    def test_self_pay_patient_owes_the_whole_charge(self) -> None:
        """Self-pay: the statement is the charge, each line marked self-pay."""
        c = claim(coverage=None)
        selfpay = REFDATA.payers["SELFPAY"]
        remit = adjudicate(c, selfpay, None, REFDATA).remittance
        statement = patient_statement(remit, selfpay)
        assert statement is not None
        assert statement["amount_due_cents"] == c["total_charge_cents"]
        assert statement["lines"][0]["reasons"] == ["Self-pay"]


class TestResubmitStage:
    @pytest.mark.parametrize(
        ("action", "status"),
        [
            ("APPEAL", "APPEALED"),
            ("WRITE_OFF", "WRITTEN_OFF"),
            ("BILL_PATIENT", "BILLED_TO_PATIENT"),
        ],
    )
    def test_a_persons_decision_is_recorded_on_the_claim(self, action: str, status: str) -> None:
        """Appeal, write-off and patient billing become the claim's status."""
        record: dict[str, Any] = {
            "action_id": "A1",
            "rework_id": "W1",
            "claim_id": "C1",
            "encounter_id": "E1",
            "member_key": "PPO1",
            "action": action,
            "changes": [],
            "claim": None,
            "note": "called the payer",
            "actor": "jdoe",
            "at": AT,
        }
        (out,) = resubmit(b"PPO1", record, StageContext(REFDATA))
        assert (out.record["claim_id"], out.record["status"]) == ("C1", status)

    def test_a_claim_the_payer_has_decided_is_not_sent_again(self) -> None:
        """The same RESUBMIT twice: the corrected claim goes once; the second finds it decided."""
        fixed = claim(encounter_id="E-FIXED")
        record: dict[str, Any] = {
            "action_id": "A1",
            "rework_id": "W1",
            "claim_id": "C1",
            "encounter_id": "E1",
            "member_key": "PPO123456789",
            "action": "RESUBMIT",
            "changes": [],
            "claim": fixed,
            "note": None,
            "actor": "jdoe",
            "at": AT,
        }
        key = b"PPO123456789"
        (sent, _status) = resubmit(key, record, StageContext(REFDATA))
        assert sent.topic.name == "claims.submitted"
        _, store = answered(sent.record)
        assert resubmit(key, record, StageContext(REFDATA, store)) == []

    def test_resubmit_without_a_claim_is_refused(self) -> None:
        """A RESUBMIT must carry the corrected claim; otherwise it is a dead letter."""
        record: dict[str, Any] = {
            "action_id": "A1",
            "rework_id": "W1",
            "claim_id": "C1",
            "encounter_id": "E1",
            "member_key": "PPO1",
            "action": "RESUBMIT",
            "changes": [],
            "claim": None,
            "note": None,
            "actor": "jdoe",
            "at": AT,
        }
        with pytest.raises(ValueError, match="without the corrected claim"):
            resubmit(b"PPO1", record, StageContext(REFDATA))

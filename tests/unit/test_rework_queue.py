"""The rework queue: open items, a person's corrections, resubmitted claims, claim history."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, time
from typing import Any

import pytest

from processors.adjudication.rules import adjudicate
from processors.denials.queue import (
    ChangeError,
    apply_changes,
    history,
    open_items,
    parse_change,
    person_action,
    resubmission,
)
from processors.denials.rules import route_remittance
from processors.refdata import load_refdata
from tests.builders import built_claim as claim
from tests.builders import coverage, procedure

REFDATA = load_refdata()
PPO = dataclasses.replace(REFDATA.payers["PPO-SIM"], denial_rates={})
AT = datetime(2026, 4, 1, 15, 0, tzinfo=UTC)


def denied(**overrides: Any) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """A claim, its remittance and the rework item of its denial."""
    c = claim(**overrides)
    remit = adjudicate(c, PPO, None, REFDATA).remittance
    posted = datetime.combine(remit["adjudicated_date"], time(0), tzinfo=UTC)
    item = route_remittance(remit, REFDATA, PPO, posted)
    assert item is not None
    return c, remit, item


MRI = {"procedures": [procedure("99213"), procedure("72148")], "diagnoses": ["M5450"]}


class TestOpenItems:
    def test_an_item_closes_when_someone_acts_on_it(self) -> None:
        """Open items exclude those with an action and those corrected automatically."""
        _, _, a = denied(**MRI)
        _, _, b = denied(coverage=coverage(terminated=date(2026, 1, 1)), encounter_id="E2")
        auto = {**b, "rework_id": "W-AUTO", "status": "AUTO_CORRECTED"}
        assert {i["rework_id"] for i in open_items([a, b, auto], [])} == {
            a["rework_id"],
            b["rework_id"],
        }
        acted = person_action(a, "APPEAL", actor="jdoe", at=AT)
        assert [i["rework_id"] for i in open_items([a, b], [acted])] == [b["rework_id"]]

    def test_open_items_come_highest_priority_first(self) -> None:
        """The queue is sorted by priority, highest first."""
        _, _, a = denied(**MRI)
        low = {**a, "rework_id": "W-LOW", "priority": 1}
        assert [i["rework_id"] for i in open_items([low, a], [])] == [a["rework_id"], "W-LOW"]


class TestChanges:
    def test_cli_forms_parse_into_claim_changes(self) -> None:
        """member_id=X is claim level; add_modifier=2:59 names a line."""
        assert parse_change("member_id", "PPO1") == {
            "field": "member_id",
            "line_number": None,
            "value": "PPO1",
        }
        assert parse_change("add_modifier", "2:59") == {
            "field": "add_modifier",
            "line_number": 2,
            "value": "59",
        }

    @pytest.mark.parametrize(
        ("field", "value", "message"),
        [
            ("add_modifier", "59", "LINE:VALUE"),
            ("diagnoses", "I10", "cannot change"),
        ],
    )
    def test_bad_change_says_what_to_write(self, field: str, value: str, message: str) -> None:
        """A change the CLI cannot apply is refused with the expected form."""
        with pytest.raises(ChangeError, match=message):
            parse_change(field, value)

    def test_changes_apply_to_a_copy(self) -> None:
        """Authorization, a modifier and units change; the original claim is untouched."""
        c = claim(**MRI)
        fixed = apply_changes(
            c,
            [
                parse_change("authorization_number", "PA123456789"),
                parse_change("add_modifier", "2:RT"),
                parse_change("units", "1:2"),
            ],
        )
        assert fixed["authorization_number"] == "PA123456789"
        assert fixed["lines"][1]["modifiers"] == ["RT"]
        assert fixed["lines"][0]["charge_cents"] == 2 * c["lines"][0]["charge_cents"]
        assert fixed["total_charge_cents"] == sum(ln["charge_cents"] for ln in fixed["lines"])
        assert c["authorization_number"] is None
        assert c["lines"][1]["modifiers"] == []

    def test_pointer_past_the_diagnoses_is_refused(self) -> None:
        """Pointers must name one of the claim's diagnoses."""
        with pytest.raises(ChangeError, match="diagnoses 1 to 1"):
            apply_changes(claim(), [parse_change("dx_pointers", "1:2")])


class TestResubmission:
    def test_adjudicated_claim_is_replaced_with_its_control_number(self) -> None:
        """An authorization denial resubmitted with the number: frequency 7, PCCN referenced."""
        c, remit, item = denied(**MRI)
        new = resubmission(c, item, [parse_change("authorization_number", "PA1")], AT)
        assert (new["frequency_code"], new["payer_claim_control_number"]) == (
            "7",
            remit["payer_claim_control_number"],
        )
        assert (new["original_claim_id"], new["created_at"], new["resubmission"]) == (
            c["claim_id"],
            AT,
            1,
        )
        paid = adjudicate(new, PPO, None, REFDATA).remittance
        assert not any(a["carc"] == "197" for ln in paid["lines"] for a in ln["adjustments"])

    def test_unprocessable_claim_goes_again_as_a_new_claim(self) -> None:
        """CO-16 with MA130: not a replacement but a new original claim."""
        c = claim()
        c["group_number"] = None
        remit = adjudicate(c, PPO, None, REFDATA).remittance
        item = route_remittance(remit, REFDATA, PPO, AT)
        assert item is not None
        new = resubmission(c, item, [parse_change("group_number", "GRP100")], AT)
        assert (new["frequency_code"], new["payer_claim_control_number"]) == ("1", None)
        assert new["claim_id"] != c["claim_id"]


class TestHistory:
    def test_history_follows_the_encounter_across_its_claims_in_order(self) -> None:
        """Submitted, denied, rework item, a person's resubmission, the replacement paid."""
        c, remit, item = denied(**MRI)
        new = resubmission(c, item, [parse_change("authorization_number", "PA1")], AT)
        action = person_action(item, "RESUBMIT", actor="jdoe", at=AT, claim=new, note="auth")
        answer = adjudicate(new, PPO, None, REFDATA).remittance
        events = history(c["claim_id"], [c, new], [remit, answer], [item], [action])
        assert [e.status for e in events] == [
            "SUBMITTED",
            "PARTIALLY_PAID",
            "REWORK",
            "ACTION",
            "SUBMITTED",
            "PAID",
        ]
        assert events[-1].claim_id == new["claim_id"]
        assert events[-1].paid_cents == answer["paid_cents"]
        assert "jdoe" in events[3].detail

    def test_unknown_claim_has_no_history(self) -> None:
        """A claim id on no topic gives an empty history."""
        assert history("CNOPE", [], [], [], []) == []

"""The whole pipeline with workers as subprocesses on a real broker."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from pipeline.config import Settings
from pipeline.views.exports import export_837p
from pipeline.views.outcomes import paid_rates
from processors.contracts.remittance import is_denial
from tests.e2e.flow import run_flow
from tests.x12_checks import pyx12_accepts

ENCOUNTERS = 2000
MALFORMED = 4


@pytest.mark.parametrize("topology", ["staged", "fused"])
def test_every_encounter_ends_exactly_once(
    settings_factory: Callable[..., Settings], tmp_path: Path, topology: str
) -> None:
    """2,000 encounters each end once as a remittance, hold or dead letter; counts reconcile;
    every denial is one rework item, and automatic corrections raise the paid rate."""
    settings = settings_factory(topology=topology)
    collector, counts, fed = run_flow(settings, tmp_path, ENCOUNTERS, seed=42, malformed=MALFORMED)
    o = collector.outcomes
    assert sum(o.duplicates.values()) == 0, o.duplicates.most_common(5)
    remitted, held = o.remitted_encounters(), set(o.holds)
    dead = [d for d in o.dead_letters if d["record_id"]]
    assert not remitted & held
    assert len(remitted) + len(held) + len(o.dead_letters) == fed + MALFORMED
    assert sum(1 for d in o.dead_letters if d["error_type"] == "DECODE") == MALFORMED
    assert not {d["record_id"] for d in dead} & (remitted | held)

    # Topic counts reconcile with the outcomes, stage by stage.
    coding_holds = sum(h["kind"] == "CODING_HOLD" for h in o.holds.values())
    scrubber_holds = sum(h["kind"] == "SCRUBBER_HOLD" for h in o.holds.values())
    assert counts["ehr.encounters"] == fed + MALFORMED
    assert counts["encounters.coded"] == fed - coding_holds - len(dead)
    assert len(remitted) == counts["encounters.coded"] - scrubber_holds
    assert counts["claims.submitted"] >= len(remitted)  # a claim past 50 lines is split
    answers = o.answers()
    assert counts["claims.submitted"] == len(answers)  # each claim answered once
    assert counts["claims.remittance"] == len(o.remittances)
    assert counts["denials.rework"] == len(o.holds) + len(o.denials) + len(o.followups)
    assert counts["pipeline.dead-letter"] == len(o.dead_letters)

    # The feed's problems really show up as holds, in the coding queue, and as denials.
    assert coding_holds > 0
    coding = [h for h in o.holds.values() if h["kind"] == "CODING_HOLD"]
    assert {h["queue"] for h in coding} == {"coding"}
    held_edits = {r["code"] for h in coding for r in h["reasons"]}
    assert {"ICD-BILLABLE", "ICD-VALID", "EM-LEVEL", "EM-MOD25", "MUE"} <= held_edits
    assert all(h["suggested_fix"] for h in coding)
    # The submitted claims export as 837P interchanges that pyx12 accepts, one CLM per claim.
    files = export_837p(settings, tmp_path / "x12")
    clm = sum(text.count("~CLM*") for text in (f.read_text() for f in files))
    assert clm == sum(r["payer_id"] != "SELFPAY" for r in answers.values())
    assert all(pyx12_accepts(f) for f in files)

    carcs = Counter(r["code"] for d in o.denials.values() for r in d["reasons"] if r["group_code"])
    assert {"27", "29", "197", "50"} <= set(carcs)

    # Every denied or partly denied answer ends in exactly one rework item.
    denied = {r["remittance_id"] for r in o.remittances.values() if is_denial(r)}
    items = Counter(item["remittance_id"] for item in o.denials.values())
    assert set(items) == denied
    assert max(items.values()) == 1
    # Automatic corrections went out as actions, were answered, and raised the paid rate.
    # A rebill to another plan's member is passed on once to that member's partition.
    corrected = [i for i in o.denials.values() if i["status"] == "AUTO_CORRECTED"]
    assert corrected
    rebilled = sum(
        1 for i in corrected if answers[i["resubmitted_claim_id"]]["member_key"] != i["member_key"]
    )
    assert counts["rework.actions"] == len(corrected) + rebilled
    assert all(i["resubmitted_claim_id"] in answers for i in corrected)
    rates = paid_rates(o)
    assert rates["final_paid_rate"] > rates["first_pass_paid_rate"]
    assert rates["final_paid_cents"] > rates["first_pass_paid_cents"]
    # Each encounter has one final state.
    states = o.final_states()
    assert set(states) == o.accounted()
    assert len(states) == fed + MALFORMED
    # The patient is billed whenever a payer leaves them a share.
    owed = sum(1 for r in o.remittances.values() if r["patient_responsibility_cents"])
    assert counts["patients.statements"] == owed


def test_replaying_the_same_feed_gives_the_same_outcomes(
    settings_factory: Callable[..., Settings], tmp_path: Path
) -> None:
    """Two runs of the same seed on fresh topics produce identical remittances and holds."""
    first, _, _ = run_flow(settings_factory(), tmp_path / "a", 300, seed=5, workers=1)
    second, _, _ = run_flow(
        settings_factory(topology="fused"), tmp_path / "b", 300, seed=5, workers=1
    )
    assert first.outcomes.remittances == second.outcomes.remittances
    assert first.outcomes.holds == second.outcomes.holds
    assert first.outcomes.denials == second.outcomes.denials
    assert first.outcomes.followups == second.outcomes.followups

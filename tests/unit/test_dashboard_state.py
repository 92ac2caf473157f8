"""The dashboard's numbers, computed from the records a run publishes."""

from __future__ import annotations

from collections import Counter

from pipeline.ingest.synthetic import generate
from pipeline.runtime.dryrun import Failure, InProcessPipeline
from pipeline.views.dashboard_state import DashboardState
from processors.contracts.remittance import is_denial
from processors.refdata import load_refdata

REFDATA = load_refdata()


def test_snapshot_counts_rates_queue_and_aging() -> None:
    """Totals, rates by payer, denials by category and the open queue match the records."""
    state = DashboardState()
    records = [
        o
        for o in InProcessPipeline(REFDATA, 2026).run_all(generate(500, 9))
        if not isinstance(o, Failure)
    ]
    for out in records:
        state.add(out.topic.name, out.record)
    state.add("pipeline.dead-letter", {"stage": "coding"})
    snap = state.snapshot()
    remits = [o.record for o in records if o.topic.name == "claims.remittance"]
    denials = [
        o.record
        for o in records
        if o.topic.name == "denials.rework" and o.record["kind"] == "DENIAL"
    ]
    totals = snap["totals"]
    assert totals["remittances"] == len(remits)
    assert totals["denials"] == len(denials)
    assert totals["dead_letters"] == 1
    assert snap["by_category"] == dict(Counter(d["category"] for d in denials))
    insured = [r for r in remits if r["payer_id"] != "SELFPAY" and r["claim_status_code"] != "22"]
    first_pass = sum(
        is_denial(r)
        for r in insured
        if not any(d["resubmitted_claim_id"] == r["claim_id"] for d in denials)
    )
    assert totals["first_pass_denial_rate"] == round(first_pass / totals["insured_claims"], 4)
    assert totals["final_denial_rate"] <= totals["first_pass_denial_rate"]
    assert "SELFPAY" not in snap["by_payer"]
    split = snap["by_category_first_and_final"]
    # A corrected claim may be denied again for another reason, so compare the totals.
    assert sum(v["final"] for v in split.values()) <= sum(v["first_pass"] for v in split.values())
    eligibility = split["eligibility"]
    assert eligibility["final"] < eligibility["first_pass"]  # rebilled to the plan on file
    assert sum(snap["aging"].values()) == totals["open_items"]
    watched = {"claims.submitted", "claims.remittance", "denials.rework", "rework.actions"}
    assert snap["version"] == sum(o.topic.name in watched for o in records) + 1


def test_the_snapshot_says_whether_the_reader_is_live_and_why_not() -> None:
    """A new state is waiting; the reader's status and reason show in the snapshot and move
    the revision (what the event stream watches), not the record count."""
    state = DashboardState()
    assert state.snapshot()["source"] == {"status": "waiting", "reason": "connecting to the broker"}
    before = state.revision
    state.set_source("waiting", "topics not created yet: claims.remittance")
    state.set_source("waiting", "topics not created yet: claims.remittance")  # no change
    assert state.revision == before + 1
    state.set_source("live")
    snap = state.snapshot()
    assert snap["source"] == {"status": "live", "reason": None}
    assert snap["version"] == 0
    state.add("pipeline.dead-letter", {"stage": "coding"})
    assert (state.version, state.revision) == (1, before + 3)

"""Claims a payer never answers get a status inquiry once business time has moved on."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from pipeline.config import Settings
from pipeline.ingest.feed import publish
from pipeline.ingest.synthetic import generate
from pipeline.kafka.readers import snapshot_offsets
from pipeline.runtime.dryrun import Failure, InProcessPipeline
from pipeline.runtime.processes import WorkerPool
from pipeline.views.outcomes import OutcomeCollector
from processors.contracts.topics import CLAIMS_REMITTANCE, CLAIMS_SUBMITTED
from processors.memberstate import GRACE_DAYS
from processors.refdata import PAYERS_DIR, load_refdata

ENCOUNTERS = 500
SEED = 31


def test_unanswered_claims_get_a_follow_up(
    settings_factory: Callable[..., Settings], tmp_path: Path
) -> None:
    """A PPO that loses 15% of its claims: each lost claim filed well before the end of the
    feed gets one FOLLOW_UP item in the billing queue, and no answered claim gets one."""
    payers = tmp_path / "payers"
    shutil.copytree(PAYERS_DIR, payers)
    profile = json.loads((payers / "commercial-ppo.json").read_text())
    profile["denial_rates"]["no_response"] = 0.15
    (payers / "commercial-ppo.json").write_text(json.dumps(profile))
    settings = settings_factory(payers_dir=payers)

    # Which claims the payer will leave unanswered, from the same stage functions in process.
    refdata = load_refdata(payers)
    outputs = [
        o
        for o in InProcessPipeline(refdata, settings.seed).run_all(generate(ENCOUNTERS, SEED))
        if not isinstance(o, Failure)
    ]
    submitted = {o.record["claim_id"]: o.record for o in outputs if o.topic is CLAIMS_SUBMITTED}
    answered = {o.record["claim_id"] for o in outputs if o.topic is CLAIMS_REMITTANCE}
    lost = {cid: c for cid, c in submitted.items() if cid not in answered}
    assert lost
    last_filed = max(c["created_at"] for c in submitted.values()).date()
    turnaround = refdata.payers["PPO-SIM"].turnaround_days
    overdue = {
        cid
        for cid, c in lost.items()
        if c["created_at"].date() + timedelta(days=turnaround + GRACE_DAYS + 30) <= last_filed
    }
    assert overdue

    collector = OutcomeCollector(settings, snapshot_offsets(settings))
    with WorkerPool(settings, 1, tmp_path / "logs") as pool:
        pool.wait_ready()
        fed = publish(settings, generate(ENCOUNTERS, SEED), progress=None)
        lost_encounters = {c["encounter_id"] for c in lost.values()}
        assert collector.wait_for(
            fed.sent - len(lost_encounters), timeout=300, progress=None, alive=pool.check_alive
        )
        # Let the last sweeps publish what they found.
        collector.wait_for(fed.sent + 1, timeout=5, progress=None)
    collector.close()
    follow_ups = [f for f in collector.outcomes.followups.values() if f["kind"] == "FOLLOW_UP"]
    asked = {f["claim_id"] for f in follow_ups}
    assert overdue <= asked <= set(lost)
    assert len(asked) == len(follow_ups)
    assert {(f["queue"], f["action"]) for f in follow_ups} == {("billing", "claim_status_inquiry")}

"""The worker's Prometheus endpoint reports what the topics hold."""

from __future__ import annotations

import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from pipeline.config import Settings
from pipeline.ingest.feed import publish
from pipeline.ingest.synthetic import generate
from pipeline.kafka.readers import record_counts, snapshot_offsets
from pipeline.runtime.processes import WorkerPool
from pipeline.views.outcomes import OutcomeCollector
from tests.e2e.flow import free_port
from tests.waiting import wait_until


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of /metrics as {(name, labels): value}."""
    url = f"http://127.0.0.1:{port}/metrics"
    with urllib.request.urlopen(url, timeout=10) as answer:
        text = answer.read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_metrics_match_the_topics(
    settings_factory: Callable[..., Settings], tmp_path: Path
) -> None:
    """Records per stage, dead letters, rework items by category, and a lag that drains."""
    port = free_port()
    settings = settings_factory(metrics_port=port)
    before = snapshot_offsets(settings)
    collector = OutcomeCollector(settings, before)
    with WorkerPool(settings, 1, tmp_path / "logs") as pool:
        pool.wait_ready()
        fed = publish(settings, generate(300, 4), malformed=3, seed=4, progress=None)
        assert collector.wait_for(
            fed.sent + fed.malformed, timeout=300, progress=None, alive=pool.check_alive
        )

        def no_lag() -> bool:
            lag = {
                labels: v
                for (name, labels), v in scrape(port).items()
                if name == "claims_consumer_lag"
            }
            return bool(lag) and not any(lag.values())

        wait_until(no_lag, 60, "the workers report no consumer lag", every=1)
        # Everything is consumed: the topics and the counters hold still, so read both now
        # (follow-up sweeps may have added reminders after the outcomes were collected).
        time.sleep(2)
        counts = record_counts(settings, before)
        samples = scrape(port)
    collector.close()

    def total(name: str, **labels: str) -> float:
        return sum(
            v
            for (n, ls), v in samples.items()
            if n == name and all((k, w) in ls for k, w in labels.items())
        )

    assert (
        total("claims_stage_records_total", stage="coding")
        == counts["ehr.encounters"] - fed.malformed
    )
    assert total("claims_stage_records_total", stage="adjudication") == counts["claims.submitted"]
    assert total("claims_dead_letters_total") == counts["pipeline.dead-letter"] == 3
    assert total("claims_rework_items_total") == counts["denials.rework"]
    denials = collector.outcomes.denials.values()
    assert (
        total("claims_rework_items_total", kind="DENIAL", category="eligibility")
        == sum(1 for d in denials if d["category"] == "eligibility")
        > 0
    )
    lag = {labels: v for (name, labels), v in samples.items() if name == "claims_consumer_lag"}
    assert lag
    assert not any(lag.values())

"""The dashboard in headless Chromium shows what the topics hold, and updates live."""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pipeline.config import Settings, load_settings, to_env
from pipeline.ingest.feed import publish
from pipeline.ingest.synthetic import generate
from pipeline.kafka.admin import create_topics
from pipeline.kafka.readers import read_topic, record_counts, snapshot_offsets
from pipeline.runtime.processes import WorkerPool
from pipeline.views.outcomes import OutcomeCollector
from processors.contracts.topics import CLAIMS_REMITTANCE, DENIALS_REWORK, REWORK_ACTIONS
from processors.denials.queue import open_items
from tests.browser import Browser
from tests.e2e.flow import free_port
from tests.waiting import wait_until

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
ALL_ADDRESSES = "0.0.0.0"  # noqa: S104 - the test checks that this needs a token


def metric(browser: Browser, name: str) -> str:
    """The text of a dashboard figure."""
    value: str = browser.evaluate(f"document.querySelector('[data-metric=\"{name}\"]').textContent")
    return value


# Runs before the page's own script (DevTools injects it): keeps every policy violation.
WATCH_CSP = (
    "window.cspViolations = []; document.addEventListener('securitypolicyviolation', "
    "(e) => window.cspViolations.push(`${e.violatedDirective} ${e.blockedURI}`));"
)


def watch_csp(browser: Browser) -> None:
    """Record Content-Security-Policy violations in ``window.cspViolations`` from the next load."""
    browser.call("Page.enable")
    browser.call("Page.addScriptToEvaluateOnNewDocument", source=WATCH_CSP)


def get(url: str) -> int:
    """The HTTP status of GET *url*."""
    try:
        with urllib.request.urlopen(url, timeout=10) as answer:  # noqa: S310 - localhost
            status: int = answer.status
            return status
    except urllib.error.HTTPError as exc:
        return exc.code
    except urllib.error.URLError:
        return 0  # not listening yet


def stop(process: subprocess.Popen[bytes]) -> None:
    """Stop a dashboard process, killing it if it does not end in time."""
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


@pytest.fixture
def dashboard(settings_factory: Callable[..., Settings]) -> Iterator[tuple[Settings, int]]:
    """A dashboard process over fresh topics, with its port."""
    settings = settings_factory()
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "pipeline.cli.main", "dashboard", "--port", str(port)],
        env={**os.environ, **to_env(settings)},
        stderr=subprocess.DEVNULL,
    )
    wait_until(
        lambda: get(f"http://127.0.0.1:{port}/api/summary") == 200,
        30,
        "the dashboard answers",
        every=0.3,
    )
    yield settings, port
    stop(process)


def test_dashboard_numbers_equal_the_topics_and_update_without_reload(
    dashboard: tuple[Settings, int], tmp_path: Path
) -> None:
    """Counts on the page equal the topics'; new remittances appear live; a click shows a
    claim's lineage; a screenshot is kept."""
    settings, port = dashboard
    before = snapshot_offsets(settings)
    collector = OutcomeCollector(settings, before)
    with WorkerPool(settings, 1, tmp_path / "logs") as pool, Browser() as browser:
        pool.wait_ready()
        fed = publish(settings, generate(300, 6), malformed=2, seed=6, progress=None)
        assert collector.wait_for(
            fed.sent + fed.malformed, timeout=300, progress=None, alive=pool.check_alive
        )
        counts = record_counts(settings, before)
        watch_csp(browser)
        browser.open(f"http://127.0.0.1:{port}/")

        # The page shows each remittance once: the distinct remittance ids on the topic, read
        # again until they agree (an automatic correction may still be answered, and a
        # redelivery after a rebalance repeats a record without adding a remittance).
        def remittances_agree() -> str | None:
            ids = {r["remittance_id"] for _, r in read_topic(settings, CLAIMS_REMITTANCE, {}) if r}
            shown = metric(browser, "remittances")
            return shown if shown == str(len(ids)) else None

        expected = wait_until(
            remittances_agree, 60, "the page's remittances equal the distinct ones on the topic"
        )
        browser.evaluate("window.loadedOnce = true")

        # Reminders may still be swept out as business time settles: compare once the page
        # and the topics agree, within a deadline.
        def agreed() -> tuple[list[dict[str, Any]]] | None:
            items = [i for _, i in read_topic(settings, DENIALS_REWORK, {}) if i is not None]
            actions = [a for _, a in read_topic(settings, REWORK_ACTIONS, {}) if a is not None]
            expected_open = str(len(open_items(items, actions)))
            return (items,) if metric(browser, "open-items") == expected_open else None

        (items,) = wait_until(agreed, 60, "the page's open items equal the topics'", every=1)
        assert metric(browser, "denials") == str(sum(i["kind"] == "DENIAL" for i in items))
        assert metric(browser, "dead-letters") == str(counts["pipeline.dead-letter"]) == "2"
        assert browser.evaluate("document.querySelectorAll('#chart-payer rect').length") >= 8
        assert browser.evaluate("document.querySelectorAll('#chart-time polyline').length") > 0
        # Legend colours are set through the DOM, which the page's policy allows.
        assert browser.evaluate(
            "getComputedStyle(document.querySelector('#legend-time i')).backgroundColor"
        ) not in ("", "rgba(0, 0, 0, 0)")

        # More encounters: the figures change on the page that is already open.
        more = publish(settings, generate(40, 66), progress=None)
        assert collector.wait_for(
            fed.sent + fed.malformed + more.sent, timeout=300, progress=None, alive=pool.check_alive
        )
        now = wait_until(
            remittances_agree, 60, "the page's remittances equal the topic's after more encounters"
        )
        assert int(now) > int(expected)
        assert browser.evaluate("window.loadedOnce") is True

        # A click on a queue row shows that claim's lineage.
        claim_id = browser.wait_for(
            "(document.querySelector('#queue tr[data-claim]:not("
            '[data-claim=""])\') || {}).dataset?.claim'
        )
        browser.evaluate(f"document.querySelector('#queue tr[data-claim=\"{claim_id}\"]').click()")
        browser.wait_for(
            f"document.querySelector('#lineage pre').textContent"
            f".includes('SUBMITTED') && document.querySelector('#lineage pre')"
            f".textContent.includes('{claim_id}')"
        )
        shot = browser.screenshot(ARTIFACTS / "dashboard.png")
        assert browser.evaluate("window.cspViolations") == []
    collector.close()
    assert shot.stat().st_size > 10_000


def test_dashboard_beyond_localhost_requires_a_token(
    settings_factory: Callable[..., Settings],
) -> None:
    """Bound to all addresses without --token it refuses to start; with one, the API asks
    for it."""
    settings = settings_factory()
    env = {**os.environ, **to_env(settings)}
    refused = subprocess.run(
        [
            sys.executable,
            "-m",
            "pipeline.cli.main",
            "dashboard",
            "--host",
            ALL_ADDRESSES,
            "--port",
            str(free_port()),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert refused.returncode == 2
    assert "--token" in refused.stderr
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pipeline.cli.main",
            "dashboard",
            "--host",
            ALL_ADDRESSES,
            "--port",
            str(port),
            "--token",
            "s3cret-token",
        ],
        env=env,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until(
            lambda: get(f"http://127.0.0.1:{port}/api/summary") == 401,
            30,
            "the dashboard answers (401 without its token)",
            every=0.3,
        )
        assert get(f"http://127.0.0.1:{port}/api/summary?token=s3cret-token") == 200
        assert get(f"http://127.0.0.1:{port}/api/summary?token=wrong") == 401
    finally:
        stop(process)


def test_a_dashboard_started_before_its_topics_waits_then_goes_live_without_a_restart(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """Before its topics exist the page says it is waiting for data and why, with no figures;
    once they are created it goes live on its own; the page runs under its policy (script and
    styles applied, no violation) and every answer carries the security headers."""
    settings = load_settings(
        {
            "CLAIMS_BOOTSTRAP_SERVERS": kafka_bootstrap,
            "CLAIMS_TOPIC_PREFIX": f"t{uuid.uuid4().hex[:10]}.",
            "CLAIMS_DATA_DIR": str(tmp_path),
            "CLAIMS_PARTITIONS": "2",
        }
    )
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "pipeline.cli.main", "dashboard", "--port", str(port)],
        env={**os.environ, **to_env(settings)},
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until(
            lambda: get(f"http://127.0.0.1:{port}/api/summary") == 200,
            30,
            "the dashboard answers",
            every=0.3,
        )
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as answer:
            headers = answer.headers
        assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
        assert (
            headers["X-Content-Type-Options"],
            headers["X-Frame-Options"],
            headers["Referrer-Policy"],
        ) == ("nosniff", "DENY", "no-referrer")
        with Browser() as browser:
            watch_csp(browser)
            browser.open(f"http://127.0.0.1:{port}/")
            status = browser.wait_for(
                "document.getElementById('live').textContent"
                ".startsWith('waiting for data') && "
                "document.getElementById('live').textContent"
            )
            assert f"{settings.topic_prefix}claims.remittance" in status
            assert metric(browser, "remittances") == "-"
            assert metric(browser, "dead-letters") == "-"
            assert (
                browser.evaluate(
                    "getComputedStyle(document.querySelector('header')).backgroundColor"
                )
                == "rgb(29, 43, 74)"
            )

            create_topics(settings)
            browser.wait_for("document.getElementById('live').textContent.startsWith('live')")
            assert metric(browser, "remittances") == "0"
            assert browser.evaluate("window.cspViolations") == []
    finally:
        stop(process)

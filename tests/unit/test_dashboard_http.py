"""The dashboard's web answers without a broker: security headers on every response, a policy
the page's own script and style pass, and a reader that says why it is waiting."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import re
import socket
import threading

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from pipeline.config import load_settings
from pipeline.views.dashboard import PAGE, build_app, content_security_policy, follow_topics
from pipeline.views.dashboard_state import DashboardState
from tests.waiting import wait_until

DEADLINE_S = 30.0
HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}


def answers(app: web.Application, *paths: str) -> list[tuple[int, dict[str, str]]]:
    """(status, headers) of GET *paths* on *app*; an event stream is read up to its first event."""

    async def fetch() -> list[tuple[int, dict[str, str]]]:
        out = []
        async with TestClient(TestServer(app)) as client:
            for path in paths:
                response = await client.get(path)
                if response.content_type == "text/event-stream":
                    await asyncio.wait_for(response.content.readline(), DEADLINE_S)
                else:
                    await response.read()
                out.append((response.status, dict(response.headers)))
                response.close()
        return out

    return asyncio.run(fetch())


def sha256(text: str) -> str:
    """The CSP source expression of *text*'s SHA-256."""
    return f"'sha256-{base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()}'"


def test_every_response_carries_the_security_headers() -> None:
    """The page, the API, the event stream, a 404 and a 401 all carry CSP, nosniff, DENY and
    no-referrer."""
    open_app = build_app(DashboardState(), None)
    results = answers(open_app, "/", "/api/summary", "/events", "/api/claim/NOPE", "/missing")
    results += answers(build_app(DashboardState(), "t0ken"), "/api/summary")
    assert [status for status, _ in results] == [200, 200, 200, 404, 404, 401]
    for _, headers in results:
        for name, value in HEADERS.items():
            assert headers[name] == value
        policy = headers["Content-Security-Policy"]
        assert "default-src 'none'" in policy
        assert "frame-ancestors 'none'" in policy
        assert "connect-src 'self'" in policy


def test_the_policy_allows_exactly_the_page_s_own_inline_script_and_style() -> None:
    """script-src and style-src hold the hashes of the page's inline blocks and nothing looser;
    the page has no inline handlers or style attributes the policy would block."""
    page = PAGE.read_text()
    (script,) = re.findall(r"<script>(.*?)</script>", page, re.DOTALL)
    (style,) = re.findall(r"<style>(.*?)</style>", page, re.DOTALL)
    directives = dict(d.split(" ", 1) for d in content_security_policy(page).split("; "))
    assert directives["script-src"] == sha256(script)
    assert directives["style-src"] == sha256(style)
    assert "unsafe" not in content_security_policy(page)
    assert not re.search(r"\sstyle=|\son[a-z]+=", page)
    assert directives["base-uri"] == directives["form-action"] == "'none'"


def test_an_unreachable_broker_leaves_the_state_waiting_with_the_reason() -> None:
    """With nothing listening at the bootstrap address the state says it is waiting for the
    broker, and the reader stops when asked."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, never listening: connections are refused
        settings = load_settings({"CLAIMS_BOOTSTRAP_SERVERS": f"127.0.0.1:{port}"})
        state = DashboardState()
        stop = threading.Event()
        reader = threading.Thread(
            target=follow_topics,
            args=(settings, state, stop),
            kwargs={"look_again": 0.2},
            daemon=True,
        )
        reader.start()
        wait_until(
            lambda: "does not answer" in (state.snapshot()["source"]["reason"] or ""),
            DEADLINE_S,
            "the state says the broker is unreachable",
        )
        source = state.snapshot()["source"]
        assert source["status"] == "waiting"
        assert f"127.0.0.1:{port}" in source["reason"]
        stop.set()
        reader.join(DEADLINE_S)
        assert not reader.is_alive()


@pytest.mark.parametrize("token", [None, "t0ken"])
def test_the_page_itself_is_served_with_its_policy(token: str | None) -> None:
    """GET / returns the page whose inline blocks the policy on that same response allows."""

    async def fetch() -> tuple[str, str]:
        async with TestClient(TestServer(build_app(DashboardState(), token))) as client:
            response = await client.get("/", params={"token": token} if token else None)
            return await response.text(), response.headers["Content-Security-Policy"]

    page, policy = asyncio.run(fetch())
    (script,) = re.findall(r"<script>(.*?)</script>", page, re.DOTALL)
    assert sha256(script) in policy

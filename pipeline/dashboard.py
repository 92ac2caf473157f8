"""``claims dashboard``: a live web page of denials, the rework queue and claim lineage.

A consumer thread reads the topics from the beginning into a
:class:`~pipeline.dashboard_state.DashboardState`; the page loads a snapshot
and then follows server-sent events, so it updates without reloading as
remittances arrive. Bound to localhost by default; bound anywhere else it
requires an access token (``?token=`` or ``Authorization: Bearer``).
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import threading
from pathlib import Path
from typing import Any

from aiohttp import web
from kafka import KafkaConsumer, TopicPartition

from pipeline.codec import DecodeError, codec_for
from pipeline.config import Settings
from pipeline.dashboard_state import DashboardState
from pipeline.outcomes import jsonable
from pipeline.topics import (
    CLAIMS_REMITTANCE,
    CLAIMS_SUBMITTED,
    DEAD_LETTER,
    DENIALS_REWORK,
    REWORK_ACTIONS,
)

log = logging.getLogger(__name__)

PAGE = Path(__file__).with_name("dashboard.html")
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
WATCHED = (CLAIMS_SUBMITTED, CLAIMS_REMITTANCE, DENIALS_REWORK, REWORK_ACTIONS, DEAD_LETTER)


class DashboardError(ValueError):
    """The dashboard cannot start as asked; the message says what to change."""


def follow_topics(settings: Settings, state: DashboardState, stop: threading.Event) -> None:
    """Read the watched topics from the beginning into *state* until *stop* is set."""
    names = {spec.full_name(settings.topic_prefix): spec for spec in WATCHED}
    codecs = {name: codec_for(spec.value_schema) for name, spec in names.items()}
    consumer = KafkaConsumer(bootstrap_servers=settings.bootstrap, enable_auto_commit=False,
                             client_id="claims-dashboard")
    try:
        parts = [TopicPartition(name, p) for name in names
                 for p in sorted(consumer.partitions_for_topic(name) or [])]
        consumer.assign(parts)
        consumer.seek_to_beginning(*parts)
        while not stop.is_set():
            for tp, records in consumer.poll(timeout_ms=300, max_records=5000).items():
                spec = names[tp.topic]
                for record in records:
                    try:
                        value = codecs[tp.topic].decode(record.value)
                    except DecodeError:
                        continue
                    state.add(spec.name, value)
    finally:
        consumer.close()


def build_app(state: DashboardState, token: str | None) -> web.Application:
    """The dashboard's aiohttp application."""

    @web.middleware
    async def require_token(request: web.Request, handler: Any) -> web.StreamResponse:
        if token is not None:
            given = request.query.get("token") or request.headers.get(
                "Authorization", "").removeprefix("Bearer ")
            if not hmac.compare_digest(given.encode(), token.encode()):
                return web.Response(status=401, text="an access token is required")
        response: web.StreamResponse = await handler(request)
        return response

    async def page(_: web.Request) -> web.Response:
        return web.Response(text=PAGE.read_text(), content_type="text/html")

    async def summary(_: web.Request) -> web.Response:
        return web.json_response(jsonable(state.snapshot()))

    async def events(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream",
                                               "Cache-Control": "no-cache"})
        await response.prepare(request)
        seen = -1
        while True:
            if state.version != seen:
                snapshot = state.snapshot()
                seen = snapshot["version"]
                await response.write(f"data: {json.dumps(jsonable(snapshot))}\n\n".encode())
            await asyncio.sleep(0.5)

    async def claim(request: web.Request) -> web.Response:
        claim_id = request.match_info["claim_id"]
        history = state.history(claim_id)
        if not history:
            return web.json_response({"error": f"no claim {claim_id}"}, status=404)
        return web.json_response(jsonable({"claim_id": claim_id, "events": [
            {"at": e.at, "status": e.status, "claim_id": e.claim_id, "detail": e.detail,
             "charge_cents": e.charge_cents, "paid_cents": e.paid_cents,
             "patient_cents": e.patient_cents} for e in history]}))

    app = web.Application(middlewares=[require_token])
    app.router.add_get("/", page)
    app.router.add_get("/api/summary", summary)
    app.router.add_get("/events", events)
    app.router.add_get("/api/claim/{claim_id}", claim)
    return app


def run_dashboard(settings: Settings, host: str, port: int, token: str | None) -> None:
    """Serve the dashboard until interrupted."""
    if host not in LOCAL_HOSTS and not token:
        raise DashboardError(f"binding {host} exposes claims data beyond this machine: "
                             "give an access token with --token (or bind 127.0.0.1)")
    state = DashboardState()
    stop = threading.Event()
    reader = threading.Thread(target=follow_topics, args=(settings, state, stop),
                              name="claims-dashboard-reader", daemon=True)
    reader.start()
    try:
        # Open event streams never end by themselves: give them a moment at shutdown.
        web.run_app(build_app(state, token), host=host, port=port,
                    print=lambda *_: None, shutdown_timeout=2.0)
    finally:
        stop.set()
        reader.join(timeout=5)

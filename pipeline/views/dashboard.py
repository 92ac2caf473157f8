"""``claims dashboard``: a live web page of denials, the rework queue and claim lineage.

A consumer thread reads the topics from the beginning into a
:class:`~pipeline.views.dashboard_state.DashboardState`; the page loads a snapshot
and then follows server-sent events, so it updates without reloading as
remittances arrive. While a topic does not exist yet or the broker cannot be
reached, the page says it is waiting for data and why; the reader keeps looking
and starts on each topic once it is created. Bound to localhost by default;
bound anywhere else it requires an access token (``?token=`` or
``Authorization: Bearer``).

Every response carries a Content-Security-Policy that lets the page run only its
own inline script and style (by their SHA-256) and talk only to its own origin,
and refuses framing, MIME sniffing and referrers.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import re
import threading
import time
from pathlib import Path
from typing import Any

from aiohttp import web
from kafka import KafkaConsumer, TopicPartition
from kafka.errors import KafkaError

from pipeline.config import Settings
from pipeline.kafka.codec import DecodeError, codec_for
from pipeline.views.dashboard_state import LIVE, WAITING, DashboardState
from pipeline.views.outcomes import jsonable
from processors.contracts.topics import (
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
# How soon a missing topic or an unreachable broker is looked for again.
LOOK_AGAIN_S = 2.0
# How often a reader following every topic checks for new partitions (and that the broker
# still answers).
CHECK_S = 5.0
BOOTSTRAP_TIMEOUT_MS = 5000
_INLINE = re.compile(r"<(script|style)>(.*?)</\1>", re.DOTALL)


class DashboardError(ValueError):
    """The dashboard cannot start as asked; the message says what to change."""


def follow_topics(
    settings: Settings,
    state: DashboardState,
    stop: threading.Event,
    *,
    look_again: float = LOOK_AGAIN_S,
) -> None:
    """Read the watched topics from the beginning into *state* until *stop* is set.

    A topic not created yet, or a broker out of reach, leaves *state* waiting with the
    reason; the reader looks again every *look_again* seconds and reads each topic from
    its beginning once it exists.
    """
    while not stop.is_set():
        try:
            consumer = KafkaConsumer(
                bootstrap_servers=settings.bootstrap,
                enable_auto_commit=False,
                client_id="claims-dashboard",
                bootstrap_timeout_ms=BOOTSTRAP_TIMEOUT_MS,
            )
        except KafkaError as exc:
            state.set_source(WAITING, _unreachable(settings, exc, look_again))
            stop.wait(look_again)
            continue
        try:
            _follow(consumer, settings, state, stop, look_again)
        except KafkaError as exc:
            state.set_source(WAITING, _unreachable(settings, exc, look_again))
            stop.wait(look_again)
        finally:
            consumer.close()


def _unreachable(settings: Settings, exc: Exception, look_again: float) -> str:
    return (
        f"the broker at {settings.bootstrap} does not answer ({type(exc).__name__}); "
        f"trying again every {look_again:g} s"
    )


def _follow(
    consumer: KafkaConsumer,
    settings: Settings,
    state: DashboardState,
    stop: threading.Event,
    look_again: float,
) -> None:
    names = {spec.full_name(settings.topic_prefix): spec for spec in WATCHED}
    codecs = {name: codec_for(spec.value_schema) for name, spec in names.items()}
    assigned: set[TopicPartition] = set()
    next_check = 0.0
    while not stop.is_set():
        if time.monotonic() >= next_check:
            existing = consumer.topics()  # asks the broker; raises when it does not answer
            parts = {
                TopicPartition(name, p)
                for name in names
                if name in existing
                for p in consumer.partitions_for_topic(name)
            }
            if parts != assigned:
                if parts:
                    consumer.assign(sorted(parts))  # keeps the position of each it had
                    if parts - assigned:
                        consumer.seek_to_beginning(*(parts - assigned))
                else:
                    consumer.unsubscribe()
                assigned = parts
            missing = [name for name in names if name not in existing]
            if missing:
                state.set_source(
                    WAITING,
                    (
                        f"topic{'s' if len(missing) > 1 else ''} not created yet: "
                        f"{', '.join(missing)} (claims topics create makes them)"
                    ),
                )
            else:
                state.set_source(LIVE)
            next_check = time.monotonic() + (look_again if missing else CHECK_S)
        if not assigned:
            stop.wait(max(0.0, next_check - time.monotonic()))
            continue
        for tp, records in consumer.poll(timeout_ms=300, max_records=5000).items():
            spec = names[tp.topic]
            for record in records:
                try:
                    value = codecs[tp.topic].decode(record.value)
                except DecodeError:
                    continue
                state.add(spec.name, value)


def content_security_policy(page: str) -> str:
    """The page's policy: only its own inline script and style (by hash), only its own origin."""
    hashes: dict[str, list[str]] = {"script": [], "style": []}
    for tag, body in _INLINE.findall(page):
        digest = base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
        hashes[tag].append(f"'sha256-{digest}'")
    none = "'none'"
    return "; ".join(
        [
            "default-src 'none'",
            f"script-src {' '.join(hashes['script']) or none}",
            f"style-src {' '.join(hashes['style']) or none}",
            "connect-src 'self'",
            "img-src 'self'",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
        ]
    )


def build_app(state: DashboardState, token: str | None) -> web.Application:
    """The dashboard's aiohttp application."""
    html = PAGE.read_text()
    security_headers = {
        "Content-Security-Policy": content_security_policy(html),
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "no-referrer",
    }

    async def secure(_: web.Request, response: web.StreamResponse) -> None:
        response.headers.update(security_headers)

    @web.middleware
    async def require_token(request: web.Request, handler: Any) -> web.StreamResponse:
        if token is not None:
            given = request.query.get("token") or request.headers.get(
                "Authorization", ""
            ).removeprefix("Bearer ")
            if not hmac.compare_digest(given.encode(), token.encode()):
                return web.Response(status=401, text="an access token is required")
        response: web.StreamResponse = await handler(request)
        return response

    async def page(_: web.Request) -> web.Response:
        return web.Response(text=html, content_type="text/html")

    async def summary(_: web.Request) -> web.Response:
        return web.json_response(jsonable(state.snapshot()))

    async def events(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        await response.prepare(request)
        seen = -1
        while True:
            if state.revision != seen:
                seen = state.revision  # a change during the snapshot is sent the next time
                snapshot = state.snapshot()
                await response.write(f"data: {json.dumps(jsonable(snapshot))}\n\n".encode())
            await asyncio.sleep(0.5)

    async def claim(request: web.Request) -> web.Response:
        claim_id = request.match_info["claim_id"]
        history = state.history(claim_id)
        if not history:
            return web.json_response({"error": f"no claim {claim_id}"}, status=404)
        return web.json_response(
            jsonable(
                {
                    "claim_id": claim_id,
                    "events": [
                        {
                            "at": e.at,
                            "status": e.status,
                            "claim_id": e.claim_id,
                            "detail": e.detail,
                            "charge_cents": e.charge_cents,
                            "paid_cents": e.paid_cents,
                            "patient_cents": e.patient_cents,
                        }
                        for e in history
                    ],
                }
            )
        )

    app = web.Application(middlewares=[require_token])
    app.on_response_prepare.append(secure)
    app.router.add_get("/", page)
    app.router.add_get("/api/summary", summary)
    app.router.add_get("/events", events)
    app.router.add_get("/api/claim/{claim_id}", claim)
    return app


def run_dashboard(settings: Settings, host: str, port: int, token: str | None) -> None:
    """Serve the dashboard until interrupted."""
    if host not in LOCAL_HOSTS and not token:
        raise DashboardError(
            f"binding {host} exposes claims data beyond this machine: "
            "give an access token with --token (or bind 127.0.0.1)"
        )
    state = DashboardState()
    stop = threading.Event()
    reader = threading.Thread(
        target=follow_topics,
        args=(settings, state, stop),
        name="claims-dashboard-reader",
        daemon=True,
    )
    reader.start()
    try:
        # Open event streams never end by themselves: give them a moment at shutdown.
        web.run_app(
            build_app(state, token),
            host=host,
            port=port,
            print=lambda *_: None,
            shutdown_timeout=2.0,
        )
    finally:
        stop.set()
        reader.join(timeout=5)

"""``POST /fhir`` on the worker: a FHIR R4 Bundle in, EncounterEvents on ehr.encounters.

Answers 202 with the accepted event ids (and an OperationOutcome listing any
encounter it could not bill), or 400 with an OperationOutcome when nothing in
the request can be used. Every refused encounter is kept on the dead-letter
topic with its reason. Enabled with ``CLAIMS_HTTP_PORT``.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from pipeline.ingest.fhir import BundleError, map_bundle

Record = dict[str, Any]
Publish = Callable[[list[Record], list[tuple[bytes, str]]], Awaitable[None]]


def _outcome(code: str, diagnostics: str) -> Record:
    return {"resourceType": "OperationOutcome",
            "issue": [{"severity": "error", "code": code, "diagnostics": diagnostics}]}


def _fhir(status: int, body: Record) -> web.Response:
    return web.Response(status=status, text=json.dumps(body),
                        content_type="application/fhir+json")


def build_web_app(publish: Publish, billing_provider: Record) -> web.Application:
    """The aiohttp application; *publish* sends events and dead letters (raw, reason)."""

    async def post_fhir(request: web.Request) -> web.Response:
        raw = await request.read()
        try:
            bundle = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            reason = f"the request body is not JSON ({type(exc).__name__})"
            await publish([], [(raw, reason)])
            return _fhir(400, _outcome("structure", reason))
        try:
            mapped = map_bundle(bundle, billing_provider, source="fhir-http")
        except BundleError as exc:
            await publish([], [(raw, str(exc))])
            return _fhir(400, _outcome("structure", str(exc)))
        dead = [(raw, f"{i['expression'][0]}: {i['diagnostics']}") for i in mapped.issues]
        await publish(mapped.events, dead)
        if not mapped.events:
            return _fhir(400, mapped.outcome())
        return _fhir(202, {"event_ids": [e["event_id"] for e in mapped.events],
                           "encounter_ids": [e["encounter_id"] for e in mapped.events],
                           "outcome": mapped.outcome()})

    app = web.Application(client_max_size=16 * 1024 * 1024)
    app.router.add_post("/fhir", post_fhir)
    return app

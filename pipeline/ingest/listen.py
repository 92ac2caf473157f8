"""``claims ingest mllp``: an HL7 v2 listener that publishes what it accepts.

Every message gets an ACK: AA once its encounter is on ehr.encounters (or its
registration is stored), AE/AR with the error in MSA/ERR otherwise, and the
refused message is kept on the dead-letter topic. Registrations (ADT^A04/A08)
are kept in memory for the DFT^P03 charges that follow them. A frame left
unfinished (``CLAIMS_MLLP_FRAME_TIMEOUT``) is answered AR when its MSH-10 arrived
and kept on the dead-letter topic with the reason; an idle connection is closed
after ``CLAIMS_MLLP_IDLE_TIMEOUT`` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from pipeline.config import Settings
from pipeline.ingest.directory import FeedDirectory
from pipeline.ingest.sink import IngestSink
from processors.contracts.vocab import ErrorType
from processors.refdata import PayerProfile

Record = dict[str, Any]


class Hl7Handler:
    """Maps one message at a time, publishes it and answers with the ACK."""

    def __init__(
        self,
        sink: IngestSink,
        billing: FeedDirectory,
        *,
        payers: Mapping[str, PayerProfile] | None = None,
    ) -> None:
        self.sink = sink
        self.billing = billing
        self.payers = payers
        self.store: dict[str, Any] = {}
        self.received = 0

    def __call__(self, text: str) -> str:
        from pipeline.ingest.hl7 import map_message  # noqa: PLC0415

        self.received += 1
        outcome = map_message(text, self.store, self.billing, datetime.now(UTC), payers=self.payers)
        self.store = outcome.store
        if outcome.errors:
            self.sink.dead_letter(
                "ingest:mllp", self.received, text.encode(), "; ".join(outcome.errors)
            )
        else:
            self.sink.encounters(outcome.events)
        self.sink.producer.flush(timeout=30)
        ack: str = outcome.ack
        return ack

    def refuse(self, raw: bytes, reason: str, control_id: str | None) -> None:
        """Keep an unfinished frame's bytes on the dead-letter topic with the reason."""
        self.received += 1
        self.sink.dead_letter(
            "ingest:mllp", self.received, raw, reason, control_id, error_type=ErrorType.DECODE
        )
        self.sink.producer.flush(timeout=30)


def run_mllp(settings: Settings, host: str, port: int, billing: FeedDirectory) -> int:
    """Serve MLLP on *host*:*port* until interrupted."""
    from pipeline.ingest.mllp import serve_mllp  # noqa: PLC0415

    with IngestSink(settings) as sink:
        handler = Hl7Handler(sink, billing, payers=settings.refdata().payers)
        print(
            f"listening for HL7 v2 over MLLP on {host}:{port} (Ctrl-C to stop)",
            file=sys.stderr,
            flush=True,
        )
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(
                serve_mllp(
                    host,
                    port,
                    handler,
                    idle_timeout=float(settings.mllp_idle_timeout),
                    frame_timeout=float(settings.mllp_frame_timeout),
                    refuse=handler.refuse,
                )
            )
        print(
            f"received {handler.received} message(s); published {sink.sent} encounter(s), "
            f"{sink.dead} refused",
            file=sys.stderr,
        )
    return 0

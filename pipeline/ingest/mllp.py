"""MLLP: HL7 v2 messages over TCP, each framed <VT> message <FS><CR>.

:func:`serve_mllp` answers every framed message with what *handle* returns (the
ACK), in order, on as many connections as senders open. Messages are handled
one at a time across all connections, off the event loop, so *handle* may block
(publish, flush) and may keep state (the registration store) without locks. A
message that *handle* fails on is answered AR with an ERR, and the listener
keeps serving. :func:`send_mllp` is the matching client.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

from pipeline.ingest.hl7 import reject

START_BLOCK = b"\x0b"
END_BLOCK = b"\x1c\x0d"
# A frame larger than this is dropped unanswered: no practice sends one, a runaway sender might.
MAX_FRAME_BYTES = 4 * 1024 * 1024
ENCODING = "utf-8"

log = logging.getLogger(__name__)


def frame(message: str) -> bytes:
    """*message* in an MLLP frame."""
    return START_BLOCK + message.encode(ENCODING) + END_BLOCK


def decode(payload: bytes) -> str:
    """A frame's payload as text: UTF-8, or ISO 8859-1 for older feeds."""
    try:
        return payload.decode(ENCODING)
    except UnicodeDecodeError:
        return payload.decode("latin-1")


async def serve_mllp(host: str, port: int, handle: Callable[[str], str],
                     ready: asyncio.Event | None = None) -> None:
    """Listen on *host*:*port* until cancelled, answering each message with ``handle(text)``.

    *ready* is set once the socket accepts connections.
    """
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mllp-handle")

    async def answer(text: str) -> str:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(executor, handle, text)
        except Exception as exc:  # a bad message must never stop the listener
            log.warning("MLLP message could not be handled (%s); answered AR",
                        type(exc).__name__)
            return reject(text, f"the message could not be processed ({type(exc).__name__})",
                          datetime.now(UTC))

    async def connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        buffer = b""
        try:
            while chunk := await reader.read(65536):
                buffer += chunk
                while (end := buffer.find(END_BLOCK)) != -1:
                    payload, buffer = buffer[:end], buffer[end + len(END_BLOCK):]
                    start = payload.rfind(START_BLOCK)
                    if start == -1:
                        continue  # bytes outside a frame are not a message
                    ack = await answer(decode(payload[start + 1:]))
                    writer.write(frame(ack))
                    await writer.drain()
                if len(buffer) > MAX_FRAME_BYTES:
                    log.warning("MLLP frame from %s exceeds %d bytes; dropped", peer,
                                MAX_FRAME_BYTES)
                    buffer = b""
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    server = await asyncio.start_server(connection, host, port)
    try:
        async with server:
            if ready is not None:
                ready.set()
            await server.serve_forever()
    finally:
        executor.shutdown(wait=False, cancel_futures=True)


def send_mllp(host: str, port: int, messages: Iterable[str], timeout: float = 10.0) -> list[str]:
    """Send *messages* over one connection, each after the previous ACK; returns the ACKs."""
    acks: list[str] = []
    with socket.create_connection((host, port), timeout=timeout) as sock:
        buffer = b""
        for message in messages:
            sock.sendall(frame(message))
            while (end := buffer.find(END_BLOCK)) == -1:
                chunk = sock.recv(65536)
                if not chunk:
                    raise ConnectionError("the MLLP listener closed the connection before "
                                          "acknowledging")
                buffer += chunk
            payload, buffer = buffer[:end], buffer[end + len(END_BLOCK):]
            start = payload.find(START_BLOCK)
            acks.append(decode(payload[start + 1:] if start != -1 else payload))
    return acks

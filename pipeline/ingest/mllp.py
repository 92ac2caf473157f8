"""MLLP: HL7 v2 messages over TCP, each framed <VT> message <FS><CR>.

:func:`serve_mllp` answers every framed message with what *handle* returns (the
ACK), in order, on as many connections as senders open. Messages are handled
one at a time across all connections, off the event loop, so *handle* may block
(publish, flush) and may keep state (the registration store) without locks. A
message that *handle* fails on is answered AR with an ERR, and the listener
keeps serving. :func:`send_mllp` is the matching client.

A connection silent for *idle_timeout* seconds between messages is closed. A
frame that is not finished (no <FS><CR>) within *frame_timeout* seconds of its
start block, that the sender closes the connection in the middle of, or that
grows past :data:`MAX_FRAME_BYTES` is answered AR with ERR 207 when its MSH-10
can be read from what arrived, handed to *refuse* with the reason (the
listener keeps it as a dead letter), and the connection is closed: the bytes
that would follow cannot be trusted to start a frame.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

from pipeline.ingest.hl7 import MessageRejected, read_message, reject

START_BLOCK = b"\x0b"
END_BLOCK = b"\x1c\x0d"
# A frame larger than this is refused: no practice sends one, a runaway sender might.
MAX_FRAME_BYTES = 4 * 1024 * 1024
ENCODING = "utf-8"
IDLE_TIMEOUT_S = 300.0
FRAME_TIMEOUT_S = 30.0
# How long a refusal waits to be written to a sender that may have stopped reading.
WRITE_TIMEOUT_S = 5.0

# Told about every refused frame: (the bytes after its start block, the reason, MSH-10 or None).
Refuse = Callable[[bytes, str, str | None], None]

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


def partial_header(payload: bytes) -> str | None:
    """The MSH segment of an unfinished message, cut after its last whole field, when it holds
    all of MSH-10 (the control id an ACK must echo); else None."""
    text = decode(payload).lstrip("\r\n ")
    if len(text) < 4 or not text.startswith("MSH"):
        return None
    separator = text[3]
    line = text.replace("\n", "\r").split("\r", 1)
    fields = line[0].split(separator)
    ended = len(line) > 1
    # fields[9] is MSH-10 (MSH-1 is the separator itself); unless the segment ended, the
    # last field may have been cut short in transit.
    whole = fields if ended else fields[:-1]
    if len(whole) < 10:
        return None
    header = separator.join(whole) + "\r"
    try:
        control_id = read_message(header).control_id
    except MessageRejected:
        return None
    return header if control_id else None


async def serve_mllp(
    host: str,
    port: int,
    handle: Callable[[str], str],
    ready: asyncio.Event | None = None,
    *,
    idle_timeout: float = IDLE_TIMEOUT_S,
    frame_timeout: float = FRAME_TIMEOUT_S,
    refuse: Refuse | None = None,
) -> None:
    """Listen on *host*:*port* until cancelled, answering each message with ``handle(text)``.

    *ready* is set once the socket accepts connections. *refuse* is called, off the event
    loop like *handle*, with every frame refused unfinished.
    """
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mllp-handle")

    async def answer(text: str) -> str:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(executor, handle, text)
        except Exception as exc:  # a bad message must never stop the listener
            log.warning("MLLP message could not be handled (%s); answered AR", type(exc).__name__)
            return reject(
                text,
                f"the message could not be processed ({type(exc).__name__})",
                datetime.now(UTC),
            )

    async def refuse_frame(writer: asyncio.StreamWriter, payload: bytes, reason: str) -> None:
        """Keep an unfinished frame and answer it AR when its control id can be read."""
        header = partial_header(payload)
        control_id = read_message(header).control_id if header else None
        if refuse is not None:
            loop = asyncio.get_running_loop()
            try:
                await loop.run_in_executor(executor, refuse, payload, reason, control_id)
            except Exception as exc:  # the answer still goes out
                log.error(
                    "an unfinished MLLP frame could not be dead-lettered (%s)", type(exc).__name__
                )
        if header is not None:
            writer.write(
                frame(
                    reject(
                        header,
                        f"{reason}; the message was not processed, send it again",
                        datetime.now(UTC),
                    )
                )
            )
            with contextlib.suppress(ConnectionError, TimeoutError):
                await asyncio.wait_for(writer.drain(), WRITE_TIMEOUT_S)
        log.warning(
            "MLLP frame from %s refused: %s (%s); connection closed",
            writer.get_extra_info("peername"),
            reason,
            f"answered AR to {control_id}" if header else "no MSH-10 to answer",
        )

    async def connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        loop = asyncio.get_running_loop()
        buffer = b""
        started: float | None = None  # when the unfinished frame at the head of buffer began
        try:
            while True:
                wait = idle_timeout if started is None else started + frame_timeout - loop.time()
                try:
                    chunk = await asyncio.wait_for(reader.read(65536), max(wait, 0.0))
                except TimeoutError:
                    if started is None:
                        log.info(
                            "MLLP connection from %s idle for %g s; closed", peer, idle_timeout
                        )
                    else:
                        await refuse_frame(
                            writer,
                            buffer[1:],
                            (
                                f"the MLLP frame was not finished within {frame_timeout:g} s "
                                "(no <FS><CR> end block)"
                            ),
                        )
                    return
                if not chunk:
                    if started is not None:
                        await refuse_frame(
                            writer,
                            buffer[1:],
                            (
                                "the connection closed before the MLLP frame ended (no <FS><CR> "
                                "end block)"
                            ),
                        )
                    return
                buffer += chunk
                while (end := buffer.find(END_BLOCK)) != -1:
                    payload, buffer = buffer[:end], buffer[end + len(END_BLOCK) :]
                    started = None
                    start = payload.rfind(START_BLOCK)
                    if start == -1:
                        continue  # bytes outside a frame are not a message
                    ack = await answer(decode(payload[start + 1 :]))
                    writer.write(frame(ack))
                    await writer.drain()
                begin = buffer.find(START_BLOCK)
                if begin == -1:
                    buffer = b""  # bytes outside a frame are not a message
                    continue
                buffer = buffer[begin:]
                started = loop.time() if started is None else started
                if len(buffer) > MAX_FRAME_BYTES:
                    await refuse_frame(
                        writer, buffer[1:], f"the MLLP frame exceeds {MAX_FRAME_BYTES:,} bytes"
                    )
                    return
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
                    raise ConnectionError(
                        "the MLLP listener closed the connection before acknowledging"
                    )
                buffer += chunk
            payload, buffer = buffer[:end], buffer[end + len(END_BLOCK) :]
            start = payload.find(START_BLOCK)
            acks.append(decode(payload[start + 1 :] if start != -1 else payload))
    return acks

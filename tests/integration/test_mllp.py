"""The MLLP listener on a real socket: one ACK per message, in order, whatever the input;
unfinished frames and idle connections end with an answer where one can be given."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from pipeline.config import Settings, to_env
from pipeline.ingest import mllp
from pipeline.ingest.directory import FeedDirectory
from pipeline.ingest.hl7 import Store, map_message
from pipeline.ingest.mllp import END_BLOCK, START_BLOCK, send_mllp, serve_mllp
from pipeline.kafka.readers import read_topic
from processors.contracts.topics import DEAD_LETTER
from tests.builders import encounter
from tests.waiting import wait_until

FIXTURES = Path(__file__).parent.parent / "fixtures" / "hl7"
PRACTICE = encounter()["billing_provider"]
FEED = FeedDirectory(given=PRACTICE)
HOST = "127.0.0.1"
DEADLINE_SECONDS = 10.0


def fixture(name: str) -> str:
    """A fixture message as stored."""
    return (FIXTURES / name).read_text()


def msa(ack: str) -> list[str]:
    """MSA-1 and MSA-2 of an ACK."""
    (segment,) = [s for s in ack.split("\r") if s.startswith("MSA|")]
    return segment.split("|")[1:3]


class Pipeline:
    """The handler the CLI would pass: map, keep the registrations, remember the events."""

    def __init__(self) -> None:
        self.store: Store = {}
        self.events: list[dict[str, object]] = []

    def __call__(self, text: str) -> str:
        outcome = map_message(text, self.store, FEED, datetime(2026, 3, 6, tzinfo=UTC))
        self.store = outcome.store
        self.events += outcome.events
        return outcome.ack


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


Listener = Callable[..., int]


@pytest.fixture
def listener() -> Iterator[Listener]:
    """Start serve_mllp with a handler (and options) on a free port in a background loop;
    returns the port."""
    stops: list[Callable[[], None]] = []
    threads: list[threading.Thread] = []

    def start(handle: Callable[[str], str], **options: Any) -> int:
        port = free_port()
        loop = asyncio.new_event_loop()
        started = threading.Event()

        async def main() -> None:
            ready = asyncio.Event()
            task = asyncio.create_task(serve_mllp(HOST, port, handle, ready, **options))
            await ready.wait()
            started.set()
            await task

        async def settle() -> None:
            """Let the cancelled connection handlers finish before the loop closes."""
            others = asyncio.all_tasks() - {asyncio.current_task()}
            await asyncio.gather(*others, return_exceptions=True)

        def run() -> None:
            try:
                loop.run_until_complete(main())
            except asyncio.CancelledError:
                pass
            finally:
                loop.run_until_complete(settle())
                loop.close()

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        assert started.wait(DEADLINE_SECONDS), "the MLLP listener did not start"

        def stop() -> None:
            def cancel_all() -> None:
                for task in asyncio.all_tasks(loop):
                    task.cancel()

            loop.call_soon_threadsafe(cancel_all)

        stops.append(stop)
        threads.append(thread)
        return port

    yield start
    for stop in stops:
        stop()
    for thread in threads:
        thread.join(DEADLINE_SECONDS)


def test_each_message_gets_its_ack_in_order_and_bad_input_does_not_stop_the_listener(
    listener: Listener,
) -> None:
    """Good and bad messages on one connection: one ACK each, in order; the next still works."""
    pipeline = Pipeline()
    port = listener(pipeline)
    names = [
        "adt_a04_two_insurances.hl7",
        "garbage.txt",
        "dft_p03_registered_patient.hl7",
        "oru_r01_unsupported.hl7",
        "dft_p03_icd9_diagnosis.hl7",
        "dft_p03_office_visit.hl7",
    ]
    acks = send_mllp(HOST, port, [fixture(n) for n in names])
    assert [msa(a) for a in acks] == [
        ["AA", "REG-0001"],
        ["AR", ""],
        ["AA", "CHG-1002"],
        ["AR", "LAB-2001"],
        ["AE", "CHG-1004"],
        ["AA", "CHG-1001"],
    ]
    assert [e["encounter_id"] for e in pipeline.events] == ["V-20260305-0007", "V-20260302-0042"]
    assert msa(send_mllp(HOST, port, [fixture("dft_p03_unknown_payer.hl7")])[0]) == [
        "AE",
        "CHG-1005",
    ]


def test_a_handler_failure_is_answered_ar_and_the_listener_keeps_serving(
    listener: Listener,
) -> None:
    """An exception in the handler becomes an AR with ERR 207; the next message is answered."""
    pipeline = Pipeline()

    def fragile(text: str) -> str:
        if "CHG-1001" in text:
            raise RuntimeError("broker unavailable")
        return pipeline(text)

    port = listener(fragile)
    acks = send_mllp(
        HOST, port, [fixture("dft_p03_office_visit.hl7"), fixture("adt_a04_two_insurances.hl7")]
    )
    assert msa(acks[0]) == ["AR", "CHG-1001"]
    assert "|207^Application internal error^HL70357|" in acks[0]
    assert msa(acks[1]) == ["AA", "REG-0001"]


def test_frames_split_across_packets_and_several_connections_are_answered(
    listener: Listener,
) -> None:
    """A frame sent in pieces is answered once; a second connection is served meanwhile."""
    port = listener(Pipeline())
    frame = START_BLOCK + fixture("adt_a04_two_insurances.hl7").encode() + END_BLOCK
    with socket.create_connection((HOST, port), timeout=DEADLINE_SECONDS) as first:
        first.sendall(b"noise before a frame" + frame[:50])
        assert msa(send_mllp(HOST, port, [fixture("oru_r01_unsupported.hl7")])[0]) == [
            "AR",
            "LAB-2001",
        ]
        first.sendall(frame[50:])
        answer = b""
        while not answer.endswith(END_BLOCK):
            chunk = first.recv(65536)
            assert chunk, "the listener closed the connection"
            answer += chunk
    assert answer.startswith(START_BLOCK)
    assert msa(answer[1:-2].decode()) == ["AA", "REG-0001"]


class Refusals:
    """The listener's refuse callback: keeps what it is told about each unfinished frame."""

    def __init__(self) -> None:
        self.calls: list[tuple[bytes, str, str | None]] = []

    def __call__(self, raw: bytes, reason: str, control_id: str | None) -> None:
        self.calls.append((raw, reason, control_id))


def until_closed(sock: socket.socket) -> bytes:
    """Everything the listener sends until it closes the connection (or the deadline fails)."""
    sock.settimeout(DEADLINE_SECONDS)
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def acks_in(data: bytes) -> list[str]:
    """The ACK messages in what the listener sent."""
    return [mllp.decode(f[1:]) for f in data.split(END_BLOCK) if f.startswith(START_BLOCK)]


def err_text(ack: str) -> str:
    """ERR-8 (the reason) of an ACK's first ERR segment."""
    (segment, *_) = [s for s in ack.split("\r") if s.startswith("ERR|")]
    return segment.split("|")[8]


OFFICE_VISIT = fixture("dft_p03_office_visit.hl7").encode()


class TestUnfinishedFrames:
    def test_a_frame_not_finished_in_time_is_answered_ar_kept_and_the_connection_closed(
        self, listener: Listener
    ) -> None:
        """A frame left without its end block past the frame timeout gets an AR echoing MSH-10,
        its bytes go to refuse with the reason, and the listener closes the connection."""
        refusals = Refusals()
        port = listener(Pipeline(), frame_timeout=0.5, refuse=refusals)
        partial = OFFICE_VISIT[:300]
        with socket.create_connection((HOST, port), timeout=DEADLINE_SECONDS) as sock:
            started = time.monotonic()
            sock.sendall(START_BLOCK + partial)
            (ack,) = acks_in(until_closed(sock))
            waited = time.monotonic() - started
        assert msa(ack) == ["AR", "CHG-1001"]
        assert "not finished within 0.5 s" in err_text(ack)
        assert "|207^Application internal error^HL70357|" in ack
        assert waited >= 0.5
        ((raw, reason, control_id),) = refusals.calls
        assert (raw, control_id) == (partial, "CHG-1001")
        assert "no <FS><CR> end block" in reason

    def test_a_frame_cut_by_the_sender_closing_is_answered_ar_and_kept(
        self, listener: Listener
    ) -> None:
        """A sender that stops writing mid-frame is answered AR before the listener closes."""
        refusals = Refusals()
        port = listener(Pipeline(), refuse=refusals)
        with socket.create_connection((HOST, port), timeout=DEADLINE_SECONDS) as sock:
            sock.sendall(START_BLOCK + OFFICE_VISIT[:-40])
            sock.shutdown(socket.SHUT_WR)
            (ack,) = acks_in(until_closed(sock))
        assert msa(ack) == ["AR", "CHG-1001"]
        assert "closed before the MLLP frame ended" in err_text(ack)
        ((raw, _, _),) = refusals.calls
        assert raw == OFFICE_VISIT[:-40]

    @pytest.mark.parametrize("cut", [b"DFT^P03^DFT_P03|CHG-10", b"DFT^P03^DFT_P03", b"MS"])
    def test_a_frame_cut_before_msh10_is_whole_gets_no_answer_but_is_kept(
        self, listener: Listener, cut: bytes
    ) -> None:
        """Without the whole of MSH-10 no ACK can name the message: none is sent (a guessed
        control id would acknowledge another message), yet the bytes are kept."""
        refusals = Refusals()
        port = listener(Pipeline(), frame_timeout=0.3, refuse=refusals)
        partial = OFFICE_VISIT[: OFFICE_VISIT.index(cut) + len(cut)]
        with socket.create_connection((HOST, port), timeout=DEADLINE_SECONDS) as sock:
            sock.sendall(START_BLOCK + partial)
            assert until_closed(sock) == b""
        assert refusals.calls == [(partial, refusals.calls[0][1], None)]

    def test_a_whole_message_is_answered_then_the_unfinished_one_refused(
        self, listener: Listener
    ) -> None:
        """The complete message before an unfinished one is acknowledged AA as usual."""
        refusals = Refusals()
        port = listener(Pipeline(), frame_timeout=0.5, refuse=refusals)
        registration = fixture("adt_a04_two_insurances.hl7").encode()
        with socket.create_connection((HOST, port), timeout=DEADLINE_SECONDS) as sock:
            sock.sendall(START_BLOCK + registration + END_BLOCK + START_BLOCK + OFFICE_VISIT[:250])
            acks = acks_in(until_closed(sock))
        assert [msa(a) for a in acks] == [["AA", "REG-0001"], ["AR", "CHG-1001"]]
        assert [c[2] for c in refusals.calls] == ["CHG-1001"]

    def test_a_frame_past_the_size_limit_is_refused_and_the_connection_closed(
        self, listener: Listener, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A frame growing past MAX_FRAME_BYTES is answered AR and kept, then the connection
        is closed instead of the frame being dropped silently."""
        monkeypatch.setattr(mllp, "MAX_FRAME_BYTES", 2000)
        refusals = Refusals()
        port = listener(Pipeline(), refuse=refusals)
        with socket.create_connection((HOST, port), timeout=DEADLINE_SECONDS) as sock:
            sock.sendall(START_BLOCK + OFFICE_VISIT + b"Z" * 3000)
            (ack,) = acks_in(until_closed(sock))
        assert msa(ack) == ["AR", "CHG-1001"]
        assert "exceeds 2,000 bytes" in err_text(ack)
        assert len(refusals.calls) == 1


class TestIdleConnections:
    def test_an_idle_connection_is_closed_after_the_idle_timeout(self, listener: Listener) -> None:
        """A connection silent past the idle timeout is closed, with nothing refused."""
        refusals = Refusals()
        port = listener(Pipeline(), idle_timeout=0.5, refuse=refusals)
        with socket.create_connection((HOST, port), timeout=DEADLINE_SECONDS) as sock:
            started = time.monotonic()
            sock.sendall(START_BLOCK + fixture("adt_a04_two_insurances.hl7").encode() + END_BLOCK)
            acks = acks_in(until_closed(sock))
            idle = time.monotonic() - started
        assert [msa(a) for a in acks] == [["AA", "REG-0001"]]
        assert 0.5 <= idle < DEADLINE_SECONDS
        assert refusals.calls == []

    def test_a_connection_in_use_is_not_closed_by_the_idle_timeout(
        self, listener: Listener
    ) -> None:
        """Messages spaced closer than the idle timeout keep one connection open for all."""
        port = listener(Pipeline(), idle_timeout=1.0)
        messages = [
            fixture("adt_a04_two_insurances.hl7"),
            fixture("dft_p03_registered_patient.hl7"),
            fixture("dft_p03_office_visit.hl7"),
        ]
        with socket.create_connection((HOST, port), timeout=DEADLINE_SECONDS) as sock:
            answers = []
            for message in messages:
                sock.settimeout(0.6)
                with pytest.raises(TimeoutError):  # quiet for less than the timeout: still open
                    sock.recv(1)
                sock.settimeout(DEADLINE_SECONDS)
                sock.sendall(mllp.frame(message))
                data = b""
                while not data.endswith(END_BLOCK):
                    chunk = sock.recv(65536)
                    assert chunk, "the listener closed a connection in use"
                    data += chunk
                answers += acks_in(data)
        assert [msa(a)[0] for a in answers] == ["AA", "AA", "AA"]


def test_the_listener_command_dead_letters_an_unfinished_frame(
    settings_factory: Callable[..., Settings],
) -> None:
    """``claims ingest mllp`` answers an unfinished frame AR after CLAIMS_MLLP_FRAME_TIMEOUT and
    keeps its bytes on the dead-letter topic with the reason and the control id."""
    settings = settings_factory()
    port = free_port()
    env = {**os.environ, **to_env(settings), "CLAIMS_MLLP_FRAME_TIMEOUT": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "pipeline.cli.main", "ingest", "mllp", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:

        def connected() -> socket.socket | None:
            assert process.poll() is None, "the MLLP listener exited"
            try:
                return socket.create_connection((HOST, port), timeout=DEADLINE_SECONDS)
            except ConnectionRefusedError:
                return None

        sock = wait_until(connected, 60, "the MLLP listener accepts connections", every=0.2)
        assert sock is not None
        partial = OFFICE_VISIT[:300]
        with sock:
            sock.sendall(START_BLOCK + partial)
            sock.settimeout(60)
            data = b""
            while chunk := sock.recv(65536):
                data += chunk
        (ack,) = acks_in(data)
        assert msa(ack) == ["AR", "CHG-1001"]
        assert "not finished within 1 s" in err_text(ack)
        (letter,) = wait_until(
            lambda: [d for _, d in read_topic(settings, DEAD_LETTER, {}) if d is not None],
            60,
            "the unfinished frame is dead-lettered",
        )
        assert letter["value"] == partial
        assert letter["record_id"] == "CHG-1001"
        assert letter["source_topic"] == "ingest:mllp"
        assert letter["error_type"] == "DECODE"
        assert "not finished within 1 s" in letter["error"]
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)

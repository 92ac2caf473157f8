"""The MLLP listener on a real socket: one ACK per message, in order, whatever the input."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from pipeline.ingest.hl7 import Store, map_message
from pipeline.ingest.mllp import END_BLOCK, START_BLOCK, send_mllp, serve_mllp
from tests.builders import encounter

FIXTURES = Path(__file__).parent.parent / "fixtures" / "hl7"
PRACTICE = encounter()["billing_provider"]
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
        outcome = map_message(text, self.store, PRACTICE, datetime(2026, 3, 6, tzinfo=UTC))
        self.store = outcome.store
        self.events += outcome.events
        return outcome.ack


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def listener() -> Iterator[Callable[[Callable[[str], str]], int]]:
    """Start serve_mllp with a handler on a free port in a background loop; returns the port."""
    stops: list[Callable[[], None]] = []
    threads: list[threading.Thread] = []

    def start(handle: Callable[[str], str]) -> int:
        port = free_port()
        loop = asyncio.new_event_loop()
        started = threading.Event()

        async def main() -> None:
            ready = asyncio.Event()
            task = asyncio.create_task(serve_mllp(HOST, port, handle, ready))
            await ready.wait()
            started.set()
            await task

        def run() -> None:
            try:
                loop.run_until_complete(main())
            except asyncio.CancelledError:
                pass
            finally:
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
        listener: Callable[[Callable[[str], str]], int]) -> None:
    """Good and bad messages on one connection: one ACK each, in order; the next still works."""
    pipeline = Pipeline()
    port = listener(pipeline)
    names = ["adt_a04_two_insurances.hl7", "garbage.txt", "dft_p03_registered_patient.hl7",
             "oru_r01_unsupported.hl7", "dft_p03_icd9_diagnosis.hl7", "dft_p03_office_visit.hl7"]
    acks = send_mllp(HOST, port, [fixture(n) for n in names])
    assert [msa(a) for a in acks] == [["AA", "REG-0001"], ["AR", ""], ["AA", "CHG-1002"],
                                      ["AR", "LAB-2001"], ["AE", "CHG-1004"], ["AA", "CHG-1001"]]
    assert [e["encounter_id"] for e in pipeline.events] == ["V-20260305-0007", "V-20260302-0042"]
    assert msa(send_mllp(HOST, port, [fixture("dft_p03_unknown_payer.hl7")])[0]) == [
        "AE", "CHG-1005"]


def test_a_handler_failure_is_answered_ar_and_the_listener_keeps_serving(
        listener: Callable[[Callable[[str], str]], int]) -> None:
    """An exception in the handler becomes an AR with ERR 207; the next message is answered."""
    pipeline = Pipeline()

    def fragile(text: str) -> str:
        if "CHG-1001" in text:
            raise RuntimeError("broker unavailable")
        return pipeline(text)

    port = listener(fragile)
    acks = send_mllp(HOST, port, [fixture("dft_p03_office_visit.hl7"),
                                  fixture("adt_a04_two_insurances.hl7")])
    assert msa(acks[0]) == ["AR", "CHG-1001"]
    assert "|207^Application internal error^HL70357|" in acks[0]
    assert msa(acks[1]) == ["AA", "REG-0001"]


def test_frames_split_across_packets_and_several_connections_are_answered(
        listener: Callable[[Callable[[str], str]], int]) -> None:
    """A frame sent in pieces is answered once; a second connection is served meanwhile."""
    port = listener(Pipeline())
    frame = START_BLOCK + fixture("adt_a04_two_insurances.hl7").encode() + END_BLOCK
    with socket.create_connection((HOST, port), timeout=DEADLINE_SECONDS) as first:
        first.sendall(b"noise before a frame" + frame[:50])
        assert msa(send_mllp(HOST, port, [fixture("oru_r01_unsupported.hl7")])[0]) == [
            "AR", "LAB-2001"]
        first.sendall(frame[50:])
        answer = b""
        while not answer.endswith(END_BLOCK):
            chunk = first.recv(65536)
            assert chunk, "the listener closed the connection"
            answer += chunk
    assert answer.startswith(START_BLOCK)
    assert msa(answer[1:-2].decode()) == ["AA", "REG-0001"]

"""The local broker's lifecycle against a real Kafka process on free ports."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from kafka import KafkaAdminClient
from kafka.admin import NewTopic

from pipeline.kafka.broker import BrokerError, BrokerTimeout, LocalBroker, wait_for_kafka
from tests.kafka_cluster import free_port_pair
from tests.waiting import wait_until


def topic_names(bootstrap: str) -> list[str]:
    """The topics the cluster at *bootstrap* lists."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="test-broker")
    try:
        return list(admin.list_topics())
    finally:
        admin.close()


@pytest.fixture(scope="module")
def running_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalBroker]:
    """A broker started once for the tests that only read from it."""
    broker = LocalBroker(tmp_path_factory.mktemp("broker-data"), free_port_pair())
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture
def fresh_broker(tmp_path: Path) -> Iterator[LocalBroker]:
    """A broker of its own, not yet started, stopped after the test whatever happens."""
    broker = LocalBroker(tmp_path / "data", free_port_pair())
    yield broker
    broker.stop()


def test_started_broker_answers_and_serves_topics(running_broker):
    """A started broker answers clients and a topic created on it is listed."""
    assert running_broker.status().answers
    topic = f"test-broker-{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(bootstrap_servers=running_broker.bootstrap, client_id="test-broker")
    try:
        admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
    finally:
        admin.close()
    wait_until(lambda: topic in topic_names(running_broker.bootstrap), 10, f"{topic} is listed")


def test_second_start_returns_at_once_with_the_same_process(running_broker):
    """Starting a running broker again is a quick no-op that keeps its process."""
    pid = running_broker.status().pid
    began = time.monotonic()
    running_broker.start()
    assert time.monotonic() - began < 5
    assert running_broker.status().pid == pid


def test_stop_ends_the_process_and_status_says_so(fresh_broker):
    """After stop the broker's process is gone, its pid file removed and status not running."""
    fresh_broker.start()
    pid = fresh_broker.status().pid
    assert pid is not None
    assert fresh_broker.stop() is True
    assert not psutil.pid_exists(pid)
    assert not fresh_broker.pid_file.exists()
    status = fresh_broker.status()
    assert not status.running
    assert not status.answers


def test_start_refuses_a_port_served_by_another_process(tmp_path):
    """A port held by something else is reported at once instead of waited on."""
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        broker = LocalBroker(tmp_path, port)
        began = time.monotonic()
        with pytest.raises(BrokerError, match=f"port {port} .* already in use"):
            broker.start()
        assert time.monotonic() - began < 5
    assert not broker.is_running()


def test_stop_leaves_alone_a_process_that_is_not_our_broker(tmp_path):
    """A pid file naming some other process does not get that process signalled."""
    broker = LocalBroker(tmp_path, free_port_pair())
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        broker.home.mkdir(parents=True)
        broker.pid_file.write_text(f"{other.pid}\n")
        assert not broker.is_running()
        assert broker.stop() is False
        assert other.poll() is None
        assert not broker.pid_file.exists()
    finally:
        other.kill()
        other.wait()


def test_wait_for_kafka_gives_up_when_nothing_listens():
    """Waiting on an address where nothing listens ends with a timeout naming the address."""
    port = free_port_pair()
    with pytest.raises(BrokerTimeout, match=f"127.0.0.1:{port}"):
        wait_for_kafka(f"127.0.0.1:{port}", timeout=1)

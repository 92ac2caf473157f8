"""Finding a Kafka broker for the tests.

In order: an existing cluster named by CLAIMS_BOOTSTRAP_SERVERS; a
testcontainers Kafka container where a Docker engine answers; else the
project's own local broker, started for the session and stopped after it.
Under CI=true a broker must be found: integration tests never skip there.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from pipeline.config import PROJECT_ROOT
from pipeline.kafka.broker import LocalBroker, free_port_pair, wait_for_kafka

__all__ = ["docker_answers", "free_port_pair", "kafka_cluster"]


def docker_answers() -> bool:
    """True when a Docker engine responds (testcontainers can run Kafka)."""
    try:
        import docker

        client = docker.from_env(timeout=3)
        client.ping()
        return True
    except Exception:
        return False


@contextlib.contextmanager
def kafka_cluster() -> Iterator[str]:
    """Yield a bootstrap address for the whole test session."""
    external = os.environ.get("CLAIMS_BOOTSTRAP_SERVERS")
    if external:
        wait_for_kafka(external, timeout=60)
        yield external
        return
    if os.environ.get("CLAIMS_TEST_DOCKER", "1") == "1" and docker_answers():
        from testcontainers.community.kafka import KafkaContainer

        with KafkaContainer().with_kraft() as container:
            yield container.get_bootstrap_server()
        return
    data_dir = Path(os.environ.get("CLAIMS_TEST_DATA_DIR", PROJECT_ROOT / ".data" / "test-kafka"))
    broker = LocalBroker(data_dir, free_port_pair())
    broker.stop()  # a broker left by an interrupted session
    broker.start(timeout=120)
    try:
        yield broker.bootstrap
    finally:
        broker.stop()

"""``claims`` commands: the local broker, the topics, the schemas and a worker."""

from __future__ import annotations

import argparse
import sys

from pipeline.config import Settings


def _broker(settings: Settings, args: argparse.Namespace) -> int:
    from pipeline.kafka.broker import BrokerError, LocalBroker  # noqa: PLC0415 - per-command imports keep the CLI quick

    if settings.external_cluster:
        print(
            f"CLAIMS_BOOTSTRAP_SERVERS is set ({settings.bootstrap}): the cluster is not ours "
            "to start or stop.",
            file=sys.stderr,
        )
        return 2
    broker = LocalBroker.from_settings(settings)
    try:
        if args.action == "start":
            broker.start()
            print(
                f"broker running at {broker.bootstrap} (pid {broker.status().pid}); "
                f"log {broker.log_file}"
            )
        elif args.action == "stop":
            stopped = broker.stop()
            print("broker stopped" if stopped else "no broker of ours was running")
        else:
            st = broker.status()
            state = "running" if st.running else "not running"
            print(
                f"broker {state}; pid {st.pid or '-'}; {st.bootstrap} "
                f"{'answers' if st.answers else 'does not answer'}; log {st.log}"
            )
            return 0 if st.running else 3
    except BrokerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


def _topics(settings: Settings, args: argparse.Namespace) -> int:
    from pipeline.kafka.admin import create_topics  # noqa: PLC0415

    for report in create_topics(settings):
        verb = "created" if report.created else "exists "
        print(f"{verb} {report.name} ({report.partitions} partitions)")
    return 0


def _schemas(settings: Settings, args: argparse.Namespace) -> int:
    from pipeline.kafka.codec import SchemaRegistry  # noqa: PLC0415
    from processors.contracts.topics import ALL_TOPICS  # noqa: PLC0415

    registry = SchemaRegistry()
    if args.action == "register":
        for subject in sorted({t.value_schema for t in ALL_TOPICS}):
            reg, created = registry.register(subject)
            print(
                f"{'registered' if created else 'unchanged '} {subject} v{reg.version} "
                f"(id {reg.schema_id})"
            )
        return 0
    pending = registry.pending_changes()
    for subject in pending:
        print(f"changed, not registered: {subject} (run `claims schemas register`)")
    if not pending:
        print("every schema matches its newest registered version")
    return 1 if pending else 0


def _worker(settings: Settings, args: argparse.Namespace) -> int:
    from pipeline.runtime.worker import run_worker  # noqa: PLC0415

    run_worker(settings)
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add this group's commands to the ``claims`` parser."""
    b = sub.add_parser("broker", help="start, stop or check the local Kafka broker")
    b.add_argument("action", choices=["start", "stop", "status"])
    b.set_defaults(func=_broker)

    t = sub.add_parser("topics", help="create the pipeline's topics")
    t.add_argument("action", choices=["create"])
    t.set_defaults(func=_topics)

    s = sub.add_parser("schemas", help="check or register the Avro schemas")
    s.add_argument("action", choices=["check", "register"])
    s.set_defaults(func=_schemas)

    w = sub.add_parser("worker", help="run a pipeline worker until stopped")
    w.set_defaults(func=_worker)

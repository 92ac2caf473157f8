"""``claims`` whole-flow jobs: the demo, the benchmark and crash injection."""

from __future__ import annotations

import argparse
import json
import signal
import sys
from pathlib import Path

from pipeline.config import Settings


def _interrupt_on_sigterm() -> None:
    """Treat SIGTERM like Ctrl-C, so the demo and the benchmark stop what they started."""

    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)


def _demo(settings: Settings, args: argparse.Namespace) -> int:
    from pipeline.jobs.demo import run_demo  # noqa: PLC0415

    _interrupt_on_sigterm()
    return run_demo(
        settings,
        encounters=args.encounters,
        seed=args.seed,
        out=Path(args.out),
        workers=args.workers,
        keep_broker=args.keep_broker,
        timeout=args.timeout,
        malformed=args.malformed,
    )


def _bench(settings: Settings, args: argparse.Namespace) -> int:
    from pipeline.jobs.bench import run_bench  # noqa: PLC0415

    _interrupt_on_sigterm()
    if args.only == "coding":
        from pipeline.jobs.bench import run_coding_bench  # noqa: PLC0415

        print(json.dumps(run_coding_bench(args.encounters, args.seed), indent=2))
        return 0
    if args.only == "adjudication":
        from pipeline.jobs.bench import run_adjudication_bench  # noqa: PLC0415

        print(json.dumps(run_adjudication_bench(args.encounters, args.seed), indent=2))
        return 0
    result = run_bench(
        settings,
        encounters=args.encounters,
        seed=args.seed,
        workers=args.workers,
        topologies=args.topology,
    )
    print(json.dumps(result, indent=2))
    return 0


def _chaos(settings: Settings, args: argparse.Namespace) -> int:
    from pipeline.jobs.chaos import ChaosError, ChaosOptions, print_report, run_chaos  # noqa: PLC0415
    from pipeline.kafka.broker import BrokerError  # noqa: PLC0415
    from pipeline.runtime.processes import WorkerDied  # noqa: PLC0415

    _interrupt_on_sigterm()
    topologies = ("staged", "fused") if args.topology == "both" else (args.topology,)
    options = ChaosOptions(
        encounters=args.encounters,
        kills=args.kills,
        workers=args.workers,
        topologies=topologies,
        broker_kill=args.broker_kill,
        seed=args.seed,
        rate=args.rate,
        malformed=args.malformed,
    )
    out = Path(args.out) if args.out else None
    try:
        report = run_chaos(settings, options, out)
    except (ChaosError, BrokerError, WorkerDied, TimeoutError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; stopped what the harness started", file=sys.stderr)
        return 130
    print_report(report, sys.stdout)
    if out is not None:
        print(f"\nWrote {out / 'chaos.json'}")
    return 0 if report["ok"] else 1


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add this group's commands to the ``claims`` parser."""
    d = sub.add_parser("demo", help="run the whole flow on a synthetic feed and summarise it")
    d.add_argument("--encounters", type=int, default=2000)
    d.add_argument("--seed", type=int, default=7)
    d.add_argument("--out", default="out")
    d.add_argument("--workers", type=int, default=2)
    d.add_argument("--malformed", type=int, default=5)
    d.add_argument("--timeout", type=float, default=600.0)
    d.add_argument(
        "--keep-broker", action="store_true", help="leave the local broker running afterwards"
    )
    d.set_defaults(func=_demo)

    be = sub.add_parser("bench", help="measure throughput and latency (prints JSON)")
    be.add_argument("--encounters", type=int, default=10000)
    be.add_argument("--seed", type=int, default=11)
    be.add_argument("--workers", type=int, default=2)
    be.add_argument(
        "--topology", nargs="+", choices=["staged", "fused"], default=["fused", "staged"]
    )
    be.add_argument(
        "--only",
        choices=["coding", "adjudication"],
        help="benchmark only one pure stage function on one core (no broker)",
    )
    be.set_defaults(func=_bench)

    ca = sub.add_parser(
        "chaos",
        help="kill workers and the broker mid-stream and compare every "
        "topic with an uninterrupted run of the same input",
    )
    ca.add_argument("--encounters", type=int, default=2000)
    ca.add_argument("--kills", type=int, default=3, help="worker SIGKILLs per topology")
    ca.add_argument("--workers", type=int, default=2)
    ca.add_argument("--topology", choices=["staged", "fused", "both"], default="both")
    ca.add_argument(
        "--broker-kill",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also kill -9 the broker once, mid-run, and restart it (default: yes)",
    )
    ca.add_argument("--seed", type=int, default=7, help="seed of the feed and of the kill plan")
    ca.add_argument("--rate", type=float, default=300.0, help="input records per second")
    ca.add_argument(
        "--malformed",
        type=int,
        default=8,
        help="malformed records mixed into the input (compared as dead letters)",
    )
    ca.add_argument("--out", help="folder for chaos.json and the worker logs")
    ca.set_defaults(func=_chaos)

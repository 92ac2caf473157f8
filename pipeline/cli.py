"""The ``claims`` command.

claims broker start|stop|status      the local Kafka broker
claims topics create                  create the registry's topics (idempotent)
claims schemas check|register         compare or register the Avro schemas
claims worker                         run a pipeline worker (faust agents)
claims feed synthetic --count N       publish synthetic encounters
claims export 837p|835|fhir --out DIR X12 837P claims / X12 835 remittance advice /
                                      FHIR Claim NDJSON
claims demo --encounters N --out DIR  the whole flow end to end, with a summary
claims bench [--only coding|adjudication]  throughput and latency benchmark (JSON)
claims rework list|show|resolve       work the rework queue
claims ingest fhir|hl7|835 PATH...    publish FHIR bundles, HL7 v2 messages or X12 835 files
claims ingest mllp --port P           an HL7 v2 MLLP listener
claims check FILE... [--format F]     dry run of the stages on FHIR or HL7 input, no broker
claims status CLAIM_ID                a claim's whole history, with amounts
claims denials tail [--payer P] ...   follow new denials live (table or JSON lines)
claims replay --from T --to T --into NAME [--payers DIR] [--seed S]
                                      reprocess a window into NAME's own topics
claims replay diff NAME [--against live|OTHER]  what changed
claims dashboard [--host H] [--port P] [--token T]  the live denial dashboard
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from pathlib import Path

from pipeline.config import Settings, SettingsError, load_settings
from pipeline.faust_env import scrub_faust_env


def _broker(settings: Settings, args: argparse.Namespace) -> int:
    from pipeline.broker import BrokerError, LocalBroker  # noqa: PLC0415 - per-command imports keep the CLI quick

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
    from pipeline.admin import create_topics  # noqa: PLC0415

    for report in create_topics(settings):
        verb = "created" if report.created else "exists "
        print(f"{verb} {report.name} ({report.partitions} partitions)")
    return 0


def _schemas(settings: Settings, args: argparse.Namespace) -> int:
    from pipeline.codec import SchemaRegistry  # noqa: PLC0415
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
    from pipeline.worker import run_worker  # noqa: PLC0415

    run_worker(settings)
    return 0


def _feed(settings: Settings, args: argparse.Namespace) -> int:
    from pipeline.feed import publish  # noqa: PLC0415
    from processors.synthetic import generate  # noqa: PLC0415

    report = publish(
        settings,
        generate(args.count, args.seed),
        malformed=args.malformed,
        seed=args.seed,
        total=args.count,
    )
    print(
        f"sent {report.sent} encounters and {report.malformed} malformed records to "
        f"{settings.topic_prefix}ehr.encounters in {report.seconds:.1f} s"
    )
    return 0


def _interrupt_on_sigterm() -> None:
    """Treat SIGTERM like Ctrl-C, so the demo and the benchmark stop what they started."""

    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)


def _export(settings: Settings, args: argparse.Namespace) -> int:
    from pipeline.exports import export_835, export_837p, export_fhir  # noqa: PLC0415

    if args.format == "fhir":
        path = Path(args.out) / "claims.ndjson"
        print(f"wrote {export_fhir(settings, path)} FHIR Claims to {path}")
        return 0
    if args.format == "table":
        from pipeline.exports import export_tables  # noqa: PLC0415

        for path, rows in export_tables(settings, Path(args.out), csv=args.csv):
            print(f"wrote {path} ({rows} rows)")
        return 0
    prefix = settings.topic_prefix
    if args.format == "835":
        files = export_835(settings, Path(args.out), first_control=args.first_control)
        nothing = f"no remittances on {prefix}claims.remittance to export"
    else:
        files = export_837p(settings, Path(args.out), first_control=args.first_control)
        nothing = f"no claims on {prefix}claims.submitted to export"
    for path in files:
        print(f"wrote {path}")
    if not files:
        print(nothing)
    return 0


def _demo(settings: Settings, args: argparse.Namespace) -> int:
    from pipeline.demo import run_demo  # noqa: PLC0415

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
    from pipeline.bench import run_bench  # noqa: PLC0415

    _interrupt_on_sigterm()
    if args.only == "coding":
        from pipeline.bench import run_coding_bench  # noqa: PLC0415

        print(json.dumps(run_coding_bench(args.encounters, args.seed), indent=2))
        return 0
    if args.only == "adjudication":
        from pipeline.bench import run_adjudication_bench  # noqa: PLC0415

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
    from pipeline.broker import BrokerError  # noqa: PLC0415
    from pipeline.chaos import ChaosError, ChaosOptions, print_report, run_chaos  # noqa: PLC0415
    from pipeline.processes import WorkerDied  # noqa: PLC0415

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


def _rework(settings: Settings, args: argparse.Namespace) -> int:
    import getpass  # noqa: PLC0415

    from pipeline import rework  # noqa: PLC0415
    from processors.denials.queue import ChangeError, parse_change  # noqa: PLC0415

    try:
        if args.action == "list":
            items = rework.Queue.read(settings).open(args.queue, args.payer, args.category)
            if args.json:
                from pipeline.outcomes import write_jsonl  # noqa: PLC0415

                write_jsonl(Path("/dev/stdout"), items)
            else:
                rework.print_items(items, sys.stdout)
            return 0
        if args.action == "show":
            queue = rework.Queue.read(settings)
            rework.print_item(queue.item(args.id), queue.actions_on(args.id), sys.stdout)
            return 0
        decision = args.decision
        changes = [
            parse_change(*c.split("=", 1)) if "=" in c else parse_change(c, "") for c in args.change
        ]
        if changes and decision != "RESUBMIT":
            raise ChangeError("--change applies only with --resubmit")
        record = rework.resolve(
            settings,
            args.id,
            decision,
            actor=args.by or getpass.getuser(),
            note=args.note,
            changes=changes,
        )
    except (rework.ReworkError, ChangeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    sent = f"; corrected claim {record['claim']['claim_id']} sent" if record["claim"] else ""
    print(f"recorded {record['action']} on {record['rework_id']} as {record['action_id']}{sent}")
    return 0


def _status(settings: Settings, args: argparse.Namespace) -> int:
    from pipeline import rework  # noqa: PLC0415

    events = rework.claim_history(settings, args.claim_id)
    if not events:
        print(f"error: no claim {args.claim_id} on the topics", file=sys.stderr)
        return 2
    rework.print_history(args.claim_id, events, sys.stdout)
    return 0


def _billing_provider(path: str | None) -> dict[str, object]:
    from processors.synthetic import practice_record  # noqa: PLC0415

    if path is None:
        return practice_record()
    loaded: dict[str, object] = json.loads(Path(path).read_text())
    return loaded


def _paths(items: list[str], suffixes: tuple[str, ...]) -> list[Path]:
    out: list[Path] = []
    for item in items:
        path = Path(item)
        if path.is_dir():
            out += sorted(p for p in path.iterdir() if p.suffix.lower() in suffixes)
        else:
            out.append(path)
    missing = [p for p in out if str(p) != "-" and not p.exists()]
    if missing:
        raise FileNotFoundError(", ".join(str(p) for p in missing))
    return out


def _read_stdin_to(tmp_dir: Path, suffix: str) -> Path:
    path = tmp_dir / f"stdin{suffix}"
    path.write_text(sys.stdin.read())
    return path


def _ingest(settings: Settings, args: argparse.Namespace) -> int:
    import tempfile  # noqa: PLC0415

    from pipeline.ingest.sink import IngestSink  # noqa: PLC0415

    if args.format == "mllp":
        from pipeline.ingest.listen import run_mllp  # noqa: PLC0415

        return run_mllp(settings, args.host, args.port, _billing_provider(args.billing_provider))
    with tempfile.TemporaryDirectory() as tmp:
        items = [str(_read_stdin_to(Path(tmp), ".in")) if i == "-" else i for i in args.paths]
        try:
            paths = _paths(
                items,
                {
                    "fhir": (".json", ".ndjson"),
                    "hl7": (".hl7", ".txt"),
                    "835": (".x12", ".835", ".edi", ".txt"),
                }[args.format],
            )
        except FileNotFoundError as exc:
            print(f"error: no such file: {exc}", file=sys.stderr)
            return 2
        with IngestSink(settings) as sink:
            if args.format == "fhir":
                from pipeline.ingest.files import ingest_fhir  # noqa: PLC0415

                problems = ingest_fhir(
                    paths,
                    sink,
                    _billing_provider(args.billing_provider),
                    payers=settings.refdata().payers,
                )
            elif args.format == "hl7":
                from pipeline.ingest.files import ingest_hl7  # noqa: PLC0415

                problems = ingest_hl7(
                    paths,
                    sink,
                    _billing_provider(args.billing_provider),
                    payers=settings.refdata().payers,
                )
            else:
                from pipeline.ingest.files import ingest_835  # noqa: PLC0415

                problems = ingest_835(settings, paths, sink)
        for problem in problems:
            print(f"rejected {problem}", file=sys.stderr)
        print(f"published {sink.sent} record(s); {sink.dead} kept on the dead-letter topic")
    return 1 if problems else 0


def _check(settings: Settings, args: argparse.Namespace) -> int:
    from pipeline import check  # noqa: PLC0415

    try:
        paths = _paths(args.paths, (".json", ".ndjson", ".hl7", ".txt"))
    except FileNotFoundError as exc:
        print(f"error: no such file: {exc}", file=sys.stderr)
        return 2
    provider = _billing_provider(args.billing_provider)
    fmt = args.format or (
        "hl7" if all(p.suffix.lower() in (".hl7", ".txt") for p in paths) else "fhir"
    )
    if fmt == "fhir":
        events, problems = check.fhir_events(paths, provider, payers=settings.refdata().payers)
    else:
        from pipeline.ingest.files import hl7_events  # noqa: PLC0415

        events, problems = hl7_events(paths, provider, payers=settings.refdata().payers)
    refdata = settings.refdata()
    result = check.run_check(events, refdata, settings.seed)
    result.problems = problems
    if args.json:
        check.write_check_json(result, sys.stdout)
    else:
        check.print_check(result, sys.stdout)
    return 1 if problems else 0


def _denials(settings: Settings, args: argparse.Namespace) -> int:
    from datetime import UTC, datetime  # noqa: PLC0415

    from pipeline.tail import tail  # noqa: PLC0415

    since = None
    if args.since:
        try:
            since = datetime.fromisoformat(args.since)
        except ValueError:
            print(f"error: --from {args.since!r} is not an ISO 8601 date or time", file=sys.stderr)
            return 2
        since = since if since.tzinfo else since.replace(tzinfo=UTC)
    import contextlib  # noqa: PLC0415

    with contextlib.suppress(KeyboardInterrupt):
        tail(
            settings,
            sys.stdout,
            payer=args.payer,
            category=args.category,
            queue=args.queue,
            as_json=args.json,
            since=since,
            limit=args.max,
            idle=args.idle,
        )
    return 0


def _replay(settings: Settings, args: argparse.Namespace) -> int:
    from datetime import UTC, datetime  # noqa: PLC0415

    from pipeline import replay  # noqa: PLC0415

    try:
        if args.words[:1] == ["diff"]:
            if len(args.words) != 2:
                raise replay.ReplayError("usage: claims replay diff NAME [--against live|OTHER]")
            other = replay.replay_settings(settings, args.words[1])
            base = (
                settings
                if args.against == "live"
                else replay.replay_settings(settings, args.against)
            )
            report = replay.diff(
                replay.RunView.read(base),
                replay.RunView.read(other),
                replay.replay_encounters(other),
            )
            if args.json:
                print(json.dumps(report, indent=2))
            else:
                replay.print_diff(report, sys.stdout)
            return 0
        if args.words or not (args.since and args.until and args.into):
            raise replay.ReplayError(
                "usage: claims replay --from TIME --to TIME --into NAME "
                "[--payers DIR] [--seed S] [--ruleset VERSION]"
            )
        start, end = (datetime.fromisoformat(v) for v in (args.since, args.until))
        start = start if start.tzinfo else start.replace(tzinfo=UTC)
        end = end if end.tzinfo else end.replace(tzinfo=UTC)
        summary = replay.run_replay(
            settings,
            args.into,
            start,
            end,
            seed=args.seed,
            payers_dir=Path(args.payers) if args.payers else None,
            ruleset=args.ruleset,
            workers=args.workers,
        )
    except (replay.ReplayError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(summary, indent=2))
    return 0


def _dashboard(settings: Settings, args: argparse.Namespace) -> int:
    import contextlib  # noqa: PLC0415

    from pipeline.dashboard import DashboardError, run_dashboard  # noqa: PLC0415

    print(
        f"dashboard on http://{args.host}:{args.port}/ (Ctrl-C to stop)",
        file=sys.stderr,
        flush=True,
    )
    try:
        with contextlib.suppress(KeyboardInterrupt):
            run_dashboard(settings, args.host, args.port, args.token)
    except DashboardError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def parser() -> argparse.ArgumentParser:
    """The argument parser of the ``claims`` command."""
    p = argparse.ArgumentParser(
        prog="claims", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = p.add_subparsers(dest="command", required=True)

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

    f = sub.add_parser("feed", help="publish encounters")
    f.add_argument("source", choices=["synthetic"])
    f.add_argument("--count", type=int, default=1000)
    f.add_argument("--seed", type=int, default=7)
    f.add_argument(
        "--malformed",
        type=int,
        default=0,
        help="also send this many malformed records (dead-letter demonstration)",
    )
    f.set_defaults(func=_feed)

    x = sub.add_parser(
        "export", help="write the claims as X12 837P or FHIR NDJSON, or the remittances as X12 835"
    )
    x.add_argument(
        "format",
        choices=["837p", "835", "fhir", "table"],
        help="837p: X12 837P claims; 835: X12 835 remittance advice; "
        "fhir: FHIR Claim NDJSON; table: analyst tables as Parquet",
    )
    x.add_argument("--csv", action="store_true", help="table: also write CSV files")
    x.add_argument("--out", required=True, help="folder for the files")
    x.add_argument(
        "--first-control", type=int, default=1, help="first interchange control number (ISA13)"
    )
    x.set_defaults(func=_export)

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

    r = sub.add_parser("rework", help="list, show or resolve rework items")
    rsub = r.add_subparsers(dest="action", required=True)
    rl = rsub.add_parser("list", help="open items, highest priority first")
    rl.add_argument("--queue", choices=["front_desk", "coding", "billing", "appeals", "triage"])
    rl.add_argument("--payer")
    rl.add_argument("--category")
    rl.add_argument("--json", action="store_true", help="JSON lines instead of a table")
    rs = rsub.add_parser("show", help="one item in full, with what was done about it")
    rs.add_argument("id")
    rr = rsub.add_parser("resolve", help="record what you did about an item")
    rr.add_argument("id")
    how = rr.add_mutually_exclusive_group(required=True)
    how.add_argument(
        "--resubmit",
        dest="decision",
        action="store_const",
        const="RESUBMIT",
        help="send a corrected claim (with --change)",
    )
    how.add_argument("--appeal", dest="decision", action="store_const", const="APPEAL")
    how.add_argument("--write-off", dest="decision", action="store_const", const="WRITE_OFF")
    how.add_argument("--bill-patient", dest="decision", action="store_const", const="BILL_PATIENT")
    rr.add_argument(
        "--change",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="a correction for --resubmit: member_id=, group_number=, "
        "authorization_number=, referral_number=, or per line "
        "add_modifier=LINE:MOD, remove_modifier=LINE:MOD, "
        "procedure_code=LINE:CODE, units=LINE:N, dx_pointers=LINE:1,2",
    )
    rr.add_argument("--note")
    rr.add_argument("--by", help="who acted (default: your user name)")
    r.set_defaults(func=_rework)

    ing = sub.add_parser(
        "ingest",
        help="publish FHIR bundles, HL7 v2 messages or X12 835 "
        "files, or listen for HL7 v2 over MLLP",
    )
    ing.add_argument("format", choices=["fhir", "hl7", "835", "mllp"])
    ing.add_argument(
        "paths",
        nargs="*",
        metavar="PATH",
        help="files or folders (- reads standard input); not for mllp",
    )
    ing.add_argument("--port", type=int, default=2575, help="MLLP port (mllp only)")
    ing.add_argument("--host", default="127.0.0.1", help="MLLP address to bind (mllp only)")
    ing.add_argument(
        "--billing-provider",
        metavar="JSON",
        help="the billing provider (a claims.Provider as JSON) for encounters "
        "that do not name one; default: the demonstration practice",
    )
    ing.set_defaults(func=_ingest)

    ch = sub.add_parser(
        "check",
        help="run FHIR or HL7 input through the stages in process, "
        "no broker, and report each encounter",
    )
    ch.add_argument("paths", nargs="+", metavar="FILE")
    ch.add_argument("--format", choices=["fhir", "hl7"])
    ch.add_argument("--json", action="store_true", help="JSON lines instead of text")
    ch.add_argument("--billing-provider", metavar="JSON")
    ch.set_defaults(func=_check)

    dn = sub.add_parser("denials", help="follow the denials as they arrive")
    dn.add_argument("action", choices=["tail"])
    dn.add_argument("--payer")
    dn.add_argument("--category")
    dn.add_argument("--queue")
    dn.add_argument("--json", action="store_true", help="JSON lines instead of a table")
    dn.add_argument(
        "--from",
        dest="since",
        metavar="TIME",
        help="start with the items published since TIME (ISO 8601); default: now",
    )
    dn.add_argument("--max", type=int, help="stop after this many items")
    dn.add_argument("--idle", type=float, help="stop after this many seconds without an item")
    dn.set_defaults(func=_denials)

    rp = sub.add_parser(
        "replay",
        help="reprocess a window of encounters into separate "
        "topics, or compare a replay with the live run",
    )
    rp.add_argument(
        "words",
        nargs="*",
        metavar="diff NAME",
        help="`diff NAME` compares replay NAME with --against",
    )
    rp.add_argument(
        "--from",
        dest="since",
        metavar="TIME",
        help="first release time (ISO 8601) of the encounters to replay",
    )
    rp.add_argument("--to", dest="until", metavar="TIME", help="end of the window (exclusive)")
    rp.add_argument("--into", metavar="NAME", help="the replay's name (its topic prefix)")
    rp.add_argument("--payers", metavar="DIR", help="payer profiles to replay with")
    rp.add_argument("--seed", type=int, help="payer noise seed to replay with")
    rp.add_argument("--ruleset", help="rule set version to replay with (the installed one)")
    rp.add_argument("--workers", type=int, default=1)
    rp.add_argument("--against", default="live", help="diff: live, or another replay's name")
    rp.add_argument("--json", action="store_true", help="diff: JSON instead of text")
    rp.set_defaults(func=_replay)

    db = sub.add_parser("dashboard", help="serve the live denial dashboard")
    db.add_argument(
        "--host", default="127.0.0.1", help="address to bind; anything but localhost needs --token"
    )
    db.add_argument("--port", type=int, default=8050)
    db.add_argument("--token", help="access token the page and API require")
    db.set_defaults(func=_dashboard)

    st = sub.add_parser(
        "status", help="a claim's history across its original, corrected and rebilled claims"
    )
    st.add_argument("claim_id")
    st.set_defaults(func=_status)
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``claims`` console script."""
    args = parser().parse_args(argv)
    # faust's own variables steer neither a command nor the workers it starts
    # (pipeline.faust_env); each one set is named in a warning.
    scrub_faust_env()
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    result: int = args.func(settings, args)
    return result


if __name__ == "__main__":
    sys.exit(main())

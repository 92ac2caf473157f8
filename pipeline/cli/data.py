"""``claims`` commands: data in (synthetic feed, FHIR, HL7 v2, X12 835) and the dry-run check."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from pipeline.config import Settings
from pipeline.ingest.directory import FeedDirectory, billing_for


def _feed(settings: Settings, args: argparse.Namespace) -> int:
    from pipeline.ingest.feed import publish  # noqa: PLC0415
    from pipeline.ingest.synthetic import generate  # noqa: PLC0415

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


def _billing(settings: Settings, path: str | None) -> FeedDirectory:
    """The settings' provider directory, with the --billing-provider file for the feed."""
    given: dict[str, Any] | None = None
    try:
        if path is not None:
            given = json.loads(Path(path).read_text())
        return billing_for(settings, given)
    except (OSError, ValueError) as exc:  # DirectoryError is a ValueError
        raise SystemExit(f"error: {exc}") from exc


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

        return run_mllp(settings, args.host, args.port, _billing(settings, args.billing_provider))
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
            if args.format in ("fhir", "hl7"):
                from pipeline.ingest.files import ingest_fhir, ingest_hl7  # noqa: PLC0415

                ingest = ingest_fhir if args.format == "fhir" else ingest_hl7
                problems = ingest(
                    paths,
                    sink,
                    _billing(settings, args.billing_provider),
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
    from pipeline.jobs import check  # noqa: PLC0415

    try:
        paths = _paths(args.paths, (".json", ".ndjson", ".hl7", ".txt"))
    except FileNotFoundError as exc:
        print(f"error: no such file: {exc}", file=sys.stderr)
        return 2
    provider = _billing(settings, args.billing_provider)
    fmt = args.format or (
        "hl7" if all(p.suffix.lower() in (".hl7", ".txt") for p in paths) else "fhir"
    )
    if fmt == "fhir":
        from pipeline.ingest.files import fhir_events  # noqa: PLC0415

        events, problems = fhir_events(paths, provider, payers=settings.refdata().payers)
    else:
        from pipeline.ingest.files import hl7_events  # noqa: PLC0415

        events, problems = hl7_events(paths, provider, payers=settings.refdata().payers)
    refdata = settings.refdata()
    result = check.run_check(events, refdata, settings.seed)
    result.problems = problems
    if args.summary:
        summary = check.summarize_check(result)
        if args.json:
            print(json.dumps(summary, indent=2))
        else:
            check.print_summary(summary, sys.stdout)
    elif args.json:
        check.write_check_json(result, sys.stdout)
    else:
        check.print_check(result, sys.stdout)
    return 1 if problems else 0


def _synthea(settings: Settings, args: argparse.Namespace) -> int:
    from pipeline.ingest.synthea import SyntheaError, run_synthea  # noqa: PLC0415
    from pipeline.jars import JarsError  # noqa: PLC0415

    out = Path(args.out)
    print(
        f"Running Synthea for {args.patients} patient(s), seed {args.seed}, into {out} ...",
        file=sys.stderr,
        flush=True,
    )
    try:
        run = run_synthea(out, args.patients, args.seed, state=args.state, years=args.years)
    except (SyntheaError, JarsError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(
        f"wrote {len(run.bundles)} patient bundle(s) and {len(run.side_files)} "
        f"organization/practitioner file(s) to {out / 'fhir'} in {run.seconds:.0f} s, "
        f"the provider directory {run.directory} and the member roster {run.roster}"
    )
    print(
        f"next: CLAIMS_PROVIDER_DIRECTORY={run.directory} CLAIMS_MEMBER_ROSTER={run.roster} "
        f"claims check --summary {out / 'fhir'}"
    )
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add this group's commands to the ``claims`` parser."""
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
        help="the billing provider (a claims.Provider as JSON) for encounters that name "
        "none; without it such encounters are refused (see CLAIMS_PROVIDER_DIRECTORY)",
    )
    ing.set_defaults(func=_ingest)

    sy = sub.add_parser("synthea", help="generate FHIR R4 patients with Synthea")
    sy.add_argument("action", choices=["generate"])
    sy.add_argument("--patients", type=int, default=10, help="patients alive at the end")
    sy.add_argument("--seed", type=int, default=42, help="Synthea's population seed")
    sy.add_argument("--state", help="US state to draw the population from (default Massachusetts)")
    sy.add_argument("--years", type=int, help="years of history to keep (default Synthea's 10)")
    sy.add_argument("--out", required=True, help="folder for fhir/ and providers.json")
    sy.set_defaults(func=_synthea)

    ch = sub.add_parser(
        "check",
        help="run FHIR or HL7 input through the stages in process, "
        "no broker, and report each encounter",
    )
    ch.add_argument("paths", nargs="+", metavar="FILE")
    ch.add_argument("--format", choices=["fhir", "hl7"])
    ch.add_argument("--json", action="store_true", help="JSON lines instead of text")
    ch.add_argument(
        "--summary",
        action="store_true",
        help="counts instead of each encounter: billed automatically, sent to a person "
        "and refused, by reason",
    )
    ch.add_argument(
        "--billing-provider",
        metavar="JSON",
        help="the billing provider for encounters that name none (as for ingest)",
    )
    ch.set_defaults(func=_check)

"""``claims`` commands for looking back: replays of a window and the live dashboard."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from pipeline.config import Settings


def _replay(settings: Settings, args: argparse.Namespace) -> int:
    from datetime import UTC, datetime  # noqa: PLC0415

    from pipeline.jobs import replay  # noqa: PLC0415

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

    from pipeline.views.dashboard import DashboardError, run_dashboard  # noqa: PLC0415

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


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add this group's commands to the ``claims`` parser."""
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

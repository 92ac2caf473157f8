"""``claims`` commands: the rework queue, a claim's history and the live denial tail."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pipeline.config import Settings
from processors.contracts.vocab import Decision, Queue


def _rework(settings: Settings, args: argparse.Namespace) -> int:
    import getpass  # noqa: PLC0415

    from pipeline.views import rework  # noqa: PLC0415
    from processors.denials.queue import ChangeError, parse_change  # noqa: PLC0415

    try:
        if args.action == "list":
            items = rework.Queue.read(settings).open(args.queue, args.payer, args.category)
            if args.json:
                from pipeline.views.outcomes import write_jsonl  # noqa: PLC0415

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
        if changes and decision != Decision.RESUBMIT:
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
    from pipeline.views import rework  # noqa: PLC0415

    events = rework.claim_history(settings, args.claim_id)
    if not events:
        print(f"error: no claim {args.claim_id} on the topics", file=sys.stderr)
        return 2
    rework.print_history(args.claim_id, events, sys.stdout)
    return 0


def _denials(settings: Settings, args: argparse.Namespace) -> int:
    from datetime import UTC, datetime  # noqa: PLC0415

    from pipeline.views.tail import tail  # noqa: PLC0415

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


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add this group's commands to the ``claims`` parser."""
    r = sub.add_parser("rework", help="list, show or resolve rework items")
    rsub = r.add_subparsers(dest="action", required=True)
    rl = rsub.add_parser("list", help="open items, highest priority first")
    rl.add_argument("--queue", choices=[q.value for q in Queue])
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
        const=Decision.RESUBMIT,
        help="send a corrected claim (with --change)",
    )
    how.add_argument("--appeal", dest="decision", action="store_const", const=Decision.APPEAL)
    how.add_argument("--write-off", dest="decision", action="store_const", const=Decision.WRITE_OFF)
    how.add_argument(
        "--bill-patient", dest="decision", action="store_const", const=Decision.BILL_PATIENT
    )
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

    st = sub.add_parser(
        "status", help="a claim's history across its original, corrected and rebilled claims"
    )
    st.add_argument("claim_id")
    st.set_defaults(func=_status)

"""``claims`` commands: writing what the pipeline produced as X12, FHIR and analyst tables."""

from __future__ import annotations

import argparse
from pathlib import Path

from pipeline.config import Settings


def _export(settings: Settings, args: argparse.Namespace) -> int:
    from pipeline.views.exports import export_835, export_837p, export_fhir  # noqa: PLC0415

    if args.format == "fhir":
        path = Path(args.out) / "claims.ndjson"
        print(f"wrote {export_fhir(settings, path)} FHIR Claims to {path}")
        return 0
    if args.format == "table":
        from pipeline.views.exports import export_tables  # noqa: PLC0415

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


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add this group's commands to the ``claims`` parser."""
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

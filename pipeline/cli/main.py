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
import sys

from pipeline.cli import analysis, data, exports, jobs, platform, rework
from pipeline.config import SettingsError, load_settings
from pipeline.runtime.faust_env import scrub_faust_env

GROUPS = (platform, data, exports, jobs, rework, analysis)


def parser() -> argparse.ArgumentParser:
    """The argument parser of the ``claims`` command."""
    p = argparse.ArgumentParser(
        prog="claims", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = p.add_subparsers(dest="command", required=True)
    for group in GROUPS:
        group.register(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``claims`` console script."""
    args = parser().parse_args(argv)
    # faust's own variables steer neither a command nor the workers it starts
    # (pipeline.runtime.faust_env); each one set is named in a warning.
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

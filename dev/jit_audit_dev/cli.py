"""``jit-audit-dev``: development tools, never for production.

    jit-audit-dev emulator [--port 5000]                  serve the local AWS emulator (moto, extended)
    jit-audit-dev seed --endpoint-url URL [--requests 200]   create and fill the jit_audit table

The emulator is described in docs/emulator.md. ``seed`` talks to whatever boto3 is pointed at
(``--endpoint-url``, ``AWS_ENDPOINT_URL``, a profile): the emulator, or a sandbox account.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def _cmd_emulator(args: argparse.Namespace) -> int:
    from jit_audit_dev import emulator

    emulator.serve(
        host=args.host,
        port=args.port,
        pitr_history_days=args.pitr_history_days,
        pitr_lag_seconds=args.pitr_lag_seconds,
        export_seconds=args.export_seconds,
        items_per_data_file=args.items_per_data_file,
    )
    return 0


def _cmd_seed(args: argparse.Namespace) -> int:
    import boto3

    from jit_audit_dev import seed

    session = boto3.session.Session(region_name=args.region or None)
    resource = session.resource("dynamodb", endpoint_url=args.endpoint_url)
    result = seed.seed(resource, args.table, requests=args.requests, seed_value=args.seed, days=args.days,
                       create=not args.no_create)
    if args.bucket:
        seed.ensure_bucket(session.client("s3", endpoint_url=args.endpoint_url), args.bucket, prefix=args.prefix,
                           retention_days=args.retention_days)
    counts = ", ".join(f"{name} {count}" for name, count in result.by_type.items())
    print(f"seeded {result.events} events of {result.requests} requests into {result.table} ({counts})")
    if result.first_event and result.last_event:
        print(f"events (each written at its event time) from {result.first_event.isoformat()} "
              f"to {result.last_event.isoformat()}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="jit-audit-dev", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)

    emulator = commands.add_parser("emulator", help="serve the local AWS emulator (for local runs and tests only)")
    emulator.add_argument("--host", default="127.0.0.1")
    emulator.add_argument("--port", type=int, default=5000, help="0: any free port (the log says which)")
    emulator.add_argument("--pitr-history-days", type=float, default=35,
                          help="pretend point-in-time recovery ran this long before it was enabled")
    emulator.add_argument("--pitr-lag-seconds", type=float, default=300,
                          help="LatestRestorableDateTime trails now by this much (AWS: about 5 minutes)")
    emulator.add_argument("--export-seconds", type=float, default=2.0, help="how long an export stays IN_PROGRESS")
    emulator.add_argument("--items-per-data-file", type=int, default=1000)
    emulator.set_defaults(func=_cmd_emulator)

    seed = commands.add_parser("seed", help="create the jit_audit table (keys, GSIs, PITR) and fill it")
    seed.add_argument("--table", default="jit_audit")
    seed.add_argument("--requests", type=int, default=200, help="number of JIT requests (each has 2-4 events)")
    seed.add_argument("--seed", type=int, default=7, help="random seed, for repeatable data")
    seed.add_argument("--days", type=float, default=30,
                      help="spread requests over this many days before the start of yesterday (UTC), each event "
                           "written (in the emulator's history) at its event time; 30 covers every date the local "
                           "stack backfills")
    seed.add_argument("--no-create", action="store_true", help="only write items into an existing table")
    seed.add_argument("--bucket", help="also create this export bucket (with a lifecycle rule)")
    seed.add_argument("--prefix", default="exports", help="export prefix the lifecycle rule covers")
    seed.add_argument("--retention-days", type=int, default=400, help="lifecycle expiration for --bucket")
    seed.add_argument("--endpoint-url", help="AWS endpoint, e.g. the emulator's http://127.0.0.1:5000")
    seed.add_argument("--region")
    seed.set_defaults(func=_cmd_seed)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """The console script: the subcommand's exit code (argparse exits 2 on a usage error)."""
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

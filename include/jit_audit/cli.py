"""``jit-audit``: what people run outside Airflow.

    jit-audit emulator [--port 5000]          serve the local AWS emulator (moto, extended)
    jit-audit seed [--requests 200]           create and fill the jit_audit table
    jit-audit flatten < export.json[.gz]      DynamoDB JSON lines to exact JSON Lines
    jit-audit query --by account --id 123456789012 --start ... --end ...
    jit-audit scan --event-type ERROR [--segments 4] --start ... --end ...
    jit-audit check-retention --table jit_audit --bucket jit-audit-exports --prefix exports [--require-versioning]
    jit-audit verify s3://bucket/exports/ [--table jit_audit] [--kms-key-id KEY]
    jit-audit verify s3://bucket/exports/jsonl/table=jit_audit/snapshot_date=2026-11-24/ [--through 2026-11-26]
    jit-audit ledger init s3://bucket/exports/    record pre-ledger (version 2) snapshots, once

AWS is reached the usual boto3 way (profiles, environment, ``AWS_ENDPOINT_URL``); ``--endpoint-url``
points every command at the emulator. ``query`` and ``scan`` read DynamoDB through
``jit_audit.dynamodb_http`` (botocore's signer and credentials, without building a boto3 client,
which costs a short process more CPU than the reads themselves); ``--client boto3`` opts out.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Any

from jit_audit.settings import LEDGER_SIGNING_ALGORITHMS

#: Where ``--pseudonymise`` reads its HMAC key: an environment variable, never an argument (ps, shell history).
PSEUDONYMISATION_KEY_ENV = "JIT_AUDIT_PSEUDONYMISATION_KEY"


def _session_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    kwargs: dict[str, Any] = {}
    if args.endpoint_url:
        kwargs["endpoint_url"] = args.endpoint_url
    if args.region:
        kwargs["region_name"] = args.region
    return kwargs


def _cmd_emulator(args: argparse.Namespace) -> int:
    from jit_audit import emulator

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

    from jit_audit import seed

    kwargs = _session_kwargs(args)
    resource = boto3.resource("dynamodb", **kwargs)
    result = seed.seed(resource, args.table, requests=args.requests, seed_value=args.seed, days=args.days, create=not args.no_create)
    if args.bucket:
        seed.ensure_bucket(boto3.client("s3", **kwargs), args.bucket, prefix=args.prefix, retention_days=args.retention_days)
    counts = ", ".join(f"{name} {count}" for name, count in result.by_type.items())
    print(f"seeded {result.events} events of {result.requests} requests into {result.table} ({counts})")
    return 0


def _cmd_flatten(args: argparse.Namespace) -> int:
    from jit_audit.codecs import CODEC_ERRORS, deterministic_gzip_writer
    from jit_audit.flatten import FlattenError, flatten_stream, open_text_or_gzip

    source = args.source_name
    out = sys.stdout.buffer
    try:
        lines = open_text_or_gzip(sys.stdin.buffer)
        if args.gzip:
            with deterministic_gzip_writer(out) as zipped:
                count = flatten_stream(lines, zipped.write, source)
        else:
            count = flatten_stream(lines, out.write, source)
        out.flush()
    except FlattenError as error:
        print(f"jit-audit flatten: {error}", file=sys.stderr)
        return 1
    except CODEC_ERRORS as error:
        print(f"jit-audit flatten: {source}: cannot read input ({error})", file=sys.stderr)
        return 1
    if args.verbose:
        print(f"flattened {count} items", file=sys.stderr)
    return 0


def _cmd_query(args: argparse.Namespace) -> int:
    """``jit-audit query`` and ``jit-audit scan``: same validation and library as the ad-hoc DAG."""
    from jit_audit.dynamodb_http import DynamoDBError, open_reader
    from jit_audit.query import QueryParamError, parse_query, run_to_s3

    params: dict[str, object] = {
        "query_by": args.by if args.command == "query" else "event_type",
        "start": args.start,
        "end": args.end,
        "event_types": args.event_type or [],
        "max_items": args.max_items,
        "segments": getattr(args, "segments", None),
    }
    if args.command == "query":
        params[{"request": "request_id", "account": "account_id", "channel": "channel_id"}[args.by]] = args.id
    try:
        query = parse_query(params)
    except QueryParamError as error:
        print(f"jit-audit {args.command}: {error}", file=sys.stderr)
        return 2
    pseudonymiser = None
    if args.pseudonymise:
        from jit_audit.pseudonymise import PseudonymisationError, Pseudonymiser

        key = os.environ.get(PSEUDONYMISATION_KEY_ENV, "")
        if not key:
            print(f"jit-audit {args.command}: --pseudonymise needs the HMAC key in the environment variable "
                  f"{PSEUDONYMISATION_KEY_ENV} (never on the command line)", file=sys.stderr)
            return 2
        try:
            pseudonymiser = Pseudonymiser(key)
        except PseudonymisationError as error:
            print(f"jit-audit {args.command}: {PSEUDONYMISATION_KEY_ENV}: {error}", file=sys.stderr)
            return 2
    kwargs = _session_kwargs(args)
    dynamodb = open_reader(args.endpoint_url, args.region, lean=args.client == "lean")
    out = args.out or "-"
    try:
        if out.startswith("s3://"):
            import boto3

            bucket, _, prefix = out[len("s3://") :].partition("/")
            summary = run_to_s3(dynamodb, boto3.client("s3", **kwargs), args.table, query, bucket, prefix,
                                pseudonymiser=pseudonymiser)
            print(f"wrote {summary['counts']['items']} items to {summary['uri']}", file=sys.stderr)
            truncated = summary["truncated_at_max_items"]
        else:
            truncated = _query_to_file(dynamodb, args, query, out, pseudonymiser)
    except DynamoDBError as error:
        print(f"jit-audit {args.command}: DynamoDB {error}", file=sys.stderr)
        return 1
    except Exception as error:
        if not _is_botocore_error(error):
            raise
        print(f"jit-audit {args.command}: {error}", file=sys.stderr)
        return 1
    if truncated:
        print(f"jit-audit {args.command}: stopped at --max-items {query.max_items}; there are more", file=sys.stderr)
    return 0


def _is_botocore_error(error: Exception) -> bool:
    """A boto3 client's error (checked without importing botocore when nothing loaded it)."""
    exceptions = sys.modules.get("botocore.exceptions")
    return exceptions is not None and isinstance(error, exceptions.ClientError | exceptions.BotoCoreError)


def _query_to_file(dynamodb: Any, args: argparse.Namespace, query: Any, out: str, pseudonymiser: Any) -> bool:
    """Write the query's lines to stdout or a file (gzip if it ends in .gz); True if capped at max items."""
    import threading
    from contextlib import ExitStack

    from jit_audit.codecs import deterministic_gzip_writer
    from jit_audit.query import run

    with ExitStack() as stack:
        target = sys.stdout.buffer if out == "-" else stack.enter_context(open(out, "wb"))
        if out.endswith(".gz"):
            target = stack.enter_context(deterministic_gzip_writer(target))
        lock = threading.Lock()

        def write(data: bytes) -> None:
            with lock:
                target.write(data)

        result = run(dynamodb, args.table, query, lambda index: write, pseudonymiser=pseudonymiser)
    print(f"wrote {result.items} items ({dict(sorted(result.by_event_type.items()))})", file=sys.stderr)
    return result.truncated


def _cmd_verify(args: argparse.Namespace) -> int:
    """``jit-audit verify``: 0 all OK, 1 integrity problems found, 2 usage or access error."""
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    from jit_audit.verify import (
        AccessError,
        Expiry,
        PrefixTarget,
        UsageError,
        kms_public_keys,
        parse_target,
        parse_uri,
        range_end,
        verify,
        verify_prefix,
    )

    try:
        target = parse_target(args.uri, args.table)
        if isinstance(target, PrefixTarget) and (args.last_uri or args.through):
            raise UsageError("a second URI or --through applies to a snapshot's URI, not to an export prefix")
        if args.last_uri and args.through:
            raise UsageError("give either a second URI or --through, not both")
        kwargs = _session_kwargs(args)
        client = boto3.client("s3", **kwargs)
        public_key, key_arn = kms_public_keys(boto3.client("kms", **kwargs))
        trusted = {key_arn(key) for key in args.kms_key_id} if args.kms_key_id else None
        if args.min_retention_days < 1:
            raise UsageError("--min-retention-days must be at least 1")
        expiry = Expiry(args.min_retention_days)
        if isinstance(target, PrefixTarget):
            report = verify_prefix(client, target, public_key=public_key, trusted_keys=trusted, expiry=expiry)
        else:
            last = parse_uri(args.last_uri) if args.last_uri else range_end(target, args.through) if args.through else None
            report = verify(client, target, last, last_must_exist=not args.through, public_key=public_key,
                            trusted_keys=trusted, expiry=expiry)
    except UsageError as error:
        print(f"jit-audit verify: {error}", file=sys.stderr)
        return 2
    except (AccessError, ClientError, BotoCoreError) as error:
        print(f"jit-audit verify: cannot read S3 or KMS: {error}", file=sys.stderr)
        return 2
    print(report.render())
    return 0 if report.ok else 1


def _cmd_ledger_init(args: argparse.Namespace) -> int:
    """``jit-audit ledger init``: 0 done (or nothing to do), 2 usage or access error."""
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    from jit_audit import ledger
    from jit_audit.migrate import record_existing
    from jit_audit.verify import PrefixTarget, UsageError, parse_target, table_prefixes

    try:
        target = parse_target(args.uri, args.table)
        if not isinstance(target, PrefixTarget):
            raise UsageError("give the export prefix (s3://<bucket>/<prefix>/), not one snapshot's URI")
        kwargs = _session_kwargs(args)
        s3 = boto3.client("s3", **kwargs)
        signer = ledger.KmsSigner(boto3.client("kms", **kwargs), args.kms_key_id, args.signing_algorithm) \
            if args.kms_key_id else None
        lock_days = args.min_days if ledger.object_lock_enabled(s3, target.bucket) else None
        tables = table_prefixes(s3, target)
        if not tables:
            raise UsageError(f"nothing published under s3://{target.bucket}/{target.jsonl_prefix}")
        for table, table_prefix in tables:
            written, skipped = record_existing(s3, target.bucket, table_prefix, signer=signer,
                                               object_lock_days=lock_days)
            for entry in written:
                print(f"recorded {entry['uri']} as ledger entry {entry['sequence']}")
            for reason in skipped:
                print(f"skipped {reason}")
            print(f"table {table}: {len(written)} snapshot(s) recorded, {len(skipped)} skipped")
    except UsageError as error:
        print(f"jit-audit ledger init: {error}", file=sys.stderr)
        return 2
    except (ClientError, BotoCoreError, ledger.LedgerError) as error:
        print(f"jit-audit ledger init: {error}", file=sys.stderr)
        return 2
    return 0


def _cmd_check_retention(args: argparse.Namespace) -> int:
    """``jit-audit check-retention``: 0 all OK, 1 violations, 2 usage or access error."""
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    from jit_audit import retention
    from jit_audit.settings import SettingsError, load_settings

    def flag(value: bool | None) -> str | None:
        return None if value is None else str(value).lower()

    given = {
        "jit_audit_table": args.table,
        "jit_audit_export_bucket": args.bucket,
        "jit_audit_export_prefix": args.prefix,
        "jit_audit_export_kms_key_id": args.kms_key_id,
        "jit_audit_retention_min_days": args.min_days,
        "jit_audit_retention_max_days": args.max_days,
        "jit_audit_pitr_min_recovery_days": args.pitr_min_recovery_days,
        "jit_audit_require_versioning": flag(args.require_versioning),
        "jit_audit_require_object_lock": flag(args.require_object_lock),
        "jit_audit_require_encryption": flag(args.require_encryption),
        "jit_audit_require_public_access_block": flag(args.require_public_access_block),
    }
    try:
        settings = load_settings(given.get)
    except SettingsError as error:
        print(f"jit-audit check-retention: {error}", file=sys.stderr)
        return 2
    kwargs = _session_kwargs(args)
    try:
        report = retention.check(
            boto3.client("dynamodb", **kwargs),
            boto3.client("s3", **kwargs),
            table_name=settings.table,
            bucket=settings.bucket,
            export_prefix=settings.prefix,
            min_days=settings.retention_min_days,
            max_days=settings.retention_max_days,
            pitr_min_recovery_days=settings.pitr_min_recovery_days,
            requirements=retention.BucketRequirements.from_settings(settings.to_dict()),
        )
    except (ClientError, BotoCoreError) as error:
        print(f"jit-audit check-retention: cannot read the table's or bucket's configuration: {error}", file=sys.stderr)
        return 2
    print(report.table())
    if not report.ok:
        print(f"{len(report.findings)} retention violation(s)", file=sys.stderr)
        return 1
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="jit-audit", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)

    emulator = commands.add_parser("emulator", help="serve the local AWS emulator (for local runs and tests only)")
    emulator.add_argument("--host", default="127.0.0.1")
    emulator.add_argument("--port", type=int, default=5000)
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
    seed.add_argument("--days", type=float, default=7, help="spread requests over this many past days")
    seed.add_argument("--no-create", action="store_true", help="only write items into an existing table")
    seed.add_argument("--bucket", help="also create this export bucket (with a lifecycle rule)")
    seed.add_argument("--prefix", default="exports", help="export prefix the lifecycle rule covers")
    seed.add_argument("--retention-days", type=int, default=400, help="lifecycle expiration for --bucket")
    seed.add_argument("--endpoint-url", help="AWS endpoint, e.g. the emulator's http://127.0.0.1:5000")
    seed.add_argument("--region")
    seed.set_defaults(func=_cmd_seed)

    flatten = commands.add_parser(
        "flatten", help="flatten DynamoDB JSON export lines (stdin, plain or gzip) to JSON Lines (stdout)"
    )
    flatten.add_argument("--gzip", action="store_true", help="gzip the output")
    flatten.add_argument("--source-name", default="<stdin>", help="name used for the input in error messages")
    flatten.add_argument("-v", "--verbose", action="store_true", help="print the item count to stderr")
    flatten.set_defaults(func=_cmd_flatten)

    def query_options(command: argparse.ArgumentParser) -> None:
        command.add_argument("--start", help="ISO-8601 date-time (UTC unless an offset is given), inclusive")
        command.add_argument("--end", help="ISO-8601 date-time, exclusive")
        command.add_argument("--event-type", action="append", metavar="TYPE",
                             help="keep only this event type (repeatable)")
        command.add_argument("--max-items", type=int, help="stop after this many items (default 1,000,000)")
        command.add_argument("--out", help="'-' (stdout, default), a file (gzip if it ends in .gz) or s3://bucket/prefix/")
        command.add_argument("--table", default="jit_audit")
        command.add_argument("--endpoint-url", help="AWS endpoint, e.g. the emulator's http://127.0.0.1:5000")
        command.add_argument("--region")
        command.add_argument(
            "--client", choices=("lean", "boto3"), default="lean",
            help="DynamoDB reads through the lean signed-HTTP reader (default; falls back to boto3 where it is "
                 "not exact: other partitions, FIPS/dual-stack) or always through a boto3 client")
        command.add_argument(
            "--pseudonymise", action="store_true",
            help=f"replace actor_email addresses with an HMAC-SHA256 pseudonym; the key (>= 32 bytes) is read from "
                 f"${PSEUDONYMISATION_KEY_ENV}")
        command.set_defaults(func=_cmd_query)

    query = commands.add_parser("query", help="Query by request, account or channel (runbook Method 2), as JSON Lines")
    query.add_argument("--by", required=True, choices=("request", "account", "channel"))
    query.add_argument("--id", required=True, help="the request id, 12-digit account id or channel id")
    query_options(query)
    scan = commands.add_parser("scan", help="parallel Scan by event type (runbook Method 4), as JSON Lines")
    scan.add_argument("--segments", type=int, default=4, help="parallel scan segments (1-64)")
    query_options(scan)

    verify = commands.add_parser(
        "verify", help="re-check the publication ledger and every published snapshot and result against it",
        description="Exit code: 0 all OK, 1 integrity problems found (added, changed, removed, incomplete, not in "
                    "ledger, gone, ledger broken, bad signature), 2 usage or access error. See docs/integrity.md.",
    )
    verify.add_argument("uri", help="s3://<bucket>/<prefix>/ (every table, its ledger and every publication), or one "
                                    "snapshot: s3://<bucket>/<prefix>/jsonl/table=<table>/snapshot_date=YYYY-MM-DD/ "
                                    "(or .../change_window=<from>_<to>/)")
    verify.add_argument("last_uri", nargs="?", help="optional: verify every snapshot from URI through this one")
    verify.add_argument("--through", metavar="YYYY-MM-DD", help="verify every snapshot from URI through this date")
    verify.add_argument("--table", help="with an export prefix: only this table")
    verify.add_argument("--kms-key-id", action="append", metavar="KEY",
                        help="a KMS key you trust to sign ledger entries (id, alias or ARN; repeatable): every entry "
                             "must then be signed by one of them")
    verify.add_argument("--min-retention-days", type=int, default=365, metavar="DAYS",
                        help="jit_audit_retention_min_days (default 365): ledger entries and publications recorded "
                             "longer ago than this may have been removed by the lifecycle rule (a note, not a finding)")
    verify.add_argument("--endpoint-url", help="AWS endpoint, e.g. the emulator's http://127.0.0.1:5000")
    verify.add_argument("--region")
    verify.set_defaults(func=_cmd_verify)

    ledger_command = commands.add_parser("ledger", help="the publication ledger (docs/integrity.md)")
    ledger_commands = ledger_command.add_subparsers(dest="ledger_command", required=True)
    init = ledger_commands.add_parser(
        "init", help="record snapshots published before the ledger existed (manifest version 2), once",
        description="Records every complete snapshot with a version-2 manifest that no ledger entry records yet. "
                    "Run it once when upgrading; a second run records nothing. Exit code 0 done, 2 usage or access "
                    "error.",
    )
    init.add_argument("uri", help="s3://<bucket>/<prefix>/ (the export prefix)")
    init.add_argument("--table", help="only this table")
    init.add_argument("--kms-key-id", help="jit_audit_ledger_signing_key_id: sign the entries with this KMS key")
    init.add_argument("--signing-algorithm", default=LEDGER_SIGNING_ALGORITHMS[0], choices=LEDGER_SIGNING_ALGORITHMS)
    init.add_argument("--min-days", type=int, default=365,
                      help="jit_audit_retention_min_days: the entries' COMPLIANCE retention when the bucket has Object Lock")
    init.add_argument("--endpoint-url", help="AWS endpoint, e.g. the emulator's http://127.0.0.1:5000")
    init.add_argument("--region")
    init.set_defaults(func=_cmd_ledger_init)

    check = commands.add_parser(
        "check-retention", help="check PITR, the lifecycle rule and the bucket's protection (the DAG's check_retention)",
        description="Exit code: 0 all OK, 1 violations (the table's rows with a fix), 2 usage or access error. "
                    "Defaults are the Airflow Variables' defaults.",
    )
    check.add_argument("--table", required=True, help="DynamoDB table (jit_audit_table)")
    check.add_argument("--bucket", required=True, help="export bucket (jit_audit_export_bucket)")
    check.add_argument("--prefix", required=True, help="export prefix (jit_audit_export_prefix)")
    check.add_argument("--min-days", help="jit_audit_retention_min_days (default 365)")
    check.add_argument("--max-days", help="jit_audit_retention_max_days (default: no maximum)")
    check.add_argument("--pitr-min-recovery-days", help="jit_audit_pitr_min_recovery_days (default 35)")
    check.add_argument("--kms-key-id", help="jit_audit_export_kms_key_id: default encryption must be SSE-KMS with it")
    for name, default in (("versioning", "off"), ("object-lock", "off"), ("encryption", "on"),
                          ("public-access-block", "on")):
        check.add_argument(f"--require-{name}", action=argparse.BooleanOptionalAction, default=None,
                           help=f"jit_audit_require_{name.replace('-', '_')} (default {default})")
    check.add_argument("--endpoint-url", help="AWS endpoint, e.g. the emulator's http://127.0.0.1:5000")
    check.add_argument("--region")
    check.set_defaults(func=_cmd_check_retention)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

"""``jit-audit``: what people run against AWS outside Airflow.

    jit-audit flatten [FILE] [--out PATH|s3://bucket/key]   DynamoDB export lines to exact JSON Lines
    jit-audit flatten FILE --manifest s3://bucket/.../manifest-summary.json   (or --view NEW_IMAGE)
    jit-audit query --by account --id 123456789012 --start ... --end ...
    jit-audit scan --event-type ERROR [--segments 4] --start ... --end ...
    jit-audit check-retention --table jit_audit --bucket jit-audit-exports --prefix exports [--require-versioning]
    jit-audit verify s3://bucket/exports/ [--table jit_audit] [--kms-key-id KEY]
    jit-audit verify s3://bucket/exports/jsonl/table=jit_audit/snapshot_date=2026-11-24/ [--through 2026-11-26]
    jit-audit ledger init s3://bucket/exports/    record pre-ledger (version 2) snapshots, once

AWS is reached through boto3 with the standard configuration chain: profiles (``AWS_PROFILE``),
the environment, ``endpoint_url`` and ``AWS_ENDPOINT_URL[_DYNAMODB|_S3]``, FIPS and dual-stack
settings, proxies (``HTTPS_PROXY``), ``AWS_CA_BUNDLE``, ``retry_mode`` and ``max_attempts``.
``--endpoint-url`` and ``--region`` override them for one command. The local AWS emulator and the
seeder are development tools: ``jit-audit-dev`` (dev/).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Any

from jit_audit.flatten import EXPORT_VIEWS
from jit_audit.settings import LEDGER_SIGNING_ALGORITHMS

#: Where ``--pseudonymise`` reads its HMAC key: an environment variable, never an argument (ps, shell history).
PSEUDONYMISATION_KEY_ENV = "JIT_AUDIT_PSEUDONYMISATION_KEY"


def _session(args: argparse.Namespace) -> Any:
    """A boto3 session on the standard configuration chain; ``--region`` wins over it when given."""
    import boto3

    return boto3.session.Session(region_name=args.region or None)


def _session_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    kwargs: dict[str, Any] = {}
    if args.endpoint_url:
        kwargs["endpoint_url"] = args.endpoint_url
    if args.region:
        kwargs["region_name"] = args.region
    return kwargs


def _cmd_flatten(args: argparse.Namespace) -> int:
    """``jit-audit flatten [FILE] [--out PATH] [--view VIEW | --manifest SUMMARY]``: 0 done, 1 bad input,
    2 usage, file or S3 error.

    An incremental export's view comes from ``--view`` or its ``manifest-summary.json``; without
    either, a line with only a new image cannot be told an insert or an update and becomes PUT.
    The output appears only complete: a local ``--out`` is written to a temporary file beside it and
    renamed when every line is flattened; an ``s3://`` one is uploaded (checksummed) after that.
    """
    from contextlib import ExitStack

    from jit_audit.codecs import CODEC_ERRORS
    from jit_audit.flatten import FlattenError, flatten_stream, open_text_or_gzip

    name = args.file if args.file not in (None, "-") else None
    source = args.source_name or name or "<stdin>"
    out: str | None = args.out if args.out not in (None, "-") else None
    s3_target = _s3_object(out) if out and out.startswith("s3://") else None
    if out and out.startswith("s3://") and s3_target is None:
        print(f"jit-audit flatten: --out {out!r} must be s3://<bucket>/<key>", file=sys.stderr)
        return 2
    # boto3 is imported only for an s3:// output: it costs a local flatten ~0.1 s of CPU and ~18 MiB.
    upload_errors: tuple[type[Exception], ...] = ()
    if s3_target:
        from boto3.exceptions import S3UploadFailedError
        from botocore.exceptions import BotoCoreError, ClientError

        upload_errors = (BotoCoreError, ClientError, S3UploadFailedError)
    gzip_output = args.gzip or (out or "").endswith(".gz")
    view = args.view
    if args.manifest:
        try:
            view = _manifest_view(args)
        except _ManifestViewError as error:
            print(f"jit-audit flatten: --manifest {args.manifest}: {error}", file=sys.stderr)
            return 2
    try:
        with ExitStack() as stack:
            try:
                raw = stack.enter_context(open(name, "rb")) if name else sys.stdin.buffer
            except OSError as error:
                print(f"jit-audit flatten: cannot open {name}: {error.strerror}", file=sys.stderr)
                return 2
            local = None if s3_target else out
            with _local_output(local, gzip_output=gzip_output, spool=s3_target is not None) as sink:
                count = flatten_stream(open_text_or_gzip(raw), sink.write, source, view=view)
                if s3_target:
                    sink.flush()
                    bucket, key = s3_target
                    s3 = _session(args).client("s3", endpoint_url=args.endpoint_url)
                    s3.upload_file(sink.spool_name, bucket, key, ExtraArgs={"ChecksumAlgorithm": "SHA256"})
    except _OutputError as error:
        print(f"jit-audit flatten: {error}", file=sys.stderr)
        return 2
    except FlattenError as error:
        print(f"jit-audit flatten: {error}", file=sys.stderr)
        return 1
    except CODEC_ERRORS as error:
        print(f"jit-audit flatten: {source}: cannot read input ({error})", file=sys.stderr)
        return 1
    except upload_errors as error:
        print(f"jit-audit flatten: cannot upload to {out}: {error}", file=sys.stderr)
        return 2
    if args.verbose:
        print(f"flattened {count} items", file=sys.stderr)
    return 0


class _ManifestViewError(Exception):
    """``--manifest`` cannot be read, or does not say which view its export has."""


def _manifest_view(args: argparse.Namespace) -> str | None:
    """The view of the export ``--manifest`` (a ``manifest-summary.json`` path or s3:// URI) describes.

    None for a full export (its lines have no view); an incremental export must name a known view.
    """
    from botocore.exceptions import BotoCoreError, ClientError

    from jit_audit.manifest import ManifestError, parse_summary

    where: str = args.manifest
    if where.startswith("s3://"):
        target = _s3_object(where)
        if target is None:
            raise _ManifestViewError("must be a path or s3://<bucket>/<key>")
        try:
            s3 = _session(args).client("s3", endpoint_url=args.endpoint_url)
            text = s3.get_object(Bucket=target[0], Key=target[1])["Body"].read()
        except (BotoCoreError, ClientError) as error:
            raise _ManifestViewError(f"cannot read it ({error})") from None
    else:
        try:
            with open(where, "rb") as manifest:
                text = manifest.read()
        except OSError as error:
            raise _ManifestViewError(f"cannot open it: {error.strerror}") from None
    try:
        summary = parse_summary(text, where)
    except ManifestError as error:
        raise _ManifestViewError(f"not a manifest-summary.json ({error})") from None
    if summary.export_type != "INCREMENTAL_EXPORT":
        return None
    if summary.output_view not in EXPORT_VIEWS:
        raise _ManifestViewError(
            f"outputView {summary.output_view!r} is not one of {', '.join(EXPORT_VIEWS)}; give --view instead"
        )
    return summary.output_view


class _OutputError(Exception):
    """Writing the output failed (a missing folder, permissions, a full disk): not the input's fault."""


class _Sink:
    """Where lines go: ``write`` (through gzip when asked); ``spool_name`` is the spool file's path."""

    def __init__(self, write: Any, flush: Any, spool_name: str | None) -> None:
        self.write = write
        self.flush = flush
        self.spool_name = spool_name


def _new_file_mode(path: str) -> int:
    """The mode ``open(path, "w")`` would give: the replaced file's, else 0666 less the umask."""
    import os

    try:
        return os.stat(path).st_mode & 0o7777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def _local_output(path: str | None, *, gzip_output: bool, spool: bool = False) -> Any:
    """A context manager giving a :class:`_Sink`: stdout (``path`` None), or ``path`` written whole.

    A file is written to a temporary file in the same directory and renamed over ``path`` only when
    the block ends without an error, so a failure leaves any earlier file untouched and no partial
    one. ``spool``: a temporary file (no ``path``) that the block uploads before it is deleted.
    Failures to write raise :class:`_OutputError`, so they are not taken for bad input.
    """
    import os
    import tempfile
    from contextlib import ExitStack, contextmanager
    from pathlib import Path

    from jit_audit.codecs import deterministic_gzip_writer

    def guarded(call: Any) -> Any:
        def run(*args: Any, **kwargs: Any) -> Any:
            try:
                return call(*args, **kwargs)
            except OSError as error:
                raise _OutputError(f"cannot write {path or 'the spool file'}: {error.strerror or error}") from error
        return run

    @contextmanager
    def output() -> Any:
        with ExitStack() as stack:
            if path is None and not spool:
                target: Any = sys.stdout.buffer
                spool_name = None
            else:
                directory = Path(path).resolve().parent if path else Path(tempfile.gettempdir())
                target = guarded(tempfile.NamedTemporaryFile)(dir=directory, prefix=".jit-audit-", delete=False)
                stack.enter_context(target)
                spool_name = target.name
                stack.callback(Path(spool_name).unlink, missing_ok=True)
            with ExitStack() as writing:
                zipped = writing.enter_context(deterministic_gzip_writer(target)) if gzip_output else None

                def flush() -> None:
                    if zipped is not None:
                        zipped.close()  # the gzip trailer; a second close is a no-op
                    target.flush()

                yield _Sink(guarded((zipped or target).write), guarded(flush), spool_name)
                guarded(flush)()
            if path is not None and spool_name is not None:
                guarded(os.chmod)(spool_name, _new_file_mode(path))
                guarded(os.replace)(spool_name, path)

    return output()


def _s3_object(uri: str) -> tuple[str, str] | None:
    """``s3://bucket/key`` as (bucket, key); None if either is missing or the key names a folder."""
    bucket, _, key = uri[len("s3://") :].partition("/")
    return (bucket, key) if bucket and key and not key.endswith("/") else None


def _cmd_query(args: argparse.Namespace) -> int:
    """``jit-audit query`` and ``jit-audit scan``: same validation and library as the ad-hoc DAG."""
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
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ClientError

    out = args.out or "-"
    try:
        session = _session(args)
        # One connection per parallel scan segment (botocore's default pool holds 10).
        dynamodb = session.client("dynamodb", endpoint_url=args.endpoint_url,
                                  config=Config(max_pool_connections=max(10, query.segments)))
        if out.startswith("s3://"):
            bucket, _, prefix = out[len("s3://") :].partition("/")
            summary = run_to_s3(dynamodb, session.client("s3", endpoint_url=args.endpoint_url), args.table, query,
                                bucket, prefix,
                                pseudonymiser=pseudonymiser)
            print(f"wrote {summary['counts']['items']} items to {summary['uri']}", file=sys.stderr)
            truncated = summary["truncated_at_max_items"]
        else:
            truncated = _query_to_file(dynamodb, args, query, out, pseudonymiser)
    except (BotoCoreError, ClientError) as error:
        print(f"jit-audit {args.command}: {error}", file=sys.stderr)
        return 1
    except _OutputError as error:
        print(f"jit-audit {args.command}: {error}", file=sys.stderr)
        return 2
    if truncated:
        print(f"jit-audit {args.command}: stopped at --max-items {query.max_items}; there are more", file=sys.stderr)
    return 0


def _query_to_file(dynamodb: Any, args: argparse.Namespace, query: Any, out: str, pseudonymiser: Any) -> bool:
    """Write the query's lines to stdout or a file (gzip if it ends in .gz); True if capped at max items."""
    import threading

    from jit_audit.query import run

    with _local_output(None if out == "-" else out, gzip_output=out.endswith(".gz")) as target:
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
    flags = {
        "jit_audit_table": "--table",
        "jit_audit_export_bucket": "--bucket",
        "jit_audit_export_prefix": "--prefix",
        "jit_audit_export_kms_key_id": "--kms-key-id",
        "jit_audit_retention_min_days": "--min-days",
        "jit_audit_retention_max_days": "--max-days",
        "jit_audit_pitr_min_recovery_days": "--pitr-min-recovery-days",
        **{f"jit_audit_require_{name}": f"--require-{name.replace('_', '-')}"
           for name in ("versioning", "object_lock", "encryption", "public_access_block")},
    }
    try:
        settings = load_settings(given.get, lambda variable: flags.get(variable, f"Variable {variable}"))
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


def _aws_options(command: argparse.ArgumentParser, purpose: str = "") -> None:
    """``--endpoint-url`` and ``--region``: they override the standard AWS configuration for one command."""
    command.add_argument("--endpoint-url", help=" ".join(filter(None, (
        "AWS endpoint", purpose, "(default: the AWS configuration's), e.g. http://127.0.0.1:5000"))))
    command.add_argument("--region", help="AWS region (default: the AWS configuration's)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="jit-audit", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)

    flatten = commands.add_parser(
        "flatten", help="flatten DynamoDB JSON export lines (a file or stdin, plain or gzip) to JSON Lines",
        description="Exit code: 0 done, 1 bad input (the file, line and problem on stderr), 2 usage, file or S3 "
                    "error. --out appears only once every line is flattened.",
    )
    flatten.add_argument("file", nargs="?", metavar="FILE", help="an export data file (plain or gzip); '-' or "
                                                                 "nothing: stdin")
    flatten.add_argument("--out", metavar="PATH", help="'-' (stdout, default), a file (gzip if it ends in .gz) or "
                                                       "s3://<bucket>/<key>")
    flatten.add_argument("--gzip", action="store_true", help="gzip the output (implied by an --out ending in .gz)")
    flatten.add_argument("--source-name", help="name used for the input in error messages (default: FILE or <stdin>)")
    views = flatten.add_mutually_exclusive_group()
    views.add_argument("--view", choices=EXPORT_VIEWS,
                       help="the incremental export's ExportViewType: a line with only a new image is an INSERT "
                            "with NEW_AND_OLD_IMAGES, a PUT with NEW_IMAGE (default: PUT, the view being unknown)")
    views.add_argument("--manifest", metavar="SUMMARY",
                       help="read the view from the export's manifest-summary.json (a path or s3://<bucket>/<key>)")
    _aws_options(flatten, "for an s3:// --out or --manifest")
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
        _aws_options(command)
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
    _aws_options(verify)
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
    _aws_options(init)
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
    _aws_options(check)
    check.set_defaults(func=_cmd_check_retention)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

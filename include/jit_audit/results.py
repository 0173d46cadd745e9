"""Publishing an ad-hoc result to S3: parts, ``_manifest.json``, then ``_SUCCESS``, never half-done.

Both kinds of ad-hoc result (DynamoDB queries, ``jit_audit.query``; JIT API summaries,
``jit_audit.jit_api``) publish the same way, so a reader can trust any of them alike:

1. a prefix that holds another kind of manifest (a snapshot, the other kind of result) is refused;
2. lines are written to local spool files (gzip, deterministic bytes, SHA-256 and line count taken
   on the way), so memory stays flat and nothing reaches S3 until the producer has finished;
3. the publication is recorded (the ledger, when a ``record`` is given; see ``jit_audit.ledger``);
4. ``_SUCCESS`` and ``_manifest.json`` of an earlier run of the prefix are withdrawn, the parts are
   uploaded with a SHA-256 checksum S3 verifies, this kind's parts the run no longer writes are
   deleted, and ``_manifest.json`` (each part's SHA-256, size and lines) and ``_SUCCESS`` come last.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Callable
from contextlib import ExitStack
from typing import Any

import orjson

from jit_audit.codecs import deterministic_gzip_writer
from jit_audit.layout import MANIFEST_NAME, SUCCESS_NAME, normalise_prefix, part_name
from jit_audit.params import QueryParamError
from jit_audit.s3 import CHECKSUM_ALGORITHM, HashingWriter, delete_keys, list_keys, put_checked, read_object

#: ``open_part(index)`` returns the ``write`` of part ``index``.
OpenPart = Callable[[int], Callable[[bytes], Any]]
_PART = re.compile(r"part-[0-9]{5}\.jsonl\.gz")


def refuse_foreign_prefix(s3: Any, bucket: str, prefix: str, kind: str) -> None:
    """Never write a result over a snapshot, another kind of result, or anything else with a manifest."""
    try:
        body = read_object(s3, bucket, prefix + MANIFEST_NAME)
    except s3.exceptions.NoSuchKey:
        return
    try:
        found = orjson.loads(body).get("kind")
    except (orjson.JSONDecodeError, AttributeError):
        found = None
    if found != kind:
        raise QueryParamError(
            "output_uri", f"s3://{bucket}/{prefix} already holds a {found or 'foreign'} manifest; choose an empty prefix"
        )


def publish_results(
    s3: Any,
    bucket: str,
    prefix: str,
    kind: str,
    produce: Callable[[OpenPart], dict[str, Any]],
    *,
    upload_extra_args: dict[str, str] | None = None,
    record: Callable[[bytes, dict[str, Any]], Any] | None = None,
) -> dict[str, Any]:
    """Run ``produce(open_part)`` and publish what it wrote; its return value joins the manifest.

    ``record(manifest_bytes, manifest)`` (the ledger append) runs once the manifest is known and
    before anything under the prefix changes. Returns the manifest with ``uri``. If ``produce`` or
    ``record`` raises, nothing under the prefix has changed.
    """
    prefix = normalise_prefix(prefix)
    refuse_foreign_prefix(s3, bucket, prefix, kind)
    extra = upload_extra_args or {}
    published = []
    with ExitStack() as stack:
        parts: dict[int, tuple[Any, HashingWriter, Any, list[int]]] = {}

        def open_part(index: int) -> Callable[[bytes], Any]:
            spool = stack.enter_context(tempfile.TemporaryFile())
            hashing = HashingWriter(spool)
            writer = stack.enter_context(deterministic_gzip_writer(hashing))
            lines = [0]
            parts[index] = (spool, hashing, writer, lines)

            def write(data: bytes) -> None:
                lines[0] += data.count(b"\n")
                writer.write(data)

            return write

        fields = produce(open_part)
        for index in sorted(parts):
            spool, hashing, writer, lines = parts[index]
            writer.close()  # the gzip trailer: every byte of the part is now hashed
            published.append({"key": prefix + part_name(index), "lines": lines[0],
                              "sha256": hashing.sha256.hexdigest(), "size_bytes": hashing.size})
        manifest = {"kind": kind, **fields, "parts": published}
        body = orjson.dumps(manifest, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"
        if record is not None:
            record(body, manifest)  # recorded before anything under the prefix changes
        delete_keys(s3, bucket, [prefix + SUCCESS_NAME, prefix + MANIFEST_NAME])
        for index, part in zip(sorted(parts), published, strict=True):
            spool = parts[index][0]
            spool.seek(0)
            s3.upload_fileobj(spool, bucket, part["key"], ExtraArgs={**extra, "ChecksumAlgorithm": CHECKSUM_ALGORITHM})
    keys = {part["key"] for part in published}
    # Only this kind's own earlier parts, directly under the prefix: never anything else there.
    stale = [key for key in list_keys(s3, bucket, prefix) if _PART.fullmatch(key[len(prefix):]) and key not in keys]
    delete_keys(s3, bucket, stale)
    put_checked(s3, bucket, prefix + MANIFEST_NAME, body, ContentType="application/json", **extra)
    put_checked(s3, bucket, prefix + SUCCESS_NAME, b"", **extra)
    return {"uri": f"s3://{bucket}/{prefix}", **manifest}

"""Re-check what was published against the publication ledger and each ``_manifest.json``.

For each table (``<prefix>/jsonl/table=<table>/``) it re-reads everything:

* **the ledger** (``_ledger/``, see ``jit_audit.ledger``): continuous from entry 0 to the head (no
  gap, nothing else in the folder), every entry in canonical form, every ``previous_entry_sha256``
  the SHA-256 of the entry before it, every signature valid (and, with ``trusted_keys``, made with
  one of them); once entries are signed, every later entry must be;
* **every published partition** (full snapshot or change window): ``_SUCCESS`` and
  ``_manifest.json`` are there; every part listed has its SHA-256, size and line count; nothing
  else is there; and the manifest's SHA-256 is the one the *newest* ledger entry for that URI
  recorded (a partition no entry records is a finding, so is one whose manifest differs);
* **every ledger entry's publication** is still there (an entry for a snapshot that is gone is a
  finding), ad-hoc results included, checked like partitions.

Publication order does not matter anywhere: backfills, re-runs and retries land in any order.
Plain Python with boto3 clients; ``jit-audit verify`` is the command-line wrapper.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from jit_audit import ledger
from jit_audit.layout import (
    MANIFEST_NAME,
    PARTITION_DIRS,
    SUCCESS_NAME,
    TABLE_DIR,
    Partition,
    jsonl_prefix,
)
from jit_audit.layout import table_prefix as table_prefix_of
from jit_audit.partitions import PublishedPartition, list_partitions, list_table_prefixes
from jit_audit.s3 import read_object

_CHUNK = 1 << 20
# A table's URI and a partition's, in the one key layout's words (jit_audit.layout); a partition's
# label is then checked by layout.Partition (a real date or window, as the pipeline writes it).
_TABLE_PART = rf"(?P<table_prefix>(?:.*/)?jsonl/{re.escape(TABLE_DIR)}(?P<table>[^/]+)/)"
_DIRS = "|".join(re.escape(folder) for folder in PARTITION_DIRS.values())
_PARTITION_URI = re.compile(rf"^s3://(?P<bucket>[^/]+)/{_TABLE_PART}(?P<dir>{_DIRS})(?P<label>[^/]+)/?$")
_TABLE_URI = re.compile(rf"^s3://(?P<bucket>[^/]+)/{_TABLE_PART}$")
_PREFIX_URI = re.compile(r"^s3://(?P<bucket>[a-z0-9][a-z0-9.-]{1,61}[a-z0-9])/(?P<prefix>.*)$")
#: Finding kinds, in the words of the report.
ADDED, CHANGED, REMOVED, INCOMPLETE = "added", "changed", "removed", "incomplete"
UNRECORDED, GONE, LEDGER, SIGNATURE = "not in ledger", "gone", "ledger broken", "bad signature"


@dataclass(frozen=True)
class Expiry:
    """What the retention policy lets S3's lifecycle remove: anything recorded at least
    ``min_days`` before ``now`` (``jit_audit_retention_min_days``). Earlier than that, a missing
    entry or publication is a finding; after it, a note (the lifecycle rule did its job)."""

    min_days: int = 365
    now: datetime = field(default_factory=lambda: datetime.now(UTC))

    def allows(self, recorded_at: Any) -> bool:
        try:
            moment = datetime.fromisoformat(str(recorded_at).replace("Z", "+00:00"))
        except ValueError:
            return False
        return moment.tzinfo is not None and moment <= self.now - timedelta(days=self.min_days)


class UsageError(ValueError):
    """A bad URI or range, or nothing published where the URI points."""


class AccessError(RuntimeError):
    """S3 or KMS refused or failed a request that verification needs (not an integrity finding)."""


@dataclass(frozen=True)
class Target:
    """A parsed ``s3://bucket/<prefix>/jsonl/table=<t>/snapshot_date=YYYY-MM-DD/`` (or change_window=)."""

    bucket: str
    table_prefix: str
    table: str
    kind: str  # "snapshot" or "changes"
    label: str


@dataclass(frozen=True)
class PrefixTarget:
    """``s3://bucket/<prefix>/`` (every table under ``<prefix>/jsonl/``) or one table's prefix."""

    bucket: str
    prefix: str  # "" or ending in "/"
    table: str | None = None

    @property
    def jsonl_prefix(self) -> str:
        return jsonl_prefix(self.prefix)


def parse_uri(uri: str) -> Target:
    match = _PARTITION_URI.match(uri.strip())
    kind = next((kind for kind, folder in PARTITION_DIRS.items() if match and folder == match["dir"]), "")
    if not match or Partition(kind, match["label"], "").data_date is None:
        raise UsageError(
            f"not a snapshot URI: {uri!r}; expected s3://<bucket>/<prefix>/jsonl/table=<table>/"
            "snapshot_date=YYYY-MM-DD/ (or .../change_window=<from>_<to>/)"
        )
    return Target(match["bucket"], match["table_prefix"], match["table"], kind, match["label"])


def parse_target(uri: str, table: str | None = None) -> Target | PrefixTarget:
    """A snapshot (or change window) URI, a table's ``.../jsonl/table=<t>/`` or an export prefix."""
    text = uri.strip()
    if _PARTITION_URI.match(text):
        if table is not None:
            raise UsageError("--table applies to an export prefix, not to one snapshot's URI")
        return parse_uri(text)
    if (match := _TABLE_URI.match(text)) is not None:
        if table is not None and table != match["table"]:
            raise UsageError(f"--table {table} does not match the URI's table={match['table']}")
        return PrefixTarget(match["bucket"], match["table_prefix"][: -len(f"jsonl/table={match['table']}/")],
                            match["table"])
    match = _PREFIX_URI.match(text)
    if match is None or "\x00" in text:
        raise UsageError(f"not an S3 URI: {uri!r}; expected s3://<bucket>/<prefix>/ or a snapshot's URI")
    prefix = match["prefix"].strip("/")
    if prefix == "jsonl" or prefix.endswith("/jsonl"):  # .../jsonl/ means the export prefix above it
        prefix = prefix[: -len("jsonl")].strip("/")
    return PrefixTarget(match["bucket"], f"{prefix}/" if prefix else "", table)


@dataclass(frozen=True)
class Finding:
    kind: str
    uri: str
    detail: str

    def __str__(self) -> str:
        return f"{self.kind.upper()}: {self.uri}: {self.detail}"


@dataclass
class PartitionReport:
    uri: str
    label: str
    parts: int = 0
    lines: int = 0
    manifest_sha256: str | None = None
    ledger_sequence: int | None = None
    findings: list[Finding] = field(default_factory=list)
    #: Not a finding: e.g. expired by the lifecycle rule after the minimum retention.
    note: str | None = None

    @property
    def ok(self) -> bool:
        return not self.findings


@dataclass
class LedgerReport:
    uri: str
    entries: int = 0
    signed: int = 0
    keys: set[str] = field(default_factory=set)
    findings: list[Finding] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass
class Report:
    partitions: list[PartitionReport]
    ledgers: list[LedgerReport] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.findings

    @property
    def findings(self) -> list[Finding]:
        found = [finding for book in self.ledgers for finding in book.findings]
        return found + [finding for partition in self.partitions for finding in partition.findings]

    def render(self) -> str:
        lines = []
        for book in self.ledgers:
            signed = f", {book.signed} signed ({', '.join(sorted(book.keys))})" if book.signed else ", unsigned"
            lines.append(f"{'OK' if not book.findings else 'FAILED'} ledger {book.uri} ({book.entries} entries{signed})")
            lines.extend(f"  {finding}" for finding in book.findings)
            lines.extend(f"  NOTE: {note}" for note in book.notes)
        for partition in self.partitions:
            if partition.ok and partition.note:
                lines.append(f"EXPIRED {partition.uri} ({partition.note})")
            elif partition.ok:
                entry = "" if partition.ledger_sequence is None else f", ledger entry {partition.ledger_sequence}"
                lines.append(f"OK {partition.uri} ({partition.parts} parts, {partition.lines} lines, "
                             f"_manifest.json sha256 {partition.manifest_sha256}{entry})")
            else:
                lines.append(f"FAILED {partition.uri}")
                lines.extend(f"  {finding}" for finding in partition.findings)
        entries = sum(book.entries for book in self.ledgers)
        parts = sum(partition.parts for partition in self.partitions)
        counted = (f"{entries} ledger entries, {len(self.partitions)} publication(s) "
                   f"(snapshots, change windows and ad-hoc results), {parts} parts checked")
        if self.ok:
            lines.append(f"OK: {counted}")
        else:
            lines.append(f"FAILED: {len(self.findings)} integrity problem(s); {counted}")
        return "\n".join(lines)


def _missing(error: ClientError) -> bool:
    return error.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "NotFound")


def _get(client: Any, bucket: str, key: str) -> bytes | None:
    """The object's bytes, or None if it is not there."""
    try:
        return read_object(client, bucket, key)
    except ClientError as error:
        if _missing(error):
            return None
        raise AccessError(f"s3://{bucket}/{key}: {error}") from error


def _list(client: Any, bucket: str, prefix: str, delimiter: str | None = None) -> list[str]:
    kwargs = {"Bucket": bucket, "Prefix": prefix, **({"Delimiter": delimiter} if delimiter else {})}
    keys: list[str] = []
    try:
        for page in client.get_paginator("list_objects_v2").paginate(**kwargs):
            keys.extend(item["Key"] for item in page.get("Contents", []))
            keys.extend(common["Prefix"] for common in page.get("CommonPrefixes", []))
    except ClientError as error:
        raise AccessError(f"cannot list s3://{bucket}/{prefix}: {error}") from error
    return keys


def _read_part(client: Any, bucket: str, key: str) -> tuple[str, int, int | None] | None:
    """SHA-256, size and line count (None if it does not decompress) of a part; None if missing."""
    try:
        body = client.get_object(Bucket=bucket, Key=key)["Body"]
    except ClientError as error:
        if _missing(error):
            return None
        raise AccessError(f"s3://{bucket}/{key}: {error}") from error
    digest, size, lines = hashlib.sha256(), 0, 0
    inflater: Any = zlib.decompressobj(zlib.MAX_WBITS | 16)
    valid = True
    while chunk := body.read(_CHUNK):
        digest.update(chunk)
        size += len(chunk)
        try:
            while valid and chunk:
                if inflater.eof:  # a further gzip member
                    inflater = zlib.decompressobj(zlib.MAX_WBITS | 16)
                lines += inflater.decompress(chunk).count(b"\n")
                chunk = inflater.unused_data
        except zlib.error:
            valid = False
    valid = valid and inflater.eof  # a truncated part never reaches the end of its gzip stream
    return digest.hexdigest(), size, lines if valid else None


def verify_partition(client: Any, bucket: str, partition: PublishedPartition) -> PartitionReport:
    """Re-check one published prefix's parts against its own ``_manifest.json``."""
    uri = f"s3://{bucket}/{partition.prefix}"
    report = PartitionReport(uri=uri, label=partition.label)

    def find(kind: str, key: str, detail: str) -> None:
        report.findings.append(Finding(kind, f"s3://{bucket}/{key}", detail))

    if partition.success_key not in partition.keys:
        find(INCOMPLETE, partition.success_key, f"{SUCCESS_NAME} is missing: the publication is not complete")
    # Keys the listing lacks are missing: not read, since S3 answers a missing key with AccessDenied
    # (not NoSuchKey) to readers whose s3:ListBucket is limited to a prefix, like the auditor policy.
    raw = _get(client, bucket, partition.manifest_key) if partition.manifest_key in partition.keys else None
    if raw is None:
        find(REMOVED, partition.manifest_key, f"{MANIFEST_NAME} is missing: nothing to verify the parts against")
        return report
    report.manifest_sha256 = hashlib.sha256(raw).hexdigest()
    try:
        manifest = json.loads(raw)
        entries = {entry["key"]: entry for entry in manifest["parts"]}
    except (ValueError, KeyError, TypeError) as error:
        find(CHANGED, partition.manifest_key, f"{MANIFEST_NAME} is not a readable manifest ({error})")
        return report

    for key, entry in entries.items():
        read = _read_part(client, bucket, key) if key in partition.keys else None
        if read is None:
            find(REMOVED, key, f"listed in {MANIFEST_NAME} but missing")
            continue
        sha256, size, lines = read
        report.parts += 1
        report.lines += lines or 0
        problems = []
        if sha256 != entry.get("sha256"):
            problems.append(f"sha256 {sha256}, manifest {entry.get('sha256')}")
        if size != entry.get("size_bytes"):
            problems.append(f"size {size} bytes, manifest {entry.get('size_bytes')}")
        if lines is None:
            problems.append("does not decompress as gzip")
        elif lines != entry.get("lines"):
            problems.append(f"{lines} lines, manifest {entry.get('lines')}")
        if problems:
            find(CHANGED, key, "; ".join(problems))
    for key in partition.keys:
        if key not in entries and key not in (partition.manifest_key, partition.success_key):
            find(ADDED, key, f"not listed in {MANIFEST_NAME}")

    counts = manifest.get("counts") or {}
    written = counts.get("lines_written", counts.get("items"))  # snapshots / ad-hoc results
    listed = sum(int(entry.get("lines", 0)) for entry in entries.values())
    if written != listed:
        find(CHANGED, partition.manifest_key, f"the counts say {written} lines but the parts list {listed}")
    return report


# --------------------------------------------------------------------------- the ledger


PublicKey = Callable[[str], bytes]


def _signature_ok(public_key_der: bytes, algorithm: str, message: bytes, signature: bytes) -> bool:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
    from cryptography.hazmat.primitives.serialization import load_der_public_key

    key = load_der_public_key(public_key_der)
    try:
        if algorithm == "ECDSA_SHA_256" and isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, message, ec.ECDSA(hashes.SHA256()))
        elif algorithm == "RSASSA_PSS_SHA_256" and isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, message, padding.PSS(mgf=padding.MGF1(hashes.SHA256()),
                                                       salt_length=padding.PSS.AUTO), hashes.SHA256())
        else:
            return False
    except InvalidSignature:
        return False
    return True


def check_ledger(
    bucket: str,
    prefix: str,
    entries: list[ledger.Entry],
    strays: Iterable[str],
    public_key: PublicKey | None,
    trusted_keys: set[str] | None = None,
    expiry: Expiry | None = None,
) -> LedgerReport:
    """Continuity, canonical form, hash links and signatures of one table's ledger.

    Entries missing from the *start* are expired, not removed, when the first remaining entry was
    recorded at least the minimum retention ago (``expiry``): the lifecycle rule removes the oldest
    entries first. A gap anywhere else is always a finding.
    """
    report = LedgerReport(uri=f"s3://{bucket}/{prefix}", entries=len(entries))

    def find(kind: str, key: str, detail: str) -> None:
        report.findings.append(Finding(kind, f"s3://{bucket}/{key}", detail))

    for key in strays:
        find(ADDED, key, "not a ledger entry (entries are <12-digit sequence>.json and nothing else lives here)")
    by_sequence = {entry.sequence: entry for entry in entries}
    head = max(by_sequence, default=-1)
    start = min(by_sequence, default=0)
    first = by_sequence.get(start)
    if start > 0 and first is not None and first.document is not None and expiry is not None \
            and expiry.allows(first.document.get("recorded_at")):
        report.notes.append(f"entries 0..{start - 1} expired: the first remaining, {start}, was recorded "
                            f"{first.document.get('recorded_at')}, over the minimum retention of {expiry.min_days} "
                            "days ago")
    else:
        start = 0
    for sequence in range(start, head + 1):
        if sequence not in by_sequence:
            find(REMOVED, ledger.entry_key(prefix, sequence),
                 f"ledger entry {sequence} is missing: entries 0..{head} must all be there (nothing is ever deleted)")
    first_signed: int | None = None
    for entry in entries:
        document = entry.document
        if document is None:
            find(CHANGED, entry.key, "not a JSON object")
            continue
        if document.get("sequence") != entry.sequence:
            find(CHANGED, entry.key, f"says sequence {document.get('sequence')!r}, its key says {entry.sequence}")
        if entry.raw != ledger.entry_bytes(document):
            find(CHANGED, entry.key, "not in the ledger's canonical form: the entry was rewritten outside the pipeline")
        link = document.get("previous_entry_sha256")
        previous = by_sequence.get(entry.sequence - 1)
        if entry.sequence == 0 and link is not None:
            find(LEDGER, entry.key, f"entry 0 links to a previous entry (sha256 {link}): the ledger's start was cut off")
        elif entry.sequence == start and start > 0:
            pass  # its predecessor expired: nothing to link to
        elif previous is not None and link != previous.sha256:
            find(LEDGER, entry.key,
                 f"previous_entry_sha256 {link} but entry {previous.sequence} has sha256 {previous.sha256}: "
                 f"entry {previous.sequence} was rewritten after entry {entry.sequence} was recorded (or this one was)")
        signature = document.get("signature")
        if signature is None:
            if first_signed is not None:
                find(SIGNATURE, entry.key, f"unsigned, but the entries from {first_signed} on are signed: "
                                           "an entry written without the signing key")
            elif trusted_keys:
                find(SIGNATURE, entry.key, "unsigned, but --kms-key-id says entries are signed")
            continue
        if first_signed is None:
            first_signed = entry.sequence
        report.signed += 1
        problem = _check_signature(document, signature, public_key, trusted_keys)
        if problem:
            find(SIGNATURE, entry.key, problem)
        elif isinstance(signature, dict):
            report.keys.add(str(signature.get("key_id")))
    return report


def _check_signature(document: dict[str, Any], signature: Any, public_key: PublicKey | None,
                     trusted_keys: set[str] | None) -> str | None:
    if not isinstance(signature, dict) or not {"key_id", "algorithm", "value"} <= set(signature):
        return "the signature field is not {key_id, algorithm, value}"
    key_id, algorithm = str(signature["key_id"]), str(signature["algorithm"])
    if trusted_keys is not None and key_uuid(key_id) not in {key_uuid(key) for key in trusted_keys}:
        return f"signed with {key_id}, which is not a key you trust ({', '.join(sorted(trusted_keys))})"
    if algorithm not in ledger.SIGNING_ALGORITHMS:
        return f"signing algorithm {algorithm!r} is not one the ledger uses"
    if public_key is None:
        return "signed, but no KMS client to fetch the public key with"
    try:
        value = base64.b64decode(str(signature["value"]), validate=True)
    except ValueError:
        return "the signature is not base64"
    if not _signature_ok(public_key(key_id), algorithm, ledger.signed_message(document), value):
        return f"the {algorithm} signature by {key_id} does not match the entry: it was changed after signing"
    return None


def key_uuid(key: str) -> str:
    """A key ARN's key id (``arn:...:key/<id>`` -> ``<id>``), so an ARN and a bare id compare equal."""
    return key.rsplit(":key/", 1)[-1]


def kms_public_keys(kms: Any) -> tuple[PublicKey, Callable[[str], str]]:
    """``(public_key(key_id) -> DER, key_arn(key id, alias or ARN) -> ARN)``, cached, from KMS GetPublicKey."""
    cache: dict[str, dict[str, Any]] = {}

    def describe(key_id: str) -> dict[str, Any]:
        if key_id not in cache:
            try:
                cache[key_id] = kms.get_public_key(KeyId=key_id)
            except ClientError as error:
                raise AccessError(f"KMS GetPublicKey {key_id}: {error}") from error
        return cache[key_id]

    return (lambda key_id: describe(key_id)["PublicKey"]), (lambda key_id: str(describe(key_id)["KeyId"]))


# --------------------------------------------------------------------------- tables


def _partition_at(client: Any, bucket: str, prefix: str, kind: str, label: str) -> PublishedPartition:
    """A published prefix with only its direct children (an ad-hoc result may sit above other data)."""
    keys = tuple(sorted(key for key in _list(client, bucket, prefix, delimiter="/") if not key.endswith("/")))
    return PublishedPartition(kind, label, prefix, keys)


def _parse_s3(uri: str) -> tuple[str, str] | None:
    match = re.fullmatch(r"s3://([^/]+)/(.*)", uri)
    return (match[1], match[2]) if match else None


def verify_table(
    s3: Any,
    bucket: str,
    table_prefix: str,
    *,
    public_key: PublicKey | None = None,
    trusted_keys: set[str] | None = None,
    only: Target | tuple[Target, Target] | None = None,
    expiry: Expiry | None = None,
) -> Report:
    """Verify one table: its ledger, and every publication (or only ``only``: one partition or a range).

    ``expiry`` (default: 365 days before now) says what S3's lifecycle may already have removed.
    """
    expiry = expiry or Expiry()
    prefix = ledger.ledger_prefix(table_prefix)
    try:
        entries, strays = ledger.read_entries(s3, bucket, prefix)
    except ClientError as error:
        raise AccessError(f"cannot read the ledger s3://{bucket}/{prefix}: {error}") from error
    book = check_ledger(bucket, prefix, entries, strays, public_key, trusted_keys, expiry)
    newest: dict[str, dict[str, Any]] = {}
    history: dict[str, list[dict[str, Any]]] = {}
    for entry in entries:
        if entry.document is not None and isinstance(entry.document.get("uri"), str):
            newest[entry.document["uri"]] = entry.document
            history.setdefault(entry.document["uri"], []).append(entry.document)

    def selected(kind: str, label: str) -> bool:
        if only is None:
            return True
        first, last = only if isinstance(only, tuple) else (only, only)
        return kind == first.kind and first.label <= label <= last.label

    reports: list[PartitionReport] = []
    seen: set[str] = set()
    for partition_kind in ("snapshot", "changes"):
        for partition in list_partitions(s3, bucket, table_prefix, partition_kind):
            if not selected(partition_kind, partition.label):
                continue
            uri = f"s3://{bucket}/{partition.prefix}"
            seen.add(uri)
            report = verify_partition(s3, bucket, partition)
            _against_ledger(report, partition.manifest_key, bucket, newest.get(uri), history.get(uri, []))
            reports.append(report)
    for recorded_uri, document in newest.items():
        if recorded_uri in seen:
            continue
        kind = document.get("kind")
        location = _parse_s3(recorded_uri)
        if kind in PARTITION_DIRS and location is not None and location[1].startswith(table_prefix):
            label = location[1][len(table_prefix):].rstrip("/").partition("=")[2]
            if not selected(kind, label):
                continue
            report = PartitionReport(uri=recorded_uri, label=label)
            keys = _list(s3, location[0], location[1], delimiter="/")
            detail = (f"ledger entry {document.get('sequence')} (run {document.get('run_id')}, "
                      f"{document.get('recorded_at')}) records a publication here, but ")
            if not keys and expiry.allows(document.get("recorded_at")):
                report.note = (f"ledger entry {document.get('sequence')}, recorded {document.get('recorded_at')}, over "
                               f"the minimum retention of {expiry.min_days} days ago: removed by the lifecycle rule")
            elif not keys:
                report.findings.append(Finding(GONE, recorded_uri, detail + "nothing is published: it was removed "
                                               f"within the minimum retention of {expiry.min_days} days"))
            else:
                report.findings.append(Finding(REMOVED, recorded_uri + MANIFEST_NAME,
                                               detail + f"{MANIFEST_NAME} is missing"))
            reports.append(report)
        elif kind not in PARTITION_DIRS and only is None and location is not None:
            reports.append(_verify_result(s3, location[0], location[1], document, history.get(recorded_uri, []),
                                          expiry))
    return Report(reports, [book])


def _verify_result(s3: Any, bucket: str, prefix: str, document: dict[str, Any],
                   history: list[dict[str, Any]], expiry: Expiry) -> PartitionReport:
    """An ad-hoc result the ledger records: its parts, its manifest, and the manifest's SHA-256."""
    partition = _partition_at(s3, bucket, prefix, "adhoc", prefix)
    uri = f"s3://{bucket}/{prefix}"
    if not partition.keys:
        report = PartitionReport(uri=uri, label=prefix)
        if expiry.allows(document.get("recorded_at")):
            report.note = f"recorded {document.get('recorded_at')}: removed by the lifecycle rule"
            return report
        report.findings.append(Finding(GONE, uri, f"ledger entry {document.get('sequence')} (run "
                                                  f"{document.get('run_id')}) records a result here, but it is gone"))
        return report
    report = verify_partition(s3, bucket, partition)
    _against_ledger(report, partition.manifest_key, bucket, document, history)
    return report


def _against_ledger(report: PartitionReport, manifest_key: str, bucket: str, newest: dict[str, Any] | None,
                    history: list[dict[str, Any]]) -> None:
    """The manifest found must be the one the newest ledger entry for its URI recorded."""
    where = f"s3://{bucket}/{manifest_key}"
    if newest is None:
        if report.manifest_sha256 is not None:
            report.findings.append(Finding(
                UNRECORDED, where, "published, but no ledger entry records it: it was not published by the "
                "pipeline (a snapshot from before the ledger is recorded once by `jit-audit ledger init`)"))
        return
    report.ledger_sequence = newest.get("sequence")
    recorded = newest.get("manifest_sha256")
    run = f"ledger entry {newest.get('sequence')} (run {newest.get('run_id')}, {newest.get('recorded_at')})"
    if report.manifest_sha256 is None:
        report.findings.append(Finding(REMOVED, where, f"{run} recorded {MANIFEST_NAME} sha256 {recorded}, but there is "
                                                       "none: if that run is still publishing, wait for it; otherwise "
                                                       "re-run it"))
        return
    if report.manifest_sha256 == recorded:
        if any(finding.kind == INCOMPLETE for finding in report.findings):
            report.findings.append(Finding(INCOMPLETE, where, f"{run} is this publication: if that run is still "
                                                              "publishing, wait for it; otherwise re-run it"))
        return
    earlier = [doc for doc in history if doc.get("manifest_sha256") == report.manifest_sha256]
    if earlier:
        report.findings.append(Finding(
            CHANGED, where,
            f"sha256 {report.manifest_sha256} is what entry {earlier[-1].get('sequence')} recorded, but the newest, "
            f"{run}, recorded {recorded}: that publication did not finish (re-run it) or was rolled back"))
    else:
        report.findings.append(Finding(
            CHANGED, where, f"sha256 {report.manifest_sha256}, but {run} recorded {recorded}: the manifest was "
                            "rewritten outside the pipeline"))


def table_prefixes(s3: Any, target: PrefixTarget) -> list[tuple[str, str]]:
    """``(table, table_prefix)`` of every table under ``<prefix>/jsonl/`` (or just ``target.table``)."""
    if target.table is not None:
        return [(target.table, table_prefix_of(target.prefix, target.table))]
    start = len(target.jsonl_prefix) + len(TABLE_DIR)
    return [(found[start:-1], found) for found in list_table_prefixes(s3, target.bucket, target.prefix)]


def verify_prefix(s3: Any, target: PrefixTarget, *, public_key: PublicKey | None = None,
                  trusted_keys: set[str] | None = None, expiry: Expiry | None = None) -> Report:
    """Every table under the export prefix (or the one named)."""
    tables = table_prefixes(s3, target)
    if not tables and f"{target.prefix}{MANIFEST_NAME}" in _list(s3, target.bucket, target.prefix, delimiter="/"):
        raise UsageError(f"s3://{target.bucket}/{target.prefix} is one publication (an ad-hoc result?): verify the "
                         "export prefix whose ledger records it (s3://<bucket>/<prefix>/), which checks every "
                         "ad-hoc result against its entry")
    if not tables:
        raise UsageError(f"nothing published under s3://{target.bucket}/{target.jsonl_prefix} "
                         "(expected table=<table>/ folders)")
    report = Report([], [])
    for _, table_prefix in tables:
        one = verify_table(s3, target.bucket, table_prefix, public_key=public_key, trusted_keys=trusted_keys,
                           expiry=expiry)
        report.partitions += one.partitions
        report.ledgers += one.ledgers
    return report


def verify(client: Any, first: Target, last: Target | None = None, *, last_must_exist: bool = True,
           public_key: PublicKey | None = None, trusted_keys: set[str] | None = None,
           expiry: Expiry | None = None) -> Report:
    """Verify the partitions from ``first`` through ``last`` (``first`` alone by default), and the ledger.

    ``first`` must be published or recorded; so must ``last`` unless ``last_must_exist`` is False.
    """
    last = last or first
    if (first.bucket, first.table_prefix, first.kind) != (last.bucket, last.table_prefix, last.kind):
        raise UsageError("both ends of a range must be the same bucket, table and kind")
    if last.label < first.label:
        raise UsageError(f"the range ends ({last.label}) before it starts ({first.label})")
    report = verify_table(client, first.bucket, first.table_prefix, public_key=public_key,
                          trusted_keys=trusted_keys, only=(first, last), expiry=expiry)
    labels = {partition.label for partition in report.partitions}
    required = {first.label, last.label} if last_must_exist else {first.label}
    if not required <= labels:
        missing = sorted(required - labels)
        raise UsageError(f"nothing published or recorded at {', '.join(missing)} in "
                         f"s3://{first.bucket}/{first.table_prefix}")
    return report


def range_end(first: Target, through: str) -> Target:
    """``--through YYYY-MM-DD``: up to the full snapshots of that date, or (for change windows) up to
    the windows that start on that date."""
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", through):
        raise UsageError(f"--through {through!r}: expected YYYY-MM-DD")
    if first.kind == "snapshot":
        return Target(first.bucket, first.table_prefix, first.table, first.kind, through)
    return Target(first.bucket, first.table_prefix, first.table, first.kind,
                  through.replace("-", "") + "T999999Z_")


__all__ = [
    "AccessError",
    "Expiry",
    "Finding",
    "PrefixTarget",
    "Report",
    "Target",
    "UsageError",
    "check_ledger",
    "kms_public_keys",
    "parse_target",
    "parse_uri",
    "range_end",
    "verify",
    "verify_prefix",
    "verify_table",
]

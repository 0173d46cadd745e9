"""The publication ledger and ``jit-audit verify`` against the emulator: publications in any order,
re-runs, races, a publisher dying half-way, tampering, signing and migration.

Each snapshot is a real export of the seeded table, flattened and published as the DAG does, with
its ledger entry recorded as the DAG records it; the CLI runs as a subprocess
(``python -m jit_audit.cli verify``) and its exit code and output are checked.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from botocore.exceptions import ClientError

from jit_audit import ledger
from jit_audit.exports import describe_export, find_or_start_export
from jit_audit.layout import SnapshotLayout
from jit_audit.snapshot import SNAPSHOT_MANIFEST_VERSION, manifest_bytes, publish, read_manifests
from jit_audit.staging import flatten_data_file
from jit_audit.verify import PrefixTarget, Target, UsageError, parse_target, parse_uri, verify
from jit_audit_dev.seed import seed

TABLE = "jit_audit"
BUCKET = "jit-audit-exports"
PREFIX = "exports"
TABLE_PREFIX = f"{PREFIX}/jsonl/table={TABLE}/"
LEDGER = ledger.ledger_prefix(TABLE_PREFIX)
ROOT = f"s3://{BUCKET}/{PREFIX}/"


def _wait(ddb: Any, export_arn: str) -> dict[str, Any]:
    deadline = time.monotonic() + 10
    while (description := describe_export(ddb, export_arn))["ExportStatus"] == "IN_PROGRESS":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert description["ExportStatus"] == "COMPLETED", description
    return description


class Staged:
    """One date's export, flattened into staging: what ``publish`` needs, ready to publish (again)."""

    def __init__(self, ddb: Any, s3: Any, export_time: datetime) -> None:
        self.s3 = s3
        self.layout = SnapshotLayout(bucket=BUCKET, prefix=PREFIX, table=TABLE, snapshot_date=export_time.date(),
                                     export_time=export_time)
        started = find_or_start_export(ddb, table_name=TABLE, export_time=export_time, bucket=BUCKET,
                                       s3_prefix=self.layout.raw_prefix)
        description = _wait(ddb, started.export_arn)
        self.item_count = int(description["ItemCount"])
        self.summary, self.files = read_manifests(s3, BUCKET, description["ExportManifest"], self.item_count)

    @property
    def uri(self) -> str:
        return f"s3://{BUCKET}/{self.layout.published_prefix}"

    def record(self, run_id: str, s3: Any = None, signer: ledger.KmsSigner | None = None) -> Any:
        return ledger.recorder(s3 or self.s3, BUCKET, LEDGER, kind=self.layout.partition.kind, uri=self.uri,
                               label=self.layout.partition.label, dag_id="jit_audit_export", run_id=run_id,
                               signer=signer)

    def publish(self, run_id: str, *, s3: Any = None, signer: ledger.KmsSigner | None = None,
                record: Any = None) -> dict[str, Any]:
        parts = [flatten_data_file(self.s3, self.layout, data_file) for data_file in self.files]
        return publish(s3 or self.s3, self.layout, self.summary, self.files, parts, self.item_count,
                       record=record or self.record(run_id, s3, signer))


def _get(s3: Any, key: str) -> bytes:
    return s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()


def _entries(s3: Any) -> list[dict[str, Any]]:
    entries, strays = ledger.read_entries(s3, BUCKET, LEDGER)
    assert strays == []
    return [entry.document for entry in entries if entry.document is not None]


def cli(aws: Any, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "jit_audit.cli", *args, "--endpoint-url", aws.endpoint_url, "--region", "us-east-1"],
        capture_output=True, text=True, timeout=120,
    )


def verify_cli(aws: Any, *args: str) -> subprocess.CompletedProcess[str]:
    return cli(aws, "verify", *args)


@pytest.fixture()
def dates(aws) -> tuple[Any, Any, list[Staged]]:
    """Three dates (4, 3 and 2 days ago), exported and ready to publish; nothing published yet."""
    ddb, s3 = aws.client("dynamodb"), aws.client("s3")
    seed(aws.resource("dynamodb"), TABLE, requests=60)
    s3.create_bucket(Bucket=BUCKET)
    base = (datetime.now(UTC) - timedelta(days=4)).replace(hour=0, minute=0, second=0, microsecond=0)
    return ddb, s3, [Staged(ddb, s3, base + timedelta(days=offset)) for offset in range(3)]


@pytest.fixture()
def published(dates) -> tuple[Any, Any, list[Staged]]:
    """The three dates published out of date order (the last first), as a backfill next to a scheduled
    run does; then the middle one re-run."""
    ddb, s3, staged = dates
    for index, run_id in ((2, "scheduled__2"), (0, "backfill__0"), (1, "backfill__1"), (1, "manual__rerun")):
        staged[index].publish(run_id)
    return ddb, s3, staged


def test_out_of_order_publications_and_a_rerun_verify_clean(aws, published):
    _, s3, staged = published
    entries = _entries(s3)
    assert [entry["sequence"] for entry in entries] == [0, 1, 2, 3]
    assert [entry["run_id"] for entry in entries] == ["scheduled__2", "backfill__0", "backfill__1", "manual__rerun"]
    assert [entry["uri"] for entry in entries] == [staged[2].uri, staged[0].uri, staged[1].uri, staged[1].uri]
    raw = [entry.raw for entry in ledger.read_entries(s3, BUCKET, LEDGER)[0]]
    assert entries[0]["previous_entry_sha256"] is None
    for index in range(1, 4):
        assert entries[index]["previous_entry_sha256"] == hashlib.sha256(raw[index - 1]).hexdigest()
    for item in staged:
        manifest = json.loads(_get(s3, item.layout.partition.manifest_key))
        assert manifest["version"] == SNAPSHOT_MANIFEST_VERSION == 3
        # Self-contained: nothing about other snapshots, runs or times.
        assert not {"previous_manifest_sha256", "previous_manifest_key", "airflow_run_id"} & set(manifest)
    # The re-run recorded the same manifest bytes: a re-run with the same result rewrites identical bytes.
    assert entries[2]["manifest_sha256"] == entries[3]["manifest_sha256"] == hashlib.sha256(
        _get(s3, staged[1].layout.partition.manifest_key)).hexdigest()

    whole = verify_cli(aws, ROOT)
    assert whole.returncode == 0, whole.stdout + whole.stderr
    assert f"OK ledger s3://{BUCKET}/{LEDGER} (4 entries, unsigned)" in whole.stdout
    assert "OK: 4 ledger entries, 3 publication(s)" in whole.stdout
    single = verify_cli(aws, staged[1].uri)
    assert single.returncode == 0, single.stdout + single.stderr
    assert f"OK {staged[1].uri} (" in single.stdout and "ledger entry 3)" in single.stdout
    ranged = verify_cli(aws, staged[0].uri, "--through", staged[2].layout.snapshot_date.isoformat())
    assert ranged.returncode == 0 and ranged.stdout.count("\nOK s3://") == 3, ranged.stdout


def test_two_publishers_racing_for_one_sequence_number_both_land_in_order(aws, dates):
    """Both read the same head, both try sequence 1 at once: S3's conditional write lets exactly one
    take it; the other re-reads the head and lands as 2, linked to 1."""
    _, s3, staged = dates
    staged[0].publish("first")  # entry 0
    barrier = threading.Barrier(2, timeout=30)
    attempts: dict[str, list[int]] = {"a": [], "b": []}

    class RacingClient:
        """The S3 client, except that each publisher's first ledger write waits for the other's."""

        def __init__(self, name: str) -> None:
            self.name = name
            self.inner = aws.client("s3")

        def __getattr__(self, attribute: str) -> Any:
            return getattr(self.inner, attribute)

        def put_object(self, **kwargs: Any) -> Any:
            if kwargs["Key"].startswith(LEDGER):
                attempts[self.name].append(ledger.sequence_of(LEDGER, kwargs["Key"]) or 0)
                if len(attempts[self.name]) == 1:
                    barrier.wait()
            return self.inner.put_object(**kwargs)

    errors: list[BaseException] = []

    def run(name: str, item: Staged) -> None:
        try:
            item.publish(f"race-{name}", s3=RacingClient(name))
        except BaseException as error:  # noqa: BLE001 (reported below)
            errors.append(error)

    threads = [threading.Thread(target=run, args=(name, item)) for name, item in (("a", staged[1]), ("b", staged[2]))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors
    # Both first tried sequence 1; one of them had to try again and took 2.
    assert attempts["a"][0] == attempts["b"][0] == 1
    assert sorted([attempts["a"], attempts["b"]]) == [[1], [1, 2]], attempts
    entries = _entries(s3)
    assert [entry["sequence"] for entry in entries] == [0, 1, 2]
    assert {entry["run_id"] for entry in entries[1:]} == {"race-a", "race-b"}
    result = verify_cli(aws, ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_ledger_append_that_keeps_losing_the_race_gives_up_with_a_clear_error():
    """Every try's sequence number taken by another publisher: short jittered waits, then LedgerError."""

    class TakenEveryTime:
        puts = 0

        def get_paginator(self, name: str) -> Any:
            return SimpleNamespace(paginate=lambda **kwargs: [{}])  # an empty ledger, each time it is read

        def put_object(self, **kwargs: Any) -> None:
            self.puts += 1
            raise ClientError({"Error": {"Code": "PreconditionFailed", "Message": "taken"}}, "PutObject")

    s3, delays = TakenEveryTime(), []
    with pytest.raises(ledger.LedgerError, match="could not take a sequence number after 4 attempts"):
        ledger.append(s3, BUCKET, LEDGER, {"kind": "snapshot"}, max_attempts=4, sleep=delays.append)
    assert s3.puts == 4
    # Ceilings of 50, 100 and 200 ms, each wait in the upper half of its ceiling.
    assert all(ceiling / 2 <= delay <= ceiling for delay, ceiling in zip(delays, [0.05, 0.1, 0.2], strict=True)), delays


def test_a_publisher_dying_before_its_entry_changes_nothing(aws, dates):
    _, s3, staged = dates
    staged[0].publish("scheduled")
    before = {key: _get(s3, key) for key in _keys(s3, staged[0].layout.published_prefix)}

    def die(body: bytes, manifest: dict[str, Any]) -> None:
        raise KeyboardInterrupt("worker killed after staging its parts, before its ledger entry")

    with pytest.raises(KeyboardInterrupt):
        staged[0].publish("rerun", record=die)
    assert {key: _get(s3, key) for key in _keys(s3, staged[0].layout.published_prefix)} == before
    result = verify_cli(aws, ROOT)
    assert result.returncode == 0, result.stdout


def test_a_publisher_dying_after_its_entry_is_reported_until_the_retry_repairs_it(aws, dates):
    _, s3, staged = dates
    staged[1].publish("scheduled")
    record = staged[0].record("backfill__dies")

    class DiesAtFirstCopy:
        def __init__(self) -> None:
            self.inner = s3

        def __getattr__(self, attribute: str) -> Any:
            return getattr(self.inner, attribute)

        def copy(self, *args: Any, **kwargs: Any) -> Any:
            raise KeyboardInterrupt("worker killed after its ledger entry, before the first part was published")

    with pytest.raises(KeyboardInterrupt):
        staged[0].publish("backfill__dies", s3=DiesAtFirstCopy(), record=record)
    entries = _entries(s3)
    assert [entry["run_id"] for entry in entries] == ["scheduled", "backfill__dies"]
    pending = verify_cli(aws, ROOT)
    assert pending.returncode == 1, pending.stdout
    assert (f"GONE: {staged[0].uri}: ledger entry 1 (run backfill__dies, {entries[1]['recorded_at']}) records a "
            "publication here, but nothing is published") in pending.stdout
    single = verify_cli(aws, staged[0].uri)
    assert single.returncode == 1 and "GONE: " in single.stdout, single.stdout

    staged[0].publish("backfill__dies")  # the task's retry
    repaired = verify_cli(aws, ROOT)
    assert repaired.returncode == 0, repaired.stdout
    assert "OK: 3 ledger entries, 2 publication(s)" in repaired.stdout


def test_a_publisher_dying_mid_publish_is_incomplete_naming_its_entry(aws, published):
    _, s3, staged = published
    s3.delete_object(Bucket=BUCKET, Key=staged[2].layout.partition.success_key)  # as a re-run does before copying
    result = verify_cli(aws, ROOT)
    assert result.returncode == 1
    assert f"INCOMPLETE: s3://{BUCKET}/{staged[2].layout.partition.success_key}: _SUCCESS is missing" in result.stdout
    assert (f"INCOMPLETE: s3://{BUCKET}/{staged[2].layout.partition.manifest_key}: ledger entry 0 (run scheduled__2, "
            in result.stdout)


def _keys(s3: Any, prefix: str) -> list[str]:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
    return sorted(item["Key"] for page in pages for item in page.get("Contents", []))


def _tamper_part(s3: Any, item: Staged) -> dict[str, Any]:
    part = json.loads(_get(s3, item.layout.partition.manifest_key))["parts"][0]
    lines = gzip.decompress(_get(s3, part["key"])).splitlines(keepends=True)
    s3.put_object(Bucket=BUCKET, Key=part["key"], Body=gzip.compress(b"".join(lines[1:]), mtime=0))
    return part


def test_tamper_a_part_changed(aws, published):
    _, s3, staged = published
    part = _tamper_part(s3, staged[1])
    result = verify_cli(aws, ROOT)
    assert result.returncode == 1, result
    assert f"CHANGED: s3://{BUCKET}/{part['key']}: sha256 " in result.stdout
    assert f"{part['lines'] - 1} lines, manifest {part['lines']}" in result.stdout
    assert f"FAILED {staged[1].uri}" in result.stdout
    assert f"OK {staged[0].uri}" in result.stdout and f"OK {staged[2].uri}" in result.stdout
    assert "FAILED: 1 integrity problem(s)" in result.stdout


def test_tamper_a_part_removed(aws, published):
    _, s3, staged = published
    part = json.loads(_get(s3, staged[2].layout.partition.manifest_key))["parts"][-1]
    s3.delete_object(Bucket=BUCKET, Key=part["key"])
    result = verify_cli(aws, staged[2].uri)
    assert result.returncode == 1, result
    assert f"REMOVED: s3://{BUCKET}/{part['key']}: listed in _manifest.json but missing" in result.stdout


def test_tamper_a_part_added(aws, published):
    _, s3, staged = published
    extra = staged[0].layout.published_part_key(99)
    s3.put_object(Bucket=BUCKET, Key=extra, Body=gzip.compress(b'{"injected": true}\n', mtime=0))
    result = verify_cli(aws, ROOT)
    assert result.returncode == 1, result
    assert f"ADDED: s3://{BUCKET}/{extra}: not listed in _manifest.json" in result.stdout
    assert "FAILED: 1 integrity problem(s)" in result.stdout


def test_tamper_a_part_and_its_manifest_rewritten_consistently_is_caught_on_that_snapshot_alone(aws, published):
    _, s3, staged = published
    item = staged[0]
    part = _tamper_part(s3, item)
    manifest = json.loads(_get(s3, item.layout.partition.manifest_key))
    body = _get(s3, part["key"])
    for entry in manifest["parts"]:
        if entry["key"] == part["key"]:
            entry.update(sha256=hashlib.sha256(body).hexdigest(), size_bytes=len(body), lines=entry["lines"] - 1)
    manifest["counts"]["lines_written"] -= 1
    s3.put_object(Bucket=BUCKET, Key=item.layout.partition.manifest_key, Body=manifest_bytes(manifest))

    result = verify_cli(aws, item.uri)
    assert result.returncode == 1, result.stdout
    assert f"CHANGED: s3://{BUCKET}/{item.layout.partition.manifest_key}: sha256 " in result.stdout
    assert "but ledger entry 1 (run backfill__0" in result.stdout
    assert "the manifest was rewritten outside the pipeline" in result.stdout


def test_tamper_a_ledger_entry_removed(aws, published):
    _, s3, _ = published
    s3.delete_object(Bucket=BUCKET, Key=ledger.entry_key(LEDGER, 1))
    result = verify_cli(aws, ROOT)
    assert result.returncode == 1, result.stdout
    assert f"REMOVED: s3://{BUCKET}/{ledger.entry_key(LEDGER, 1)}: ledger entry 1 is missing" in result.stdout
    # ... and the snapshot only that entry recorded is now a publication the ledger does not know.
    assert "NOT IN LEDGER: " in result.stdout


def test_tamper_a_ledger_entry_rewritten(aws, published):
    _, s3, staged = published
    key = ledger.entry_key(LEDGER, 2)
    document = json.loads(_get(s3, key))
    document["run_id"] = "someone_else"
    s3.put_object(Bucket=BUCKET, Key=key, Body=ledger.entry_bytes(document))
    result = verify_cli(aws, staged[1].uri)  # even verifying one snapshot checks the whole ledger
    assert result.returncode == 1, result.stdout
    assert (f"LEDGER BROKEN: s3://{BUCKET}/{ledger.entry_key(LEDGER, 3)}: previous_entry_sha256 "
            in result.stdout)
    assert "entry 2 was rewritten after entry 3 was recorded" in result.stdout


def test_tamper_a_published_snapshot_with_no_ledger_entry(aws, published):
    _, s3, staged = published
    source = staged[0].layout.published_prefix
    fake = source.replace(staged[0].layout.snapshot_date.isoformat(), "2020-01-01")
    for key in _keys(s3, source):
        body = _get(s3, key)
        if key.endswith("_manifest.json"):
            body = body.replace(source.encode(), fake.encode())
        s3.put_object(Bucket=BUCKET, Key=key.replace(source, fake), Body=body)
    result = verify_cli(aws, ROOT)
    assert result.returncode == 1, result.stdout
    assert (f"NOT IN LEDGER: s3://{BUCKET}/{fake}_manifest.json: published, but no ledger entry records it"
            in result.stdout)


def test_tamper_a_ledger_entry_for_a_snapshot_that_is_gone(aws, published):
    _, s3, staged = published
    for key in _keys(s3, staged[2].layout.published_prefix):
        s3.delete_object(Bucket=BUCKET, Key=key)
    result = verify_cli(aws, ROOT)
    assert result.returncode == 1, result.stdout
    assert f"GONE: {staged[2].uri}: ledger entry 0 (run scheduled__2" in result.stdout
    assert "nothing is published: it was removed" in result.stdout


def test_lifecycle_expiry_after_the_minimum_retention_is_a_note_not_a_finding(aws, dates):
    """S3's lifecycle rule removes old snapshots and, since the ledger lives under the same prefix, the
    oldest ledger entries: after the minimum retention that is the policy working, not tampering."""
    _, s3, staged = dates
    long_ago = datetime.now(UTC) - timedelta(days=400)
    for item in staged[:2]:
        item.publish("old", record=lambda body, manifest, item=item: ledger.append(
            s3, BUCKET, LEDGER, ledger.publication_record(
                kind="snapshot", uri=item.uri, manifest_body=body, manifest=manifest, dag_id="jit_audit_export",
                run_id="old", label=item.layout.partition.label), now=lambda: long_ago))
    staged[2].publish("recent")
    s3.delete_object(Bucket=BUCKET, Key=ledger.entry_key(LEDGER, 0))
    for item in staged[:2]:
        for key in _keys(s3, item.layout.published_prefix):
            s3.delete_object(Bucket=BUCKET, Key=key)

    expired = verify_cli(aws, ROOT)
    assert expired.returncode == 0, expired.stdout
    assert "NOTE: entries 0..0 expired: the first remaining, 1, was recorded " in expired.stdout
    assert f"EXPIRED {staged[1].uri} (ledger entry 1, recorded " in expired.stdout

    # Within the minimum retention (here 500 days), the same removals are findings.
    early = verify_cli(aws, ROOT, "--min-retention-days", "500")
    assert early.returncode == 1, early.stdout
    assert f"REMOVED: s3://{BUCKET}/{ledger.entry_key(LEDGER, 0)}: ledger entry 0 is missing" in early.stdout
    assert f"GONE: {staged[1].uri}: ledger entry 1 (run old, " in early.stdout
    assert "removed within the minimum retention of 500 days" in early.stdout


def test_a_stray_object_in_the_ledger_is_added(aws, published):
    _, s3, _ = published
    s3.put_object(Bucket=BUCKET, Key=LEDGER + "notes.txt", Body=b"hello")
    result = verify_cli(aws, ROOT)
    assert result.returncode == 1 and f"ADDED: s3://{BUCKET}/{LEDGER}notes.txt: not a ledger entry" in result.stdout


@pytest.fixture()
def signing_key(aws) -> str:
    kms = aws.client("kms")
    return kms.create_key(KeyUsage="SIGN_VERIFY", KeySpec="ECC_NIST_P256")["KeyMetadata"]["Arn"]


def test_signed_ledger_verifies_and_a_tail_rewritten_without_the_key_is_caught(aws, dates, signing_key):
    _, s3, staged = dates
    signer = ledger.KmsSigner(aws.client("kms"), signing_key, "ECDSA_SHA_256")
    for item, run_id in ((staged[1], "a"), (staged[0], "b"), (staged[2], "c")):
        item.publish(run_id, signer=signer)
    entries = _entries(s3)
    assert all(entry["signature"]["key_id"] == signing_key for entry in entries)
    ok = verify_cli(aws, ROOT, "--kms-key-id", signing_key)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "3 entries, 3 signed" in ok.stdout

    # Someone who can write to the bucket but cannot use the key rewrites the last entry and keeps the
    # chain consistent: the signature no longer matches.
    key = ledger.entry_key(LEDGER, 2)
    document = json.loads(_get(s3, key))
    document["manifest_sha256"] = "0" * 64
    s3.put_object(Bucket=BUCKET, Key=key, Body=ledger.entry_bytes(document))
    forged = verify_cli(aws, ROOT)
    assert forged.returncode == 1, forged.stdout
    assert (f"BAD SIGNATURE: s3://{BUCKET}/{key}: the ECDSA_SHA_256 signature by {signing_key} does not match the "
            "entry") in forged.stdout

    # The whole tail (entries 1 and 2) rewritten and re-linked, so every hash link holds again: only
    # the signatures, which cannot be remade without the key, give it away.
    middle_key = ledger.entry_key(LEDGER, 1)
    middle = json.loads(_get(s3, middle_key))
    middle["run_id"] = "rewritten"
    s3.put_object(Bucket=BUCKET, Key=middle_key, Body=ledger.entry_bytes(middle))
    document["previous_entry_sha256"] = hashlib.sha256(ledger.entry_bytes(middle)).hexdigest()
    s3.put_object(Bucket=BUCKET, Key=key, Body=ledger.entry_bytes(document))
    relinked = verify_cli(aws, ROOT)
    assert relinked.returncode == 1, relinked.stdout
    assert "LEDGER BROKEN" not in relinked.stdout, "the links were remade consistently"
    assert relinked.stdout.count("BAD SIGNATURE: ") == 2, relinked.stdout
    assert f"BAD SIGNATURE: s3://{BUCKET}/{middle_key}: the ECDSA_SHA_256 signature" in relinked.stdout

    # Dropping the signature instead: unsigned after signed entries.
    del document["signature"]
    s3.put_object(Bucket=BUCKET, Key=key, Body=ledger.entry_bytes(document))
    unsigned = verify_cli(aws, ROOT)
    assert unsigned.returncode == 1, unsigned.stdout
    assert f"BAD SIGNATURE: s3://{BUCKET}/{key}: unsigned, but the entries from 0 on are signed" in unsigned.stdout

    # Re-signing with a key of the attacker's own is caught by naming the key the auditor trusts.
    other = aws.client("kms").create_key(KeyUsage="SIGN_VERIFY", KeySpec="ECC_NIST_P256")["KeyMetadata"]["Arn"]
    document["signature"] = ledger.KmsSigner(aws.client("kms"), other).sign(ledger.signed_message(document))
    s3.put_object(Bucket=BUCKET, Key=key, Body=ledger.entry_bytes(document))
    own_key = verify_cli(aws, ROOT, "--kms-key-id", signing_key)
    assert own_key.returncode == 1, own_key.stdout
    assert f"signed with {other}, which is not a key you trust" in own_key.stdout


def test_rsa_pss_signatures_verify(aws, dates):
    _, s3, staged = dates
    arn = aws.client("kms").create_key(KeyUsage="SIGN_VERIFY", KeySpec="RSA_2048")["KeyMetadata"]["Arn"]
    staged[0].publish("a", signer=ledger.KmsSigner(aws.client("kms"), arn, "RSASSA_PSS_SHA_256"))
    result = verify_cli(aws, ROOT, "--kms-key-id", arn)
    assert result.returncode == 0, result.stdout + result.stderr
    assert _entries(s3)[0]["signature"]["algorithm"] == "RSASSA_PSS_SHA_256"


def test_a_key_that_cannot_sign_fails_naming_the_setting_before_anything_is_published(aws, dates):
    _, s3, staged = dates
    rsa = aws.client("kms").create_key(KeyUsage="SIGN_VERIFY", KeySpec="RSA_2048")["KeyMetadata"]["Arn"]
    with pytest.raises(ledger.LedgerError, match="jit_audit_ledger_signing_key_id") as failed:
        staged[0].publish("a", signer=ledger.KmsSigner(aws.client("kms"), rsa, "ECDSA_SHA_256"))
    assert "Nothing was published" in str(failed.value)
    assert _keys(s3, staged[0].layout.published_prefix) == [] and _keys(s3, LEDGER) == []


def test_an_unsigned_ledger_fails_when_the_auditor_expects_signatures(aws, published, signing_key):
    result = verify_cli(aws, ROOT, "--kms-key-id", signing_key)
    assert result.returncode == 1
    assert "unsigned, but --kms-key-id says entries are signed" in result.stdout


def _v2(s3: Any, item: Staged, previous: str | None) -> None:
    """Rewrite a published snapshot's manifest as the pre-ledger pipeline wrote it (version 2)."""
    manifest = json.loads(_get(s3, item.layout.partition.manifest_key))
    manifest.update(version=2, airflow_run_id=f"scheduled__{item.layout.snapshot_date}",
                    previous_manifest_key=previous, previous_manifest_sha256=None if previous is None else "0" * 64)
    s3.put_object(Bucket=BUCKET, Key=item.layout.partition.manifest_key, Body=manifest_bytes(manifest))


def test_migration_records_version_2_snapshots_once(aws, dates):
    _, s3, staged = dates
    for item in staged:
        item.publish("old", record=lambda body, manifest: None)  # published before the ledger
    for index, item in enumerate(staged):
        _v2(s3, item, None if index == 0 else staged[index - 1].layout.partition.manifest_key)
    before = verify_cli(aws, ROOT)
    assert before.returncode == 1 and before.stdout.count("NOT IN LEDGER: ") == 3, before.stdout
    assert "jit-audit ledger init" in before.stdout

    first = cli(aws, "ledger", "init", ROOT)
    assert first.returncode == 0, first.stderr
    assert "table jit_audit: 3 snapshot(s) recorded, 0 skipped" in first.stdout
    entries = _entries(s3)
    assert [entry["uri"] for entry in entries] == [item.uri for item in staged]
    assert all(entry["migrated"] and entry["manifest_version"] == 2 for entry in entries)
    again = cli(aws, "ledger", "init", ROOT)
    assert again.returncode == 0 and "0 snapshot(s) recorded" in again.stdout
    assert len(_entries(s3)) == 3

    staged[1].publish("after-upgrade")  # a version-3 re-run of a migrated date
    after = verify_cli(aws, ROOT)
    assert after.returncode == 0, after.stdout


def test_migration_never_records_a_version_3_snapshot_without_an_entry(aws, dates):
    _, s3, staged = dates
    staged[0].publish("unrecorded", record=lambda body, manifest: None)
    result = cli(aws, "ledger", "init", ROOT)
    assert result.returncode == 0
    assert "0 snapshot(s) recorded, 1 skipped" in result.stdout and "is a finding" in result.stdout


def test_usage_and_access_errors_exit_2(aws, published):
    _, _, staged = published
    nothing = verify_cli(aws, staged[0].uri.replace(staged[0].layout.snapshot_date.isoformat(), "2001-01-01"))
    assert nothing.returncode == 2 and "nothing published or recorded" in nothing.stderr
    empty = verify_cli(aws, f"s3://{BUCKET}/no-such-prefix/")
    assert empty.returncode == 2 and "nothing published under" in empty.stderr
    no_bucket = verify_cli(aws, staged[0].uri.replace(BUCKET, "no-such-bucket"))
    assert no_bucket.returncode == 2 and "cannot" in no_bucket.stderr
    bad_date = verify_cli(aws, staged[0].uri, "--through", "yesterday")
    assert bad_date.returncode == 2 and "--through" in bad_date.stderr
    bad_uri = verify_cli(aws, "https://example.com/x")
    assert bad_uri.returncode == 2 and "not an S3 URI" in bad_uri.stderr
    s3 = aws.client("s3")
    s3.put_object(Bucket=BUCKET, Key=f"{PREFIX}/adhoc/run-1/_manifest.json", Body=b"{}")
    result = verify_cli(aws, f"s3://{BUCKET}/{PREFIX}/adhoc/run-1/")
    assert result.returncode == 2 and "is one publication (an ad-hoc result?)" in result.stderr, result.stderr
    mixed = verify_cli(aws, ROOT, "--through", "2026-11-01")
    assert mixed.returncode == 2 and "applies to a snapshot's URI" in mixed.stderr


def test_library_form(aws, published):
    _, s3, staged = published
    report = verify(s3, parse_uri(staged[0].uri), parse_uri(staged[2].uri))
    assert report.ok, report.render()
    assert [partition.label for partition in report.partitions] == [
        item.layout.snapshot_date.isoformat() for item in staged]


# --------------------------------------------------------------------------- URIs, along the one key layout


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("s3://bkt/exports/jsonl/table=t/snapshot_date=2026-11-25/", ("snapshot", "2026-11-25", "exports/jsonl/table=t/")),
        ("s3://bkt/jsonl/table=t/snapshot_date=2026-11-25", ("snapshot", "2026-11-25", "jsonl/table=t/")),
        ("s3://bkt/a/b/jsonl/table=t/change_window=20261125T000000Z_20261126T000000Z/",
         ("changes", "20261125T000000Z_20261126T000000Z", "a/b/jsonl/table=t/")),
    ],
)
def test_a_partition_uri_is_parsed_along_the_layout(uri: str, expected: tuple[str, str, str]) -> None:
    target = parse_target(uri)
    assert isinstance(target, Target) and (target.kind, target.label, target.table_prefix) == expected


@pytest.mark.parametrize("label", ["snapshot_date=20261125", "snapshot_date=2026-02-30", "snapshot_date=2026-1-5",
                                   "change_window=20261125T000000Z", "change_window=2026-11-25_2026-11-26"])
def test_a_partition_uri_with_a_label_the_pipeline_never_writes_is_refused(label: str) -> None:
    with pytest.raises(UsageError, match="not a snapshot URI"):
        parse_target(f"s3://bkt/exports/jsonl/table=t/{label}/")


def test_table_and_prefix_uris() -> None:
    assert parse_target("s3://bkt/exports/jsonl/table=t/") == PrefixTarget("bkt", "exports/", "t")
    assert parse_target("s3://bkt/exports/jsonl/") == PrefixTarget("bkt", "exports/", None)
    assert parse_target("s3://bkt/") == PrefixTarget("bkt", "", None)

"""``jit-audit verify`` against the emulator: three consecutive published snapshots, then tampering.

Each snapshot is a real export of the seeded table, flattened and published as the DAG does; the
CLI runs as a subprocess (``python -m jit_audit.cli verify``) and its exit code is checked.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from jit_audit.exports import describe_export, find_or_start_export, table_arn
from jit_audit.layout import SnapshotLayout
from jit_audit.seed import seed
from jit_audit.snapshot import SNAPSHOT_MANIFEST_VERSION, flatten_data_file, publish, read_manifests
from jit_audit.verify import parse_uri, verify

TABLE = "jit_audit"
BUCKET = "jit-audit-exports"
PREFIX = "exports"


def _wait(ddb: Any, export_arn: str) -> dict[str, Any]:
    deadline = time.monotonic() + 10
    while (description := describe_export(ddb, export_arn))["ExportStatus"] == "IN_PROGRESS":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert description["ExportStatus"] == "COMPLETED", description
    return description


def _publish(ddb: Any, s3: Any, export_time: datetime, run_id: str | None) -> SnapshotLayout:
    layout = SnapshotLayout(bucket=BUCKET, prefix=PREFIX, table=TABLE, snapshot_date=export_time.date(),
                            export_time=export_time)
    started = find_or_start_export(ddb, table_name=TABLE, export_time=export_time, bucket=BUCKET,
                                   s3_prefix=layout.raw_prefix)
    description = _wait(ddb, started.export_arn)
    summary, files = read_manifests(s3, BUCKET, description["ExportManifest"], description["ItemCount"])
    parts = [flatten_data_file(s3, layout, data_file) for data_file in files]
    publish(s3, layout, summary, files, parts, int(description["ItemCount"]), airflow_run_id=run_id)
    return layout


def _get(s3: Any, key: str) -> bytes:
    return s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()


def _uri(layout: SnapshotLayout) -> str:
    return f"s3://{BUCKET}/{layout.published_prefix}"


@pytest.fixture()
def published(aws) -> tuple[Any, Any, list[SnapshotLayout]]:
    """Three daily snapshots (3, 2 and 1 days ago), published in date order; two data files each."""
    ddb, s3 = aws.client("dynamodb"), aws.client("s3")
    seed(aws.resource("dynamodb"), TABLE, requests=60)
    s3.create_bucket(Bucket=BUCKET)
    base = (datetime.now(UTC) - timedelta(days=3)).replace(hour=0, minute=0, second=0, microsecond=0)
    layouts = [
        _publish(ddb, s3, base + timedelta(days=offset), f"scheduled__{(base + timedelta(days=offset)).isoformat()}")
        for offset in range(3)
    ]
    return ddb, s3, layouts


def cli(aws, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "jit_audit.cli", "verify", *args, "--endpoint-url", aws.endpoint_url,
         "--region", "us-east-1"],
        capture_output=True, text=True, timeout=120,
    )


def test_manifests_chain_and_verify_says_ok(aws, published):
    ddb, s3, layouts = published
    manifests = [json.loads(_get(s3, layout.manifest_key)) for layout in layouts]
    raw = [_get(s3, layout.manifest_key) for layout in layouts]
    arn = table_arn(ddb, TABLE)
    for index, manifest in enumerate(manifests):
        assert manifest["version"] == SNAPSHOT_MANIFEST_VERSION == 2
        assert manifest["table_arn"] == arn
        assert manifest["export_arn"].startswith(arn + "/export/")
        assert manifest["airflow_run_id"].startswith("scheduled__")
        if index == 0:
            assert manifest["previous_manifest_sha256"] is None and manifest["previous_manifest_key"] is None
        else:
            assert manifest["previous_manifest_sha256"] == hashlib.sha256(raw[index - 1]).hexdigest()
            assert manifest["previous_manifest_key"] == layouts[index - 1].manifest_key

    # S3 received (and checked) a SHA-256 checksum for every object, copies from staging included.
    for layout, manifest in zip(layouts, manifests, strict=True):
        for key in [*(part["key"] for part in manifest["parts"]), layout.manifest_key, layout.success_key]:
            head = s3.head_object(Bucket=BUCKET, Key=key, ChecksumMode="ENABLED")
            assert head.get("ChecksumSHA256"), key
        assert s3.head_object(Bucket=BUCKET, Key=layout.manifest_key, ChecksumMode="ENABLED")["ChecksumSHA256"] == (
            base64.b64encode(hashlib.sha256(_get(s3, layout.manifest_key)).digest()).decode()
        )

    # Re-publishing the middle date (another run, same content) gives the same bytes, keeping the
    # first run's id, so the chain after it still holds.
    _publish(ddb, s3, layouts[1].export_time, "manual__a-later-rerun")
    assert _get(s3, layouts[1].manifest_key) == raw[1]

    report = verify(s3, parse_uri(_uri(layouts[0])), parse_uri(_uri(layouts[2])))
    assert report.ok, report.render()
    assert [partition.label for partition in report.partitions] == [
        layout.snapshot_date.isoformat() for layout in layouts
    ]

    single = cli(aws, _uri(layouts[2]))
    assert single.returncode == 0, single
    assert single.stdout.startswith(f"OK {_uri(layouts[2])}")
    ranged = cli(aws, _uri(layouts[0]), "--through", layouts[2].snapshot_date.isoformat())
    assert ranged.returncode == 0, ranged
    assert ranged.stdout.count("\nOK s3://") + ranged.stdout.startswith("OK s3://") == 3
    assert "OK: 3 snapshot(s) verified" in ranged.stdout
    two_uris = cli(aws, _uri(layouts[0]), _uri(layouts[2]))
    assert two_uris.returncode == 0 and two_uris.stdout == ranged.stdout


def test_a_part_with_different_bytes_is_changed(aws, published):
    _, s3, layouts = published
    part = json.loads(_get(s3, layouts[1].manifest_key))["parts"][0]
    lines = gzip.decompress(_get(s3, part["key"])).splitlines(keepends=True)
    s3.put_object(Bucket=BUCKET, Key=part["key"], Body=gzip.compress(b"".join(lines[1:]), mtime=0))

    result = cli(aws, _uri(layouts[0]), "--through", layouts[2].snapshot_date.isoformat())
    assert result.returncode == 1, result
    assert f"CHANGED: s3://{BUCKET}/{part['key']}: sha256 " in result.stdout
    assert f"{part['lines'] - 1} lines, manifest {part['lines']}" in result.stdout
    assert f"FAILED {_uri(layouts[1])}" in result.stdout
    assert f"OK {_uri(layouts[0])}" in result.stdout and f"OK {_uri(layouts[2])}" in result.stdout
    assert "FAILED: 1 integrity problem(s) in 3 snapshot(s)" in result.stdout


def test_a_deleted_part_is_removed(aws, published):
    _, s3, layouts = published
    part = json.loads(_get(s3, layouts[2].manifest_key))["parts"][-1]
    s3.delete_object(Bucket=BUCKET, Key=part["key"])

    result = cli(aws, _uri(layouts[2]))
    assert result.returncode == 1, result
    assert f"REMOVED: s3://{BUCKET}/{part['key']}: listed in _manifest.json but missing" in result.stdout


def test_an_extra_part_is_added(aws, published):
    _, s3, layouts = published
    extra = layouts[0].published_part_key(99)
    s3.put_object(Bucket=BUCKET, Key=extra, Body=gzip.compress(b'{"injected": true}\n', mtime=0))

    result = cli(aws, _uri(layouts[0]), _uri(layouts[2]))
    assert result.returncode == 1, result
    assert f"ADDED: s3://{BUCKET}/{extra}: not listed in _manifest.json" in result.stdout
    assert "FAILED: 1 integrity problem(s)" in result.stdout


def test_a_rewritten_earlier_manifest_breaks_the_chain_at_the_next_date(aws, published):
    _, s3, layouts = published
    manifest = json.loads(_get(s3, layouts[0].manifest_key))
    manifest["airflow_run_id"] = "manual__rewritten"
    s3.put_object(Bucket=BUCKET, Key=layouts[0].manifest_key,
                  Body=json.dumps(manifest, indent=2, sort_keys=True).encode() + b"\n")

    # On its own, the rewritten snapshot still matches its parts ...
    alone = cli(aws, _uri(layouts[0]))
    assert alone.returncode == 0, alone
    # ... but the next date's manifest no longer chains to it.
    result = cli(aws, _uri(layouts[0]), "--through", layouts[2].snapshot_date.isoformat())
    assert result.returncode == 1, result
    assert f"CHAIN BROKEN: s3://{BUCKET}/{layouts[1].manifest_key}: previous_manifest_sha256 " in result.stdout
    assert f"does not match {layouts[0].manifest_key}" in result.stdout
    assert f"OK {_uri(layouts[2])}" in result.stdout
    assert "FAILED: 1 integrity problem(s) in 3 snapshot(s)" in result.stdout


def test_a_deleted_snapshot_breaks_the_chain_and_missing_success_is_incomplete(aws, published):
    _, s3, layouts = published
    s3.delete_object(Bucket=BUCKET, Key=layouts[1].success_key)
    result = cli(aws, _uri(layouts[1]), _uri(layouts[2]))
    assert result.returncode == 1, result
    assert f"INCOMPLETE: s3://{BUCKET}/{layouts[1].success_key}" in result.stdout
    # Without _SUCCESS the middle date is not published: the last date now points past it.
    assert f"CHAIN BROKEN: s3://{BUCKET}/{layouts[2].manifest_key}: chains to {layouts[1].manifest_key}" in result.stdout


def test_usage_and_access_errors_exit_2(aws, published):
    _, _, layouts = published
    bad = cli(aws, f"s3://{BUCKET}/not/a/snapshot/")
    assert bad.returncode == 2 and "not a snapshot URI" in bad.stderr
    nothing = cli(aws, _uri(layouts[0]).replace(layouts[0].snapshot_date.isoformat(), "2001-01-01"))
    assert nothing.returncode == 2 and "nothing published" in nothing.stderr
    no_bucket = cli(aws, _uri(layouts[0]).replace(BUCKET, "no-such-bucket"))
    assert no_bucket.returncode == 2 and "cannot" in no_bucket.stderr
    bad_date = cli(aws, _uri(layouts[0]), "--through", "yesterday")
    assert bad_date.returncode == 2 and "--through" in bad_date.stderr

"""Issue 6's fault table, row 5: a damaged export data file fails the run, naming the file (and the
line), publishes nothing and leaves the date's published snapshot byte for byte as it was.

One published snapshot (a successful ``dag.test()`` run) is shared by the four variants; each
damages the export in S3, re-runs the date, checks, and puts the export back as DynamoDB wrote it.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from faultlib import (
    BUCKET,
    PREFIX,
    TABLE,
    VARIABLES,
    WEBHOOK_CONN,
    day,
    export_arns,
    items_in_table,
    lines_published,
    objects,
    published_prefix,
    recorded_error,
    run_dag,
    sha256s,
    verified,
    webhook_server,
)

from jit_audit_dev.seed import ensure_bucket, seed

pytestmark = pytest.mark.e2e
DATE = day(1)


class Baseline:
    """The published snapshot of DATE and the export behind it."""

    def __init__(self, aws: Any, dag: Any) -> None:
        self.aws, self.dag = aws, dag
        self.s3 = aws.client("s3")
        self.items = items_in_table(aws)
        self.objects = objects(aws, published_prefix(DATE.date().isoformat()))
        self.manifest = json.loads(self.objects["_manifest.json"])
        self.data_keys = [part["source_data_file"] for part in self.manifest["parts"]]
        self.files_key = self.data_keys[0].rsplit("/data/", 1)[0] + "/manifest-files.json"

    def get(self, key: str) -> bytes:
        return self.s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()

    def put(self, key: str, body: bytes) -> None:
        self.s3.put_object(Bucket=BUCKET, Key=key, Body=body)

    def set_manifest_md5(self, key: str, body: bytes) -> None:
        """Make manifest-files.json agree with ``body``, so that only the flattener can catch the damage."""
        entries = [json.loads(line) for line in self.get(self.files_key).splitlines()]
        for entry in entries:
            if entry["dataFileS3Key"] == key:
                entry["md5Checksum"] = base64.b64encode(hashlib.md5(body, usedforsecurity=False).digest()).decode()
        self.put(self.files_key, "".join(json.dumps(entry) + "\n" for entry in entries).encode())


@pytest.fixture(scope="module")
def baseline(emulator, dagbag) -> Iterator[Baseline]:
    with pytest.MonkeyPatch.context() as patch:
        for name, value in VARIABLES.items():
            patch.setenv(name, value)
        emulator.reset()
        seed(emulator.resource("dynamodb"), TABLE, requests=120)
        ensure_bucket(emulator.client("s3"), BUCKET, prefix=PREFIX, retention_days=400)
        dag = dagbag.dags["jit_audit_export"]
        dag_run, _ = run_dag(dag, DATE, comms=False)
        assert dag_run.state == "success"
        yield Baseline(emulator, dag)


def _tamper(body: bytes) -> bytes:
    """Same number of valid items, one value changed: only the MD5 can tell."""
    lines = gzip.decompress(body).splitlines(keepends=True)
    record = json.loads(lines[0])
    record["Item"]["event_type"] = {"S": "TAMPERED"}
    lines[0] = json.dumps(record, separators=(",", ":")).encode() + b"\n"
    return gzip.compress(b"".join(lines), mtime=0)


def _bad_line(body: bytes) -> bytes:
    lines = gzip.decompress(body).splitlines(keepends=True)
    lines[2] = b'{"Item":{"request_id":{"X":"corrupt"}}}\n'
    return gzip.compress(b"".join(lines), mtime=0)


def _rule_breaking_line(body: bytes) -> bytes:
    """Line 3 valid JSON with known tags, but ``request_id`` given twice (DynamoDB never writes that)."""
    lines = gzip.decompress(body).splitlines(keepends=True)
    lines[2] = lines[2].replace(b'{"Item":{', b'{"Item":{"request_id":{"S":"forged"},', 1)
    assert b'"forged"' in lines[2], lines[2][:80]
    return gzip.compress(b"".join(lines), mtime=0)


def damage_md5(b: Baseline, key: str) -> str:
    b.put(key, _tamper(b.get(key)))
    return "data file rewritten in S3 with one value changed (same item count); manifest untouched"


def damage_missing(b: Baseline, key: str) -> str:
    b.s3.delete_object(Bucket=BUCKET, Key=key)
    return "data file deleted from S3; the manifest still lists it"


def damage_truncated(b: Baseline, key: str) -> str:
    body = b.get(key)
    b.put(key, body[: len(body) // 2])
    return "data file cut to its first half in S3 (a truncated gzip); manifest untouched"


def damage_line(b: Baseline, key: str) -> str:
    damaged = _bad_line(b.get(key))
    b.put(key, damaged)
    b.set_manifest_md5(key, damaged)
    return ("line 3 of a data file replaced by an unknown DynamoDB type tag, manifest MD5 updated to match "
            "(so the flattener, not the MD5, must catch it)")


def damage_rule(b: Baseline, key: str) -> str:
    damaged = _rule_breaking_line(b.get(key))
    b.put(key, damaged)
    b.set_manifest_md5(key, damaged)
    return ("line 3 of a data file given a second request_id attribute (valid JSON, known tags), manifest MD5 "
            "updated to match")


VARIANTS: dict[str, tuple[Callable[[Baseline, str], str], int, list[str]]] = {
    # row: (damage, which data file, what the error must say besides the file)
    "5a": (damage_md5, 0, ["MD5", "does not match the manifest's md5Checksum"]),
    "5b": (damage_missing, 1, ["missing", "no such object"]),
    "5c": (damage_truncated, 2, ["cannot decompress"]),
    "5d": (damage_line, 0, ["line 3"]),
    "5e": (damage_rule, 1, ["line 3, attribute request_id", "the attribute name 'request_id' appears twice"]),
}


@pytest.mark.parametrize("row_id", list(VARIANTS))
def test_row5_a_damaged_data_file_fails_naming_it_and_leaves_the_snapshot_untouched(baseline, fault_row, row_id,
                                                                                     monkeypatch):
    row = fault_row(row_id)
    damage, index, expected = VARIANTS[row_id]
    key = baseline.data_keys[index]
    originals = {name: baseline.get(name) for name in (key, baseline.files_key)}
    before = sha256s(baseline.objects)
    for name, value in VARIABLES.items():
        monkeypatch.setenv(name, value)
    server = webhook_server()
    monkeypatch.setenv(WEBHOOK_CONN, server.url)
    try:
        row.record(injected=damage(baseline, key))
        dag_run, tis = run_dag(baseline.dag, DATE)
        assert dag_run.state == "failed"
        failed = [ti for ti in tis.values() if ti.state == "failed"]
        groups = tis[("list_data_files", -1)].xcom_pull(task_ids="list_data_files")
        (group,) = [group["number"] for group in groups if index in [f["index"] for f in group["files"]]]
        assert [(ti.task_id, ti.map_index) for ti in failed] == [("flatten_data_files", group)], failed
        assert failed[0].try_number == 1
        assert tis[("publish_snapshot", -1)].state == "upstream_failed"
        error = recorded_error(dag_run, "flatten_data_files", group)
        assert error and f"s3://{BUCKET}/{key}" in error, error
        for text in expected:
            assert text in error, (text, error)
        (alert,) = server.texts
        assert f"s3://{BUCKET}/{key}" in alert, alert
        after = objects(baseline.aws, published_prefix(DATE.date().isoformat()))
        assert sha256s(after) == before, "the published snapshot must stay byte for byte as it was"
        assert len(export_arns(baseline.aws)) == 1
        lines = lines_published(after)
        assert lines == baseline.items
        row.record(outcome=verified(baseline.aws) + "; " + f"flatten_data_files[{group}] (data file {index + 1}) failed at once (no retry): "
                           f"'{error.replace(f's3://{BUCKET}/{key}', '<the file>')[:200]}'; publish_snapshot upstream_failed; 1 alert naming "
                           "the file; the published snapshot of the date unchanged (SHA-256 of every object)",
                   exported=f"0 published by this run; the earlier snapshot keeps {lines} / {baseline.items} "
                            "in table")
    finally:
        server.stop()
        for name, body in originals.items():
            baseline.put(name, body)

"""actor_email pseudonymisation through both DAGs: no address (and no key) in any output or log.

The key comes from an Airflow Connection (``AIRFLOW_CONN_JIT_AUDIT_PSEUDONYMISATION``); every
object the run wrote to S3 and everything the run printed or logged is searched for every seeded
address. Expected pseudonyms are computed here from the documented rule.
"""

from __future__ import annotations

import gzip
import hashlib
import hmac
import json
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from jit_audit_dev.seed import ensure_bucket, seed

pytestmark = pytest.mark.e2e

BUCKET = "jit-audit-exports"
PREFIX = "exports"
KEY = "0123456789abcdef0123456789abcdef-pseudonymisation-test-key"
ADHOC_FORM = {"request_id": None, "account_id": None, "channel_id": None, "event_types": [], "start": None,
              "end": None, "max_items": 1_000_000, "segments": 4, "page_size": None, "output_uri": None}


def _pseudonym(address: str) -> str:
    return "hmac-sha256:" + hmac.new(KEY.encode(), address.strip().lower().encode(), hashlib.sha256).hexdigest()


@pytest.fixture()
def pseudonymised(aws: Any, dagbag: Any, monkeypatch: pytest.MonkeyPatch) -> set[str]:
    """A seeded table and bucket, pseudonymisation on; returns every address in the table."""
    for name, value in {"TABLE": "jit_audit", "EXPORT_BUCKET": BUCKET, "EXPORT_PREFIX": PREFIX,
                        "EXPORT_TIMEOUT_MINUTES": "5", "PSEUDONYMISE_ACTOR_EMAIL": "true"}.items():
        monkeypatch.setenv(f"AIRFLOW_VAR_JIT_AUDIT_{name}", value)
    monkeypatch.setenv("AIRFLOW_CONN_JIT_AUDIT_PSEUDONYMISATION",
                       json.dumps({"conn_type": "generic", "password": KEY}))
    seed(aws.resource("dynamodb"), "jit_audit", requests=80)
    ensure_bucket(aws.client("s3"), BUCKET, prefix=PREFIX, retention_days=400)
    items = aws.client("dynamodb").scan(TableName="jit_audit")["Items"]
    addresses = {item["actor_email"]["S"] for item in items if "@" in item.get("actor_email", {}).get("S", "")}
    assert len(addresses) > 5
    return addresses


def _objects(aws: Any, prefix: str) -> dict[str, bytes]:
    s3 = aws.client("s3")
    keys = [item["Key"] for item in s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", [])]
    return {key: s3.get_object(Bucket=BUCKET, Key=key)["Body"].read() for key in keys}


def _lines(objects: dict[str, bytes]) -> list[dict[str, Any]]:
    return [json.loads(line) for key, body in objects.items() if key.endswith(".jsonl.gz")
            for line in gzip.decompress(body).splitlines()]


def _assert_nothing_leaks(texts: list[bytes], addresses: set[str]) -> None:
    blob = b"\n".join(texts)
    leaked = sorted(address for address in addresses if address.encode() in blob)
    assert not leaked, f"{len(leaked)} addresses leaked, e.g. {leaked[:3]}"
    assert KEY.encode() not in blob


def _check_lines(lines: list[dict[str, Any]], addresses: set[str]) -> None:
    assert lines
    emails = {line["actor_email"] for line in lines if "actor_email" in line}
    assert emails <= {_pseudonym(address) for address in addresses} | {"system"}
    assert len(emails - {"system"}) > 5


def test_adhoc_results_carry_pseudonyms_only(aws: Any, dagbag: Any, pseudonymised: set[str],
                                             capfd: pytest.CaptureFixture[str],
                                             caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    dag_run = dagbag.dags["jit_audit_adhoc"].test(run_conf={
        **ADHOC_FORM, "query_by": "event_type", "event_types": ["REQUESTED", "APPROVED", "GRANTED"],
        "start": "2000-01-01T00:00:00Z", "end": "2100-01-01T00:00:00Z"})
    assert dag_run.state == "success"
    objects = _objects(aws, f"{PREFIX}/adhoc/")
    lines = _lines(objects)
    _check_lines(lines, pseudonymised)
    manifest = json.loads(next(body for key, body in objects.items() if key.endswith("_manifest.json")))
    assert manifest["pseudonymisation"]["field"] == "actor_email"
    assert manifest["counts"]["items"] == len(lines)
    out, err = capfd.readouterr()
    _assert_nothing_leaks([*objects.values(), out.encode(), err.encode(), caplog.text.encode()], pseudonymised)


def test_a_missing_key_connection_fails_before_any_aws_call(aws: Any, dagbag: Any, pseudonymised: set[str],
                                                            monkeypatch: pytest.MonkeyPatch,
                                                            capfd: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("AIRFLOW_CONN_JIT_AUDIT_PSEUDONYMISATION")
    dag_run = dagbag.dags["jit_audit_adhoc"].test(run_conf={
        **ADHOC_FORM, "query_by": "event_type", "event_types": ["ERROR"],
        "start": "2000-01-01T00:00:00Z", "end": "2100-01-01T00:00:00Z"})
    assert dag_run.state == "failed"
    states = {ti.task_id: ti.state for ti in dag_run.get_task_instances()}
    assert [task for task, state in states.items() if state == "failed"] == ["validate_query"], states
    assert "jit_audit_pseudonymisation" in capfd.readouterr().out
    assert _objects(aws, f"{PREFIX}/adhoc/") == {}


def test_export_snapshot_carries_pseudonyms_only(aws: Any, dagbag: Any, pseudonymised: set[str],
                                                 capfd: pytest.CaptureFixture[str],
                                                 caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    logical_date = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=1)
    dag_run = dagbag.dags["jit_audit_export"].test(logical_date=logical_date)
    assert dag_run.state == "success", {ti.task_id: ti.state for ti in dag_run.get_task_instances()}
    objects = _objects(aws, f"{PREFIX}/jsonl/table=jit_audit/snapshot_date={logical_date.date().isoformat()}/")
    lines = _lines(objects)
    _check_lines(lines, pseudonymised)
    manifest = json.loads(next(body for key, body in objects.items() if key.endswith("_manifest.json")))
    assert manifest["pseudonymisation"]["field"] == "actor_email"
    assert manifest["counts"]["lines_written"] == len(lines)
    out, err = capfd.readouterr()
    # The raw DynamoDB export (under raw/) still holds the addresses: only the published JSON Lines change.
    _assert_nothing_leaks([*objects.values(), out.encode(), err.encode(), caplog.text.encode()], pseudonymised)

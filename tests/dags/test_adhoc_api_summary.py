"""The ad-hoc DAG's ``api_summary`` mode end to end: `dag.test()` against the verifying JIT API
server on loopback (Connection from ``AIRFLOW_CONN_JIT_API_DEFAULT``) and the emulator's S3."""

from __future__ import annotations

import gzip
import hashlib
import json

import pytest
from jit_api_server import JitApiServer, running, summary

from jit_audit_dev.seed import ensure_bucket

pytestmark = pytest.mark.e2e

BUCKET = "jit-audit-exports"
KEY_ID = "adhoc-reader"
SECRET = "dag-secret-0f1e2d3c4b5a"
FIXTURE = [
    summary(1, "CH1", "2026-01-01T00:00:00Z", "GRANTED"),
    summary(2, "CH1", "2026-01-03T08:30:00Z", "DENIED"),
    summary(3, "CH2", "2026-01-04T08:30:00Z", "GRANTED"),
    summary(4, "CH1", "2026-01-09T17:45:10Z", "REVOKED"),
    summary(5, "CH1", "2026-01-20T09:00:00Z", "EXPIRED"),
    {**summary(6, "CH1", "2026-01-31T23:59:59Z", "ERROR"), "note": "ünïcödé \"quoted\"\n"},
    summary(7, "CH1", "2026-02-01T00:00:00Z", "GRANTED"),  # at end: out
]
# Every field, every time: dag.test() keeps the last run's conf in the shared DAG object's params.
FORM_DEFAULTS = {"request_id": None, "account_id": None, "channel_id": None, "event_types": [], "start": None,
                 "end": None, "max_items": 1_000_000, "segments": 4, "page_size": None, "output_uri": None}
SUMMARY_CONF = {"query_by": "api_summary", "channel_id": "CH1", "start": "2026-01-01T00:00:00Z",
                "end": "2026-02-01T00:00:00Z"}


@pytest.fixture()
def api(aws, dagbag, monkeypatch):
    monkeypatch.setenv("AIRFLOW_VAR_JIT_AUDIT_EXPORT_BUCKET", BUCKET)
    monkeypatch.setenv("AIRFLOW_VAR_JIT_AUDIT_EXPORT_PREFIX", "exports")
    ensure_bucket(aws.client("s3"), BUCKET, prefix="exports", retention_days=400)
    with running(JitApiServer(keys={KEY_ID: SECRET}, summaries=FIXTURE, page_size=2)) as server:
        monkeypatch.setenv("AIRFLOW_CONN_JIT_API_DEFAULT", json.dumps(
            {"conn_type": "http", "host": server.base_url, "login": KEY_ID, "password": SECRET}))
        yield server


def run(dagbag, conf: dict):
    dag_run = dagbag.dags["jit_audit_adhoc"].test(run_conf={**FORM_DEFAULTS, **conf})
    return dag_run, {ti.task_id: ti for ti in dag_run.get_task_instances()}


def test_summaries_of_a_channel_are_published_exactly(aws, dagbag, api, capfd):
    dag_run, tasks = run(dagbag, SUMMARY_CONF)
    assert dag_run.state == "success", {task: ti.state for task, ti in tasks.items()}
    s3 = aws.client("s3")
    prefix = f"exports/adhoc/{dag_run.run_id.replace(':', '-').replace('+', '-')}/"
    keys = sorted(item["Key"] for item in s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix)["Contents"])
    assert keys == [prefix + "_SUCCESS", prefix + "_manifest.json", prefix + "part-00000.jsonl.gz"]
    part = s3.get_object(Bucket=BUCKET, Key=prefix + "part-00000.jsonl.gz")["Body"].read()
    wanted = [item for item in FIXTURE if item["channel_id"] == "CH1" and item["request_id"] != "req-0007"]
    assert gzip.decompress(part).decode().splitlines() == [
        json.dumps(item, ensure_ascii=False, separators=(",", ":")) for item in wanted
    ]
    manifest = json.loads(s3.get_object(Bucket=BUCKET, Key=prefix + "_manifest.json")["Body"].read())
    assert manifest == {
        "kind": "adhoc_api_summary",
        "source": {"api": api.base_url, "path": "/api/requests", "key_id": KEY_ID},
        "query": {"query_by": "api_summary", "channel_id": "CH1", "start": "2026-01-01T00:00:00Z",
                  "end": "2026-02-01T00:00:00Z", "max_items": 1_000_000},
        "counts": {"items": 5, "pages": 3,
                   "by_status": {"DENIED": 1, "ERROR": 1, "EXPIRED": 1, "GRANTED": 1, "REVOKED": 1}},
        "truncated_at_max_items": False,
        "parts": [{"key": prefix + "part-00000.jsonl.gz", "lines": 5, "sha256": hashlib.sha256(part).hexdigest(),
                   "size_bytes": len(part)}],
    }
    assert tasks["run_query"].xcom_pull(task_ids="run_query") == {
        "uri": f"s3://{BUCKET}/{prefix}", "items": 5, "truncated_at_max_items": False,
        "by_status": {"DENIED": 1, "ERROR": 1, "EXPIRED": 1, "GRANTED": 1, "REVOKED": 1}}
    assert [seen.status for seen in api.requests] == [200, 200, 200]
    assert SECRET not in capfd.readouterr().out


@pytest.mark.parametrize(
    ("conf", "message"),
    [
        ({**SUMMARY_CONF, "end": "2025-12-01T00:00:00Z"}, "Bad parameter end: must be after start"),
        ({**SUMMARY_CONF, "event_types": ["ERROR"]}, "Bad parameter event_types:"),
        ({**SUMMARY_CONF, "channel_id": None}, "Bad parameter channel_id: is required"),
    ],
)
def test_bad_parameters_fail_before_any_api_request(dagbag, api, conf, message, capfd):
    dag_run, tasks = run(dagbag, conf)
    assert dag_run.state == "failed"
    assert tasks["validate_query"].state == "failed"
    assert tasks["run_query"].state == "upstream_failed"
    assert message in capfd.readouterr().out
    assert api.requests == []


def test_a_missing_connection_is_named_and_a_refused_signature_fails_the_run(dagbag, api, monkeypatch, capfd):
    monkeypatch.setenv("AIRFLOW_VAR_JIT_AUDIT_API_CONN_ID", "jit_api_nowhere")
    dag_run, tasks = run(dagbag, SUMMARY_CONF)
    assert (dag_run.state, tasks["validate_query"].state) == ("failed", "failed")
    assert "JIT API connection 'jit_api_nowhere' (Variable jit_audit_api_conn_id)" in capfd.readouterr().out
    assert api.requests == []

    monkeypatch.setenv("AIRFLOW_CONN_JIT_API_NOWHERE", json.dumps(
        {"conn_type": "http", "host": api.base_url, "login": KEY_ID, "password": "not-the-secret"}))
    dag_run, tasks = run(dagbag, SUMMARY_CONF)
    assert (dag_run.state, tasks["run_query"].state) == ("failed", "failed")
    out = capfd.readouterr().out
    assert "refused our signature (bad_signature); check the key id 'adhoc-reader'" in out
    assert "not-the-secret" not in out
    assert [seen.error for seen in api.requests] == ["bad_signature"]

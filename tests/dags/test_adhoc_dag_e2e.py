"""The ad-hoc query DAG end to end: `dag.test(run_conf=...)` against the emulator over HTTP."""

from __future__ import annotations

import gzip
import json

import pytest

from jit_audit_dev.seed import ensure_bucket, seed

pytestmark = pytest.mark.e2e

BUCKET = "jit-audit-exports"


@pytest.fixture()
def table(aws, dagbag, monkeypatch):
    monkeypatch.setenv("AIRFLOW_VAR_JIT_AUDIT_EXPORT_BUCKET", BUCKET)
    monkeypatch.setenv("AIRFLOW_VAR_JIT_AUDIT_EXPORT_PREFIX", "exports")
    seed(aws.resource("dynamodb"), "jit_audit", requests=60)
    ensure_bucket(aws.client("s3"), BUCKET, prefix="exports", retention_days=400)
    jit_audit = aws.resource("dynamodb").Table("jit_audit")
    # Events exactly at the range's edges, on a known account and channel.
    for key, when in (("edge-start", "2026-11-20T00:00:00.000Z"), ("edge-end", "2026-11-21T00:00:00.000Z"),
                      ("edge-before-end", "2026-11-20T23:59:59.999Z")):
        jit_audit.put_item(Item={"request_id": key, "event_time_event_id": f"{when}#{key}", "event_type": "ERROR",
                                 "account_id": "999999999999", "channel_id": "edgechannel", "details": {"n": 1}})
    items = []
    kwargs: dict = {"TableName": "jit_audit"}
    while True:
        page = aws.client("dynamodb").scan(**kwargs)
        items += page["Items"]
        if "LastEvaluatedKey" not in page:
            return items
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


# Every field, every time: dag.test() keeps the last run's conf in the shared DAG object's params.
FORM_DEFAULTS = {"request_id": None, "account_id": None, "channel_id": None, "event_types": [], "start": None,
                 "end": None, "max_items": 1_000_000, "segments": 4, "page_size": None, "output_uri": None}


def run(dagbag, conf: dict):
    dag_run = dagbag.dags["jit_audit_adhoc"].test(run_conf={**FORM_DEFAULTS, **conf})
    tasks = {ti.task_id: ti for ti in dag_run.get_task_instances()}
    return dag_run, tasks


def results(aws, dag_run) -> tuple[dict, set[tuple[str, str]]]:
    s3 = aws.client("s3")
    prefix = f"exports/adhoc/{dag_run.run_id.replace(':', '-').replace('+', '-')}/"
    keys = [item["Key"] for item in s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", [])]
    assert prefix + "_SUCCESS" in keys, keys
    manifest = json.loads(s3.get_object(Bucket=BUCKET, Key=prefix + "_manifest.json")["Body"].read())
    found = set()
    for key in keys:
        if key.endswith(".jsonl.gz"):
            for line in gzip.decompress(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()).splitlines():
                record = json.loads(line)
                found.add((record["request_id"], record["event_time_event_id"]))
    assert manifest["counts"]["items"] == len(found)
    return manifest, found


def expected(items, keep) -> set[tuple[str, str]]:
    return {(item["request_id"]["S"], item["event_time_event_id"]["S"]) for item in items if keep(item)}


def value(item, name):
    return item.get(name, {}).get("S")


@pytest.mark.parametrize("page_size", [None, 7])
def test_every_query_mode_returns_exactly_the_matching_events(aws, dagbag, table, page_size):
    seeded = [item for item in table if not value(item, "request_id").startswith("edge-")]
    request_id = value(seeded[0], "request_id")
    account = value(seeded[0], "account_id")
    start, end = "2026-11-20T00:00:00Z", "2026-11-21T00:00:00Z"

    def in_range(item):
        return "2026-11-20T00:00:00.000Z" <= value(item, "event_time_event_id") < "2026-11-21T00:00:00.000Z"

    cases = [
        ({"query_by": "request", "request_id": request_id}, lambda item: value(item, "request_id") == request_id),
        ({"query_by": "account", "account_id": "999999999999", "start": start, "end": end},
         lambda item: value(item, "account_id") == "999999999999" and in_range(item)),
        ({"query_by": "account", "account_id": account, "start": "2026-01-01T00:00:00Z", "end": "2027-01-01T00:00:00Z",
          "event_types": ["GRANTED", "REVOKED"]},
         lambda item: value(item, "account_id") == account and value(item, "event_type") in ("GRANTED", "REVOKED")),
        ({"query_by": "channel", "channel_id": "edgechannel", "start": start, "end": end},
         lambda item: value(item, "channel_id") == "edgechannel" and in_range(item)),
        ({"query_by": "event_type", "event_types": ["ERROR", "DENIED"], "start": "2026-01-01T00:00:00Z",
          "end": "2027-01-01T00:00:00Z", "segments": 3},
         lambda item: value(item, "event_type") in ("ERROR", "DENIED")),
    ]
    for conf, keep in cases:
        dag_run, tasks = run(dagbag, {**conf, "page_size": page_size})
        assert dag_run.state == "success", (conf, {task: ti.state for task, ti in tasks.items()})
        manifest, found = results(aws, dag_run)
        assert found == expected(table, keep), conf
        assert found, conf
        assert tasks["run_query"].xcom_pull(task_ids="run_query")["items"] == len(found)
        if page_size:
            assert manifest["counts"]["pages"] > 1 or len(found) < page_size
    edges = {key for key, _ in results(aws, run(dagbag, cases[1][0])[0])[1]}
    assert edges == {"edge-start", "edge-before-end"}


def test_max_items_caps_the_run_and_says_so(aws, dagbag, table):
    dag_run, _ = run(dagbag, {"query_by": "event_type", "event_types": list({value(i, "event_type") for i in table}),
                              "start": "2026-01-01T00:00:00Z", "end": "2027-01-01T00:00:00Z", "max_items": 10,
                              "page_size": 4})
    assert dag_run.state == "success"
    manifest, found = results(aws, dag_run)
    assert len(found) == 10
    assert manifest["truncated_at_max_items"] is True


@pytest.mark.parametrize(
    ("conf", "field"),
    [
        ({"query_by": "account", "account_id": "123456789012", "start": "2026-11-21T00:00:00Z", "end": "2026-11-20T00:00:00Z"}, "end"),
        ({"query_by": "event_type", "event_types": ["ERROR"]}, "start"),
        ({"query_by": "event_type", "start": "2026-11-20T00:00:00Z", "end": "2026-11-21T00:00:00Z"}, "event_types"),
        ({"query_by": "request"}, "request_id"),
    ],
)
def test_parameters_that_pass_the_form_but_not_together_fail_before_any_aws_call(
    aws, dagbag, table, conf, field, capfd
):
    dag_run, tasks = run(dagbag, conf)
    assert dag_run.state == "failed"
    assert tasks["validate_query"].state == "failed"
    assert tasks["run_query"].state == "upstream_failed"
    assert f"Bad parameter {field}:" in capfd.readouterr().out


@pytest.mark.parametrize(
    ("conf", "field"),
    [
        ({"query_by": "account", "account_id": "12345678901"}, "account_id"),
        ({"query_by": "account", "account_id": "1234567890123"}, "account_id"),
        ({"query_by": "channel", "channel_id": "ch; rm -rf /"}, "channel_id"),
        ({"query_by": "channel", "channel_id": "$(whoami)"}, "channel_id"),
        ({"query_by": "sql"}, "query_by"),
        ({"query_by": "event_type", "event_types": ["PANIC"]}, "event_types"),
        ({"query_by": "request", "request_id": "r", "max_items": 0}, "max_items"),
    ],
)
def test_the_form_refuses_bad_values_before_a_run_starts(dagbag, conf, field):
    from airflow.sdk.exceptions import ParamValidationError

    with pytest.raises(ParamValidationError, match=f"param {field}"):
        run(dagbag, conf)

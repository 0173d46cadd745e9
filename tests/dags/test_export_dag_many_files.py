"""An export of 3,000 data files through the DAG (``dag.test()`` against an emulator that writes one
item per data file): the run maps a few dozen flatten tasks, not 3,000 (Airflow's default
``max_map_length`` is 1,024), and every item of the table is published exactly once."""

from __future__ import annotations

import gzip
import json
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from emulatorlib import Emulator

from jit_audit_dev.emulator import WRITE_TIME_HEADER
from jit_audit_dev.seed import ensure_bucket, seed

pytestmark = pytest.mark.e2e

FILES = 3000
CONN_ID = "jit_audit_many_files"
BUCKET = "jit-audit-exports"
PREFIX = "exports"
VARIABLES = {
    "AIRFLOW_VAR_JIT_AUDIT_TABLE": "jit_audit",
    "AIRFLOW_VAR_JIT_AUDIT_EXPORT_BUCKET": BUCKET,
    "AIRFLOW_VAR_JIT_AUDIT_EXPORT_PREFIX": PREFIX,
    "AIRFLOW_VAR_JIT_AUDIT_EXPORT_TIMEOUT_MINUTES": "5",
    "AIRFLOW_VAR_JIT_AUDIT_AWS_CONN_ID": CONN_ID,
}


@pytest.fixture(scope="module")
def one_item_per_file():
    """An emulator of its own: it writes every exported item to a data file of its own."""
    server = Emulator(export_seconds=1, items_per_data_file=1, pitr_lag_seconds=300, pitr_history_days=35)
    yield server
    server.stop()


def yesterday() -> datetime:
    return datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=1)


@pytest.fixture()
def table_of_3000_items(one_item_per_file, dagbag, monkeypatch) -> set[tuple[str, str]]:
    """3,000 items, all written before yesterday's export time (the seeder's events, then fillers
    written, through the emulator's write-time header, two hours before it)."""
    aws = one_item_per_file
    aws.reset()
    for name, value in VARIABLES.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", json.dumps({
        "conn_type": "aws", "login": "testing", "password": "testing",
        "extra": {"endpoint_url": aws.endpoint_url, "region_name": "us-east-1"},
    }))
    dynamodb = aws.resource("dynamodb")
    seeded = seed(dynamodb, "jit_audit", requests=700, end=yesterday()).events  # 2-4 events per request
    assert seeded <= FILES
    written_at = (yesterday() - timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%S.000Z")

    def backdate(request, **_):
        request.headers[WRITE_TIME_HEADER] = "event_time_event_id"  # written at the time it begins with

    dynamodb.meta.client.meta.events.register("before-sign.dynamodb.BatchWriteItem", backdate)
    with dynamodb.Table("jit_audit").batch_writer() as batch:
        for number in range(FILES - seeded):
            batch.put_item(Item={"request_id": f"req-filler-{number:05d}",
                                 "event_time_event_id": f"{written_at}#filler{number:05d}",
                                 "event_type": "REQUESTED", "details": {"number": Decimal(number)}})
    ensure_bucket(aws.client("s3"), BUCKET, prefix=PREFIX, retention_days=400)
    keys = set()
    for page in aws.client("dynamodb").get_paginator("scan").paginate(TableName="jit_audit"):
        keys |= {(item["request_id"]["S"], item["event_time_event_id"]["S"]) for item in page["Items"]}
    assert len(keys) == FILES
    return keys


def test_3000_data_files_flatten_in_a_few_dozen_tasks_and_every_item_is_published_once(
    one_item_per_file, dagbag, table_of_3000_items
):
    from airflow.sdk import conf

    aws = one_item_per_file
    assert conf.getint("core", "max_map_length") == 1024  # Airflow's default, as deployed
    logical_date = yesterday()
    dag_run = dagbag.dags["jit_audit_export"].test(logical_date=logical_date)
    tis = {(ti.task_id, ti.map_index): ti for ti in dag_run.get_task_instances()}
    assert dag_run.state == "success", {key: ti.state for key, ti in tis.items() if ti.state != "success"}

    # The grouping: every data file in exactly one group, in manifest order, a few dozen groups.
    groups = tis[("list_data_files", -1)].xcom_pull(task_ids="list_data_files")
    assert [data_file["index"] for group in groups for data_file in group["files"]] == list(range(FILES))
    flatten = sorted(index for task_id, index in tis if task_id == "flatten_data_files")
    assert flatten == list(range(len(groups)))
    assert 1 < len(groups) <= 256  # jit_audit_flatten_max_tasks' default
    # What the rule asks for, from the files' sizes in S3: ceil((bytes + 4 MiB a file) / 256 MiB).
    s3 = aws.client("s3")
    data_keys = {data_file["key"] for group in groups for data_file in group["files"]}
    folder = next(iter(data_keys)).rsplit("/", 1)[0] + "/"
    sizes = [entry["Size"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=folder)
             for entry in page.get("Contents", []) if entry["Key"] in data_keys]
    assert len(sizes) == FILES
    assert len(groups) == -(-(sum(sizes) + FILES * 4 * 2**20) // (256 * 2**20))
    assert max(len(group["files"]) for group in groups) - min(len(group["files"]) for group in groups) <= 1
    labels = [tis[("flatten_data_files", index)].rendered_map_index for index in flatten]
    assert labels[0] == f"files 1-{len(groups[0]['files'])} of {FILES}" and labels[-1].endswith(f"-{FILES} of {FILES}")

    # The snapshot: one part per data file, every count reconciled, every item exactly once.
    prefix = f"{PREFIX}/jsonl/table=jit_audit/snapshot_date={logical_date.date().isoformat()}/"
    names = [entry["Key"][len(prefix):] for page in s3.get_paginator("list_objects_v2").paginate(
        Bucket=BUCKET, Prefix=prefix) for entry in page.get("Contents", [])]
    assert "_SUCCESS" in names
    manifest = json.loads(s3.get_object(Bucket=BUCKET, Key=prefix + "_manifest.json")["Body"].read())
    assert manifest["counts"] == {"describe_export_item_count": FILES, "manifest_item_count": FILES,
                                  "lines_written": FILES}
    assert [part["key"] for part in manifest["parts"]] == [f"{prefix}part-{index:05d}.jsonl.gz" for index in range(FILES)]
    assert sorted(names) == sorted(["_SUCCESS", "_manifest.json", *(f"part-{index:05d}.jsonl.gz" for index in range(FILES))])

    def lines(key: str) -> list[tuple[str, str]]:
        body = gzip.decompress(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())
        return [(line["request_id"], line["event_time_event_id"]) for line in map(json.loads, body.splitlines())]

    with ThreadPoolExecutor(max_workers=8) as pool:
        published = [line for part in pool.map(lines, [part["key"] for part in manifest["parts"]]) for line in part]
    assert len(published) == len(set(published)) == FILES
    assert set(published) == table_of_3000_items
    assert s3.list_objects_v2(Bucket=BUCKET, Prefix=f"{PREFIX}/jsonl/_staging/")["KeyCount"] == 0

    # The cap: with jit_audit_flatten_max_tasks = 8 the same export takes exactly 8 tasks.
    from jit_audit_airflow.export_tasks import list_data_files

    plan = tis[("plan", -1)].xcom_pull(task_ids="plan", key="return_value")
    capped = list_data_files({**plan, "flatten_max_tasks": 8}, tis[("start_export", -1)].xcom_pull(task_ids="start_export"))
    assert len(capped) == 8
    assert [data_file["index"] for group in capped for data_file in group["files"]] == list(range(FILES))


def test_a_cap_above_max_map_length_fails_the_plan_before_any_aws_call(monkeypatch):
    from jit_audit.settings import SettingsError
    from jit_audit_airflow.settings import plan_snapshot

    moment = datetime(2026, 11, 25, tzinfo=UTC)
    context = {"logical_date": moment, "data_interval_end": moment}
    monkeypatch.setenv("AIRFLOW_VAR_JIT_AUDIT_FLATTEN_MAX_TASKS", "1025")
    with pytest.raises(SettingsError, match=r"jit_audit_flatten_max_tasks \(1025\) is above Airflow's \[core\] "
                                            r"max_map_length \(1024\)"):
        plan_snapshot(context, lambda *_: False)
    monkeypatch.setenv("AIRFLOW__CORE__MAX_MAP_LENGTH", "2048")  # raised first: then allowed
    assert plan_snapshot(context, lambda *_: False)["flatten_max_tasks"] == 1025

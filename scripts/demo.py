"""`make demo`: the whole export on this machine, against the local AWS emulator.

Starts the AWS side of the local stack (jit_audit_dev.stack.Stack: the emulator on a free loopback
port, a seeded jit_audit table and export bucket, a migrated SQLite metadata DB), runs the
jit_audit_export DAG for yesterday with `airflow dags test` (a real task runner, deferral included),
prints what was exported and published, and stops everything it started.
"""

from __future__ import annotations

import gzip
import json
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

from jit_audit_dev.stack import BIN, BUCKET, PREFIX, REPO, TABLE, Stack, StackError

WORK = REPO / ".demo"


def step(text: str) -> None:
    print(f"\n== {text}", flush=True)


def main() -> int:
    shutil.rmtree(WORK, ignore_errors=True)
    stack = Stack(WORK, export_seconds=3, pitr_lag_seconds=60, items_per_data_file=250, seed_requests=300,
                  extra_env={"AIRFLOW__JIT_AUDIT__TASK_RETRIES": "0",
                             # `airflow dags test` fails after a successful run of a DAG with a
                             # deadline in Airflow 3.3.2 (docs/alerts.md): off for the demo.
                             "AIRFLOW__JIT_AUDIT__EXPORT_DEADLINE_MINUTES": "0"},
                  say=step)
    env = stack.env
    endpoint = stack.endpoint_url
    try:
        try:
            stack.start_aws()
        except StackError as error:
            print(f"\n{error}", file=sys.stderr)
            return 1
        import boto3

        aws = {"endpoint_url": endpoint, "region_name": "us-east-1", "aws_access_key_id": "testing",
               "aws_secret_access_key": "testing"}
        dynamodb = boto3.client("dynamodb", **aws)
        seeded = sum(page["Count"] for page in dynamodb.get_paginator("scan").paginate(TableName=TABLE, Select="COUNT"))

        logical_date = (datetime.now(UTC) - timedelta(days=1)).date()
        step(f"running `airflow dags test jit_audit_export {logical_date}` (log: .demo/dag-test.log)")
        started = time.monotonic()
        with open(WORK / "dag-test.log", "wb") as dag_log:
            result = subprocess.run([str(BIN / "airflow"), "dags", "test", "jit_audit_export", str(logical_date)],
                                    env=env, stdout=dag_log, stderr=subprocess.STDOUT)
        print(f"finished in {time.monotonic() - started:.1f} s with exit code {result.returncode}")

        s3 = boto3.client("s3", **aws)
        published = f"{PREFIX}/jsonl/table={TABLE}/snapshot_date={logical_date}/"
        keys = [item["Key"] for item in s3.list_objects_v2(Bucket=BUCKET, Prefix=published).get("Contents", [])]
        if result.returncode != 0 or f"{published}_SUCCESS" not in keys:
            print((WORK / "dag-test.log").read_text()[-4000:])
            print("\nThe DAG run did not publish a snapshot: see .demo/dag-test.log", file=sys.stderr)
            return 1
        manifest = json.loads(s3.get_object(Bucket=BUCKET, Key=f"{published}_manifest.json")["Body"].read())
        counts = manifest["counts"]
        raw = [item["Key"] for item in s3.list_objects_v2(Bucket=BUCKET, Prefix=f"{PREFIX}/raw/").get("Contents", [])]

        step("what the export did")
        print(f"export ARN     {manifest['export_arn']}")
        print(f"export time    {manifest['export_time']}")
        print(f"raw export     {len(raw)} objects under s3://{BUCKET}/{PREFIX}/raw/ "
              f"({sum(1 for key in raw if '/data/' in key)} data files)")
        print(f"counts         seeded {seeded} = DescribeExport {counts['describe_export_item_count']} = "
              f"manifest {counts['manifest_item_count']} = lines written {counts['lines_written']}")
        reconciled = seeded == counts["describe_export_item_count"] == counts["manifest_item_count"] == counts["lines_written"]
        print(f"reconciled     {'yes' if reconciled else 'NO'}")
        step(f"published keys (s3://{BUCKET}/{published})")
        for key in keys:
            print(f"  {key}")
        step("the first lines of part-00000")
        part = gzip.decompress(s3.get_object(Bucket=BUCKET, Key=manifest["parts"][0]["key"])["Body"].read())
        for line in part.splitlines()[:3]:
            print(f"  {line.decode()}")
        step(f"jit-audit verify s3://{BUCKET}/{PREFIX}/ (the publication ledger and every snapshot against it)")
        verified = subprocess.run([str(BIN / "jit-audit"), "verify", f"s3://{BUCKET}/{PREFIX}/", "--endpoint-url",
                                   endpoint, "--region", "us-east-1"], env=env, capture_output=True, text=True)
        for line in verified.stdout.splitlines():
            print(f"  {line}")
        print(verified.stderr, end="", file=sys.stderr)
        return 0 if reconciled and verified.returncode == 0 else 1
    finally:
        stack.stop()
        print("\nstopped the emulator; nothing left running", flush=True)


if __name__ == "__main__":
    sys.exit(main())

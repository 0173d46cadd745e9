"""`make demo`: the whole export on this machine, against the local AWS emulator.

Starts the emulator on a free loopback port, seeds a realistic jit_audit table and an export
bucket, runs the jit_audit_export DAG for yesterday with `airflow dags test` (a real task runner,
deferral included), prints what was exported and published, and stops everything it started.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
WORK = REPO / ".demo"
BUCKET = "jit-audit-exports"
PREFIX = "exports"
TABLE = "jit_audit"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_up(url: str, process: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            urllib.request.urlopen(url, timeout=1)
            return
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the emulator did not start; see {WORK / 'emulator.log'}") from None
            time.sleep(0.2)


def step(text: str) -> None:
    print(f"\n== {text}", flush=True)


def main() -> int:
    shutil.rmtree(WORK, ignore_errors=True)
    (WORK / "airflow").mkdir(parents=True)
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        # Dummy credentials: the emulator accepts any; real ones never belong here.
        "AWS_ACCESS_KEY_ID": "demo",
        "AWS_SECRET_ACCESS_KEY": "demo",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AIRFLOW_HOME": str(WORK / "airflow"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{WORK / 'airflow' / 'airflow.db'}",
        "AIRFLOW_CONN_AWS_DEFAULT": json.dumps(
            {"conn_type": "aws", "extra": {"endpoint_url": endpoint, "region_name": "us-east-1"}}
        ),
        "AIRFLOW__JIT_AUDIT__TASK_RETRIES": "0",
        "AIRFLOW_VAR_JIT_AUDIT_TABLE": TABLE,
        "AIRFLOW_VAR_JIT_AUDIT_EXPORT_BUCKET": BUCKET,
        "AIRFLOW_VAR_JIT_AUDIT_EXPORT_PREFIX": PREFIX,
    }
    env.pop("AWS_PROFILE", None)
    os.environ.update({key: env[key] for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION")})

    step(f"starting the local AWS emulator on {endpoint}")
    with open(WORK / "emulator.log", "wb") as emulator_log:
        emulator = subprocess.Popen(
            [str(BIN / "jit-audit"), "emulator", "--port", str(port), "--export-seconds", "3",
             "--items-per-data-file", "250", "--pitr-lag-seconds", "60"],
            stdout=emulator_log, stderr=subprocess.STDOUT, env=env,
        )
    try:
        wait_until_up(f"{endpoint}/moto-api/", emulator)
        step("seeding the jit_audit table and the export bucket")
        subprocess.run(
            [str(BIN / "jit-audit"), "seed", "--endpoint-url", endpoint, "--table", TABLE, "--requests", "300",
             "--bucket", BUCKET, "--prefix", PREFIX, "--retention-days", "400"],
            check=True, env=env,
        )
        import boto3

        dynamodb = boto3.client("dynamodb", endpoint_url=endpoint)
        seeded = sum(page["Count"] for page in dynamodb.get_paginator("scan").paginate(TableName=TABLE, Select="COUNT"))

        step("migrating the Airflow metadata DB (SQLite)")
        subprocess.run([str(BIN / "airflow"), "db", "migrate"], check=True, env=env,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        logical_date = (datetime.now(UTC) - timedelta(days=1)).date()
        step(f"running `airflow dags test jit_audit_export {logical_date}` (log: .demo/dag-test.log)")
        started = time.monotonic()
        with open(WORK / "dag-test.log", "wb") as dag_log:
            result = subprocess.run([str(BIN / "airflow"), "dags", "test", "jit_audit_export", str(logical_date)],
                                    env=env, stdout=dag_log, stderr=subprocess.STDOUT)
        print(f"finished in {time.monotonic() - started:.1f} s with exit code {result.returncode}")

        s3 = boto3.client("s3", endpoint_url=endpoint)
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
        emulator.terminate()
        try:
            emulator.wait(timeout=10)
        except subprocess.TimeoutExpired:
            emulator.kill()
            emulator.wait()
        print("\nstopped the emulator; nothing left running", flush=True)


if __name__ == "__main__":
    sys.exit(main())

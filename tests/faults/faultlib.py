"""Helpers for tests/faults: emulator faults and request log, DAG runs, task bodies, a killable worker."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import sqlite3
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from jit_audit_dev.emulator import FAULTS_PATH, REQUESTS_PATH
from jit_audit_dev.stack import free_port

REPO = Path(__file__).resolve().parents[2]
TABLE = "jit_audit"
BUCKET = "jit-audit-exports"
PREFIX = "exports"
VARIABLES = {
    "AIRFLOW_VAR_JIT_AUDIT_TABLE": TABLE,
    "AIRFLOW_VAR_JIT_AUDIT_EXPORT_BUCKET": BUCKET,
    "AIRFLOW_VAR_JIT_AUDIT_EXPORT_PREFIX": PREFIX,
    "AIRFLOW_VAR_JIT_AUDIT_EXPORT_TIMEOUT_MINUTES": "5",
}
WEBHOOK_CONN = "AIRFLOW_CONN_JIT_AUDIT_ALERTS_WEBHOOK"


def _alert_tests() -> Any:
    """tests/airflow/test_alerts.py, for its webhook recorder and the DAG processor's comms (reused)."""
    module = sys.modules.get("test_alerts")
    if module is None:
        spec = importlib.util.spec_from_file_location("test_alerts", REPO / "tests" / "airflow" / "test_alerts.py")
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        sys.modules["test_alerts"] = module
        spec.loader.exec_module(module)
    return module


def webhook_server() -> Any:
    """A recording chat webhook (tests/airflow/test_alerts.py's WebhookServer); stop() it after use."""
    return _alert_tests().WebhookServer()


def dag_processor_comms(dag: Any) -> Any:
    return _alert_tests().dag_processor_comms(dag)


# --------------------------------------------------------------------------- the emulator


def _call(url: str, method: str = "GET", payload: Any = None) -> Any:
    data = None if payload is None else json.dumps(payload).encode()
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def inject(aws: Any, **fault: Any) -> dict[str, Any]:
    """POST one fault to the emulator (see docs/faults.md); returns it as the emulator stored it."""
    return _call(aws.endpoint_url + FAULTS_PATH, "POST", fault)["fault"]


def clear_faults(aws: Any) -> None:
    """Forget pending faults and release every held request and export."""
    _call(aws.endpoint_url + FAULTS_PATH, "DELETE")


def requests(aws: Any, service: str | None = None, operation: str | None = None) -> list[dict[str, Any]]:
    query = "&".join(f"{name}={value}" for name, value in (("service", service), ("operation", operation)) if value)
    return _call(aws.endpoint_url + REQUESTS_PATH + (f"?{query}" if query else ""))["requests"]


def wait_until(what: str, check: Callable[[], Any], timeout: float = 30, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def held(aws: Any, operation: str, key_contains: str | None = None) -> dict[str, Any] | None:
    """The request the emulator is holding for ``operation`` (and key), if any."""
    for entry in requests(aws, operation=operation):
        if entry.get("held") and (key_contains is None or key_contains in (entry.get("key") or "")):
            return entry
    return None


def settle(aws: Any, entry: dict[str, Any], timeout: float = 10) -> None:
    """Wait until a released request has been answered (a dead client's request still reaches moto)."""
    wait_until(f"request {entry['seq']} to finish", lambda: any(
        e["seq"] == entry["seq"] and "held" not in e and "status" in e for e in requests(aws)), timeout)


# --------------------------------------------------------------------------- table and bucket


def items_in_table(aws: Any) -> int:
    total = 0
    for page in aws.client("dynamodb").get_paginator("scan").paginate(TableName=TABLE, Select="COUNT"):
        total += page["Count"]
    return total


def export_arns(aws: Any) -> list[str]:
    dynamodb = aws.client("dynamodb")
    arn = dynamodb.describe_table(TableName=TABLE)["Table"]["TableArn"]
    return [summary["ExportArn"] for summary in dynamodb.list_exports(TableArn=arn)["ExportSummaries"]]


def keys(aws: Any, prefix: str) -> list[str]:
    pages = aws.client("s3").get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
    return sorted(item["Key"] for page in pages for item in page.get("Contents", []))


def published_prefix(date: str) -> str:
    return f"{PREFIX}/jsonl/table={TABLE}/snapshot_date={date}/"


def objects(aws: Any, prefix: str) -> dict[str, bytes]:
    s3 = aws.client("s3")
    return {key[len(prefix):]: s3.get_object(Bucket=BUCKET, Key=key)["Body"].read() for key in keys(aws, prefix)}


def verified(aws: Any) -> str:
    """``jit-audit verify s3://<bucket>/<prefix>/`` on everything published: must be OK; returns its summary."""
    from jit_audit.verify import PrefixTarget, kms_public_keys, verify_prefix

    public_key, _ = kms_public_keys(aws.client("kms"))
    report = verify_prefix(aws.client("s3"), PrefixTarget(BUCKET, f"{PREFIX}/"), public_key=public_key)
    assert report.ok, report.render()
    entries = sum(book.entries for book in report.ledgers)
    return f"jit-audit verify OK ({entries} ledger entries, {len(report.partitions)} snapshot(s))"


def sha256s(found: dict[str, bytes]) -> dict[str, str]:
    """SHA-256 of every object: what "the same bytes" is checked against."""
    return {name: hashlib.sha256(body).hexdigest() for name, body in found.items()}


def lines_published(found: dict[str, bytes]) -> int:
    import gzip

    return sum(len(gzip.decompress(body).splitlines()) for name, body in found.items() if name.endswith(".jsonl.gz"))


def day(days_ago: int) -> datetime:
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return today - timedelta(days=days_ago)


# --------------------------------------------------------------------------- DAG runs


def run_dag(dag: Any, logical_date: datetime, *, comms: bool = True) -> tuple[Any, dict[tuple[str, int], Any]]:
    """``dag.test()`` (with the DAG processor's comms, so the alert can read the failed task's error)."""
    if comms:
        with dag_processor_comms(dag):
            dag_run = dag.test(logical_date=logical_date)
    else:
        dag_run = dag.test(logical_date=logical_date)
    return dag_run, {(ti.task_id, ti.map_index): ti for ti in dag_run.get_task_instances()}


@contextmanager
def dag_with_retries(dagbag_cls: Any, retries: int, delay_seconds: int = 1) -> Iterator[Any]:
    """jit_audit_export parsed with task retries (tests/conftest.py sets none): Airflow's config is read
    where DAGs are parsed, so a fresh DagBag with AIRFLOW__JIT_AUDIT__TASK_RETRIES set."""
    names = {"AIRFLOW__JIT_AUDIT__TASK_RETRIES": str(retries),
             "AIRFLOW__JIT_AUDIT__RETRY_DELAY_SECONDS": str(delay_seconds)}
    before = {name: os.environ.get(name) for name in names}
    os.environ.update(names)
    try:
        dag = dagbag_cls(dag_folder=str(REPO / "dags")).dags["jit_audit_export"]
        assert dag.default_args["retries"] == retries
        yield dag
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def recorded_error(dag_run: Any, task_id: str, map_index: int = -1) -> str | None:
    """The one-line error the failed task recorded for the alert (its ``jit_audit_failure`` XCom)."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    from jit_audit_airflow.notifications import FAILURE_XCOM_KEY

    with create_session() as session:
        row = session.scalar(select(XComModel).where(
            XComModel.dag_id == dag_run.dag_id, XComModel.run_id == dag_run.run_id, XComModel.task_id == task_id,
            XComModel.map_index == map_index, XComModel.key == FAILURE_XCOM_KEY))
        if row is None:
            return None
        value = row.value
    value = json.loads(value) if isinstance(value, str | bytes) else value
    return value.get("error") if isinstance(value, dict) else None


def task_state_history(dag_id: str, run_id: str, task_id: str) -> list[str]:
    """Every try's state of a task instance (the metadata DB's task_instance_history + the current try)."""
    database = os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].removeprefix("sqlite:///")
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as connection:
        earlier = [state for (state,) in connection.execute(
            "SELECT state FROM task_instance_history WHERE dag_id=? AND run_id=? AND task_id=? ORDER BY try_number",
            (dag_id, run_id, task_id))]
        current = [state for (state,) in connection.execute(
            "SELECT state FROM task_instance WHERE dag_id=? AND run_id=? AND task_id=?", (dag_id, run_id, task_id))]
    return earlier + current


# --------------------------------------------------------------------------- task bodies, in process or in a worker


def plan_for(logical_date: datetime) -> dict[str, Any]:
    """The plan task's output for a run at ``logical_date`` (what every later task receives)."""
    from jit_audit_airflow.settings import plan_snapshot

    return plan_snapshot({"logical_date": logical_date, "data_interval_end": logical_date}, lambda *_: False)


def export_operator(plan: dict[str, Any]) -> Any:
    from jit_audit_airflow.operators.dynamodb import DynamoDBPointInTimeExportOperator

    return DynamoDBPointInTimeExportOperator(
        task_id="start_export", table_name=plan["table"], export_time=plan["export_time"], s3_bucket=plan["bucket"],
        s3_prefix=plan["raw_prefix"], aws_conn_id=plan["aws_conn_id"],
    )


def wait_for_export(plan: dict[str, Any], export_arn: str, timeout: float = 30) -> None:
    """The sensor in poke mode (what the trigger does on the triggerer), until COMPLETED."""
    from jit_audit_airflow.sensors.dynamodb import DynamoDBExportSensor

    sensor = DynamoDBExportSensor(task_id="wait_for_export", export_arn=export_arn, aws_conn_id=plan["aws_conn_id"])
    wait_until(f"export {export_arn} to complete", lambda: sensor.poke({}), timeout, interval=0.2)


WORKER = Path(__file__).with_name("worker.py")


class Worker:
    """A task body in its own process (a worker), which the test can SIGKILL at a chosen moment.

    Its stdout carries one JSON document per finished unit of work (XCom's stand-in).
    """

    def __init__(self, step: str, **arguments: Any) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(WORKER), step, json.dumps(arguments)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=os.environ.copy(),
        )

    def kill(self) -> tuple[list[Any], str]:
        """SIGKILL (no cleanup, no callback: a worker lost with its machine); returns what it had output."""
        self.process.kill()
        out, err = self.process.communicate(timeout=30)
        assert self.process.returncode == -9, (self.process.returncode, err.decode()[-2000:])
        return [json.loads(line) for line in out.decode().splitlines() if line.startswith("{")], err.decode()

    def alive(self) -> bool:
        return self.process.poll() is None

    def stderr_tail(self) -> str:
        if self.alive():
            return "(still running)"
        return (self.process.stderr.read() or b"").decode()[-3000:]  # type: ignore[union-attr]


def until_held(aws: Any, worker: Worker, operation: str, key_contains: str | None = None,
               timeout: float = 60) -> dict[str, Any]:
    """Wait until the emulator holds ``worker``'s request (the worker is then caught mid-operation)."""
    def check() -> dict[str, Any] | None:
        if not worker.alive():
            raise AssertionError(f"the worker ended before its {operation} was held:\n{worker.stderr_tail()}")
        return held(aws, operation, key_contains)

    return wait_until(f"a held {operation}", check, timeout)


# --------------------------------------------------------------------------- an outage


class OutageProxy:
    """A loopback port in front of the emulator: nothing listens (connection refused) until
    ``restore()``, after which it forwards every connection to the emulator byte for byte."""

    def __init__(self, target_port: int) -> None:
        self.port = free_port()
        self.target_port = target_port
        self.endpoint_url = f"http://127.0.0.1:{self.port}"
        self._server: Any = None

    def restore(self) -> None:
        import socket
        import threading

        self._server = socket.create_server(("127.0.0.1", self.port))

        def pump(source: Any, target: Any) -> None:
            try:
                while data := source.recv(65536):
                    target.sendall(data)
            except OSError:
                pass
            finally:
                for sock in (source, target):
                    try:
                        sock.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass

        def serve() -> None:
            while True:
                try:
                    client, _ = self._server.accept()
                except OSError:
                    return
                upstream = socket.create_connection(("127.0.0.1", self.target_port))
                for source, target in ((client, upstream), (upstream, client)):
                    threading.Thread(target=pump, args=(source, target), daemon=True).start()

        threading.Thread(target=serve, daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.close()

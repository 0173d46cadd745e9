"""Helpers for tests/live: the local stack (jit_audit_dev.stack, shared with `make up` and `make demo`), a
webhook recorder, waits and S3 reads."""

from __future__ import annotations

import gzip
import json
import re
import shutil
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from emulatorlib import emulator_client

from jit_audit_dev.stack import BUCKET, PREFIX, TABLE, Stack

#: Re-exported for the tests (with the helpers below).
__all__ = ["ARTIFACTS", "BUCKET", "PREFIX", "REPO", "TABLE", "Stack"]

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts"


def aws_clients(stack: Stack) -> Callable[[str], Any]:
    """``aws("s3")``: boto3 clients of the stack's emulator."""
    return lambda service: emulator_client(stack.endpoint_url, service)


def table_items(aws: Callable[[str], Any]) -> list[dict[str, Any]]:
    """Every item of the seeded table, as DynamoDB returns them (at least one)."""
    items: list[dict[str, Any]] = []
    for page in aws("dynamodb").get_paginator("scan").paginate(TableName=TABLE):
        items += page["Items"]
    assert items
    return items


def keep_logs(stack: Stack, target: Path) -> None:
    """Copy the stack's component and task logs to ``target`` (CI keeps test-artifacts/)."""
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True, exist_ok=True)
    if stack.logs.exists():
        shutil.copytree(stack.logs, target / "components", dirs_exist_ok=True)
    if (stack.home / "logs").exists():
        shutil.copytree(stack.home / "logs", target / "airflow", dirs_exist_ok=True)




def wait_for(what: str, check: Callable[[], Any], timeout: float, interval: float = 1.0) -> Any:
    """Call ``check`` until it returns something truthy; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


class Webhook:
    """An HTTP server on 127.0.0.1 that records every request it gets (the alerts' chat webhook)."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        received = self.requests
        lock = self.lock

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with lock:
                    received.append({"method": "POST", "path": self.path, "headers": dict(self.headers),
                                     "body": body.decode(errors="replace")})
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/hooks/test"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def received(self) -> list[dict[str, Any]]:
        with self.lock:
            return list(self.requests)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def s3_keys(aws: Callable[[str], Any], prefix: str) -> list[str]:
    pages = aws("s3").get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
    return [item["Key"] for page in pages for item in page.get("Contents", [])]


def s3_json(aws: Callable[[str], Any], key: str) -> Any:
    return json.loads(aws("s3").get_object(Bucket=BUCKET, Key=key)["Body"].read())


def post(stack: Any, path: str, body: dict[str, Any], tries: int = 10) -> Any:
    """POST to the REST API, again after a 503: on SQLite the API server refuses to create a
    backfill while the scheduler holds the database ("Database is locked. Backfill creation is not
    supported on SQLite under concurrent access"); a person in the UI would just try again."""
    for attempt in range(1, tries + 1):
        answer = stack.api("POST", path, body, allow=(503,))
        if answer is not None:
            return answer
        print(f"POST {path} -> 503 (SQLite busy), try {attempt} of {tries}", flush=True)
        time.sleep(2)
    pytest.fail(f"POST {path} answered 503 {tries} times")


def run_state(stack: Any, dag_id: str, run_id: str) -> str:
    return stack.api("GET", f"/api/v2/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}")["state"]


def wait_for_run(stack: Any, dag_id: str, run_id: str, timeout: float = 180) -> str:
    """Wait until the run finishes; returns its final state (success or failed)."""
    return wait_for(f"{dag_id} run {run_id} to finish",
                    lambda: (state := run_state(stack, dag_id, run_id)) in ("success", "failed") and state,
                    timeout)


def task_states(stack: Any, dag_id: str, run_id: str) -> dict[tuple[str, int], str]:
    body = stack.api("GET", f"/api/v2/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}/taskInstances?limit=200")
    return {(ti["task_id"], ti["map_index"]): ti["state"] for ti in body["task_instances"]}


def api_path(*parts: str) -> str:
    """An /api/v2 path with each part quoted (run ids hold ':' and '+')."""
    return "/api/v2/" + "/".join(quote(part, safe="") for part in parts)


def iso_millis(moment: datetime) -> str:
    """The table's time format (and the UI's): ``YYYY-MM-DDTHH:MM:SS.mmmZ``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def attr(item: dict[str, Any], name: str) -> str | None:
    return item.get(name, {}).get("S")


def in_snapshot(items: list[dict[str, Any]], day: Any) -> int:
    """How many of the table's items a snapshot of ``day`` holds: the export time is the date's
    midnight (UTC), and the emulator's exports hold the table as it was then (each seeded item was
    written at its event time, the start of its sort key)."""
    cutoff = f"{day}T00:00:00.000Z"
    return sum(1 for item in items if (attr(item, "event_time_event_id") or "")[:24] <= cutoff)


def busiest_account(items: list[dict[str, Any]]) -> str:
    """The seeded account with the most events: an ad-hoc query on it returns plenty."""
    counts: dict[str, int] = {}
    for item in items:
        if account := attr(item, "account_id"):
            counts[account] = counts.get(account, 0) + 1
    return max(counts, key=lambda account: (counts[account], account))


def expected_account_events(items: list[dict[str, Any]], account_id: str, start: str, end: str,
                            event_types: list[str]) -> set[tuple[str, str]]:
    """What an account query over [start, end) for ``event_types`` must return, from a plain Scan."""
    return {
        (attr(item, "request_id") or "", attr(item, "event_time_event_id") or "")
        for item in items
        if attr(item, "account_id") == account_id
        and start <= (attr(item, "event_time_event_id") or "")[:24] < end
        and (not event_types or attr(item, "event_type") in event_types)
    }


def adhoc_prefix(run_id: str) -> str:
    """``<prefix>/adhoc/<run id>/`` with the run id made key-safe (':' and '+' become '-')."""
    return f"{PREFIX}/adhoc/{re.sub(r'[^A-Za-z0-9._-]+', '-', run_id).strip('-')}/"


def adhoc_results(aws: Callable[[str], Any], run_id: str) -> tuple[dict[str, Any], set[tuple[str, str]]]:
    """The published ad-hoc output of a run: its ``_manifest.json`` and the events in its parts."""
    prefix = adhoc_prefix(run_id)
    keys = s3_keys(aws, prefix)
    assert prefix + "_SUCCESS" in keys, keys
    manifest = s3_json(aws, prefix + "_manifest.json")
    found: set[tuple[str, str]] = set()
    lines = 0
    for key in keys:
        if key.endswith(".jsonl.gz"):
            body = gzip.decompress(aws("s3").get_object(Bucket=BUCKET, Key=key)["Body"].read())
            for line in body.splitlines():
                record = json.loads(line)
                found.add((record["request_id"], record["event_time_event_id"]))
                lines += 1
    assert lines == len(found) == manifest["counts"]["items"], (lines, len(found), manifest["counts"])
    return manifest, found

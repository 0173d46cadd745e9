"""`make bench`, the DAG row: an export of 2,000,000 items in 200 data files through the whole
jit_audit_export DAG on the LocalExecutor stack, next to `jit-audit flatten` on the same files.

1. The local stack (``jit_audit_dev.stack.Stack``, the one of ``make up`` and the live tests): the
   emulator (10,000 items per data file) and Airflow's API server, scheduler (LocalExecutor,
   ``--parallelism`` slots: 2 on a 2-core machine), triggerer and DAG processor on SQLite, with an
   empty ``jit_audit`` table and the export bucket. The export deadline is off and tasks are not
   retried (a failure shows at once); the flatten grouping is the default (no Variables set).
2. ``--items`` items bulk-loaded into the table (``POST /jit-audit-emulator/bulk-load``,
   docs/emulator.md), each written at its event time, all before the start of yesterday (UTC).
3. The DAG is unpaused: the scheduler starts today's daily run, which exports the table as of
   today's 00:00 UTC (every loaded item) and runs its real path, start_export -> wait_for_export
   (deferred) -> list_data_files -> flatten_data_files (mapped) -> publish_snapshot.
4. The DAG path: from the sensor's DescribeExport that saw the export COMPLETED (the trigger's last
   poll before ``wait_for_export`` ended, from the emulator's request log) to ``_SUCCESS`` reaching
   S3 (the request log again: when its PutObject arrived; checked against the object's
   LastModified, which S3 gives in whole seconds), with every step between from the task
   instances' start and end (REST API). The wait before that poll (DescribeExport's ``EndTime`` ->
   the poll; up to the sensor's 30 s poke interval) is shown, not counted (docs/benchmarks.md).
5. The raw figure: the same data files, downloaded from the emulator's S3, each flattened by
   ``jit-audit flatten --gzip`` in its own process, as the runbook flattens a file; the sum of the
   processes' CPU (kernel accounting, wait4). Each output must be byte-identical to the part the DAG
   published for that file. For context, also the share of that sum that is interpreter start-up,
   and one process flattening all the files at once.

Target: the DAG path within 2x the raw CPU sum. The stack and every process it started are stopped
at the end, whatever happened (Ctrl-C and SIGTERM included), and none may be left.

    .venv/bin/python scripts/bench_dag.py [--items 2000000] [--items-per-file 10000] [--parallelism 2]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench import NO_SPEEDUPS_ENV, measure  # noqa: E402

from jit_audit_dev.emulator import BULK_LOAD_PATH, REQUESTS_PATH  # noqa: E402
from jit_audit_dev.stack import BUCKET, TABLE, Stack  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
JIT_AUDIT = Path(PYTHON).parent / "jit-audit"
DAG_ID = "jit_audit_export"
TARGET = 2.0
STARTUP_RUNS = 5

# Downloads an export's data files (manifest order) and the snapshot's parts; prints what it fetched.
# In its own process, so this one imports no boto3.
DOWNLOAD = """import json, sys
from pathlib import Path

import boto3

endpoint, bucket, manifest_key, published_manifest_key, target = sys.argv[1:6]
s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                  aws_access_key_id="testing", aws_secret_access_key="testing")
summary = json.loads(s3.get_object(Bucket=bucket, Key=manifest_key)["Body"].read())
entries = [json.loads(line) for line in
           s3.get_object(Bucket=bucket, Key=summary["manifestFilesS3Key"])["Body"].read().splitlines()]
published = json.loads(s3.get_object(Bucket=bucket, Key=published_manifest_key)["Body"].read())
files = []
for number, entry in enumerate(entries):
    path = Path(target) / f"{number:05d}.json.gz"
    s3.download_file(bucket, entry["dataFileS3Key"], str(path))
    files.append({"path": str(path), "items": entry["itemCount"], "bytes": path.stat().st_size})
print(json.dumps({"files": files, "parts": published["parts"], "counts": published["counts"]}))
"""

# sha256 of each file and its lines once decompressed (the raw outputs).
DIGESTS = """import hashlib, json, sys
from jit_audit.codecs import gzip_reader

result = []
for name in sys.argv[1:]:
    with open(name, "rb") as raw:
        digest = hashlib.sha256(raw.read()).hexdigest()
    lines = 0
    with open(name, "rb") as raw, gzip_reader(raw) as source:
        while chunk := source.read(1 << 20):
            lines += chunk.count(b"\\n")
    result.append({"sha256": digest, "lines": lines})
print(json.dumps(result))
"""


def say(text: str) -> None:
    print(f"  [dag] {text}", flush=True)


def helper(*argv: str) -> Any:
    done = subprocess.run([PYTHON, *argv], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"helper failed with exit code {done.returncode}:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout)


def moment(text: str | None) -> datetime:
    """An aware datetime from the REST API's or the emulator's ISO 8601 text."""
    if not text:
        raise SystemExit("a timestamp is missing")
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def emulator_call(stack: Stack, path: str, body: Any = None, timeout: float = 600) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(stack.endpoint_url + path, data=data, method="GET" if data is None else "POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read())


def run_path(*parts: str) -> str:
    return "/api/v2/" + "/".join(quote(part, safe="") for part in parts)


def wait_for_the_run(stack: Stack, timeout: float) -> dict[str, Any]:
    """The run the scheduler starts once the DAG is unpaused (today's), followed until it ends."""
    deadline = time.monotonic() + timeout
    run: dict[str, Any] | None = None
    last_report = 0.0
    while time.monotonic() < deadline:
        stack.check_alive()
        runs = stack.api("GET", run_path("dags", DAG_ID, "dagRuns"))["dag_runs"]
        if len(runs) > 1:
            raise SystemExit(f"expected one run of {DAG_ID}, found {[r['dag_run_id'] for r in runs]}")
        run = runs[0] if runs else None
        if run and run["state"] in ("success", "failed"):
            return run
        if run and time.monotonic() - last_report > 30:
            states: dict[str, int] = {}
            for ti in task_instances(stack, run["dag_run_id"]):
                label = f"{ti['task_id']}={ti['state']}"
                states[label] = states.get(label, 0) + 1
            say(f"run {run['dag_run_id']}: {', '.join(f'{k} x{v}' if v > 1 else k for k, v in states.items())}")
            last_report = time.monotonic()
        time.sleep(2)
    raise SystemExit(f"{DAG_ID} did not finish within {timeout:.0f} s (run: {run})")


def task_instances(stack: Stack, run_id: str) -> list[dict[str, Any]]:
    body = stack.api("GET", run_path("dags", DAG_ID, "dagRuns", run_id, "taskInstances") + "?limit=1000")
    return list(body["task_instances"])


def xcom(stack: Stack, run_id: str, task_id: str) -> Any:
    entry = stack.api("GET", run_path("dags", DAG_ID, "dagRuns", run_id, "taskInstances", task_id, "xcomEntries",
                                      "return_value") + "?deserialize=true")
    value = entry["value"]
    return json.loads(value) if isinstance(value, str) and value[:1] in "[{\"" else value


def describe_export(stack: Stack, export_arn: str) -> dict[str, Any]:
    """DescribeExport by hand (this process imports no boto3): the emulator answers unsigned requests."""
    request = urllib.request.Request(
        stack.endpoint_url, data=json.dumps({"ExportArn": export_arn}).encode(), method="POST",
        headers={"Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": "DynamoDB_20120810.DescribeExport",
                 "Authorization": _authorization("dynamodb")})
    with urllib.request.urlopen(request, timeout=30) as response:
        return dict(json.loads(response.read())["ExportDescription"])


def _authorization(service: str) -> str:
    """An Authorization header naming the emulator's dummy key and ``service`` (it checks no signature)."""
    return (f"AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/{service}/aws4_request, "
            "SignedHeaders=host, Signature=0")


def success_written(stack: Stack, key: str) -> tuple[datetime, datetime]:
    """When the ``_SUCCESS`` PutObject reached the emulator (request log), and its LastModified."""
    log = emulator_call(stack, f"{REQUESTS_PATH}?service=s3&operation=PutObject")["requests"]
    puts = [entry for entry in log if entry.get("key") == key and entry.get("status") == 200]
    if len(puts) != 1:
        raise SystemExit(f"expected one PutObject of {key} in the emulator's request log, found {puts}")
    request = urllib.request.Request(f"{stack.endpoint_url}/{BUCKET}/{quote(key)}", method="HEAD",
                                     headers={"Authorization": _authorization("s3")})
    with urllib.request.urlopen(request, timeout=30) as response:
        last_modified = datetime.strptime(response.headers["Last-Modified"], "%a, %d %b %Y %H:%M:%S GMT")
    return moment(puts[0]["time"]), last_modified.replace(tzinfo=UTC)


def run_dag(stack: Stack, items: int, timeout: float) -> dict[str, Any]:
    """Load, run the DAG, and read every timestamp of the run from where it is recorded."""
    say(f"bulk-loading {items:,} items into {TABLE} (each written at its event time, all before yesterday)")
    loaded = emulator_call(stack, BULK_LOAD_PATH, {"table": TABLE, "items": items, "seed": 1, "days": 30})
    say(f"loaded {loaded['items']:,} items ({loaded['bytes'] / 1e6:,.0f} MB of export lines) in "
        f"{loaded['seconds']:.1f} s, written {loaded['first_write'][:10]} to {loaded['last_write'][:10]}")
    stack.api("PATCH", run_path("dags", DAG_ID), {"is_paused": False})
    say(f"{DAG_ID} unpaused: the scheduler starts today's run (export time today 00:00 UTC)")
    started = time.monotonic()
    run = wait_for_the_run(stack, timeout)
    run_id = run["dag_run_id"]
    tis = task_instances(stack, run_id)
    if run["state"] != "success":
        raise SystemExit(f"run {run_id} {run['state']}: "
                         f"{sorted((ti['task_id'], ti['map_index'], ti['state']) for ti in tis)}; logs in {stack.home}")
    say(f"run {run_id} succeeded after {time.monotonic() - started:.0f} s")
    by_task: dict[str, list[dict[str, Any]]] = {}
    for ti in tis:
        by_task.setdefault(ti["task_id"], []).append(ti)
    (sensor,) = by_task["wait_for_export"]
    (listing,) = by_task["list_data_files"]
    (publish,) = by_task["publish_snapshot"]
    flatten = sorted(by_task["flatten_data_files"], key=lambda ti: ti["map_index"])
    export_arn = xcom(stack, run_id, "start_export")
    published = xcom(stack, run_id, "publish_snapshot")
    export = describe_export(stack, export_arn)
    success_arrived, success_modified = success_written(stack, published["success_key"])
    if abs((success_arrived.replace(microsecond=0) - success_modified).total_seconds()) > 1:
        raise SystemExit(f"_SUCCESS: request log {success_arrived}, LastModified {success_modified}: disagree")
    end_time = export["EndTime"]  # epoch seconds in DynamoDB's JSON
    export_end = datetime.fromtimestamp(end_time, UTC) if isinstance(end_time, int | float) else moment(end_time)
    sensor_end = moment(sensor["end_date"])
    # The trigger's last DescribeExport before the sensor ended is the one that saw COMPLETED: it stops
    # polling then, and the resumed sensor only reads the trigger's event (the tasks after it call
    # DescribeExport again, later).
    polls = [moment(entry["time"]) for entry in
             emulator_call(stack, f"{REQUESTS_PATH}?service=dynamodb&operation=DescribeExport")["requests"]]
    seen = max((poll for poll in polls if poll < sensor_end), default=None)
    if seen is None or seen < export_end:
        raise SystemExit(f"no DescribeExport between the export's end {export_end} and the sensor's {sensor_end}")
    return {
        "run_id": run_id, "export": export, "published": published, "loaded": loaded,
        "export_end": export_end,
        "completed_seen": seen,
        "sensor_end": sensor_end,
        "list": (moment(listing["start_date"]), moment(listing["end_date"])),
        "flatten": [(ti["rendered_map_index"] or str(ti["map_index"]), moment(ti["start_date"]), moment(ti["end_date"]))
                    for ti in flatten],
        "publish": (moment(publish["start_date"]), moment(publish["end_date"])),
        "success": success_arrived, "success_last_modified": success_modified,
    }


def flatten_raw(stack: Stack, figures: dict[str, Any], work: Path) -> dict[str, Any]:
    """The same data files through ``jit-audit flatten --gzip``, one process each, then in one process."""
    data, out = work / "data", work / "raw"
    data.mkdir(parents=True, exist_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    published = figures["published"]
    fetched = helper("-c", DOWNLOAD, stack.endpoint_url, BUCKET, figures["export"]["ExportManifest"],
                     published["manifest_key"], str(data))
    files = fetched["files"]
    say(f"downloaded {len(files)} data files ({sum(f['bytes'] for f in files) / 1e6:,.0f} MB gzipped); "
        f"flattening each in its own process")
    cpu = wall = 0.0
    outputs = []
    for file in files:
        output = out / (Path(file["path"]).name.replace(".json.gz", ".jsonl.gz"))
        run = measure([str(JIT_AUDIT), "flatten", "--gzip"], stdin=Path(file["path"]), stdout=output)
        cpu += run["cpu"]
        wall += run["wall"]
        outputs.append(output)
    digests = helper("-c", DIGESTS, *map(str, outputs))
    parts = sorted(published_parts(fetched["parts"]), key=lambda part: part["index"])
    identical = len(parts) == len(digests) and all(
        part["sha256"] == digest["sha256"] for part, digest in zip(parts, digests, strict=False))
    empty = work / "empty.json"
    empty.write_bytes(b"")
    startup = statistics.median(measure([str(JIT_AUDIT), "flatten", "--gzip"], stdin=empty, stdout=work / "empty.out")["cpu"]
                                for _ in range(STARTUP_RUNS))
    together = work / "all.json.gz"  # gzip members one after another: still one gzip stream
    with open(together, "wb") as sink:
        for file in files:
            with open(file["path"], "rb") as source:
                shutil.copyfileobj(source, sink)
    one = measure([str(JIT_AUDIT), "flatten", "--gzip"], stdin=together, stdout=work / "all.jsonl.gz")
    one_lines = helper("-c", DIGESTS, str(work / "all.jsonl.gz"))[0]["lines"]
    return {"files": files, "cpu": cpu, "wall": wall, "lines": sum(d["lines"] for d in digests),
            "identical": identical, "startup": startup, "one_cpu": one["cpu"], "one_wall": one["wall"],
            "one_lines": one_lines, "counts": fetched["counts"]}


def published_parts(parts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The snapshot manifest's parts, each with the position of its data file (part-00000 ...)."""
    result = []
    for part in parts:
        name = part["key"].rsplit("/", 1)[-1]
        result.append({**part, "index": int(name.split("-")[1].split(".")[0])})
    return result


def seconds(start: datetime, end: datetime) -> float:
    return (end - start).total_seconds()


def print_row(items: int, parallelism: int, dag: dict[str, Any], raw: dict[str, Any]) -> bool:
    files = raw["files"]
    flatten = dag["flatten"]
    first_flatten = min(start for _, start, _ in flatten)
    last_flatten = max(end for _, _, end in flatten)
    dag_path = seconds(dag["completed_seen"], dag["success"])
    size = sum(file["bytes"] for file in files) / 1e6
    print(f"\nThe DAG path: {items:,} items in {len(files)} data files ({size:,.0f} MB gzipped), {DAG_ID} on the "
          f"LocalExecutor stack (SQLite, parallelism {parallelism}), {len(flatten)} mapped flatten task(s):\n")
    rows = [
        ("export COMPLETED (EndTime) -> the sensor's poll that saw it [not counted]",
         seconds(dag["export_end"], dag["completed_seen"])),
        ("that poll -> wait_for_export done (trigger event, sensor resumed)",
         seconds(dag["completed_seen"], dag["sensor_end"])),
        ("wait_for_export done -> list_data_files done", seconds(dag["sensor_end"], dag["list"][1])),
        ("list_data_files done -> first flatten task starts", seconds(dag["list"][1], first_flatten)),
        (f"flatten_data_files, {len(flatten)} task(s): first start -> last end", seconds(first_flatten, last_flatten)),
        ("last flatten task ends -> publish_snapshot starts", seconds(last_flatten, dag["publish"][0])),
        ("publish_snapshot starts -> _SUCCESS written", seconds(dag["publish"][0], dag["success"])),
        ("DAG path: the poll that saw COMPLETED -> _SUCCESS written", dag_path),
    ]
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"  {name:<{width}} {value:>8.2f} s")
    running = sum(seconds(start, end) for _, start, end in flatten)
    print(f"\n  flatten tasks ({running:.1f} s running in all): "
          + "; ".join(f"{label} {seconds(start, end):.1f} s" for label, start, end in flatten))
    share = raw["startup"] * len(files)
    print(f"\n  jit-audit flatten --gzip, one process per data file ({len(files)}): {raw['cpu']:.2f} s CPU in all "
          f"({raw['wall']:.2f} s wall one after another), of which about {share:.1f} s is start-up "
          f"({raw['startup']:.3f} s CPU for an empty input, median of {STARTUP_RUNS})")
    # The target compares with flattening the same files in one process: the work itself, without
    # paying interpreter start-up per file (which the one-process-per-file sum is mostly made of).
    ratio = dag_path / raw["one_cpu"]
    from_end = seconds(dag["export_end"], dag["success"])
    print(f"  jit-audit flatten --gzip, one process on all {len(files)} files: {raw['one_cpu']:.2f} s CPU "
          f"({raw['one_wall']:.2f} s wall)")
    print(f"  for context: from EndTime (the sensor's polling included) {from_end:.2f} s; the DAG path is "
          f"{dag_path / raw['cpu']:.2f}x the one-process-per-file CPU sum")
    counts = raw["counts"]
    checks = [
        (f"the export held {dag['export']['ItemCount']:,} items in {len(files)} data files",
         dag["export"]["ItemCount"] == items == sum(file["items"] for file in files)),
        (f"the snapshot: DescribeExport {counts['describe_export_item_count']:,} = manifest "
         f"{counts['manifest_item_count']:,} = lines {counts['lines_written']:,}",
         counts["describe_export_item_count"] == counts["manifest_item_count"] == counts["lines_written"] == items),
        (f"jit-audit flatten wrote {raw['lines']:,} lines, each file byte-identical to the DAG's part for it",
         raw["lines"] == items and raw["identical"]),
        (f"one process on all files wrote {raw['one_lines']:,} lines", raw["one_lines"] == items),
    ]
    print()
    for text, ok in checks:
        print(f"  {'PASS' if ok else 'FAIL'}  {text}")
    met = ratio <= TARGET
    print(f"  {'PASS' if met else 'MISS'}  DAG path {dag_path:.2f} s = {ratio:.2f}x the raw flatten CPU "
          f"{raw['one_cpu']:.2f} s of one process on the same files (target <= {TARGET:g}x)")
    return met and all(ok for _, ok in checks)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=2_000_000, help="items in the export (default 2,000,000)")
    parser.add_argument("--items-per-file", type=int, default=10_000, help="items per export data file")
    parser.add_argument("--parallelism", type=int, default=2,
                        help="[core] parallelism, the LocalExecutor's task slots (default 2: one per core here)")
    parser.add_argument("--timeout", type=float, default=1200, help="seconds the DAG run may take")
    parser.add_argument("--workdir", type=Path, default=REPO / ".bench" / "dag",
                        help="the stack's AIRFLOW_HOME, logs and the downloaded files (emptied first)")
    args = parser.parse_args(argv)
    if args.items < 1 or args.items_per_file < 1 or args.parallelism < 1:
        parser.error("--items, --items-per-file and --parallelism must be at least 1")
    began = time.monotonic()
    # Both sides flatten on the C fast path, and nothing on loopback goes through a proxy.
    os.environ.pop(NO_SPEEDUPS_ENV, None)
    for name in ("NO_PROXY", "no_proxy"):
        os.environ[name] = ",".join(filter(None, (os.environ.get(name), "127.0.0.1", "localhost")))
    shutil.rmtree(args.workdir, ignore_errors=True)
    args.workdir.mkdir(parents=True)
    stack = Stack(
        args.workdir / "stack",
        export_seconds=2,
        pitr_lag_seconds=5,
        items_per_data_file=args.items_per_file,
        seed_requests=0,
        extra_env={
            "AIRFLOW__CORE__PARALLELISM": str(args.parallelism),
            "AIRFLOW__JIT_AUDIT__EXPORT_DEADLINE_MINUTES": "0",
            "AIRFLOW__JIT_AUDIT__TASK_RETRIES": "0",
        },
        say=say,
    )

    def interrupted(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupted)
    phases: dict[str, float] = {}
    ok = False
    try:
        mark = time.monotonic()
        stack.start(timeout=300)
        phases["stack start"] = time.monotonic() - mark
        mark = time.monotonic()
        dag = run_dag(stack, args.items, args.timeout)
        phases["load and DAG run"] = time.monotonic() - mark
        mark = time.monotonic()
        raw = flatten_raw(stack, dag, args.workdir)
        phases["download and raw flatten"] = time.monotonic() - mark
    except KeyboardInterrupt:
        print("\n  [dag] interrupted", flush=True)
        return 130
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the cleanup short
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        mark = time.monotonic()
        stack.stop()
        left = _leftovers(stack)
        phases["stack stop"] = time.monotonic() - mark
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, previous)
        say(f"stopped the stack: {len(left)} of its processes left" + (f" ({left})" if left else ""))
    ok = print_row(args.items, args.parallelism, dag, raw) and not left
    shutil.rmtree(args.workdir / "data", ignore_errors=True)
    shutil.rmtree(args.workdir / "raw", ignore_errors=True)
    for name in ("all.json.gz", "all.jsonl.gz", "empty.json", "empty.out"):
        (args.workdir / name).unlink(missing_ok=True)
    total = time.monotonic() - began
    print(f"\n  DAG row: {total:.0f} s in all (" + ", ".join(f"{name} {value:.0f} s" for name, value in phases.items())
          + f"); the stack's logs stay in {(args.workdir / 'stack').relative_to(REPO) if args.workdir.is_relative_to(REPO) else args.workdir}")
    return 0 if ok else 1


def _leftovers(stack: Stack, wait: float = 5) -> list[str]:
    """Processes of the stack still alive after ``wait`` seconds at most: every process it starts,
    and every child of one, runs in its workdir or with its AIRFLOW_HOME (killed ones may linger a
    moment as zombies until they are reaped)."""
    home = f"AIRFLOW_HOME={stack.home}".encode()
    deadline = time.monotonic() + wait
    while True:
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) == os.getpid():
                continue
            try:
                cwd = os.readlink(entry / "cwd")
                ours = Path(cwd).is_relative_to(stack.workdir) or home in (entry / "environ").read_bytes().split(b"\0")
                zombie = (entry / "stat").read_text().rpartition(")")[2].split()[0] == "Z"
                command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")[:80]
            except OSError:  # gone meanwhile, or not ours to read
                continue
            if ours and not zombie:
                found.append(f"{entry.name} {command}")
        if not found or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


if __name__ == "__main__":
    sys.exit(main())

"""`make bench`, second table: exporting one event type by Scan, the runbook's loop against ours.

A fresh emulator (``jit-audit-dev emulator`` on a free loopback port) is seeded with ``--items``
realistic items (30,000 by default). Then each client exports the ERROR events from it:

1. the runbook's Method 4 loop (``RUNBOOK_LOOP``): one Scan with the runbook's filter, page after
   page through ``LastEvaluatedKey``, each item printed as DynamoDB JSON (what its ``jq -c
   '.Items[]'`` prints), with a boto3 client in its own process. (The runbook runs it as a bash loop
   around the ``aws`` CLI; the aws CLI is not installed here, so the loop's requests and output are
   reproduced with the same botocore the CLI uses, which makes the runbook's side cheaper, not dearer.)
2. ``jit-audit scan --event-type ERROR`` (flattened JSON Lines on stdout; a parallel scan, 4
   segments by default);
3. the same with ``--segments 1``: what the parallel segments buy.

The emulator's own work is the same for all, so what is compared is what the client pays: the CPU
(user + system) of the client's process tree, from the kernel (wait4), and the wall clock; each
figure is the median of ``--repeats`` runs, run alternately. The result sets are compared: each
line the runbook prints (DynamoDB JSON) goes through our flattener and every side is compared as
sorted, canonically dumped JSON (a multiset: duplicates count). Checks: equal result sets and every
seeded ERROR item found. No speed target: the figures are a record, side by side.

    .venv/bin/python scripts/bench_scan.py [--items 30000] [--repeats 3] [--segments N]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
BIN = Path(PYTHON).parent
JIT_AUDIT = BIN / "jit-audit"
JIT_AUDIT_DEV = BIN / "jit-audit-dev"
TABLE = "jit_audit"  # the runbook's loop names it
EVENT_TYPE = "ERROR"
REGION = "us-east-1"
RUNBOOK = "runbook Method 4: Scan loop, DynamoDB JSON"
OURS = f"jit-audit scan --event-type {EVENT_TYPE}"
OURS_SERIAL = f"{OURS} --segments 1"
KINDS = ((RUNBOOK, "runbook"), (OURS, "ours"), (OURS_SERIAL, "ours_serial"))

# The runbook's Method 4 loop: its Scan request, its pagination, its output (one compact DynamoDB
# JSON item per line, as `jq -c '.Items[]'` prints them; binary values base64 as the aws CLI prints).
RUNBOOK_LOOP = """import base64, json, sys

import boto3

client = boto3.client("dynamodb")
request = {"TableName": "jit_audit", "FilterExpression": "event_type = :et",
           "ExpressionAttributeValues": {":et": {"S": "ERROR"}}}
out = sys.stdout
while True:
    page = client.scan(**request)
    for item in page["Items"]:
        # boto3 gives binary values as bytes; the aws CLI prints them as base64 text.
        out.write(json.dumps(item, separators=(",", ":"), default=lambda raw: base64.b64encode(raw).decode()) + "\\n")
    if "LastEvaluatedKey" not in page:
        break
    request["ExclusiveStartKey"] = page["LastEvaluatedKey"]
"""

# Creates the table as `jit-audit-dev seed` does and writes exactly N of its realistic items, then pages
# through the runbook's Scan (same filter, no Limit) with boto3 to see how the emulator cuts it.
SEED = """import json, sys
from datetime import UTC, datetime

import boto3

from jit_audit_dev.seed import create_table, generate

endpoint, table, wanted, event_type = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
resource = boto3.resource("dynamodb", endpoint_url=endpoint)
create_table(resource.meta.client, table)
# A request has 2 to 4 events, so wanted // 2 + 1 requests always give enough.
items = generate(wanted // 2 + 1, seed=7, end=datetime.now(UTC), days=7)[:wanted]
with resource.Table(table).batch_writer() as batch:
    for item in items:
        batch.put_item(Item=item)
by_type = {}
for item in items:
    by_type[item["event_type"]] = by_type.get(item["event_type"], 0) + 1

client = boto3.client("dynamodb", endpoint_url=endpoint)
request = {"TableName": table, "FilterExpression": "event_type = :et",
           "ExpressionAttributeValues": {":et": {"S": event_type}}}
pages = []
while True:
    page = client.scan(**request)
    pages.append({"scanned": page["ScannedCount"], "count": page["Count"]})
    if "LastEvaluatedKey" not in page:
        break
    request["ExclusiveStartKey"] = page["LastEvaluatedKey"]
print(json.dumps({"items": len(items), "by_type": dict(sorted(by_type.items())), "pages": pages}))
"""

# argv: event type, then kind:path pairs (kind "runbook", "ours" or "ours_serial"); the first is the reference.
COMPARE = """import json, sys
from collections import Counter

from jit_audit.flatten import flatten_line


def canonical(raw):
    return json.dumps(json.loads(raw), sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def load(kind, path):
    counter, invalid, other_type = Counter(), [], 0
    with open(path, "rb") as handle:
        lines = [line.rstrip(b"\\n") for line in handle]
    for number, line in enumerate(lines, 1):
        try:
            if kind == "runbook":
                line = flatten_line(b'{"Item": ' + line + b'}')
            text = canonical(line)
        except ValueError as error:
            invalid.append(f"line {number}: {error}"[:200])
            continue
        counter[text] += 1
        other_type += json.loads(text).get("event_type") != event_type
    return lines, counter, invalid, other_type


event_type = sys.argv[1]
runs = [argument.split(":", 1) for argument in sys.argv[2:]]
_, reference, _, _ = load(*runs[0])
report = []
for kind, path in runs:
    lines, counter, invalid, other_type = load(kind, path)
    missing, extra = reference - counter, counter - reference
    report.append({
        "kind": kind, "path": path, "items": len(lines), "invalid": invalid[:3], "invalid_count": len(invalid),
        "other_type": other_type, "missing": sum(missing.values()), "extra": sum(extra.values()),
        "example_missing": next(iter(missing), None), "example_extra": next(iter(extra), None),
        "equal": not invalid and not missing and not extra,
    })
print(json.dumps(report))
"""


def check_tools() -> list[str]:
    """What is missing to run the clients (``make venv`` installs both commands)."""
    problems = []
    for command, sub in ((JIT_AUDIT, "scan"), (JIT_AUDIT_DEV, "emulator")):
        if subprocess.run([str(command), sub, "--help"], capture_output=True).returncode != 0:
            problems.append(f"`{command.name} {sub} --help` fails: run `make venv`")
    return problems


def base_env(work: Path) -> dict[str, str]:
    """The environment with dummy credentials and no AWS configuration of the user's."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("AWS_")}
    env.update(
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
        AWS_DEFAULT_REGION=REGION,
        AWS_CONFIG_FILE=str(work / "no-aws-config"),
        AWS_SHARED_CREDENTIALS_FILE=str(work / "no-aws-credentials"),
        AWS_EC2_METADATA_DISABLED="true",
    )
    return env


def start_emulator(work: Path, env: dict[str, str]) -> tuple[subprocess.Popen[bytes], str]:
    """``jit-audit-dev emulator`` on a port the OS picks (it logs the port it bound); its endpoint."""
    log = work / "emulator.log"
    with open(log, "wb") as handle:
        process = subprocess.Popen([str(JIT_AUDIT_DEV), "emulator", "--host", "127.0.0.1", "--port", "0"],
                                   stdin=subprocess.DEVNULL, stdout=handle, stderr=subprocess.STDOUT, env=env)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        match = re.search(r"listening on (http://127\.0\.0\.1:[0-9]+)", log.read_text(errors="replace"))
        if match:
            return process, match.group(1)
        if process.poll() is not None:
            break
        time.sleep(0.1)
    stop_emulator(process)
    raise SystemExit(f"the emulator did not start:\n{log.read_text(errors='replace')[-2000:]}")


def stop_emulator(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM (the emulator exits cleanly on it), then SIGKILL if it lingers."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def helper(env: dict[str, str], *argv: str) -> Any:
    """Run a helper in the project's Python, in its own process; return the JSON it printed.

    This process imports no boto3 or project code, so the clients it starts stay small.
    """
    done = subprocess.run([PYTHON, *argv], capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise SystemExit(f"helper failed with exit code {done.returncode}:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout)


def measure(argv: list[str], env: dict[str, str], cwd: Path, stdout: Path) -> dict[str, float]:
    """Run one client; CPU of its process tree (it and the children it waited for) from wait4."""
    stderr = stdout.with_suffix(".stderr")
    with open(stdout, "wb") as out, open(stderr, "wb") as err:
        started = time.perf_counter()
        process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=env, cwd=cwd)
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(argv[:3])} failed with exit code {process.returncode}:\n"
                         f"{stderr.read_text(errors='replace')[-3000:]}")
    return {"cpu": usage.ru_utime + usage.ru_stime, "wall": wall}


def run_clients(endpoint: str, env: dict[str, str], work: Path, repeats: int,
                segments: int | None) -> tuple[dict[str, list[dict[str, float]]], list[tuple[str, Path]]]:
    client_env = {**env, "AWS_ENDPOINT_URL": endpoint}
    ours = [str(JIT_AUDIT), "scan", "--event-type", EVENT_TYPE, "--endpoint-url", endpoint,
            "--region", REGION, "--table", TABLE]
    if segments is not None:
        ours += ["--segments", str(segments)]
    clients = [(RUNBOOK, "runbook", [PYTHON, "-c", RUNBOOK_LOOP]), (OURS, "ours", ours),
               (OURS_SERIAL, "ours_serial", [*ours, "--segments", "1"])]
    figures: dict[str, list[dict[str, float]]] = {name: [] for name, _, _ in clients}
    outputs = []
    for run in range(repeats):  # alternate, so drift in the machine's speed hits both alike
        for name, kind, argv in clients:
            output = work / f"{kind}-{run}.jsonl"
            figures[name].append(measure(argv, client_env, work, output))
            outputs.append((kind, output))
            print(f"  measured {name} (run {run + 1}/{repeats}): {figures[name][-1]['cpu']:.2f} s CPU, "
                  f"{figures[name][-1]['wall']:.2f} s wall", flush=True)
    return figures, outputs


def print_table(figures: dict[str, list[dict[str, float]]], comparison: list[dict[str, Any]],
                seeded: dict[str, Any], repeats: int) -> bool:
    errors = seeded["by_type"].get(EVENT_TYPE, 0)
    pages = seeded["pages"]
    scanned = [page["scanned"] for page in pages]
    items = {kind: next(run["items"] for run in comparison if run["kind"] == kind) for _, kind in KINDS}
    cpu = {name: statistics.median(run["cpu"] for run in runs) for name, runs in figures.items()}
    wall = {name: statistics.median(run["wall"] for run in runs) for name, runs in figures.items()}
    print(f"\nExporting the {EVENT_TYPE} events by Scan from the emulator: {seeded['items']:,} items seeded "
          f"({errors:,} {EVENT_TYPE}); client CPU of the process tree, median of {repeats}:\n")
    header = f"{'client':<52} {'CPU s':>7} {'wall s':>7} {'items':>7} {'CPU ratio':>10} {'wall ratio':>11}"
    print(header)
    print("-" * len(header))
    for name, kind in KINDS:
        print(f"{name:<52} {cpu[name]:>7.2f} {wall[name]:>7.2f} {items[kind]:>7,} {cpu[name] / cpu[RUNBOOK]:>9.3f}x "
              f"{wall[name] / wall[RUNBOOK]:>10.3f}x")
    print(f"\n  Paging: the emulator (moto 5.2.5) cut the runbook's Scan (no Limit) into {len(pages)} page(s) of "
          f"<= 1 MB of scanned items ({min(scanned):,} to {max(scanned):,} items each; the filter is applied "
          f"after the cut, as DynamoDB does).")
    checks = []
    for name, kind in KINDS:
        runs = [run for run in comparison[1:] if run["kind"] == kind]  # [0] is the reference itself
        if all(run["equal"] for run in runs):
            checks.append((f"{name}: {len(runs)} run(s), each the same {items['runbook']:,} items as the "
                           "runbook's first (flattened, compared as sorted JSON)", True))
        for run in runs:
            if run["equal"]:
                continue
            detail = [f"{run['items']:,} lines", f"{run['missing']} missing", f"{run['extra']} extra"]
            if run["invalid_count"]:
                detail.append(f"{run['invalid_count']} invalid lines, e.g. {run['invalid'][0]}")
            checks.append((f"{name} ({Path(run['path']).name}): result set differs from the runbook's "
                           f"({', '.join(detail)})", False))
            for which in ("missing", "extra"):
                if run[f"example_{which}"]:
                    print(f"  e.g. {which}: {run[f'example_{which}'][:300]}")
    found = comparison[0]["items"] - comparison[0]["other_type"]
    checks.append((f"the runbook found {found:,} of the {errors:,} seeded {EVENT_TYPE} items "
                   f"({comparison[0]['other_type']} of another type)", found == errors and not comparison[0]["other_type"]))
    print()
    for text, ok in checks:
        print(f"  {'PASS' if ok else 'FAIL'}  {text}")
    return all(ok for _, ok in checks)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=30_000, help="items to seed into the emulator's table")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each client (median reported)")
    parser.add_argument("--segments", type=int, help="pass --segments N to jit-audit scan (default: its own)")
    args = parser.parse_args(argv)
    if args.items < 1 or args.repeats < 1:
        parser.error("--items and --repeats must be at least 1")
    problems = check_tools()
    if problems:
        print("\nScan export benchmark: cannot run\n\n" + "\n".join(f"  FAIL  {text}" for text in problems))
        return 1
    with tempfile.TemporaryDirectory(prefix="jit-audit-bench-scan-") as directory:
        work = Path(directory)
        env = base_env(work)
        emulator, endpoint = start_emulator(work, env)
        try:
            print(f"seeding {args.items:,} items into a fresh emulator at {endpoint} ...", flush=True)
            seeded = helper(env, "-c", SEED, endpoint, TABLE, str(args.items), EVENT_TYPE)
            if seeded["items"] != args.items or sum(page["scanned"] for page in seeded["pages"]) != args.items:
                raise SystemExit(f"seeded {seeded['items']} items, the table scans {seeded['pages']}")
            figures, outputs = run_clients(endpoint, env, work, args.repeats, args.segments)
        finally:
            stop_emulator(emulator)
        # The reference is the runbook's first run; the rest are compared with it.
        ordered = sorted(outputs, key=lambda output: (output[0] != "runbook", output[1].name))
        comparison = helper(env, "-c", COMPARE, EVENT_TYPE, *(f"{kind}:{path}" for kind, path in ordered))
        ok = print_table(figures, comparison, seeded, args.repeats)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

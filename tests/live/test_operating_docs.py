"""docs/operating.md, run: every ```bash block of the operator's cookbook, against the live stack.

The page says its blocks run as written, in order, in one bash shell (later blocks use the variables
and functions of earlier ones), so that is how they run here: one ``bash -euo pipefail`` session,
a marker line before each block, its environment pointing at the session's live stack (API URL,
user, password; the emulator through ``AWS_ENDPOINT_URL`` with the dummy keys ``testing``; a
reference JIT reporting API on loopback for the ``api_summary`` mode). Blocks that are not meant to
run are fenced ``console`` (or ``text``/``json``); ``RUNNABLE_BLOCKS`` pins how many run, so a block
that silently stops running (a renamed fence) fails the count.

Then the outcomes: the triggered runs succeeded and published what they should, the backfill made
one run per date, the logs came back as text, the re-runs ran again, and ``jit-audit verify`` said
OK. What every block printed is kept in ``test-artifacts/operating-doc.log``. Dates 27, 26 and 25 days back: no other live module uses them (they use 2-4, 6, 8, 10-20 and 40
days back), and all are inside the stack's 35-day recovery history.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from jit_api_server import JitApiServer, running, summary
from livelib import (
    ARTIFACTS,
    BUCKET,
    PREFIX,
    adhoc_prefix,
    adhoc_results,
    api_path,
    attr,
    busiest_account,
    expected_account_events,
    in_snapshot,
    iso_millis,
    s3_json,
    s3_keys,
    task_states,
)

pytestmark = pytest.mark.live

DOC = Path(__file__).resolve().parents[2] / "docs" / "operating.md"
#: How many ```bash blocks the page has; each of them runs here.
RUNNABLE_BLOCKS = 20
#: Fences that are shown, never run.
NOT_RUN = {"console", "text", "json"}
MARK = "@@operating-doc-block"
VARS = "@@operating-doc-vars"
TABLE = "jit_audit"
EXPORT_DAG = "jit_audit_export"
ADHOC_DAG = "jit_audit_adhoc"
JIT_API_CONNECTION = "jit_api_default"
# The variables the page's blocks set, printed after the last block.
SHARED = ("EXPORT_RUN", "BACKFILL_ID", "BACKFILL_RUNS", "FIRST_BACKFILL_RUN", "REQUEST_RUN", "ACCOUNT_RUN",
          "CHANNEL_RUN", "SCAN_RUN", "SUMMARY_RUN")


def fenced_blocks(text: str) -> list[tuple[str, str]]:
    """Every fenced block of the page as (language, body), in order."""
    blocks: list[tuple[str, str]] = []
    language: str | None = None
    body: list[str] = []
    for line in text.splitlines():
        if language is None:
            if match := re.match(r"\s*```(\S*)\s*$", line):
                language, body = match.group(1), []
        elif re.match(r"\s*```\s*$", line):
            blocks.append((language, "\n".join(body)))
            language = None
        else:
            body.append(line)
    assert language is None, "an unclosed fence"
    return blocks


def bash_blocks() -> list[str]:
    return [body for language, body in fenced_blocks(DOC.read_text()) if language == "bash"]


def test_every_fence_is_run_or_marked_as_not_run():
    languages = [language for language, _ in fenced_blocks(DOC.read_text())]
    assert set(languages) <= {"bash", *NOT_RUN}, languages
    assert languages.count("bash") == RUNNABLE_BLOCKS, "a ```bash block was added or dropped: update RUNNABLE_BLOCKS"


def _script(blocks: list[str]) -> str:
    lines = ["exec 2>&1"]  # one stream: each block's messages stay between its markers
    for index, block in enumerate(blocks):
        lines += [f'printf "\\n%s %d %s\\n" {MARK} {index} "$EPOCHREALTIME"', block]
    lines += [f'printf "\\n%s %d %s\\n" {MARK} {len(blocks)} "$EPOCHREALTIME"', f"echo {VARS}",
              "jq -cn " + " ".join(f'--arg {name} "${{{name}-}}"' for name in SHARED) + " '$ARGS.named'"]
    return "\n".join(lines) + "\n"


def _split(output: str) -> tuple[dict[int, str], dict[int, float], dict[str, str]]:
    """Each block's output and start time, and the shared variables printed at the end."""
    outputs: dict[int, list[str]] = {}
    starts: dict[int, float] = {}
    current: int | None = None
    shared: dict[str, str] = {}
    lines = output.splitlines()
    for position, line in enumerate(lines):
        if line.startswith(MARK + " "):
            _, index, moment = line.split()
            current = int(index)
            starts[current] = float(moment)
            outputs[current] = []
        elif line == VARS:
            shared = json.loads(lines[position + 1])
            break
        elif current is not None:
            outputs[current].append(line)
    return {index: "\n".join(text).strip() for index, text in outputs.items()}, starts, shared


def _state(stack: Any, dag_id: str, run_id: str) -> dict[str, Any]:
    return stack.api("GET", api_path("dags", dag_id, "dagRuns", run_id))


def _tries(stack: Any, dag_id: str, run_id: str) -> dict[str, int]:
    body = stack.api("GET", api_path("dags", dag_id, "dagRuns", run_id, "taskInstances") + "?limit=100")
    return {ti["task_id"]: ti["try_number"] for ti in body["task_instances"] if ti["map_index"] in (-1, 0)}


@pytest.mark.live
def test_every_command_block_runs_against_the_live_stack(live_stack, live_aws, seeded_items):
    blocks = bash_blocks()
    assert len(blocks) == RUNNABLE_BLOCKS
    today = datetime.now(UTC).date()  # once: a run across midnight UTC changes no date
    day, first, last = (today - timedelta(days=days) for days in (27, 26, 25))
    start_moment = datetime(today.year, today.month, today.day, tzinfo=UTC) - timedelta(days=7)
    end_moment = start_moment + timedelta(days=8)
    start, end = start_moment.strftime("%Y-%m-%dT%H:%M:%SZ"), end_moment.strftime("%Y-%m-%dT%H:%M:%SZ")

    account = busiest_account(seeded_items)
    channels: dict[str, int] = {}
    for item in seeded_items:
        channels[attr(item, "channel_id") or ""] = channels.get(attr(item, "channel_id") or "", 0) + 1
    channel = max((name for name in channels if name), key=lambda name: (channels[name], name))
    request_id = sorted(attr(item, "request_id") or "" for item in seeded_items)[0]
    # The reference JIT API's summaries of that channel: 5 inside [start, end), 1 before it.
    created = [start_moment + timedelta(hours=6 + 20 * index) for index in range(5)] + [start_moment - timedelta(days=1)]
    summaries = [summary(index, channel, moment.strftime("%Y-%m-%dT%H:%M:%SZ"), "APPROVED")
                 for index, moment in enumerate(created)]
    key_id, secret = "ops-doc-key", "ops-doc-secret-" + "x" * 24

    env = {name: value for name, value in os.environ.items() if not name.startswith(("AIRFLOW", "AWS_"))}
    env.update({
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",  # jit-audit
        # No AWS configuration of the machine's: `jit-audit verify` sees only the emulator.
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AIRFLOW_URL": live_stack.api_url,
        "AIRFLOW_USER": live_stack.username,
        "AIRFLOW_PASSWORD": live_stack.password,
        "DAY": str(day),
        "BACKFILL_FROM": str(first),
        "BACKFILL_TO": str(last),
        "START": start,
        "END": end,
        "REQUEST_ID": request_id,
        "ACCOUNT_ID": account,
        "CHANNEL_ID": channel,
        "JIT_API_KEY_ID": key_id,
        "JIT_API_SECRET": secret,
        "EXPORT_BUCKET": BUCKET,
        "EXPORT_PREFIX": PREFIX,
        "AWS_ENDPOINT_URL": live_stack.endpoint_url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    })
    started = time.monotonic()
    try:
        with running(JitApiServer(keys={key_id: secret}, summaries=summaries)) as jit_api:
            env["JIT_API_URL"] = jit_api.base_url
            try:
                result = subprocess.run(["bash", "-euo", "pipefail", "-c", _script(blocks)], env=env,
                                        capture_output=True, text=True, timeout=400)
            except subprocess.TimeoutExpired as expired:
                ARTIFACTS.mkdir(parents=True, exist_ok=True)
                partial = expired.stdout.decode(errors="replace") if isinstance(expired.stdout, bytes) \
                    else (expired.stdout or "")
                (ARTIFACTS / "operating-doc.log").write_text(partial)
                pytest.fail(f"docs/operating.md's blocks did not finish in 400 s; the last output:\n{partial[-3000:]}")
    finally:
        live_stack.api("DELETE", api_path("connections", JIT_API_CONNECTION), allow=(404,))
    seconds = time.monotonic() - started
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "operating-doc.log").write_text(result.stdout + result.stderr)  # what each block printed
    outputs, starts, shared = _split(result.stdout)
    timings = [f"block {index}: {starts[index + 1] - starts[index]:.1f} s"
               for index in range(len(blocks)) if index + 1 in starts]
    print(f"[operating doc] {len(blocks)} blocks in {seconds:.0f} s ({', '.join(timings)})", flush=True)
    if result.returncode != 0:
        failed = max(outputs, default=0)
        pytest.fail(f"block {failed} of docs/operating.md exited {result.returncode}:\n{blocks[failed]}\n"
                    f"--- its output:\n{outputs.get(failed, '')}\n--- stderr:\n{result.stderr[-3000:]}")
    assert len(outputs) == len(blocks) + 1 and shared, result.stdout[-3000:]
    text = dict(enumerate(blocks))

    def output_of(fragment: str) -> str:
        """The output of the one block whose text holds ``fragment``."""
        (index,) = [index for index, block in text.items() if fragment in block]
        return outputs[index]

    # Unpause: both DAGs answered unpaused.
    assert output_of("is_paused").count('"is_paused":false') == 2, output_of("is_paused")

    # The exported date: its run succeeded (twice: once, then after the clear) and published every item.
    export_run = shared["EXPORT_RUN"]
    run = _state(live_stack, EXPORT_DAG, export_run)
    assert run["state"] == "success" and run["logical_date"].startswith(str(day)), run
    assert run["note"] == "re-export for the quarterly review"
    published = f"{PREFIX}/jsonl/table={TABLE}/snapshot_date={day}/"
    assert published + "_SUCCESS" in s3_keys(live_aws, published)
    counts = s3_json(live_aws, published + "_manifest.json")["counts"]
    assert counts["describe_export_item_count"] == counts["manifest_item_count"] == counts["lines_written"] \
        == in_snapshot(seeded_items, day), counts
    tries = _tries(live_stack, EXPORT_DAG, export_run)
    assert tries["start_export"] == tries["publish_snapshot"] == tries["check_retention"] == 2, tries

    # The backfill: one run per date, all succeeded, the backfill completed.
    backfill_runs = shared["BACKFILL_RUNS"].split()
    assert len(backfill_runs) == 2, shared
    runs = [_state(live_stack, EXPORT_DAG, run_id) for run_id in backfill_runs]
    assert sorted(run["logical_date"][:10] for run in runs) == [str(first), str(last)]
    assert all(run["run_type"] == "backfill" and run["state"] == "success" for run in runs), runs
    assert live_stack.api("GET", f"/api/v2/backfills/{shared['BACKFILL_ID']}")["completed_at"]
    for moment in (first, last):
        assert f"{PREFIX}/jsonl/table={TABLE}/snapshot_date={moment}/_SUCCESS" in s3_keys(
            live_aws, f"{PREFIX}/jsonl/table={TABLE}/snapshot_date={moment}/")
    # On the first backfilled date only list_data_files and what follows it ran again, from the same export.
    assert shared["FIRST_BACKFILL_RUN"] == backfill_runs[0]
    tries = _tries(live_stack, EXPORT_DAG, shared["FIRST_BACKFILL_RUN"])
    assert tries["list_data_files"] == tries["flatten_data_files"] == tries["publish_snapshot"] \
        == tries["check_retention"] == 2, tries
    assert tries["plan"] == tries["start_export"] == tries["wait_for_export"] == 1, tries
    assert "would clear publish_snapshot" in output_of('"dry_run": true')

    # The ad-hoc runs: each succeeded and published exactly what its mode selects.
    for name in ("REQUEST_RUN", "ACCOUNT_RUN", "CHANNEL_RUN", "SCAN_RUN", "SUMMARY_RUN"):
        state = _state(live_stack, ADHOC_DAG, shared[name])["state"]
        assert state == "success", (name, task_states(live_stack, ADHOC_DAG, shared[name]))
    wanted = {
        "REQUEST_RUN": {(attr(item, "request_id"), attr(item, "event_time_event_id")) for item in seeded_items
                        if attr(item, "request_id") == request_id},
        "ACCOUNT_RUN": expected_account_events(seeded_items, account, iso_millis(start_moment),
                                               iso_millis(end_moment), ["GRANTED", "REVOKED"]),
        "CHANNEL_RUN": {(attr(item, "request_id"), attr(item, "event_time_event_id")) for item in seeded_items
                        if attr(item, "channel_id") == channel
                        and iso_millis(start_moment) <= (attr(item, "event_time_event_id") or "")[:24]
                        < iso_millis(end_moment)},
        "SCAN_RUN": {(attr(item, "request_id"), attr(item, "event_time_event_id")) for item in seeded_items
                     if attr(item, "event_type") == "ERROR"
                     and iso_millis(start_moment) <= (attr(item, "event_time_event_id") or "")[:24]
                     < iso_millis(end_moment)},
    }
    for name, expected in wanted.items():
        assert expected, f"the seeded table has nothing for {name}: a meaningless query"
        manifest, found = adhoc_results(live_aws, shared[name])
        assert found == expected, name
        assert f"s3://{BUCKET}/{adhoc_prefix(shared[name])}" in output_of("xcomEntries")
    summary_prefix = adhoc_prefix(shared["SUMMARY_RUN"])
    keys = s3_keys(live_aws, summary_prefix)
    assert summary_prefix + "_SUCCESS" in keys, keys
    assert s3_json(live_aws, summary_prefix + "_manifest.json")["kind"] == "adhoc_api_summary"
    body = gzip.decompress(live_aws("s3").get_object(Bucket=BUCKET, Key=summary_prefix + "part-00000.jsonl.gz")["Body"].read())
    assert sorted(json.loads(line)["request_id"] for line in body.splitlines()) == [f"req-{i:04d}" for i in range(5)]
    assert output_of("xcomEntries").count('"uri":') == 5

    # The logs: the sensor's log, as text, says it deferred and the export completed with every item.
    logs = output_of("logs/1?full_content=true")
    assert "Pausing task as DEFERRED" in logs and f"COMPLETED with {in_snapshot(seeded_items, day)} items" in logs, logs[-2000:]

    # verify: exit 0 (the session ran with -e) and its summary line.
    verify = output_of("jit-audit verify")
    assert re.search(r"^OK: \d+ ledger entries, \d+ publication\(s\)", verify, re.M), verify[-2000:]

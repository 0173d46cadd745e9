"""Each date's snapshot holds the table as it was at that date's export time, even when backfilled out of order.

The table is written at known moments around three dates (by moving the emulator's clock), with
items added, updated and deleted between them; the export DAG then runs for the three dates out of
date order (`dag.test()` against the emulator over HTTP), and each published snapshot must hold
exactly the items, with the values, that the writes at or before its export time (the end of its
data interval) left in the table. What each snapshot should hold is replayed here from the test's
own list of writes.
"""

from __future__ import annotations

import gzip
import json
import urllib.request
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from jit_audit_dev.seed import create_table, ensure_bucket

pytestmark = pytest.mark.e2e

TABLE = "jit_audit"
BUCKET = "jit-audit-exports"
PREFIX = "exports"
VARIABLES = {
    "AIRFLOW_VAR_JIT_AUDIT_TABLE": TABLE,
    "AIRFLOW_VAR_JIT_AUDIT_EXPORT_BUCKET": BUCKET,
    "AIRFLOW_VAR_JIT_AUDIT_EXPORT_PREFIX": PREFIX,
    "AIRFLOW_VAR_JIT_AUDIT_EXPORT_TIMEOUT_MINUTES": "5",
}
Key = tuple[str, str]  # (request_id, event_time_event_id)


def day(days_ago: int) -> datetime:
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return today - timedelta(days=days_ago)


def set_clock(aws, moment: datetime | None) -> None:
    """Move the emulator's clock (its write stamps) to ``moment``; None puts it back to now."""
    offset = 0.0 if moment is None else (moment - datetime.now(UTC)).total_seconds()
    request = urllib.request.Request(
        f"{aws.endpoint_url}/jit-audit-emulator/clock", data=json.dumps({"offset_seconds": offset}).encode(),
        method="POST", headers={"Content-Type": "application/json"},
    )
    urllib.request.urlopen(request, timeout=10)


def event(request_id: str, moment: datetime, event_type: str) -> dict[str, Any]:
    return {
        "request_id": request_id,
        "event_time_event_id": f"{moment:%Y-%m-%dT%H:%M:%S.000Z}#{request_id}-{event_type.lower()}",
        "event_type": event_type,
        "account_id": "123456789012",
        "channel_id": "q8k3fh5wrtbyxj1o9zmd7ecn4a",
        "actor_email": "alice@example.com",
        "details": {"ticket": f"SEC-{request_id}", "reason": "incident triage"},
    }


class Writes:
    """The table's writes, made at chosen moments on the emulator's clock and remembered in order."""

    def __init__(self, aws) -> None:
        self.aws = aws
        self.table = aws.resource("dynamodb").Table(TABLE)
        self.log: list[tuple[datetime, Key, dict[str, Any] | None]] = []  # (when, key, image after; None: deleted)
        self.current: dict[Key, dict[str, Any]] = {}

    def at(self, moment: datetime | None) -> Writes:
        set_clock(self.aws, moment)
        self.moment = moment or datetime.now(UTC)
        return self

    def put(self, item: dict[str, Any]) -> Key:
        self.table.put_item(Item=item)
        return self._remember((item["request_id"], item["event_time_event_id"]), dict(item))

    def update(self, key: Key, **values: str) -> None:
        names = {f"#a{index}": name for index, name in enumerate(values)}
        self.table.update_item(
            Key={"request_id": key[0], "event_time_event_id": key[1]},
            UpdateExpression="SET " + ", ".join(f"{name} = :v{index}" for index, name in enumerate(names)),
            ExpressionAttributeNames=names,
            ExpressionAttributeValues={f":v{index}": value for index, value in enumerate(values.values())},
        )
        self._remember(key, {**self.current[key], **values})

    def delete(self, key: Key) -> None:
        self.table.delete_item(Key={"request_id": key[0], "event_time_event_id": key[1]})
        self._remember(key, None)

    def _remember(self, key: Key, image: dict[str, Any] | None) -> Key:
        self.log.append((self.moment, key, image))
        if image is None:
            self.current.pop(key, None)
        else:
            self.current[key] = image
        return key

    def as_of(self, moment: datetime) -> dict[Key, dict[str, Any]]:
        """The table at ``moment``: the writes at or before it, replayed."""
        table: dict[Key, dict[str, Any]] = {}
        for when, key, image in self.log:
            if when <= moment:
                if image is None:
                    table.pop(key, None)
                else:
                    table[key] = image
        return table


@pytest.fixture()
def history(aws, dagbag, monkeypatch) -> tuple[Writes, list[datetime]]:
    """Items written before, between and after three dates' export times (a day apart, each at
    midnight UTC): some added, some updated, some deleted in each gap."""
    for name, value in VARIABLES.items():
        monkeypatch.setenv(name, value)
    first, second, third = day(3), day(2), day(1)
    create_table(aws.client("dynamodb"), TABLE)
    ensure_bucket(aws.client("s3"), BUCKET, prefix=PREFIX, retention_days=400)
    writes = Writes(aws)
    try:
        writes.at(first - timedelta(hours=6))
        kept = writes.put(event("req-a", writes.moment, "REQUESTED"))
        deleted_early = writes.put(event("req-b", writes.moment, "REQUESTED"))
        updated_late = writes.put(event("req-c", writes.moment, "REQUESTED"))

        writes.at(first + timedelta(hours=6))  # between the first and second dates
        writes.update(kept, event_type="APPROVED", actor_email="secops-lead@example.com")
        writes.delete(deleted_early)
        short_lived = writes.put(event("req-d", writes.moment, "REQUESTED"))

        writes.at(second + timedelta(hours=6))  # between the second and third dates
        writes.update(kept, event_type="GRANTED")
        writes.update(updated_late, event_type="DENIED")
        writes.delete(short_lived)
        latest = writes.put(event("req-e", writes.moment, "REQUESTED"))

        writes.at(None)  # after every export time: in no snapshot
        writes.put(event("req-f", writes.moment, "REQUESTED"))
        writes.update(latest, event_type="EXPIRED")
        writes.delete(updated_late)
    finally:
        set_clock(aws, None)
    return writes, [first, second, third]


def published(aws, date: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The snapshot published for ``date``: its _manifest.json and the lines of its part files."""
    s3 = aws.client("s3")
    prefix = f"{PREFIX}/jsonl/table={TABLE}/snapshot_date={date}/"
    keys = sorted(item["Key"] for item in s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", []))
    assert prefix + "_SUCCESS" in keys, keys
    manifest = json.loads(s3.get_object(Bucket=BUCKET, Key=prefix + "_manifest.json")["Body"].read())
    lines = [
        json.loads(line)
        for key in keys
        if key.rpartition("/")[2].startswith("part-") and key.endswith(".jsonl.gz")
        for line in gzip.decompress(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()).splitlines()
    ]
    return manifest, lines


def test_each_backfilled_date_publishes_exactly_the_table_as_of_its_export_time(aws, dagbag, history):
    writes, dates = history
    dag = dagbag.dags["jit_audit_export"]
    export_times: dict[str, datetime] = {}
    for logical_date in (dates[2], dates[0], dates[1]):  # out of date order, as a backfill may run
        dag_run = dag.test(logical_date=logical_date)
        assert dag_run.state == "success", {ti.task_id: ti.state for ti in dag_run.get_task_instances()}
        export_times[logical_date.date().isoformat()] = dag_run.data_interval_end

    seen: list[set[Key]] = []
    for logical_date in dates:
        date = logical_date.date().isoformat()
        manifest, lines = published(aws, date)
        export_time = export_times[date]
        assert datetime.fromisoformat(manifest["export_time"]) == export_time
        expected = writes.as_of(export_time)
        assert manifest["counts"] == {"describe_export_item_count": len(expected),
                                      "manifest_item_count": len(expected), "lines_written": len(expected)}
        exported = {(line["request_id"], line["event_time_event_id"]): line for line in lines}
        assert len(exported) == len(lines), "an item published twice"
        assert exported.keys() == expected.keys(), date
        for key, line in exported.items():
            assert {name: value for name, value in line.items() if name not in ("event_time", "event_id")} \
                == expected[key], (date, key)
        seen.append(set(exported))

    first, second, third = (writes.as_of(export_times[d.date().isoformat()]) for d in dates)
    # What the history above is for: every gap adds, updates and deletes, so no two snapshots agree.
    assert first[("req-a", next(k[1] for k in first if k[0] == "req-a"))]["event_type"] == "REQUESTED"
    assert {key[0] for key in first} == {"req-a", "req-b", "req-c"}
    assert {key[0] for key in second} == {"req-a", "req-c", "req-d"}
    assert {key[0] for key in third} == {"req-a", "req-c", "req-e"}
    assert [snapshot[key]["event_type"] for snapshot in (first, second, third)
            for key in snapshot if key[0] == "req-a"] == ["REQUESTED", "APPROVED", "GRANTED"]
    assert len({frozenset(keys) for keys in seen}) == 3

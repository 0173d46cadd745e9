"""Published partitions, named by the one key layout and found again by listing the emulator's bucket."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from jit_audit.layout import Partition, SnapshotLayout, normalise_prefix, table_prefix
from jit_audit.partitions import has_baseline, list_partitions, list_table_prefixes

BUCKET = "jit-audit-partitions-test"
TABLE_PREFIX = "exports/jsonl/table=jit_audit/"


@pytest.mark.parametrize(("prefix", "folder"), [("", ""), ("/", ""), ("a/b", "a/b/"), ("/a/b/", "a/b/"), (" a/b ", "a/b/")])
def test_a_prefix_is_normalised_into_a_folder(prefix, folder):
    assert normalise_prefix(prefix) == folder
    assert table_prefix(prefix, "t") == f"{folder}jsonl/table=t/"


def test_a_snapshot_layout_and_a_listed_partition_name_the_same_keys():
    full = SnapshotLayout("b", "/exports/", "jit_audit", date(2026, 11, 25), datetime(2026, 11, 26, tzinfo=UTC))
    assert full.partition == Partition.under(TABLE_PREFIX, "snapshot", "2026-11-25")
    assert full.partition.manifest_key == f"{TABLE_PREFIX}snapshot_date=2026-11-25/_manifest.json"
    assert full.published_prefix == full.partition.prefix
    window = SnapshotLayout("b", "exports", "jit_audit", date(2026, 11, 25), datetime(2026, 11, 26, tzinfo=UTC),
                            window_start=datetime(2026, 11, 25, 12, tzinfo=UTC))
    assert window.partition == Partition.under(TABLE_PREFIX, "changes", "20261125T120000Z_20261126T000000Z")
    assert window.partition.success_key.endswith("change_window=20261125T120000Z_20261126T000000Z/_SUCCESS")


@pytest.mark.parametrize(("kind", "label", "day"), [
    ("snapshot", "2026-11-25", date(2026, 11, 25)),
    ("changes", "20261125T120000Z_20261126T000000Z", date(2026, 11, 26)),  # as old as the window's end
    ("snapshot", "20261125", None),  # not the form this layout writes
    ("snapshot", "2026-13-01", None),
    ("changes", "20261125T120000Z", None),
    ("changes", "20261125T120000Z_2026112", None),
    ("adhoc", "exports/adhoc/run/", None),
])
def test_the_date_of_a_partitions_data_comes_from_its_label(kind, label, day):
    assert Partition(kind, label, "p/").data_date == day


@pytest.fixture()
def bucket(aws):
    s3 = aws.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    for key in (
        f"{TABLE_PREFIX}snapshot_date=2026-11-20/part-00000.jsonl.gz",
        f"{TABLE_PREFIX}snapshot_date=2026-11-20/_manifest.json",
        f"{TABLE_PREFIX}snapshot_date=2026-11-20/_SUCCESS",
        f"{TABLE_PREFIX}snapshot_date=2026-11-24/part-00000.jsonl.gz",  # a publication that did not finish
        f"{TABLE_PREFIX}change_window=20261124T000000Z_20261125T000000Z/_SUCCESS",
        f"{TABLE_PREFIX}_ledger/000000000000.json",
        "exports/jsonl/_staging/table=jit_audit/snapshot_date=2026-11-19/_SUCCESS",
        "exports/jsonl/table=other/snapshot_date=2026-11-01/_SUCCESS",
    ):
        s3.put_object(Bucket=BUCKET, Key=key, Body=b"x")
    return s3


def test_partitions_are_listed_by_kind_in_date_order_with_their_keys(bucket):
    snapshots = list_partitions(bucket, BUCKET, TABLE_PREFIX, "snapshot")
    assert [(partition.label, partition.complete) for partition in snapshots] == [
        ("2026-11-20", True), ("2026-11-24", False)]
    assert snapshots[0].keys == tuple(sorted(f"{snapshots[0].prefix}{name}" for name in (
        "part-00000.jsonl.gz", "_manifest.json", "_SUCCESS")))
    assert snapshots[0].last_modified is not None
    (window,) = list_partitions(bucket, BUCKET, TABLE_PREFIX, "changes")
    assert window.label == "20261124T000000Z_20261125T000000Z" and not window.complete


def test_tables_are_the_table_folders_under_jsonl(bucket):
    assert list_table_prefixes(bucket, BUCKET, "/exports") == [TABLE_PREFIX, "exports/jsonl/table=other/"]
    assert list_table_prefixes(bucket, BUCKET, "elsewhere") == []


@pytest.mark.parametrize(("window_start", "found"), [
    (datetime(2026, 11, 19, tzinfo=UTC), False),  # the only complete snapshot is younger than the window
    (datetime(2026, 11, 20, 6, tzinfo=UTC), True),
    (datetime(2026, 11, 25, tzinfo=UTC), True),  # 2026-11-24 has no _SUCCESS: 2026-11-20 is the baseline
])
def test_a_baseline_is_a_complete_full_snapshot_from_before_the_window(bucket, window_start, found):
    layout = SnapshotLayout(BUCKET, "exports", "jit_audit", window_start.date(), window_start, window_start=window_start)
    assert has_baseline(bucket, layout) is found
    full = SnapshotLayout(BUCKET, "exports", "jit_audit", window_start.date(), window_start)
    assert has_baseline(bucket, full) is False, "a full snapshot needs no baseline"

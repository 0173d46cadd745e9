"""Grouping an export's data files into flatten tasks (``jit_audit.grouping``) and its two settings.

The properties are checked against facts computed here from the sizes alone (the expected number
of groups, each file's weight, the bound on a group's weight), not with the module's own helpers.
"""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jit_audit import grouping
from jit_audit.grouping import (
    DEFAULT_MAX_GROUPS,
    DEFAULT_TARGET_BYTES,
    FILE_OPEN_COST_BYTES,
    MIB,
    DataFileGroup,
    data_file_sizes,
    group_bounds,
    group_data_files,
)
from jit_audit.manifest import DataFile
from jit_audit.settings import SettingsError, load_settings

sizes_lists = st.lists(st.integers(min_value=0, max_value=5 * MIB), max_size=400)
targets = st.integers(min_value=1, max_value=64 * MIB)
caps = st.integers(min_value=1, max_value=300)
costs = st.sampled_from([0, 1, 4096, FILE_OPEN_COST_BYTES])


def expected_count(sizes: list[int], target: int, cap: int, cost: int) -> int:
    """How many groups the documented rule asks for: ceil(weight / target), within [1, min(cap, n)]."""
    total = sum(sizes) + cost * len(sizes)
    return max(1, min(cap, len(sizes), -(-total // target)))


@settings(max_examples=300, deadline=None)
@given(sizes=sizes_lists, target=targets, cap=caps, cost=costs)
def test_every_file_is_in_exactly_one_group_in_order_and_the_cap_holds(sizes, target, cap, cost):
    bounds = group_bounds(sizes, target_bytes=target, max_groups=cap, file_cost_bytes=cost)
    assert [index for group in bounds for index in group] == list(range(len(sizes)))  # each once, in order
    assert all(len(group) > 0 for group in bounds)
    assert all(group.step == 1 for group in bounds)  # contiguous runs
    assert len(bounds) <= cap
    assert len(bounds) <= expected_count(sizes, target, cap, cost) if sizes else bounds == []


@settings(max_examples=300, deadline=None)
@given(sizes=sizes_lists.filter(bool), target=targets, cap=caps, cost=costs)
def test_groups_are_balanced_by_weight(sizes, target, cap, cost):
    """Each group weighs at most an equal share of the total plus one file (exact arithmetic)."""
    bounds = group_bounds(sizes, target_bytes=target, max_groups=cap, file_cost_bytes=cost)
    weights = [size + cost for size in sizes] if sum(sizes) + cost * len(sizes) else [1] * len(sizes)
    share = Fraction(sum(weights), expected_count(sizes, target, cap, cost))
    heaviest = max(weights)
    for group in bounds:
        assert sum(weights[index] for index in group) <= share + heaviest, (group, share, heaviest)
    # No file heavier than a share: no share comes out empty, so there are exactly that many groups.
    if heaviest <= share:
        assert len(bounds) == expected_count(sizes, target, cap, cost)


@settings(max_examples=200, deadline=None)
@given(count=st.integers(min_value=1, max_value=3000), size=st.integers(min_value=0, max_value=MIB),
       cap=caps)
def test_files_of_one_size_split_into_groups_whose_counts_differ_by_at_most_one(count, size, cap):
    bounds = group_bounds([size] * count, target_bytes=DEFAULT_TARGET_BYTES, max_groups=cap)
    assert len(bounds) == expected_count([size] * count, DEFAULT_TARGET_BYTES, cap, FILE_OPEN_COST_BYTES)
    lengths = {len(group) for group in bounds}
    assert max(lengths) - min(lengths) <= 1


def test_the_defaults_on_exports_of_many_sizes():
    # 3,000 tiny files: each counts 4 MiB, so about 64 go to a task (47 tasks), not one task of 3,000.
    tiny = group_bounds([300] * 3000, target_bytes=DEFAULT_TARGET_BYTES, max_groups=DEFAULT_MAX_GROUPS)
    assert len(tiny) == 47 and {len(group) for group in tiny} == {63, 64}
    # 100,000 files (far beyond max_map_length): never more than the cap of 256 tasks.
    many = group_bounds([1 * MIB] * 100_000, target_bytes=DEFAULT_TARGET_BYTES, max_groups=DEFAULT_MAX_GROUPS)
    assert len(many) == DEFAULT_MAX_GROUPS
    # A few big files: one task each, never a file split.
    big = group_bounds([900 * MIB, 10 * MIB, 700 * MIB], target_bytes=DEFAULT_TARGET_BYTES,
                       max_groups=DEFAULT_MAX_GROUPS)
    assert big == [range(0, 1), range(1, 2), range(2, 3)]
    # Under the target: one task.
    assert group_bounds([10 * MIB] * 5, target_bytes=DEFAULT_TARGET_BYTES, max_groups=256) == [range(0, 5)]
    assert group_bounds([], target_bytes=1, max_groups=1) == []


def test_a_file_heavier_than_its_share_gets_a_group_of_its_own():
    # 100 MiB then ten 1 MiB files, by bytes only, 4 shares of 27.5 MiB: the big file's midpoint is in
    # share 1, the small files' in share 3; shares 0 and 2 hold no midpoint and give no (empty) group.
    sizes = [100 * MIB] + [1 * MIB] * 10
    bounds = group_bounds(sizes, target_bytes=28 * MIB, max_groups=10, file_cost_bytes=0)
    assert bounds == [range(0, 1), range(1, 11)]


@pytest.mark.parametrize(("target", "cap", "cost"), [(0, 1, 0), (1, 0, 0), (1, 1, -1)])
def test_impossible_limits_are_refused(target, cap, cost):
    with pytest.raises(ValueError):
        group_bounds([1], target_bytes=target, max_groups=cap, file_cost_bytes=cost)


def data_files(count: int) -> list[DataFile]:
    return [DataFile(index=index, key=f"raw/AWSDynamoDB/x/data/{index:04d}.json.gz", item_count=index + 1,
                     md5_checksum=f"md5-{index}", etag=f"etag-{index}") for index in range(count)]


def test_groups_carry_their_files_sizes_and_a_label_and_round_trip_through_xcom():
    files = data_files(12)
    sizes = {data_file.key: 1000 * (data_file.index + 1) for data_file in files[:-1]}  # the last one not in S3
    groups = group_data_files(files, sizes, target_bytes=17 * MIB, max_groups=5)
    assert [group.number for group in groups] == list(range(len(groups))) and len(groups) == 3
    assert [data_file for group in groups for data_file in group.files] == files
    assert [group.label for group in groups] == ["files 1-4 of 12", "files 5-8 of 12", "files 9-12 of 12"]
    assert groups[2].size_bytes == 9000 + 10000 + 11000  # the unlisted file counts 0 bytes
    assert [DataFileGroup.from_dict(group.to_dict()) for group in groups] == groups
    one = group_data_files(files[:1], {}, target_bytes=MIB, max_groups=1)
    assert one[0].label == "file 1 of 1"
    assert group_data_files(files, sizes, target_bytes=17 * MIB, max_groups=5) == groups  # same input, same groups


def test_sizes_come_from_listing_the_folders_of_the_data_files(aws):
    s3 = aws.client("s3")
    s3.create_bucket(Bucket="bucket-b")
    full = [f"raw/AWSDynamoDB/111-aa/data/{name}.json.gz" for name in ("a", "b", "c")]
    incremental = "raw/AWSDynamoDB/data/d.json.gz"  # the folder incremental exports share
    for number, key in enumerate([*full, incremental, "raw/AWSDynamoDB/data/other-export.json.gz",
                                  "raw/AWSDynamoDB/111-aa/manifest-files.json"]):
        s3.put_object(Bucket="bucket-b", Key=key, Body=b"x" * (10 + number))
    listed = [DataFile(index, key, 1, "", "") for index, key in enumerate([*full, incremental])]
    missing = DataFile(4, "raw/AWSDynamoDB/111-aa/data/gone.json.gz", 1, "", "")
    sizes = data_file_sizes(s3, "bucket-b", [*listed, missing])
    assert sizes == {full[0]: 10, full[1]: 11, full[2]: 12, incremental: 13}


def test_a_shared_incremental_folder_is_not_listed_to_its_end(aws, monkeypatch):
    """The folder incremental exports share grows with each one kept: listing stops once it has cost as
    many requests as the files still to find, and those are asked for by HeadObject."""
    s3 = aws.client("s3")
    s3.create_bucket(Bucket="bucket-c")
    shared = "raw/AWSDynamoDB/data/"
    others = [f"{shared}{index:03d}-older-export.json.gz" for index in range(60)]
    wanted = [f"{shared}050-ours.json.gz", f"{shared}zzz-ours.json.gz"]  # after 50 and all 60 others
    for key in [*others, *wanted]:
        s3.put_object(Bucket="bucket-c", Key=key, Body=key.encode())
    full = [f"raw/AWSDynamoDB/222-bb/data/{index:02d}.json.gz" for index in range(25)]
    for key in full:
        s3.put_object(Bucket="bucket-c", Key=key, Body=b"x")
    calls: list[tuple[str, str]] = []
    s3.meta.events.register("before-parameter-build.s3.*", lambda model, params, **_: calls.append(
        (model.name, params.get("Key") or params.get("Prefix", ""))))
    monkeypatch.setattr(grouping, "LIST_PAGE_KEYS", 10)  # "a page" is worth 10 keys here
    gone = f"{shared}gone.json.gz"
    files = [DataFile(index, key, 1, "", "") for index, key in enumerate([*wanted, gone, *full])]

    sizes = data_file_sizes(s3, "bucket-c", files)

    assert sizes == {**{key: len(key) for key in wanted}, **{key: 1 for key in full}}
    # The shared folder: 30 keys listed (3 "pages" for 3 files still to find), then one HEAD each
    # (the missing one answers 404 and is left out); the full export's folder: listed, no HEAD.
    assert calls == [("ListObjectsV2", "raw/AWSDynamoDB/222-bb/data/"), ("ListObjectsV2", shared),
                     ("HeadObject", wanted[0]), ("HeadObject", gone), ("HeadObject", wanted[1])]


# --------------------------------------------------------------------------- the two settings


def test_the_settings_default_to_256_tasks_of_256_mib():
    settings = load_settings(lambda name: None)
    assert (settings.flatten_max_tasks, settings.flatten_target_bytes) == (256, 256 * MIB)
    assert (DEFAULT_MAX_GROUPS, DEFAULT_TARGET_BYTES) == (256, 256 * MIB)
    chosen = load_settings({"jit_audit_flatten_max_tasks": " 12 ", "jit_audit_flatten_target_mib": "64"}.get)
    assert (chosen.flatten_max_tasks, chosen.flatten_target_bytes) == (12, 64 * MIB)


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("jit_audit_flatten_max_tasks", "0", "must be between 1 and 65536, got 0"),
        ("jit_audit_flatten_max_tasks", "many", "must be a whole number, got 'many'"),
        ("jit_audit_flatten_max_tasks", "2.5", "must be a whole number"),
        ("jit_audit_flatten_target_mib", "0", "must be between 1 and 65536, got 0"),
        ("jit_audit_flatten_target_mib", "65537", "must be between 1 and 65536"),
        ("jit_audit_flatten_target_mib", "256MiB", "must be a whole number, got '256MiB'"),
    ],
)
def test_bad_flatten_settings_are_refused_naming_the_variable(variable, value, message):
    with pytest.raises(SettingsError, match=message) as caught:
        load_settings({variable: value}.get)
    assert str(caught.value).startswith(f"Variable {variable} ")

"""An export's data files in groups, one group per flatten task.

Airflow maps at most ``[core] max_map_length`` tasks (1,024 by default) from one list, and each
mapped task costs seconds of scheduling and start-up whatever it does, so one task per data file
fails on large exports and is slow on exports of many small files. The flatten step therefore
takes the data files in groups: as many groups as the export needs to give each about
``target_bytes``, never more than ``max_groups`` (nor more than there are files).

A file weighs its size plus :data:`FILE_OPEN_COST_BYTES`, what a task could have read in the time
one more file costs it (a GET and a staged upload, each tens of milliseconds): Spark packs files
into partitions the same way (``spark.sql.files.openCostInBytes``, also 4 MiB). So 3,000 tiny files
make about 47 groups at the default 256 MiB, not one task of 6,000 round trips one after another.

Groups are contiguous runs of the files in ``manifest-files.json``'s order, cut where the running
weight crosses the next of ``k`` equal shares (a file belongs to the share its midpoint falls in).
So the grouping depends only on the export (its file order and sizes) and the two settings: a
retry or a re-run of the same export gets the same groups, and each group's weight stays within
one file of an equal share. The staged parts are one per data file whatever the grouping, so the
published bytes do not depend on it either.

DynamoDB's ``manifest-files.json`` gives each file's ``itemCount``, ``md5Checksum``, ``etag`` and
key, not its size: :func:`data_file_sizes` takes the sizes from listing the folder(s) that hold
the files (one ListObjectsV2 page per 1,000 objects there).

Plain Python and a boto3 S3 client; no Airflow import.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from jit_audit.manifest import DataFile

MIB = 1024 * 1024
#: The defaults of jit_audit_flatten_max_tasks and jit_audit_flatten_target_mib (jit_audit.settings).
DEFAULT_MAX_GROUPS = 256
DEFAULT_TARGET_BYTES = 256 * MIB
#: What one more file costs a task, in bytes it could have read meanwhile (Spark's openCostInBytes).
FILE_OPEN_COST_BYTES = 4 * MIB


def group_bounds(
    sizes: Sequence[int], *, target_bytes: int, max_groups: int, file_cost_bytes: int = FILE_OPEN_COST_BYTES
) -> list[range]:
    """Split ``len(sizes)`` files, in order, into contiguous, non-empty ranges of indexes.

    Each file weighs its size plus ``file_cost_bytes``. The number of ranges is
    ``ceil(total weight / target_bytes)`` clamped to ``[1, min(max_groups, n)]`` (fewer when a file
    heavier than a share leaves a share empty), so it never exceeds ``max_groups``. Each range
    weighs at most an equal share plus one file. If every weight is 0, files weigh the same.
    """
    if target_bytes < 1 or max_groups < 1:
        raise ValueError(f"target_bytes and max_groups must be at least 1, got {target_bytes} and {max_groups}")
    if file_cost_bytes < 0 or any(size < 0 for size in sizes):
        raise ValueError("a file size or file cost cannot be negative")
    count = len(sizes)
    if count == 0:
        return []
    weights = [size + file_cost_bytes for size in sizes]
    total = sum(weights)
    wanted = -(-total // target_bytes)  # ceil
    groups = max(1, min(max_groups, count, wanted))
    if not total:
        weights, total = [1] * count, count
    bounds: list[range] = []
    start = 0
    current = 0
    before = 0  # the weight of the files before this one
    for index, weight in enumerate(weights):
        # The share holding this file's midpoint, in integers: floor((before + weight / 2) * groups / total).
        share = min(groups - 1, (2 * before + weight) * groups // (2 * total))
        if share != current and index > start:
            bounds.append(range(start, index))
            start = index
        current = share
        before += weight
    bounds.append(range(start, count))
    return bounds


@dataclass(frozen=True)
class DataFileGroup:
    """The data files one flatten task takes: a contiguous run of the export's files."""

    #: The group's position (0-based): the flatten task's map index.
    number: int
    files: tuple[DataFile, ...]
    #: The files' bytes in S3 (0 for a file S3 did not list: its flatten fails naming it).
    size_bytes: int
    #: How many data files the whole export has (for the label).
    export_files: int

    @property
    def label(self) -> str:
        """``files 13-24 of 3000`` (1-based positions in ``manifest-files.json``), ``file 7 of 12``."""
        first, last = self.files[0].index + 1, self.files[-1].index + 1
        if first == last:
            return f"file {first} of {self.export_files}"
        return f"files {first}-{last} of {self.export_files}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "label": self.label,
            "size_bytes": self.size_bytes,
            "export_files": self.export_files,
            "files": [data_file.to_dict() for data_file in self.files],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DataFileGroup:
        return cls(
            number=data["number"],
            files=tuple(DataFile.from_dict(data_file) for data_file in data["files"]),
            size_bytes=data["size_bytes"],
            export_files=data["export_files"],
        )


def group_data_files(
    files: Sequence[DataFile], sizes: Mapping[str, int], *, target_bytes: int, max_groups: int
) -> list[DataFileGroup]:
    """The export's files (in manifest order) in groups; ``sizes`` maps data file keys to bytes."""
    file_sizes = [sizes.get(data_file.key, 0) for data_file in files]
    return [
        DataFileGroup(
            number=number,
            files=tuple(files[index] for index in bounds),
            size_bytes=sum(file_sizes[index] for index in bounds),
            export_files=len(files),
        )
        for number, bounds in enumerate(group_bounds(file_sizes, target_bytes=target_bytes, max_groups=max_groups))
    ]


#: Keys a ListObjectsV2 page holds (S3's default and maximum): what one listing request is worth.
LIST_PAGE_KEYS = 1000


def data_file_sizes(client: Any, bucket: str, files: Sequence[DataFile]) -> dict[str, int]:
    """The size in S3 of each listed data file: from listing its folder, or from HeadObject.

    A full export's files share ``.../AWSDynamoDB/<export id>/data/``, which holds nothing else:
    listing it (a request per 1,000 files) finds them all. An incremental export's sit in the
    ``.../AWSDynamoDB/data/`` folder every incremental export to that prefix shares, which grows with
    each one kept: listing stops, for each folder, once it has cost as many requests as the files
    still to find, and the rest are asked for one by one (HeadObject), so the cost stays near the
    smaller of the two however many exports the folder holds. A file S3 does not have is left out
    (its flatten task reports it missing).
    """
    # Imported here: botocore is not for what only needs this module's constants (the CLI).
    from jit_audit.s3 import list_objects, object_size

    by_folder: dict[str, set[str]] = {}
    for data_file in files:
        folder = data_file.key.rpartition("/")[0] + "/" if "/" in data_file.key else ""
        by_folder.setdefault(folder, set()).add(data_file.key)
    sizes: dict[str, int] = {}
    for folder, remaining in sorted(by_folder.items()):
        listed, ask_for_the_rest = 0, False
        for entry in list_objects(client, bucket, folder):
            listed += 1
            if entry["Key"] in remaining:
                sizes[entry["Key"]] = int(entry["Size"])
                remaining.discard(entry["Key"])
            if not remaining:
                break
            if listed % LIST_PAGE_KEYS == 0 and listed // LIST_PAGE_KEYS >= len(remaining):
                ask_for_the_rest = True
                break
        # A folder listed to its end holds none of what remains: those files are missing.
        for key in sorted(remaining) if ask_for_the_rest else ():
            size = object_size(client, bucket, key)
            if size is not None:
                sizes[key] = size
    return sizes


__all__ = [
    "DEFAULT_MAX_GROUPS",
    "DEFAULT_TARGET_BYTES",
    "FILE_OPEN_COST_BYTES",
    "LIST_PAGE_KEYS",
    "MIB",
    "DataFileGroup",
    "data_file_sizes",
    "group_bounds",
    "group_data_files",
]

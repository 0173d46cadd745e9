"""DynamoDB export manifests: what an export says it wrote, parsed strictly.

An export writes ``manifest-summary.json`` (one JSON object: ``itemCount``, ``exportTime``,
``manifestFilesS3Key``, ...) and ``manifest-files.json`` (JSON Lines, one object per data file:
``itemCount``, ``md5Checksum``, ``etag``, ``dataFileS3Key``). These are the counts every later step is
reconciled against.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any


class ManifestError(ValueError):
    """A manifest is malformed or disagrees with itself (one S3 lacks or refuses is ``ObjectUnreadable``)."""


#: What to check when an object of a COMPLETED export is not in S3: DynamoDB wrote it, so it was removed.
EXPORT_FILES_GONE = (
    "the export is incomplete: its files were deleted, or a lifecycle rule on the export prefix expired them "
    "(check the bucket's lifecycle rules and who deleted them); no retry brings them back, the data must be "
    "exported again"
)


@dataclass(frozen=True)
class DataFile:
    """One ``data/*.json.gz`` file of an export, as ``manifest-files.json`` lists it."""

    index: int
    key: str
    item_count: int
    md5_checksum: str
    etag: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DataFile:
        return cls(**data)


@dataclass(frozen=True)
class ManifestSummary:
    export_arn: str
    #: The snapshot's time; for an incremental export, the end of its window (exportToTime).
    export_time: str
    item_count: int
    manifest_files_key: str
    output_format: str
    export_type: str
    export_from_time: str | None = None
    output_view: str | None = None


def _require(document: dict[str, Any], field: str, kind: type, where: str) -> Any:
    value = document.get(field)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ManifestError(f"{where}: field {field!r} is missing or not a {kind.__name__}")
    return value


def _json_object(text: bytes | str, where: str) -> dict[str, Any]:
    try:
        document = json.loads(text)
    except ValueError as error:
        raise ManifestError(f"{where}: not valid JSON ({error})") from None
    if not isinstance(document, dict):
        raise ManifestError(f"{where}: expected a JSON object")
    return document


def parse_summary(text: bytes | str, where: str = "manifest-summary.json") -> ManifestSummary:
    document = _json_object(text, where)
    export_type = document.get("exportType", "FULL_EXPORT")
    incremental = export_type == "INCREMENTAL_EXPORT"
    summary = ManifestSummary(
        export_arn=_require(document, "exportArn", str, where),
        export_time=_require(document, "exportToTime" if incremental else "exportTime", str, where),
        item_count=_require(document, "itemCount", int, where),
        manifest_files_key=_require(document, "manifestFilesS3Key", str, where),
        output_format=document.get("outputFormat", "DYNAMODB_JSON"),
        export_type=export_type,
        export_from_time=_require(document, "exportFromTime", str, where) if incremental else None,
        output_view=document.get("outputView") if incremental else None,
    )
    if summary.output_format != "DYNAMODB_JSON":
        raise ManifestError(f"{where}: outputFormat {summary.output_format!r} is not DYNAMODB_JSON")
    return summary


def parse_files(text: bytes | str, where: str = "manifest-files.json") -> list[DataFile]:
    """Parse ``manifest-files.json``, in its own order, which fixes the part numbers."""
    if isinstance(text, bytes):
        try:
            text = text.decode()
        except UnicodeDecodeError as error:
            raise ManifestError(f"{where}: not valid UTF-8 (byte offset {error.start})") from None
    files: list[DataFile] = []
    # JSON Lines ends lines with \n only: str.splitlines() would also cut at U+2028, U+0085 and other
    # characters a key (so a dataFileS3Key) may contain.
    for line_number, line in enumerate(text.split("\n"), start=1):
        if not line.strip(" \t\r"):
            continue
        location = f"{where}, line {line_number}"
        document = _json_object(line, location)
        files.append(
            DataFile(
                index=len(files),
                key=_require(document, "dataFileS3Key", str, location),
                item_count=_require(document, "itemCount", int, location),
                md5_checksum=_require(document, "md5Checksum", str, location),
                etag=document.get("etag", ""),
            )
        )
    keys = [data_file.key for data_file in files]
    if len(set(keys)) != len(keys):
        raise ManifestError(f"{where}: lists the same data file twice")
    return files


def check_manifest_totals(summary: ManifestSummary, files: list[DataFile], described_item_count: int | None) -> None:
    """The summary, the per-file counts and DescribeExport's ItemCount must all agree."""
    listed = sum(data_file.item_count for data_file in files)
    if listed != summary.item_count:
        raise ManifestError(
            f"manifest-files.json lists {listed} items but manifest-summary.json says {summary.item_count}"
        )
    if described_item_count is not None and described_item_count != summary.item_count:
        raise ManifestError(
            f"DescribeExport reports ItemCount {described_item_count} but the manifest says {summary.item_count}"
        )

"""One export data file, flattened into one staged part and checked against the export's manifest.

The data file is streamed from S3 (its MD5 taken on the way), flattened line by line into a gzipped
JSON Lines part spooled to a temporary file (its SHA-256 and size taken on the way), and the part
is uploaded to the *staging* prefix only when its MD5 and item count match ``manifest-files.json``.
Memory stays flat; a re-run writes the same bytes to the same key. ``jit_audit.snapshot`` publishes
the staged parts.
"""

from __future__ import annotations

import base64
import hashlib
import io
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from jit_audit.codecs import CODEC_ERRORS, deterministic_gzip_writer, gzip_reader
from jit_audit.flatten import FlattenError, Progress, flatten_stream
from jit_audit.layout import SnapshotLayout
from jit_audit.manifest import EXPORT_FILES_GONE, DataFile
from jit_audit.pseudonymise import Pseudonymiser
from jit_audit.s3 import (
    CHECKSUM_ALGORITHM,
    HashingWriter,
    IntegrityError,
    ObjectUnreadable,
    get_object_explained,
)


class CountMismatch(IntegrityError):
    """Line counts disagree: the snapshot is not published."""


class MissingDataFile(ObjectUnreadable, IntegrityError):
    """A data file the manifest lists is not in S3: the export is incomplete, no retry brings it back."""


@dataclass(frozen=True)
class PartResult:
    """One flattened data file, staged and waiting to be published."""

    index: int
    data_file_key: str
    staging_key: str
    lines: int
    sha256: str
    size_bytes: int
    #: ``Pseudonymiser.describe()`` when actor_email was pseudonymised in this part, else None.
    pseudonymisation: dict[str, str] | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PartResult:
        return cls(**data)


class _HashingReader(io.RawIOBase):
    """A read-only stream that hashes every byte passing through it."""

    def __init__(self, stream: Any) -> None:
        super().__init__()
        self._stream = stream
        self.md5 = hashlib.md5(usedforsecurity=False)
        self.size = 0

    def readinto(self, buffer: Any) -> int:
        data = self._stream.read(len(buffer))
        size = len(data)
        buffer[:size] = data
        self.md5.update(data)
        self.size += size
        return size

    def readable(self) -> bool:
        return True


def flatten_data_file(
    client: Any,
    layout: SnapshotLayout,
    data_file: DataFile,
    *,
    upload_extra_args: dict[str, str] | None = None,
    progress: Callable[[Progress], None] | None = None,
    view: str | None = None,
    pseudonymiser: Pseudonymiser | None = None,
) -> PartResult:
    """Flatten one export data file into a staged part, verifying it against the manifest.

    With a ``pseudonymiser``, actor_email addresses are replaced before any byte reaches the part.
    """
    source = f"s3://{layout.bucket}/{data_file.key}"
    body = get_object_explained(
        client, layout.bucket, data_file.key, missing_error=MissingDataFile, if_missing=EXPORT_FILES_GONE,
        what=f"data file {data_file.index + 1} of the export ({data_file.item_count} items in manifest-files.json)",
    )["Body"]
    reader = _HashingReader(body)
    staging_key = layout.staging_part_key(data_file.index)
    with tempfile.TemporaryFile() as spool:
        writer = HashingWriter(spool)
        try:
            with gzip_reader(reader) as lines, deterministic_gzip_writer(writer) as out:
                if pseudonymiser is None:
                    count = flatten_stream(lines, out.write, source, progress=progress, view=view)
                else:
                    write = pseudonymiser.writer(out.write)
                    count = flatten_stream(lines, write, source, progress=progress, view=view)
                    write.close()
        except CODEC_ERRORS as error:
            raise FlattenError(source, 0, f"cannot decompress ({error})") from None
        md5 = base64.b64encode(reader.md5.digest()).decode()
        if md5 != data_file.md5_checksum:
            raise IntegrityError(
                f"{source}: MD5 {md5} does not match the manifest's md5Checksum {data_file.md5_checksum}; "
                "the data file is not what DynamoDB wrote"
            )
        if count != data_file.item_count:
            raise CountMismatch(f"{source}: read {count} items but the manifest lists {data_file.item_count}")
        spool.seek(0)
        extra_args = {**(upload_extra_args or {}), "ChecksumAlgorithm": CHECKSUM_ALGORITHM}
        client.upload_fileobj(spool, layout.bucket, staging_key, ExtraArgs=extra_args)
    return PartResult(
        index=data_file.index,
        data_file_key=data_file.key,
        staging_key=staging_key,
        lines=count,
        sha256=writer.sha256.hexdigest(),
        size_bytes=writer.size,
        pseudonymisation=None if pseudonymiser is None else pseudonymiser.describe(),
    )


__all__ = ["CountMismatch", "MissingDataFile", "PartResult", "flatten_data_file"]

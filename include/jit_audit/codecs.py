"""The gzip codecs every step uses: ISA-L (the same gzip format as zlib, several times faster).

Parts are written without a file name or timestamp in the gzip header, so the same content always
gives the same bytes: re-running a date republishes byte-identical parts.
"""

from __future__ import annotations

from typing import Any

from isal import igzip, isal_zlib

#: ISA-L compression level of the parts (0-3); 2 is within 1% of zlib -6's size here.
OUTPUT_LEVEL = 2

#: Errors a damaged gzip stream raises, besides EOFError and OSError.
CODEC_ERRORS: tuple[type[BaseException], ...] = (EOFError, OSError, isal_zlib.error)  # type: ignore[assignment]


def deterministic_gzip_writer(stream: Any) -> Any:
    """gzip with no name and no timestamp in its header, so equal input gives equal bytes."""
    return igzip.IGzipFile(filename="", mode="wb", fileobj=stream, mtime=0, compresslevel=OUTPUT_LEVEL)


def gzip_reader(stream: Any) -> Any:
    """Decompress a gzip stream (several members allowed, as gzip(1) does)."""
    return igzip.IGzipFile(fileobj=stream, mode="rb")

"""The gzip codecs every step uses: ISA-L (the same gzip format as zlib, several times faster).

Parts are written without a file name or timestamp in the gzip header, and the compressor is fed in
blocks of exactly ``BLOCK_BYTES`` whatever the sizes of the writes (a deflate stream depends on how
its input was cut), so the same content always gives the same bytes: re-running a date, on the C
fast path or the Python one, reading S3 in any piece size, republishes byte-identical parts.
"""

from __future__ import annotations

from typing import Any

from isal import igzip, isal_zlib

#: ISA-L compression level of the parts (0-3); 2 is within 1% of zlib -6's size here.
OUTPUT_LEVEL = 2

#: Errors a damaged gzip stream raises, besides EOFError and OSError.
CODEC_ERRORS: tuple[type[BaseException], ...] = (EOFError, OSError, isal_zlib.error)  # type: ignore[assignment]


#: The compressor's input comes in blocks of exactly this size (the last one shorter): small enough
#: that an ad-hoc scan's 64 open parts hold little memory, large enough to keep calls few.
BLOCK_BYTES = 1 << 18


class _BlockWriter:
    """A gzip writer whose bytes depend only on the content written, not on how the writes were cut."""

    def __init__(self, stream: Any) -> None:
        self._gzip = igzip.IGzipFile(filename="", mode="wb", fileobj=stream, mtime=0, compresslevel=OUTPUT_LEVEL)
        self._pending = bytearray()

    def write(self, data: bytes | bytearray | memoryview) -> int:
        if self._gzip.closed:
            raise ValueError("write to a closed gzip writer")
        # Whole blocks go to the compressor straight from ``data``; only a block's start or the tail
        # waits in ``_pending`` (at most one block): copying every write through a growing buffer
        # cost a page fault per 4 KiB of output.
        with memoryview(data) as view:
            size, offset, pending = len(view), 0, self._pending
            if pending:
                offset = min(BLOCK_BYTES - len(pending), size)
                pending += view[:offset]
                if len(pending) < BLOCK_BYTES:
                    return size
                self._gzip.write(pending)
                pending.clear()
            whole = offset + (size - offset) - (size - offset) % BLOCK_BYTES
            for start in range(offset, whole, BLOCK_BYTES):
                self._gzip.write(view[start : start + BLOCK_BYTES])
            pending += view[whole:]
        return size

    def close(self) -> None:
        """Compress what is pending and write the gzip trailer (a second call does nothing)."""
        if self._gzip.closed:
            return
        if self._pending:
            self._gzip.write(self._pending)
            self._pending.clear()
        self._gzip.close()

    @property
    def closed(self) -> bool:
        return bool(self._gzip.closed)

    def __enter__(self) -> _BlockWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def deterministic_gzip_writer(stream: Any) -> Any:
    """gzip with no name and no timestamp in its header, fed in fixed blocks: equal content, equal bytes."""
    return _BlockWriter(stream)


def gzip_reader(stream: Any) -> Any:
    """Decompress a gzip stream (several members allowed, as gzip(1) does)."""
    return igzip.IGzipFile(fileobj=stream, mode="rb")

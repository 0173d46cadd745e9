"""Parts are byte-identical for equal content: how the writes were cut never shows in the gzip bytes.

A deflate stream depends on how its input was fed, and the C fast path, the Python path and
different S3 read sizes cut their writes differently; re-running a date must still republish the
same bytes (the manifest's SHA-256 of each part, the ledger).
"""

from __future__ import annotations

import gzip
import io
import os
import random
import subprocess
import sys

from hypothesis import given, settings
from hypothesis import strategies as st

from jit_audit.codecs import BLOCK_BYTES, deterministic_gzip_writer


def _gzip(chunks: list[bytes]) -> bytes:
    buffer = io.BytesIO()
    with deterministic_gzip_writer(buffer) as writer:
        for chunk in chunks:
            writer.write(chunk)
    return buffer.getvalue()


def _cut(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({0, len(data), *(cut % (len(data) + 1) for cut in cuts)})
    return [data[start:end] for start, end in zip(points, points[1:], strict=False)]


CONTENT = b"".join(b'{"request_id":"r-%d","n":%d}\n' % (i, random.Random(i).getrandbits(40)) for i in range(120_000))


@settings(max_examples=25, deadline=None)
@given(cuts=st.lists(st.integers(min_value=0, max_value=len(CONTENT)), max_size=40))
def test_the_same_content_cut_anywhere_gives_the_same_bytes(cuts: list[int]) -> None:
    assert len(CONTENT) > 2 * BLOCK_BYTES
    whole = _gzip([CONTENT])
    cut = _gzip(_cut(CONTENT, cuts))
    assert cut == whole
    assert gzip.decompress(cut) == CONTENT


def test_small_and_empty_outputs() -> None:
    assert gzip.decompress(_gzip([])) == b""
    assert _gzip([b"a", b"", b"bc"]) == _gzip([b"abc"])


def test_the_c_and_python_paths_write_the_same_gzip_bytes(tmp_path) -> None:
    lines = b"".join(b'{"Item":{"request_id":{"S":"r-%d"},"n":{"N":"%d"},"tags":{"SS":["a","b%d"]}}}\n'
                     % (i, i * 7, i) for i in range(60_000))
    source = tmp_path / "export.json.gz"
    source.write_bytes(gzip.compress(lines))
    outputs = []
    for fast in (True, False):
        env = {**os.environ, **({} if fast else {"JIT_AUDIT_NO_SPEEDUPS": "1"})}
        done = subprocess.run([sys.executable, "-m", "jit_audit.cli", "flatten", str(source), "--gzip"],
                              capture_output=True, env=env, timeout=300)
        assert done.returncode == 0, done.stderr.decode()
        outputs.append(done.stdout)
    assert gzip.decompress(outputs[0]).count(b"\n") == 60_000
    assert outputs[0] == outputs[1]

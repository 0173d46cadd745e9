"""The C fast path of the flattener is built and used here, and the package works without it.

``jit_audit._speedups`` is an optional extension (setup.py: ``optional=True``, ``-Werror``), so a
missing compiler or a compiler warning leaves the package installed on its exact Python path. That
is right for users, but in this suite it would make every "fast path" test run the Python path
twice and pass: so a test run without the extension fails here, saying why.
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from jit_audit import flatten

REPO = Path(__file__).resolve().parents[2]
SOURCE = REPO / "include" / "jit_audit" / "_speedups.c"

NOT_BUILT = (
    "jit_audit._speedups did not build: the C fast path is missing, so the fast-path tests would run "
    "the Python path twice; see the compiler output of `pip install -e .` (run `.venv/bin/pip install "
    "-v --no-deps -e .`: warnings are errors, -Werror in setup.py)"
)

EXPORT = (
    b'{"Item":{"request_id":{"S":"r1"},"ok":{"BOOL":true},"no":{"BOOL":false},"gone":{"NULL":true},'
    b'"n":{"N":"1.50"},"ns":{"NS":["10","9"]},"tags":{"SS":["b","a"]},'
    b'"event_time_event_id":{"S":"2026-01-15T10:00:00Z#e1"}}}\n'
    b'{"Item":{"request_id":{"S":"r2"},"details":{"M":{"l":{"L":[{"N":"+1"},{"B":"AAE="}]}}}}}\n'
)
EXPECTED = (
    b'{"request_id":"r1","ok":true,"no":false,"gone":null,"n":1.50,"ns":[9,10],"tags":["a","b"],'
    b'"event_time_event_id":"2026-01-15T10:00:00Z#e1","event_time":"2026-01-15T10:00:00Z","event_id":"e1"}\n'
    b'{"request_id":"r2","details":{"l":[1,"AAE="]}}\n'
)


def require_fast_path() -> None:
    """Fail (never skip) unless flatten_stream really uses the compiled extension."""
    try:
        speedups = importlib.import_module("jit_audit._speedups")
    except ImportError as error:
        missing = f"{NOT_BUILT}. ImportError: {error}"
    else:
        missing = ""
    if missing:
        pytest.fail(missing, pytrace=False)
    if not flatten.FAST_PATH:
        pytest.fail(
            f"{flatten.NO_SPEEDUPS_ENV} is set in the environment, so flatten_stream runs the Python path "
            "only and the fast-path tests would run it twice: unset it to run the tests",
            pytrace=False,
        )
    assert flatten._flatten_into is speedups.flatten_into


def test_the_c_fast_path_is_built_and_used():
    require_fast_path()


def test_the_built_fast_path_is_not_older_than_its_source():
    """An in-place build (``pip install -e .``) must be redone after _speedups.c changes."""
    require_fast_path()
    built = Path(importlib.import_module("jit_audit._speedups").__file__ or "")
    if built.parent == SOURCE.parent and SOURCE.exists():
        assert built.stat().st_mtime >= SOURCE.stat().st_mtime, (
            f"{built.name} is older than _speedups.c: the tests would check stale C code; "
            "rebuild it with `.venv/bin/pip install --no-deps -e .`"
        )


def run_python(code: str, *, stdin: bytes = b"", **env: str) -> subprocess.CompletedProcess:
    environment = {name: value for name, value in os.environ.items() if name != flatten.NO_SPEEDUPS_ENV}
    environment.update(env)
    return subprocess.run([sys.executable, "-c", code], input=stdin, capture_output=True, env=environment)


def test_the_package_flattens_exactly_when_the_extension_cannot_be_imported():
    """What a machine without a compiler gets: the import fails and the Python path does everything."""
    code = (
        "import sys\n"
        "sys.modules['jit_audit._speedups'] = None  # import jit_audit._speedups now raises ImportError\n"
        "from jit_audit import flatten\n"
        "assert flatten._flatten_into is None and not flatten.FAST_PATH\n"
        "out = []\n"
        "count = flatten.flatten_stream(sys.stdin.buffer, lambda data: out.append(bytes(data)), 'stdin')\n"
        "assert count == 2, count\n"
        "sys.stdout.buffer.write(b''.join(out))\n"
    )
    result = run_python(code, stdin=EXPORT)
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout == EXPECTED


def test_the_environment_variable_turns_the_fast_path_off_and_the_output_is_the_same():
    probe = "from jit_audit import flatten; print(flatten.FAST_PATH)"
    assert run_python(probe, **{flatten.NO_SPEEDUPS_ENV: "1"}).stdout == b"False\n"
    assert run_python(probe, **{flatten.NO_SPEEDUPS_ENV: "0"}).stdout == run_python(probe).stdout  # 0: as unset
    cli = "import sys; from jit_audit.cli import main; sys.exit(main(['flatten']))"
    python_only = run_python(cli, stdin=EXPORT, **{flatten.NO_SPEEDUPS_ENV: "1"})
    assert python_only.returncode == 0, python_only.stderr.decode()
    assert python_only.stdout == EXPECTED
    default = run_python(cli, stdin=EXPORT)
    assert default.returncode == 0, default.stderr.decode()
    assert default.stdout == EXPECTED

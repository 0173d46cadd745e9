"""The flattener's tests once more, on the C fast path built with AddressSanitizer and UBSan.

``include/jit_audit/_speedups.c`` is compiled with ``gcc -fsanitize=address,undefined,pointer-subtract
-fno-omit-frame-pointer -fno-sanitize-recover=all -g -O1`` into a temporary copy of the package, which
shadows the installed one on PYTHONPATH, and ``tests/core/test_flatten.py``,
``tests/core/test_flatten_properties.py`` and ``tests/core/test_flatten_fuzz.py`` run against it in a
subprocess with libasan preloaded (Python itself is not instrumented). Settings that matter:

* ``pointer-subtract`` with ``detect_invalid_pointer_pairs=1``: ASan reports subtracting pointers
  into two different objects. ``emit_token`` once did that with the constants "true", "false" and
  "null" (and then read 16 bytes from them); whether that over-read also happened, and could be
  seen, depended on where the allocator had put the input buffer, so only this check finds the bug
  every time.
* ``PYTHONMALLOC=malloc``: every Python object is its own malloc block, so ASan knows the exact end
  of each input line and output buffer (pymalloc's pools would hide small over-reads).
* ``log_path``: reports go to files read here, because pytest's capture (and the CLI tests' own
  subprocesses) would otherwise swallow the report of a process that aborts.
* ``JIT_AUDIT_SANITIZER_EXAMPLES`` (default 40) hypothesis examples per property and
  ``JIT_AUDIT_SANITIZER_FUZZ_SECONDS`` (default 10) of differential fuzzing, to keep this test well
  under a minute; the ordinary run does 300 examples and 40 s.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from jit_audit.flatten import NO_SPEEDUPS_ENV

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "include" / "jit_audit"
SANITIZE = [
    "-fsanitize=address,undefined,pointer-subtract",
    "-fno-omit-frame-pointer",
    "-fno-sanitize-recover=all",
    "-g",
    "-O1",
    "-std=c99",
]
TESTS = ["tests/core/test_flatten.py", "tests/core/test_flatten_properties.py", "tests/core/test_flatten_fuzz.py"]
MARKER = "sanitized jit_audit._speedups:"

# Runs in the subprocess: say which extension (and which sanitizer runtime) this interpreter has,
# then run pytest in the same interpreter.
BOOTSTRAP = f"""
import sys
import jit_audit._speedups
import jit_audit.flatten
with open("/proc/self/maps") as maps:
    asan = any("libasan" in line for line in maps)
used = jit_audit.flatten._flatten_into is jit_audit._speedups.flatten_into
print({MARKER!r}, jit_audit._speedups.__file__, "used" if used else "NOT USED", "asan" if asan else "NO ASAN", flush=True)
import pytest
sys.exit(pytest.main(sys.argv[1:]))
"""


def gcc_and_libasan() -> tuple[str, str]:
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.fail("gcc is needed to build the C fast path and to run its tests under the sanitizers", pytrace=False)
    libasan = subprocess.run([gcc, "-print-file-name=libasan.so"], capture_output=True, text=True).stdout.strip()
    if not os.path.isabs(libasan) or not os.path.exists(libasan):
        pytest.fail(f"{gcc} has no libasan.so (on Debian it comes with libgcc-<version>-dev)", pytrace=False)
    return gcc, libasan


def build_sanitized_package(gcc: str, into: Path) -> Path:
    """A copy of the jit_audit package whose _speedups is the sanitized build; returns the .so."""
    shutil.copytree(PACKAGE, into / "jit_audit", ignore=shutil.ignore_patterns("*.so", "*.c", "__pycache__"))
    module = into / "jit_audit" / f"_speedups{sysconfig.get_config_var('EXT_SUFFIX')}"
    paths = sysconfig.get_paths()
    includes = [f"-I{path}" for path in dict.fromkeys([paths["include"], paths["platinclude"]])]
    argv = [gcc, "-shared", "-fPIC", *SANITIZE, *includes, str(PACKAGE / "_speedups.c"), "-o", str(module)]
    compiled = subprocess.run(argv, capture_output=True, text=True)
    assert compiled.returncode == 0, f"{' '.join(argv)} failed:\n{compiled.stderr}"
    return module


def test_flatten_tests_pass_with_the_fast_path_under_address_and_undefined_behaviour_sanitizers(tmp_path):
    gcc, libasan = gcc_and_libasan()
    module = build_sanitized_package(gcc, tmp_path / "site")
    logs = tmp_path / "sanitizer"
    env = {name: value for name, value in os.environ.items() if name != NO_SPEEDUPS_ENV}
    env.update(
        PYTHONPATH=os.pathsep.join(filter(None, [str(tmp_path / "site"), os.environ.get("PYTHONPATH")])),
        PYTHONMALLOC="malloc",
        LD_PRELOAD=libasan,
        ASAN_OPTIONS=f"detect_leaks=0:abort_on_error=1:detect_invalid_pointer_pairs=1:log_path={logs}",
        UBSAN_OPTIONS=f"halt_on_error=1:print_stacktrace=1:log_path={logs}",
        JIT_AUDIT_PROPERTY_EXAMPLES=os.environ.get("JIT_AUDIT_SANITIZER_EXAMPLES", "40"),
        JIT_AUDIT_FUZZ_SECONDS=os.environ.get("JIT_AUDIT_SANITIZER_FUZZ_SECONDS", "10"),
    )
    argv = [sys.executable, "-c", BOOTSTRAP, "-q", "-p", "no:cacheprovider", "-x", *TESTS]
    try:
        result = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    except subprocess.TimeoutExpired as timeout:
        pytest.fail(f"the sanitized test run took over {timeout.timeout} s:\n{timeout.stdout!r}", pytrace=False)
    reports = "\n".join(log.read_text(errors="replace") for log in sorted(tmp_path.glob("sanitizer.*")))
    output = result.stdout + result.stderr
    summary = (
        f"exit code {result.returncode}\n--- sanitizer reports ---\n{reports[:12000] or '(none)'}\n"
        f"--- test output (end) ---\n{output[-6000:]}"
    )

    assert f"{MARKER} {module} used asan" in result.stdout, f"the sanitized extension was not the one tested\n{summary}"
    assert "ERROR: AddressSanitizer" not in reports + output, summary
    assert "runtime error:" not in reports + output, summary
    assert not reports, summary
    assert result.returncode == 0, summary

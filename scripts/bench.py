"""`make bench`: flattening speed and memory side by side with the baselines, and DAG parse cost.

For an export of N realistic items (default 200,000; `--items 2000000` for the large run), each
pipeline runs as its own process and is measured by the kernel (wait4: user+system CPU, peak RSS
of the largest process) and a wall clock:

1. the runbook:  zcat export.json.gz | python3 convert.py | gzip > out.jsonl.gz
   (convert.py copied verbatim from the runbook)
2. boto3's TypeDeserializer + json, with gzip.open: what most people would write instead
3. the floor: decompress and recompress the same bytes with our codecs (ISA-L), nothing else
4. jit-audit flatten --gzip
5. the same command with its C fast path off (JIT_AUDIT_NO_SPEEDUPS=1): the exact Python path
   alone, what a machine without a C compiler gets; shows what the C path buys (first size only)

Every pipeline's output is checked to have one line per item, and row 5's to decompress to the
same bytes as row 4's. Targets: our CPU <= 0.25x the runbook's and <= 1.5x the floor's; our peak RSS < 100 MiB at any
size; row 4 really runs the C fast path. Row 5 has no target.

Then each DAG file's parse time (bench_parse.py), a Scan export against the runbook's loop
(bench_scan.py) and the DAG row (bench_dag.py): 2,000,000 items in 200 data files through the whole
export DAG on the LocalExecutor stack, from the export's completion to the snapshot's _SUCCESS,
against `jit-audit flatten` on the same files (target: within 2x). ``--dag-only`` runs just that row.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "scripts"))
PYTHON = sys.executable
BIN = Path(PYTHON).parent

# The runbook's convert.py, verbatim.
RUNBOOK_CONVERT = '''#!/usr/bin/env python3
import json
import sys

for line in sys.stdin:
    record = json.loads(line)
    item = record.get("Item", {})
    flat = {}
    for key, value in item.items():
        for type_key, type_value in value.items():
            flat[key] = type_value
    print(json.dumps(flat))
'''

# What most people write instead: boto3's deserializer, json, and gzip.open.
TYPE_DESERIALIZER = '''import base64, gzip, json, sys
from decimal import Decimal
from boto3.dynamodb.types import Binary, TypeDeserializer

deserializer = TypeDeserializer()


def default(value):
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, set):
        return sorted(value, key=str)
    if isinstance(value, Binary):
        return base64.b64encode(value.value).decode()
    raise TypeError(type(value))


with gzip.open(sys.argv[1], "rt") as source, gzip.open(sys.argv[2], "wt") as out:
    for line in source:
        item = json.loads(line)["Item"]
        plain = {name: deserializer.deserialize(value) for name, value in item.items()}
        out.write(json.dumps(plain, default=default) + "\\n")
'''

# The floor: the same decompress + recompress our flattener does, without flattening.
FLOOR = '''import sys
from jit_audit.codecs import deterministic_gzip_writer, gzip_reader

with open(sys.argv[1], "rb") as raw_in, gzip_reader(raw_in) as source, open(sys.argv[2], "wb") as raw_out:
    with deterministic_gzip_writer(raw_out) as out:
        buffer = bytearray(1 << 20)
        view = memoryview(buffer)
        while read := source.readinto(buffer):
            out.write(view[:read])
'''


def measure(
    argv: list[str], *, stdin: Path | None = None, stdout: Path | None = None, env: dict[str, str] | None = None
) -> dict[str, float]:
    """Run one pipeline; CPU and peak RSS come from the kernel's accounting of the process tree.

    A child's peak RSS includes what it shared with this process when it was started, so this
    process stays small: it generates, reads and counts nothing itself (see ``helper``).
    """
    stdin_file = open(stdin, "rb") if stdin else subprocess.DEVNULL
    stdout_file = open(stdout, "wb") if stdout else subprocess.DEVNULL
    try:
        started = time.perf_counter()
        process = subprocess.Popen(argv, stdin=stdin_file, stdout=stdout_file, env=env)
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
    finally:
        for handle in (stdin_file, stdout_file):
            if hasattr(handle, "close"):
                handle.close()  # type: ignore[union-attr]
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"{argv[:3]} failed with exit code {process.returncode}")
    return {"cpu": usage.ru_utime + usage.ru_stime, "wall": wall, "rss_mib": usage.ru_maxrss / 1024}


COUNT = """import sys
from jit_audit.codecs import gzip_reader
lines = size = 0
with open(sys.argv[1], "rb") as raw, gzip_reader(raw) as source:
    while chunk := source.read(1 << 20):
        lines += chunk.count(b"\\n")
        size += len(chunk)
print(lines, size)
"""


def helper(*argv: str, env: dict[str, str] | None = None) -> str:
    """Run a helper in its own process (see ``measure``) and return what it printed."""
    return subprocess.run([PYTHON, *argv], check=True, capture_output=True, text=True, env=env).stdout


OURS = "jit-audit flatten --gzip"
PYTHON_ONLY = "jit-audit flatten --gzip, Python path only"
NO_SPEEDUPS_ENV = "JIT_AUDIT_NO_SPEEDUPS"  # jit_audit.flatten.NO_SPEEDUPS_ENV; this process imports none of ours
FAST_PATH = "from jit_audit import flatten; print(flatten.FAST_PATH)"


def environment(*, fast_path: bool) -> dict[str, str]:
    """The environment of our pipeline: the C fast path on (as installed) or turned off."""
    env = {name: value for name, value in os.environ.items() if name != NO_SPEEDUPS_ENV}
    if not fast_path:
        env[NO_SPEEDUPS_ENV] = "1"
    return env


DIGEST = """import hashlib, sys
from jit_audit.codecs import gzip_reader
digest = hashlib.sha256()
with open(sys.argv[1], "rb") as raw, gzip_reader(raw) as source:
    while chunk := source.read(1 << 20):
        digest.update(chunk)
print(digest.hexdigest())
"""


def content_digest(path: Path) -> str:
    """SHA-256 of a gzip file's decompressed bytes (its gzip bytes depend on how it was written)."""
    return helper("-c", DIGEST, str(path)).strip()


def count_lines(path: Path) -> tuple[int, int]:
    """Lines and decompressed bytes of a gzip file."""
    lines, size = helper("-c", COUNT, str(path)).split()
    return int(lines), int(size)


def run_pipelines(export: Path, items: int, work: Path, skip_slow: bool) -> list[dict]:
    convert = work / "convert.py"
    convert.write_text(RUNBOOK_CONVERT)
    deserializer = work / "type_deserializer.py"
    deserializer.write_text(TYPE_DESERIALIZER)
    floor = work / "floor.py"
    floor.write_text(FLOOR)
    pipelines = []
    if not skip_slow:
        pipelines.append((
            "runbook: zcat | convert.py | gzip",
            # File names travel as positional parameters, never spliced into the script.
            ["bash", "-o", "pipefail", "-c", 'zcat "$1" | "$2" "$3" | gzip > "$4"', "bench", str(export), PYTHON,
             str(convert), str(work / "runbook.jsonl.gz")],
            None, None, work / "runbook.jsonl.gz",
        ))
        pipelines.append((
            "boto3 TypeDeserializer + json",
            [PYTHON, str(deserializer), str(export), str(work / "deserializer.jsonl.gz")],
            None, None, work / "deserializer.jsonl.gz",
        ))
    pipelines.append((
        "floor: ISA-L decompress + recompress",
        [PYTHON, str(floor), str(export), str(work / "floor.json.gz")], None, None, work / "floor.json.gz",
    ))
    flatten = [str(BIN / "jit-audit"), "flatten", "--gzip"]
    pipelines.append((OURS, flatten, export, work / "ours.jsonl.gz", work / "ours.jsonl.gz"))
    if not skip_slow:
        pipelines.append((PYTHON_ONLY, flatten, export, work / "python.jsonl.gz", work / "python.jsonl.gz"))
    results = []
    for name, argv, stdin, stdout, output in pipelines:
        env = environment(fast_path=name != PYTHON_ONLY)
        figures = measure(argv, stdin=stdin, stdout=stdout, env=env)
        lines, _ = count_lines(output)
        if lines != items:
            raise SystemExit(f"{name}: wrote {lines} lines for {items} items")
        figures.update(name=name, items_per_s=items / figures["wall"], lines=lines)
        if name in (OURS, PYTHON_ONLY):  # which path that command took, asked in the same environment
            figures["fast_path"] = helper("-c", FAST_PATH, env=env).strip() == "True"
        results.append(figures)
        print(f"  measured {name}: {figures['cpu']:.2f} s CPU", flush=True)
    if not skip_slow and content_digest(work / "ours.jsonl.gz") != content_digest(work / "python.jsonl.gz"):
        raise SystemExit(f"{PYTHON_ONLY}: its output differs from {OURS}'s")
    return results


def print_table(results: list[dict], items: int, size_mb: float) -> bool:
    by_name = {result["name"]: result for result in results}
    ours = by_name[OURS]
    floor = by_name["floor: ISA-L decompress + recompress"]
    runbook = by_name.get("runbook: zcat | convert.py | gzip")
    python_only = by_name.get(PYTHON_ONLY)
    print(f"\nFlattening {items:,} items ({size_mb:,.0f} MB of DynamoDB JSON, gzipped):\n")
    header = f"{'pipeline':<44} {'CPU s':>7} {'wall s':>7} {'items/s':>11} {'peak RSS MiB':>13} {'CPU/runbook':>12} {'CPU/floor':>10}"
    print(header)
    print("-" * len(header))
    for result in results:
        versus_runbook = f"{result['cpu'] / runbook['cpu']:.3f}x" if runbook else "-"
        print(f"{result['name']:<44} {result['cpu']:>7.2f} {result['wall']:>7.2f} {result['items_per_s']:>11,.0f} "
              f"{result['rss_mib']:>13.1f} {versus_runbook:>12} {result['cpu'] / floor['cpu']:>9.2f}x")
    if python_only:
        print(f"\nThe C fast path: {python_only['cpu'] / ours['cpu']:.1f}x less CPU than the Python path alone "
              f"({python_only['cpu']:.2f} s -> {ours['cpu']:.2f} s), same flattened output.")
    checks = [(f"our peak RSS {ours['rss_mib']:.1f} MiB < 100 MiB", ours["rss_mib"] < 100),
              (f"our CPU {ours['cpu'] / floor['cpu']:.2f}x the floor <= 1.5x", ours["cpu"] <= 1.5 * floor["cpu"]),
              ("our flatten ran its C fast path (jit_audit._speedups built and imported)", ours["fast_path"])]
    if python_only:
        checks.append((f"the Python-only row ran without the C fast path ({NO_SPEEDUPS_ENV}=1)",
                       not python_only["fast_path"]))
    if runbook:
        checks.append((f"our CPU {ours['cpu'] / runbook['cpu']:.3f}x the runbook's <= 0.25x", ours["cpu"] <= 0.25 * runbook["cpu"]))
    print()
    for text, ok in checks:
        print(f"  {'PASS' if ok else 'FAIL'}  {text}")
    return all(ok for _, ok in checks)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, nargs="+", default=[200_000],
                        help="export sizes to run (the baselines run only on the first)")
    parser.add_argument("--no-parse", action="store_true", help="skip the DAG parse-time measurement")
    parser.add_argument("--no-scan", action="store_true", help="skip the Scan export benchmark (bench_scan.py)")
    parser.add_argument("--no-dag", action="store_true",
                        help="skip the DAG row (bench_dag.py: 2,000,000 items through the export DAG on the local stack)")
    parser.add_argument("--dag-only", action="store_true", help="run only the DAG row")
    args = parser.parse_args()
    if args.dag_only and args.no_dag:
        parser.error("--dag-only and --no-dag contradict each other")
    if args.dag_only:
        from bench_dag import main as dag_main

        return dag_main([])
    data = REPO / ".bench"
    data.mkdir(exist_ok=True)
    ok = True
    for position, items in enumerate(args.items):
        export = data / f"export-{items}.json.gz"
        print(f"preparing {export.relative_to(REPO)} ...", flush=True)
        helper(str(REPO / "scripts" / "bench_data.py"), str(export), str(items))
        _, size = count_lines(export)
        with tempfile.TemporaryDirectory(prefix="jit-audit-bench-") as work:
            results = run_pipelines(export, items, Path(work), skip_slow=position > 0)
            ok = print_table(results, items, size / 1e6) and ok
    if not args.no_parse:
        from bench_parse import main as parse_main

        print()
        ok = parse_main([]) == 0 and ok
    if not args.no_scan:
        from bench_scan import main as scan_main

        print()
        ok = scan_main([]) == 0 and ok
    if not args.no_dag:
        from bench_dag import main as dag_main

        print()
        ok = dag_main([]) == 0 and ok
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

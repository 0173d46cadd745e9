"""DAG parse time of each file in dags/, measured the way Airflow 3.3's DAG processor parses it.

How the processor parses a file (airflow/dag_processing/manager.py and processor.py, 3.3):

* The long-lived ``airflow dag-processor`` process has its command, the providers' configuration,
  and a ``DagFileProcessorManager`` (with its in-process execution API: FastAPI, aiohttp, ...)
  loaded. Before starting a file's processor it pre-imports the
  ``airflow.*`` modules the file imports (``_pre_import_airflow_modules``; ``[dag_processor]
  parsing_pre_import_modules``, on by default), then forks (``WatchedSubprocess.start``).
* The fresh child blocks ORM access (``block_orm_access``) and runs ``_parse_file``: the DAG
  version-inflation check, ``BundleDagBag(dag_folder=file, bundle_path=..., bundle_name=...,
  load_op_links=False)`` (which imports the file through ``DagBag.process_file``), and the
  serialization of every DAG it found. That is the file's parse; the manager records its duration.

Here every measurement is a fresh interpreter (nothing the DAG file imports is cached unless the
manager would have it too) that builds the same manager, pre-imports like it and blocks the ORM
like the child, all before the timer starts, then times ``_parse_file`` alone. The
DAG bag's share (importing the file, without the check and the serialization) is shown as well.
An empty DAG (``from airflow.sdk import dag``, no tasks) parsed the same way is the baseline: a file
passes when its median parse time is at most ``--target`` seconds (0.2) above the empty DAG's.

No metadata DB is needed: the processor's child cannot reach it either (ORM access is blocked).

    .venv/bin/python scripts/bench_parse.py [dags/x.py ...] [--repeats 5] [--target 0.2]

``measure(dag_files, repeats)`` returns one dict per file (the empty DAG first) for ``make bench``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
DAGS = REPO / "dags"
PLUGINS = REPO / "plugins"
BUNDLE_NAME = "dags-folder"  # the default bundle: a LocalDagBundle over [core] dags_folder
TARGET_SECONDS = 0.2
EMPTY_DAG_LABEL = "(empty DAG)"
CHILD_TIMEOUT_SECONDS = 300

EMPTY_DAG = textwrap.dedent(
    '''\
    """An empty DAG: the parse-time baseline."""

    from airflow.sdk import dag


    @dag(dag_id="bench_parse_empty", schedule=None)
    def bench_parse_empty():
        pass


    bench_parse_empty()
    '''
)


def _environment(home: Path) -> dict[str, str]:
    """The children's environment: a throwaway AIRFLOW_HOME, this repository's dags/ and plugins/."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("AIRFLOW__", "AIRFLOW_CONN_"))
    }
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(PLUGINS),
            # Never opened (the parse blocks ORM access), but never the developer's DB either.
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
            "PYTHONHASHSEED": "0",
        }
    )
    return env


def _parse_once(
    path: Path, bundle_path: Path, bundle_name: str, env: dict[str, str], out: Path
) -> dict[str, Any]:
    """Run one fresh child that parses ``path`` like the DAG processor; return what it measured."""
    out.unlink(missing_ok=True)
    child = subprocess.run(
        [sys.executable, __file__, "--child", str(path), str(bundle_path), bundle_name, str(out)],
        env=env,
        cwd=str(REPO),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        timeout=CHILD_TIMEOUT_SECONDS,
    )
    if child.returncode != 0 or not out.exists():
        tail = child.stdout.decode(errors="replace").strip().splitlines()[-15:]
        return {"error": f"parse process exited {child.returncode}: " + "\n".join(tail)}
    return json.loads(out.read_text())


def measure(
    dag_files: list[str | Path] | None = None, repeats: int = 5, target: float = TARGET_SECONDS
) -> list[dict]:
    """Parse each file ``repeats`` times (after one untimed warm-up) next to an empty DAG.

    Returns one dict per file, the empty DAG first: ``file``, ``dags``, ``tasks``, ``errors``,
    ``seconds`` (every timed parse), ``median_s``, ``min_s``, ``dagbag_median_s``,
    ``over_empty_s`` and ``over_empty_min_s`` (median and min minus the empty DAG's), ``target_s``
    and ``passed`` (``None`` for the empty DAG itself).
    """
    if repeats < 1:
        raise ValueError("repeats must be at least 1")
    files = [Path(name).resolve() for name in dag_files] if dag_files else sorted(DAGS.glob("*.py"))
    with tempfile.TemporaryDirectory(prefix="jit-audit-bench-parse-") as tmp:
        home = Path(tmp) / "airflow_home"
        home.mkdir()
        empty_bundle = Path(tmp) / "empty_bundle"
        empty_bundle.mkdir()
        empty = empty_bundle / "bench_parse_empty.py"
        empty.write_text(EMPTY_DAG)
        env = _environment(home)
        out = Path(tmp) / "result.json"

        targets = [(EMPTY_DAG_LABEL, empty, empty_bundle, "bench-empty")]
        for path in files:
            try:
                label = str(path.relative_to(REPO))
            except ValueError:
                label = str(path)
            bundle = DAGS if path.parent == DAGS else path.parent
            targets.append((label, path, bundle, BUNDLE_NAME if bundle == DAGS else "bench-files"))

        runs: dict[str, list[dict]] = {label: [] for label, *_ in targets}
        # Warm-up (bytecode caches, airflow.cfg, the OS page cache), then the timed runs, interleaved
        # across files so that drift on a busy machine falls on every file alike.
        for _label, path, bundle, bundle_name in targets:
            _parse_once(path, bundle, bundle_name, env, out)
        for _ in range(repeats):
            for label, path, bundle, bundle_name in targets:
                runs[label].append(_parse_once(path, bundle, bundle_name, env, out))

    rows = [_summarise(label, runs[label], target) for label, *_ in targets]
    baseline = rows[0]
    for row in rows:
        if row is baseline:
            row["over_empty_s"] = row["over_empty_min_s"] = 0.0 if row["median_s"] is not None else None
            row["passed"] = None if not row["errors"] else False
        elif row["median_s"] is None or baseline["median_s"] is None:
            row["over_empty_s"] = row["over_empty_min_s"] = None
            row["passed"] = False
        else:
            row["over_empty_s"] = row["median_s"] - baseline["median_s"]
            row["over_empty_min_s"] = row["min_s"] - baseline["min_s"]
            row["passed"] = not row["errors"] and row["dags"] > 0 and row["over_empty_s"] <= target
    return rows


def _summarise(label: str, runs: list[dict], target: float) -> dict:
    ok = [run for run in runs if "error" not in run]
    errors = sorted(
        {run["error"] for run in runs if "error" in run} | {e for run in ok for e in run["import_errors"]}
    )
    seconds = [run["parse_seconds"] for run in ok]
    return {
        "file": label,
        "dags": ok[0]["dags"] if ok else 0,
        "tasks": ok[0]["tasks"] if ok else 0,
        "errors": errors,
        "seconds": seconds,
        "median_s": statistics.median(seconds) if seconds else None,
        "min_s": min(seconds) if seconds else None,
        "dagbag_median_s": statistics.median(run["dagbag_seconds"] for run in ok) if ok else None,
        "target_s": target,
    }


def format_table(rows: list[dict], repeats: int) -> str:
    def secs(value: float | None, sign: bool = False) -> str:
        return "-" if value is None else (f"{value:+.3f}" if sign else f"{value:.3f}")

    header = ("file", "dags", "tasks", "median s", "min s", "dagbag s", "+empty med", "+empty min", "result")
    body = []
    for row in rows:
        if row["passed"] is None:
            result = "baseline"
        else:
            result = ("PASS" if row["passed"] else "FAIL") + f" (<= +{row['target_s']:.3f})"
        body.append(
            (
                row["file"],
                str(row["dags"]),
                str(row["tasks"]),
                secs(row["median_s"]),
                secs(row["min_s"]),
                secs(row["dagbag_median_s"]),
                "-" if row["passed"] is None else secs(row["over_empty_s"], sign=True),
                "-" if row["passed"] is None else secs(row["over_empty_min_s"], sign=True),
                result,
            )
        )
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header))]

    def line(cells: tuple[str, ...]) -> str:
        return "  ".join(
            cell.ljust(w) if i == 0 else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(cells, widths, strict=True))
        )

    text = [
        f"DAG file parse time, as Airflow's DAG processor parses it: {repeats} fresh processes per file, "
        "processor modules loaded and airflow.* imports pre-imported before the timer; "
        "time = _parse_file (stability check + BundleDagBag + serialization); dagbag = BundleDagBag alone",
        line(header),
        line(tuple("-" * w for w in widths)),
        *(line(cells) for cells in body),
    ]
    for row in rows:
        for error in row["errors"]:
            text.append(f"\n{row['file']}: {error}")
    return "\n".join(text)


# --------------------------------------------------------------------------------------------------
# The child: one parse, exactly as the DAG processor's forked child does it
# --------------------------------------------------------------------------------------------------


def _child(path: str, bundle_path: str, bundle_name: str, out: str) -> None:
    import gc
    import time

    # What the long-lived manager has loaded before it forks a processor for a file: the
    # `airflow dag-processor` command (providers' configuration loaded) and its manager object, whose
    # in-process execution API brings FastAPI, aiohttp and the rest along.
    import airflow.cli.commands.dag_processor_command  # noqa: F401
    import structlog
    from airflow.dag_processing import processor
    from airflow.dag_processing.manager import DagFileProcessorManager
    from airflow.providers_manager import ProvidersManager
    from airflow.sdk.execution_time.supervisor import block_orm_access

    ProvidersManager().initialize_providers_configuration()
    _manager = DagFileProcessorManager(max_runs=1)  # alive throughout, as in the forked child
    log = structlog.get_logger(logger_name="task")
    processor._pre_import_airflow_modules(path, log)
    gc.collect()
    gc.freeze()  # the manager freezes its heap so forked children do not copy it on write

    # What the forked child does before _parse_file (_parse_file_entrypoint, _fork_main).
    os.environ["_AIRFLOW_PROCESS_CONTEXT"] = "client"
    block_orm_access()

    timings: dict[str, float] = {}

    class TimedBundleDagBag(processor.BundleDagBag):  # type: ignore[misc,valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            started = time.perf_counter()
            super().__init__(*args, **kwargs)
            timings["dagbag"] = time.perf_counter() - started

    processor.BundleDagBag = TimedBundleDagBag  # type: ignore[misc]
    request = processor.DagFileParseRequest(
        file=path, bundle_path=Path(bundle_path), bundle_name=bundle_name, callback_requests=[]
    )

    started = time.perf_counter()
    result = processor._parse_file(request, log)
    parse_seconds = time.perf_counter() - started

    serialized = result.serialized_dags if result is not None else []
    tasks = 0
    for lazy in serialized:
        data = getattr(lazy, "data", {}) or {}
        tasks += len(data.get("dag", {}).get("tasks", []))
    Path(out).write_text(
        json.dumps(
            {
                "parse_seconds": parse_seconds,
                "dagbag_seconds": timings.get("dagbag", 0.0),
                "dags": len(serialized),
                "tasks": tasks,
                "import_errors": [
                    f"{file}: {message.strip().splitlines()[-1] if message.strip() else message}"
                    for file, message in ((result.import_errors or {}) if result is not None else {}).items()
                ],
            }
        )
    )


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["--child"]:
        _child(*args[1:5])
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="*", help="DAG files (default: dags/*.py)")
    parser.add_argument("--repeats", type=int, default=5, help="timed parses per file (default 5)")
    parser.add_argument(
        "--target", type=float, default=TARGET_SECONDS, help="max seconds above the empty DAG"
    )
    options = parser.parse_args(args)
    rows = measure(options.files or None, options.repeats, options.target)
    print(format_table(rows, options.repeats), flush=True)
    failed = [row["file"] for row in rows if row["passed"] is False]
    if failed:
        print(f"\nFAIL: {', '.join(failed)}", flush=True)
        return 1
    print("\nPASS", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

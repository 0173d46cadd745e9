"""Shared fixtures: the local AWS emulator over HTTP, and an isolated Airflow home.

Airflow's environment is fixed here, before anything imports Airflow, so every test (and the
DagBag) sees the repository's dags/ and plugins/ and a throwaway SQLite metadata DB.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from emulatorlib import Emulator
from faulttable import pytest_terminal_summary as fault_table_summary

REPO = Path(__file__).resolve().parent.parent
_AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="jit-audit-airflow-"))

# Dummy credentials for the emulator: never real ones, and never any from the developer's machine.
os.environ.update(
    {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AIRFLOW_HOME": str(_AIRFLOW_HOME),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{_AIRFLOW_HOME / 'airflow.db'}",
        "AIRFLOW__JIT_AUDIT__TASK_RETRIES": "0",
        # Off for dag.test(): in Airflow 3.3.2 it fails at the end of every successful run of a DAG with
        # a deadline ('dict' object has no attribute 'hex'). The live tests keep it on (docs/alerts.md).
        "AIRFLOW__JIT_AUDIT__EXPORT_DEADLINE_MINUTES": "0",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
    }
)
os.environ.pop("AWS_PROFILE", None)



def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    """Here, in the conftest pytest-xdist's controller loads too (it sees every worker's reports): the
    fault table (tests/faulttable.py), then the figures tests record as the user property "figure"
    (e.g. the Celery stack's recovery time after a worker is killed), passed or not."""
    fault_table_summary(terminalreporter, exitstatus, config)
    figures = [value for reports in terminalreporter.stats.values() for report in reports
               if getattr(report, "when", None) == "call"
               for name, value in getattr(report, "user_properties", ()) if name == "figure"]
    if figures:
        terminalreporter.write_sep("=", "figures")
        for figure in figures:
            terminalreporter.write_line(str(figure))


def live_stack_group(nodeid: str) -> str | None:
    """The live stack a test runs on: its tests must stay in one pytest-xdist worker (one stack each)."""
    if nodeid.startswith("tests/live/test_celery_live.py::"):
        return "celery-stack"
    if nodeid.startswith("tests/live/"):
        return "sqlite-stack"
    return None


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """``make test`` runs ``pytest -n 2 --dist loadgroup``: each live stack's tests are one work unit
    (its session- or module-scoped stack starts once, in one worker); every other test is a unit of
    its own. Largest units go first, so the two stacks start at once, one per worker. (xdist's own
    ``xdist_group`` marks do not group under pytest 9: xdist 3.8 renames ``item._nodeid``, which
    pytest 9 no longer reads.)"""
    if config.getoption("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class LiveStackScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return live_stack_group(nodeid) or nodeid

    return LiveStackScheduling(config, log)


@pytest.fixture(scope="session")
def emulator() -> Iterator[Emulator]:
    server = Emulator(export_seconds=1, items_per_data_file=150, pitr_lag_seconds=300, pitr_history_days=35)
    os.environ["AIRFLOW_CONN_AWS_DEFAULT"] = json.dumps(
        {
            "conn_type": "aws",
            "login": "testing",
            "password": "testing",
            "extra": {"endpoint_url": server.endpoint_url, "region_name": "us-east-1"},
        }
    )
    yield server
    server.stop()


@pytest.fixture()
def aws(emulator: Emulator) -> Emulator:
    """The emulator, emptied before the test."""
    emulator.reset()
    return emulator


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """Create the SQLite metadata DB once for the session (``airflow db migrate``)."""
    subprocess.run(
        [str(Path(sys.executable).with_name("airflow")), "db", "migrate"],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=os.environ.copy(),
    )
    return _AIRFLOW_HOME


@pytest.fixture(scope="session")
def dagbag(airflow_db: Path):
    """One DagBag for the whole run, built from the repository's dags/ folder."""
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(REPO / "dags"))

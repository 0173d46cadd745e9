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
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from jit_audit_dev.stack import free_port

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
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
    }
)
os.environ.pop("AWS_PROFILE", None)



class Emulator:
    """A ``jit-audit-dev emulator`` process on a free loopback port (``command``: how to run the script)."""

    def __init__(self, command: tuple[str, ...] = (sys.executable, "-m", "jit_audit_dev.cli"), **options: object) -> None:
        self.port = free_port()
        self.endpoint_url = f"http://127.0.0.1:{self.port}"
        args = [*command, "emulator", "--port", str(self.port)]
        for name, value in options.items():
            args += [f"--{name.replace('_', '-')}", str(value)]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"{self.endpoint_url}/moto-api/", timeout=1)
                return
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"emulator did not start: {self.process.stderr.read().decode()}") from None  # type: ignore[union-attr]
                time.sleep(0.1)

    def reset(self) -> None:
        """Forget every resource (moto's reset endpoint), so tests start from an empty account."""
        request = urllib.request.Request(f"{self.endpoint_url}/moto-api/reset", method="POST")
        urllib.request.urlopen(request, timeout=10)

    def client(self, service: str):
        import boto3

        return boto3.client(service, endpoint_url=self.endpoint_url, region_name="us-east-1")

    def resource(self, service: str):
        import boto3

        return boto3.resource(service, endpoint_url=self.endpoint_url, region_name="us-east-1")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


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

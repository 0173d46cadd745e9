"""The local stack: the AWS emulator, a seeded table and bucket, and Airflow's components on loopback.

One class for everyone who needs it: ``make up`` (scripts/up.py, for a person), ``make demo``
(scripts/demo.py: only the AWS side, then ``airflow dags test``) and the live tests (tests/live).
Airflow runs the way ``airflow standalone`` does (API server with the UI, scheduler with the
LocalExecutor, triggerer, DAG processor) with SQLite and the simple auth manager (a generated admin
password). Every process runs in its own process group; ``stop()`` ends them all, children included.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

#: The repository (dags/, plugins/): dev/jit_audit_dev/stack.py is installed in place (editable).
REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
BUCKET = "jit-audit-exports"
PREFIX = "exports"
TABLE = "jit_audit"
DAG_IDS = ("jit_audit_export", "jit_audit_adhoc")
COMPONENTS = ("api-server", "scheduler", "triggerer", "dag-processor")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (the OS picks it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


class StackError(RuntimeError):
    pass


class Stack:
    """Emulator + seeded table + Airflow (API server, scheduler, triggerer, DAG processor) on loopback.

    Every process runs in its own session (process group), with its output in ``workdir/logs/``;
    ``stop()`` sends SIGTERM to each group, waits, then SIGKILLs whatever is left.
    """

    def __init__(
        self,
        workdir: Path,
        *,
        api_port: int | None = None,
        export_seconds: float = 10,
        pitr_lag_seconds: float = 60,
        pitr_history_days: float = 35,
        items_per_data_file: int = 250,
        seed_requests: int = 300,
        extra_env: Mapping[str, str] | None = None,
        say: Callable[[str], None] = lambda text: None,
    ) -> None:
        self.workdir = workdir
        self.home = workdir / "airflow"
        self.logs = workdir / "logs"
        self.api_port = api_port or free_port()
        self.api_url = f"http://127.0.0.1:{self.api_port}"
        self.emulator_port = free_port()
        self.endpoint_url = f"http://127.0.0.1:{self.emulator_port}"
        self.export_seconds = export_seconds
        self.pitr_lag_seconds = pitr_lag_seconds
        self.pitr_history_days = pitr_history_days
        self.items_per_data_file = items_per_data_file
        self.seed_requests = seed_requests
        self.extra_env = dict(extra_env or {})
        self.say = say
        self.username = "admin"
        self.password = secrets.token_urlsafe(12)
        self.processes: dict[str, subprocess.Popen] = {}
        self.env = self._environment()

    # ------------------------------------------------------------------ environment

    def _environment(self) -> dict[str, str]:
        # Nothing Airflow- or AWS-related leaks in from the caller (a test session sets its own).
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("AIRFLOW", "AWS_"))
        }
        env.update(
            {
                # Dummy credentials: the emulator accepts any; real ones never belong here.
                "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing",
                "AWS_DEFAULT_REGION": "us-east-1",
                # Everything is on loopback: never through a proxy the machine may have configured.
                "NO_PROXY": "127.0.0.1,localhost",
                "no_proxy": "127.0.0.1,localhost",
                "AIRFLOW_HOME": str(self.home),
                "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
                "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
                "AIRFLOW__CORE__PARALLELISM": "4",
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{self.home / 'airflow.db'}",
                # Airflow 3's simple auth manager, one admin whose password we write ourselves.
                "AIRFLOW__CORE__AUTH_MANAGER": (
                    "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
                ),
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{self.username}:admin",
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(self.home / "passwords.json"),
                # One API server on loopback; tasks reach its execution API there.
                "AIRFLOW__API__HOST": "127.0.0.1",
                "AIRFLOW__API__PORT": str(self.api_port),
                "AIRFLOW__API__BASE_URL": self.api_url,
                "AIRFLOW__API__WORKERS": "1",
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.api_url}/execution/",
                "AIRFLOW__API__SECRET_KEY": secrets.token_urlsafe(32),
                "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
                # Quick to react on a 2-core machine.
                "AIRFLOW__SCHEDULER__JOB_HEARTBEAT_SEC": "2",
                "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
                "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "2",
                "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "30",
                "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "60",
                "AIRFLOW__CORE__MIN_SERIALIZED_DAG_UPDATE_INTERVAL": "10",
                "AIRFLOW_CONN_AWS_DEFAULT": json.dumps(
                    {
                        "conn_type": "aws",
                        "login": "testing",
                        "password": "testing",
                        "extra": {"endpoint_url": self.endpoint_url, "region_name": "us-east-1"},
                    }
                ),
                "AIRFLOW_VAR_JIT_AUDIT_TABLE": TABLE,
                "AIRFLOW_VAR_JIT_AUDIT_EXPORT_BUCKET": BUCKET,
                "AIRFLOW_VAR_JIT_AUDIT_EXPORT_PREFIX": PREFIX,
            }
        )
        env.update(self.extra_env)
        return env

    # ------------------------------------------------------------------ processes

    def _spawn(self, name: str, args: list[str]) -> subprocess.Popen:
        with open(self.logs / f"{name}.log", "ab") as log:
            process = subprocess.Popen(
                args,
                cwd=self.workdir,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: stop() ends it with all its children
            )
        self.processes[name] = process
        return process

    def log_tail(self, name: str, chars: int = 3000) -> str:
        path = self.logs / f"{name}.log"
        return path.read_text(errors="replace")[-chars:] if path.exists() else ""

    def check_alive(self) -> None:
        """Raise StackError naming any process of the stack that has exited (with its log's tail)."""
        for name, process in self.processes.items():
            if process.poll() is not None:
                raise StackError(f"{name} exited with {process.returncode}:\n{self.log_tail(name)}")

    def _wait(self, what: str, ready: Callable[[], bool], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            self.check_alive()
            try:
                if ready():
                    return
            except (OSError, ValueError):
                pass
            if time.monotonic() > deadline:
                raise StackError(f"timed out after {timeout:.0f} s waiting for {what}; logs in {self.logs}")
            time.sleep(0.5)

    def start(self, timeout: float = 240) -> None:
        try:
            self._start(timeout)
        except BaseException:
            self.stop()
            raise

    def start_aws(self) -> None:
        """Only the AWS side: the emulator, the seeded table and bucket, and the migrated metadata DB
        (``make demo`` runs ``airflow dags test`` against it; no Airflow component is started)."""
        try:
            self._start_aws()
        except BaseException:
            self.stop()
            raise

    def _start(self, timeout: float) -> None:
        started = time.monotonic()
        self._start_aws()
        self._start_airflow(started, timeout)

    def _start_aws(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        self.logs.mkdir(parents=True, exist_ok=True)
        (self.home / "passwords.json").write_text(json.dumps({self.username: self.password}))

        self.say(f"starting the local AWS emulator on {self.endpoint_url}")
        self._spawn(
            "emulator",
            [str(BIN / "jit-audit-dev"), "emulator", "--port", str(self.emulator_port),
             "--export-seconds", str(self.export_seconds), "--pitr-lag-seconds", str(self.pitr_lag_seconds),
             "--pitr-history-days", str(self.pitr_history_days),
             "--items-per-data-file", str(self.items_per_data_file)],
        )
        self._wait("the emulator", lambda: self._get(f"{self.endpoint_url}/moto-api/") is not None, 30)

        self.say(f"seeding table {TABLE} and bucket {BUCKET}, migrating the metadata DB (SQLite)")
        # Both at once: seeding talks to the emulator, migrating writes the SQLite file.
        with open(self.logs / "seed.log", "wb") as seed_log, open(self.logs / "db-migrate.log", "wb") as migrate_log:
            seed = subprocess.Popen(
                [str(BIN / "jit-audit-dev"), "seed", "--endpoint-url", self.endpoint_url, "--table", TABLE,
                 "--requests", str(self.seed_requests), "--bucket", BUCKET, "--prefix", PREFIX,
                 "--retention-days", "400"],
                env=self.env, stdout=seed_log, stderr=subprocess.STDOUT,
            )
            try:
                migrate = subprocess.run([str(BIN / "airflow"), "db", "migrate"], env=self.env, cwd=self.workdir,
                                         stdout=migrate_log, stderr=subprocess.STDOUT, timeout=300)
                seeded = seed.wait(timeout=120)
            finally:
                if seed.poll() is None:
                    seed.kill()
                    seed.wait()
        if seeded != 0:
            raise StackError(f"seeding failed:\n{self.log_tail('seed')}")
        if migrate.returncode != 0:
            raise StackError(f"airflow db migrate failed:\n{self.log_tail('db-migrate')}")

    def _start_airflow(self, started: float, timeout: float) -> None:
        self.say("starting Airflow: api-server, scheduler, triggerer, dag-processor")
        for component in COMPONENTS:
            # The API server reads task and trigger logs from AIRFLOW_HOME/logs itself; no log servers
            # (they would listen on every interface, not only loopback).
            skip = ["--skip-serve-logs"] if component in ("scheduler", "triggerer") else []
            self._spawn(component, [str(BIN / "airflow"), component, *skip])

        def remaining() -> float:
            return max(30.0, timeout - (time.monotonic() - started))

        self._wait("the Airflow components to report healthy", self._healthy, remaining())
        self._wait("the DAGs to be parsed", self._dags_parsed, remaining())
        self.say(f"ready in {time.monotonic() - started:.0f} s")

    def _healthy(self) -> bool:
        body = self._get(f"{self.api_url}/api/v2/monitor/health")
        if body is None:
            return False
        health = json.loads(body)
        return all(
            (health.get(part) or {}).get("status") == "healthy"
            for part in ("metadatabase", "scheduler", "triggerer", "dag_processor")
        )

    def _dags_parsed(self) -> bool:
        errors = self.api("GET", "/api/v2/importErrors")
        if errors["total_entries"]:
            raise StackError(f"DAG import errors: {json.dumps(errors['import_errors'], indent=1)}")
        return all(self.api("GET", f"/api/v2/dags/{dag_id}", allow=(404,)) is not None for dag_id in DAG_IDS)

    @staticmethod
    def _get(url: str) -> bytes | None:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return response.read()
        except (OSError, urllib.error.HTTPError):
            return None

    def stop(self, timeout: float = 30) -> None:
        """SIGTERM every process group we started, wait, then SIGKILL what is left."""
        for process in reversed(list(self.processes.values())):
            _signal_group(process, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for process in self.processes.values():
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        # Leaders that ignored SIGTERM, and children left behind by a leader that exited.
        for process in self.processes.values():
            _signal_group(process, signal.SIGKILL)
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        self.processes.clear()

    # ------------------------------------------------------------------ REST API

    _token: str | None = None

    def token(self) -> str:
        if self._token is None:
            body = self._request(
                "POST", "/auth/token", {"username": self.username, "password": self.password}, auth=False
            )
            self._token = body["access_token"]
        return self._token

    def api(self, method: str, path: str, body: Any = None, allow: tuple[int, ...] = ()) -> Any:
        """Call Airflow's REST API as the admin; a status in ``allow`` returns None instead of raising."""
        return self._request(method, path, body, allow=allow)

    def _request(self, method: str, path: str, body: Any = None, *, auth: bool = True,
                 allow: tuple[int, ...] = ()) -> Any:
        headers = {"Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if auth:
            headers["Authorization"] = f"Bearer {self.token()}"
        request = urllib.request.Request(f"{self.api_url}{path}", data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                content = response.read()
        except urllib.error.HTTPError as error:
            if error.code in allow:
                return None
            raise StackError(f"{method} {path} -> {error.code}: {error.read().decode(errors='replace')}") from None
        return json.loads(content) if content else None


def _signal_group(process: subprocess.Popen, signum: int) -> None:
    try:
        os.killpg(process.pid, signum)  # the group's id is the leader's pid (start_new_session)
    except (ProcessLookupError, PermissionError):
        pass

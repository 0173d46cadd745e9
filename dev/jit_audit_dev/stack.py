"""The local stack: the AWS emulator, a seeded table and bucket, and Airflow's components on loopback.

One class for everyone who needs it: ``make up`` (scripts/up.py, for a person), ``make demo``
(scripts/demo.py: only the AWS side, then ``airflow dags test``) and the live tests (tests/live).

Two executors:

- ``local`` (default): the way ``airflow standalone`` runs (API server with the UI, scheduler with
  the LocalExecutor, triggerer, DAG processor) on SQLite.
- ``celery``: the topology of docker-compose.yaml as plain processes: PostgreSQL (metadata DB and
  Celery result backend) and Redis (broker) from Debian's packages, each on a free loopback port
  with a generated password, and N Celery workers, each with its own hostname (``worker-<i>``, what
  task instances record) and log-server port (Airflow's log server listens on every interface,
  with no setting to change it; it serves only requests signed with the stack's generated secret),
  checked with ``celery inspect ping``.

Both use the simple auth manager (a generated admin password). Every process runs in its own
process group; ``stop()`` ends them all, children included.
"""

from __future__ import annotations

import glob
import json
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
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
EXECUTORS = ("local", "celery")
CELERY_APP = "airflow.providers.celery.executors.celery_executor.app"
#: The environment variable a Celery worker of the stack finds its hostname in (``worker_hostname``).
WORKER_HOSTNAME_VARIABLE = "JIT_AUDIT_DEV_WORKER_HOSTNAME"
#: ``[database] sql_alchemy_connect_args`` of the SQLite stack: wait up to 60 s for a lock (sqlite3's
#: default is 5 s; the scheduler, DAG processor, triggerer, API server and tasks share one file, and a
#: loaded 2-core machine holds locks longer: a clean-clone make test once saw a write wait out 30 s).
SQLITE_CONNECT_ARGS: dict[str, Any] = {"timeout": 60}


def worker_hostname() -> str:
    """``[core] hostname_callable`` of the stack's Celery workers: ``worker-<i>``, so the task
    instances say which worker ran them although all run on one host (in docker-compose.yaml every
    worker container has its own hostname anyway). Other processes keep the machine's name."""
    return os.environ.get(WORKER_HOSTNAME_VARIABLE) or socket.getfqdn()


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
        executor: str = "local",
        workers: int = 2,
        worker_concurrency: int = 2,
        extra_env: Mapping[str, str] | None = None,
        say: Callable[[str], None] = lambda text: None,
    ) -> None:
        if executor not in EXECUTORS:
            raise ValueError(f"executor must be one of {', '.join(EXECUTORS)}, not {executor!r}")
        if executor == "celery" and workers < 1:
            raise ValueError(f"a Celery stack needs at least one worker, not {workers}")
        self.executor = executor
        self.workers = workers if executor == "celery" else 0
        self.worker_concurrency = worker_concurrency
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
        # How each process is asked to stop (PostgreSQL: SIGINT is its fast shutdown; SIGTERM would
        # wait for every client to disconnect).
        self.stop_signals: dict[str, signal.Signals] = {}
        # The Celery stack's services: loopback ports and generated passwords.
        self.postgres_port = free_port() if executor == "celery" else 0
        self.postgres_password = secrets.token_urlsafe(16)
        self.postgres_dir: Path | None = None
        self.redis_port = free_port() if executor == "celery" else 0
        self.redis_password = secrets.token_urlsafe(16)
        self.worker_names = [f"worker-{index}" for index in range(1, self.workers + 1)]
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
                "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(64),
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
        if self.executor == "celery":
            env.update(self._celery_environment())
        else:
            for key in ("AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS", "AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS_ASYNC"):
                env[key] = "jit_audit_dev.stack.SQLITE_CONNECT_ARGS"
        env.update(self.extra_env)
        return env

    def _celery_environment(self) -> dict[str, str]:
        """docker-compose.yaml's settings, on loopback (docs/deploying.md explains each)."""
        database = f"airflow:{self.postgres_password}@127.0.0.1:{self.postgres_port}/airflow"
        return {
            "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
            "AIRFLOW__CORE__PARALLELISM": str(2 * self.workers * self.worker_concurrency),
            # psycopg2 spelled out, as in docker-compose.yaml (SQLAlchemy 2.1 alone would pick psycopg 3).
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"postgresql+psycopg2://{database}",
            "AIRFLOW__CELERY__RESULT_BACKEND": f"db+postgresql+psycopg2://{database}",
            "AIRFLOW__CELERY__BROKER_URL": f"redis://:{self.redis_password}@127.0.0.1:{self.redis_port}/0",
            "AIRFLOW__CELERY__WORKER_CONCURRENCY": str(self.worker_concurrency),
            # Longer than any task's execution_timeout (the ad-hoc query's 6 h): Redis redelivers an
            # unacknowledged message after this, even to a worker while the first one still runs it.
            "AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__VISIBILITY_TIMEOUT": "25200",
            # A killed worker's tasks are failed (then retried) this long after their last heartbeat.
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "20",
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "2",
            # A task queued to a worker that died before starting it is queued again after this.
            "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT": "60",
            "AIRFLOW__CORE__HOSTNAME_CALLABLE": "jit_audit_dev.stack.worker_hostname",
        }

    # ------------------------------------------------------------------ processes

    def _spawn(self, name: str, args: list[str], *, env: Mapping[str, str] | None = None,
               user: str | None = None, stop_signal: signal.Signals = signal.SIGTERM) -> subprocess.Popen:
        with open(self.logs / f"{name}.log", "ab") as log:
            process = subprocess.Popen(
                args,
                cwd=self.workdir if user is None else "/",
                env={**self.env, **(env or {})},
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: stop() ends it with all its children
                user=user,
                group=None if user is None else pwd.getpwnam(user).pw_gid,
                extra_groups=None if user is None else [],
            )
        self.processes[name] = process
        self.stop_signals[name] = stop_signal
        return process

    def kill(self, name: str) -> None:
        """SIGKILL one process of the stack with every process it started (a worker lost with its host).

        Its whole process tree, not only its process group: Airflow's supervisor starts each task in a
        process group of its own."""
        process = self.processes.pop(name)
        descendants = _descendants(process.pid)
        _signal_group(process, signal.SIGKILL)
        _kill_all(descendants)
        process.wait(timeout=10)

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
        self.logs.mkdir(parents=True, exist_ok=True)
        if self.executor == "celery":
            self._start_postgres()
            self._start_redis()
        self._start_aws()
        self._start_airflow(started, timeout)

    # ------------------------------------------------------------------ Celery's services

    def _start_postgres(self) -> None:
        """A throwaway PostgreSQL cluster on 127.0.0.1:<free port>: password (scram) authentication,
        no durability (fsync off: it holds only this stack's metadata)."""
        initdb = _postgres_binary("initdb")
        # PostgreSQL refuses to run as root: then it runs as Debian's `postgres` user, in a directory
        # of its own (the stack's workdir may not be reachable by that user).
        user = "postgres" if os.geteuid() == 0 else None
        self.postgres_dir = Path(tempfile.mkdtemp(prefix="jit-audit-postgres-"))
        password_file = self.postgres_dir / "password"
        password_file.write_text(self.postgres_password)
        if user:
            for path in (self.postgres_dir, password_file):
                shutil.chown(path, user, user)
        data = self.postgres_dir / "data"
        self.say(f"starting PostgreSQL on 127.0.0.1:{self.postgres_port}")
        init = self._spawn("postgres-initdb", [initdb, "--pgdata", str(data), "--username", "airflow",
                                               "--pwfile", str(password_file), "--auth", "scram-sha-256",
                                               "--encoding", "UTF8", "--no-instructions"], user=user)
        if init.wait(timeout=120) != 0:
            raise StackError(f"initdb failed:\n{self.log_tail('postgres-initdb')}")
        del self.processes["postgres-initdb"]
        password_file.unlink()
        self._spawn("postgres", [str(Path(initdb).parent / "postgres"), "-D", str(data),
                                 "-c", "listen_addresses=127.0.0.1", "-c", f"port={self.postgres_port}",
                                 "-c", f"unix_socket_directories={self.postgres_dir}",
                                 "-c", "max_connections=200", "-c", "fsync=off",
                                 "-c", "synchronous_commit=off", "-c", "full_page_writes=off"],
                    user=user, stop_signal=signal.SIGINT)
        isready = [str(Path(initdb).parent / "pg_isready"), "--host", "127.0.0.1", "--port", str(self.postgres_port)]
        self._wait("PostgreSQL", lambda: subprocess.run(isready, capture_output=True).returncode == 0, 60)
        env = {**self.env, "PGPASSWORD": self.postgres_password}
        created = subprocess.run([str(Path(initdb).parent / "createdb"), "--host", "127.0.0.1", "--port",
                                  str(self.postgres_port), "--username", "airflow", "airflow"],
                                 env=env, capture_output=True, text=True)
        if created.returncode != 0:
            raise StackError(f"createdb failed: {created.stderr.strip()}")

    def _start_redis(self) -> None:
        """Celery's broker: Redis on 127.0.0.1:<free port> with a password, nothing persisted."""
        server = shutil.which("redis-server")
        if server is None:
            raise StackError("redis-server is not installed (Debian: apt-get install redis-server; "
                             "`make test` and `make up EXECUTOR=celery` install it)")
        self.say(f"starting Redis on 127.0.0.1:{self.redis_port}")
        # The password in a file only we can read, not on the command line (other users see argv).
        config = self.workdir / "redis.conf"
        config.touch(mode=0o600)
        config.write_text(f"bind 127.0.0.1\nport {self.redis_port}\nrequirepass {self.redis_password}\n"
                          f'save ""\nappendonly no\ndir {self.workdir}\n')
        self._spawn("redis", [server, str(config)])
        self._wait("Redis", self._redis_answers, 30)

    def _redis_answers(self) -> bool:
        with socket.create_connection(("127.0.0.1", self.redis_port), timeout=2) as connection:
            connection.sendall(f"AUTH {self.redis_password}\r\nPING\r\n".encode())
            answer = b""
            while answer.count(b"\r\n") < 2:
                chunk = connection.recv(256)
                if not chunk:
                    return False
                answer += chunk
        return answer == b"+OK\r\n+PONG\r\n"

    def _start_workers(self) -> None:
        for name in self.worker_names:
            self.start_worker(name)

    def start_worker(self, name: str) -> None:
        """Start (or start again) the Celery worker ``name``: its own hostname and log-server port."""
        self._spawn(name, [str(BIN / "airflow"), "celery", "worker", "--celery-hostname", f"{name}@%h",
                           "--concurrency", str(self.worker_concurrency)],
                    env={WORKER_HOSTNAME_VARIABLE: name,
                         "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port())})

    def ping_workers(self) -> set[str]:
        """The stack's Celery workers that answer ``celery inspect ping`` (their names, ``worker-<i>``)."""
        try:
            answer = subprocess.run(
                [str(BIN / "celery"), "--app", CELERY_APP, "inspect", "ping", "--json", "--timeout", "5"],
                env=self.env, cwd=self.workdir, capture_output=True, text=True, timeout=60,
            )
        except subprocess.TimeoutExpired:
            return set()
        if answer.returncode != 0 or not answer.stdout.strip():
            return set()
        replies = json.loads(answer.stdout.strip().splitlines()[-1])
        return {node.split("@", 1)[0] for node, reply in replies.items() if reply.get("ok") == "pong"}

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

        database = "SQLite" if self.executor == "local" else "PostgreSQL"
        self.say(f"seeding table {TABLE} and bucket {BUCKET}, migrating the metadata DB ({database})")
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
        if self.executor != "celery":
            self._sqlite_write_ahead_log()

    def _sqlite_write_ahead_log(self) -> None:
        """Put the SQLite metadata DB in write-ahead-log mode (a setting the file keeps).

        In SQLite's default rollback-journal mode every reader blocks a writer: with the scheduler,
        the DAG processor, the triggerer, the API server and the tasks on one file, creating a backfill
        then fails with "database is locked" (HTTP 503), and Airflow 3.3.2's clean-up deletes the runs
        it had just created under a scheduler that has already loaded them; that scheduler then fails
        every loop on the vanished DagRun and schedules nothing again. In WAL mode readers and the one
        writer do not block each other.
        """
        import sqlite3
        from contextlib import closing

        with closing(sqlite3.connect(self.home / "airflow.db", timeout=30)) as connection:
            mode = connection.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if mode != "wal":
            raise StackError(f"the SQLite metadata DB stayed in journal mode {mode!r}, not WAL")

    def _start_airflow(self, started: float, timeout: float) -> None:
        workers = f", {self.workers} Celery workers" if self.workers else ""
        self.say(f"starting Airflow: api-server, scheduler, triggerer, dag-processor{workers}")
        for component in COMPONENTS:
            # The API server reads task and trigger logs from AIRFLOW_HOME/logs itself; no log servers
            # (they would listen on every interface, not only loopback).
            skip = ["--skip-serve-logs"] if component in ("scheduler", "triggerer") else []
            self._spawn(component, [str(BIN / "airflow"), component, *skip])
        self._start_workers()

        def remaining() -> float:
            return max(30.0, timeout - (time.monotonic() - started))

        self._wait("the Airflow components to report healthy", self._healthy, remaining())
        if self.workers:
            wanted = set(self.worker_names)
            self._wait(f"Celery workers {', '.join(sorted(wanted))} to answer a ping",
                       lambda: self.ping_workers() >= wanted, remaining())
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
        """Stop Airflow's processes first, then the services they use (emulator, Redis, PostgreSQL):
        each phase signals its process groups (SIGTERM; PostgreSQL SIGINT), waits, then SIGKILLs what
        is left, task processes in groups of their own included."""
        services = ("emulator", "redis", "postgres")
        airflow = {name: process for name, process in self.processes.items() if name not in services}
        rest = {name: process for name, process in self.processes.items() if name in services}
        for phase in (airflow, rest):
            self._stop_phase(phase, timeout)
        self.processes.clear()
        if self.postgres_dir is not None:
            shutil.rmtree(self.postgres_dir, ignore_errors=True)
            self.postgres_dir = None

    def _stop_phase(self, processes: dict[str, subprocess.Popen], timeout: float) -> None:
        descendants = [child for process in processes.values() for child in _descendants(process.pid)]
        for name, process in reversed(list(processes.items())):
            _signal_group(process, self.stop_signals.get(name, signal.SIGTERM))
        deadline = time.monotonic() + timeout
        for process in processes.values():
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        # Leaders that ignored SIGTERM, children left behind by a leader that exited, and task
        # processes in process groups of their own.
        for process in processes.values():
            _signal_group(process, signal.SIGKILL)
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        _kill_all([child for child in descendants if child.is_running()])

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


def _descendants(pid: int) -> list[Any]:
    """Every process ``pid`` started, however deep (psutil.Process objects), found before signalling."""
    import psutil

    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        return []


def _kill_all(processes: list[Any]) -> None:
    import psutil

    for process in processes:
        try:
            process.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(processes, timeout=10)


def _postgres_binary(name: str) -> str:
    """A PostgreSQL server program from Debian's packages (/usr/lib/postgresql/<version>/bin), newest first."""
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"),
                   key=lambda path: int(Path(path).parts[-3]) if Path(path).parts[-3].isdigit() else 0)
    if not found:
        raise StackError("PostgreSQL is not installed (Debian: apt-get install postgresql; "
                         "`make test` and `make up EXECUTOR=celery` install it)")
    return found[-1]


def _signal_group(process: subprocess.Popen, signum: int) -> None:
    try:
        os.killpg(process.pid, signum)  # the group's id is the leader's pid (start_new_session)
    except (ProcessLookupError, PermissionError):
        pass

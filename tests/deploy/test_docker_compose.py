"""docker-compose.yaml and the Dockerfile, read with real parsers (no Docker engine here: nothing is built or run).

docker-compose.yaml: ``yaml.safe_load`` resolves the ``x-airflow-common`` anchors and ``<<`` merges as compose does;
``${...}`` is left as written; an environment entry without a value (``KEY:``) is compose's pass-through.
Dockerfile: ``dockerfile_parse.DockerfileParser`` gives the instructions and the ARG-resolved base of each stage; a
RUN is split into simple commands with ``shlex``; the Python it runs is parsed with ``ast``, or run (the wheel check).
"""

from __future__ import annotations

import ast
import io
import itertools
import posixpath
import re
import shlex
import subprocess
import sys
import tomllib
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
import yaml
from dockerfile_parse import DockerfileParser
from dockerfile_parse.parser import image_from
from dockerfile_parse.util import extract_key_values
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

from jit_audit.settings import SETTINGS

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "docker-compose.yaml"
DOCKERFILE = REPO / "Dockerfile"
COMPOSE: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text())
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
COMMON: dict[str, Any] = COMPOSE["x-airflow-common"]

AIRFLOW_COMMANDS = {"airflow-apiserver": ["api-server"], "airflow-scheduler": ["scheduler"],
                    "airflow-dag-processor": ["dag-processor"], "airflow-triggerer": ["triggerer"],
                    "airflow-worker": ["celery", "worker"]}
AIRFLOW_SERVICES = ["airflow-init", *AIRFLOW_COMMANDS]
CORE_SERVICES = {"postgres", "redis", *AIRFLOW_SERVICES}
EMULATOR, EMULATOR_SEED = "aws-emulator", "aws-emulator-seed"
EMULATOR_SERVICES = {EMULATOR, EMULATOR_SEED}
#: What each long-running service's healthcheck runs (as in Airflow's compose file): a wrong probe blocks dependants.
HEALTH_PROBES = {
    "postgres": ["pg_isready"], "redis": ["redis-cli", "ping"], EMULATOR: ["curl", "--fail"],
    "airflow-apiserver": ["curl", "--fail", "http://localhost:8080/api/v2/version"],
    "airflow-scheduler": ["curl", "--fail", "http://localhost:8974/health"],
    "airflow-dag-processor": ["airflow", "jobs", "check", "--job-type", "DagProcessorJob"],
    "airflow-triggerer": ["airflow", "jobs", "check", "--job-type", "TriggererJob"],
    "airflow-worker": ["celery", "--app", "airflow.providers.celery.executors.celery_executor.app", "inspect", "ping"],
}
PROJECT_SOURCES = ("/opt/airflow/dags", "/opt/airflow/plugins", "/opt/airflow/include")
AWS_CREDENTIALS = {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"}
EMULATOR_DUMMY = "testing"  # the emulator's dummy credentials: allowed only next to its endpoint
SECRET_NAME = re.compile(r"(PASSWORD|SECRET|SECRET_KEY|TOKEN|FERNET_KEY|ACCESS_KEY_ID)$")
REQUIRED_FROM_ENV = re.compile(r"^\$\{[A-Za-z_][A-Za-z0-9_]*:?\?[^}]+\}$")  # ${VAR:?message}
INTERPOLATED = re.compile(r"^\$\{[A-Za-z_][A-Za-z0-9_]*(:?[-?][^}]*)?\}$")  # ${VAR}, ${VAR:-x}, ${VAR:?x}
COMPILERS = {"build-essential", "gcc", "g++", "clang", "cc", "make"}


def environment(service: dict[str, Any]) -> dict[str, str | None]:
    """A service's environment (mapping syntax); ``None`` is a pass-through entry (``KEY:``)."""
    return {key: None if value is None else str(value) for key, value in (service.get("environment") or {}).items()}


def words(value: Any) -> list[str]:
    return shlex.split(value) if isinstance(value, str) else [str(part) for part in value or []]


def healthcheck_argv(service: dict[str, Any]) -> list[str]:
    test = service["healthcheck"]["test"]
    assert isinstance(test, str) or test[0] in {"CMD", "CMD-SHELL"}, f"healthcheck needs CMD or CMD-SHELL: {test}"
    return words(test if isinstance(test, str) else test[1] if test[0] == "CMD-SHELL" else test[1:])


def depends_on(service: dict[str, Any]) -> dict[str, str]:
    """``{service: condition}``; the short list form means ``service_started``."""
    value = service.get("depends_on") or {}
    value = dict.fromkeys(value) if isinstance(value, list) else value
    return {name: (options or {}).get("condition", "service_started") for name, options in value.items()}


def mounts(service: dict[str, Any]) -> list[tuple[str, str, str]]:
    """``(type, source, target)`` of every volume entry (short syntax ``[source:]target[:mode]``)."""
    result = []
    for entry in service.get("volumes") or []:
        source, _, target = entry.partition(":") if ":" in entry else ("", "", entry)
        kind = "bind" if source.startswith((".", "/", "~", "$")) else "volume" if source else "anonymous"
        result.append((kind, source, target.split(":")[0]))
    return result


def published_ports(service: dict[str, Any]) -> list[tuple[str, int]]:
    """``(host ip, container port)`` of every ``[ip:][host port:]port`` ("" when bound on all interfaces)."""
    parts = [re.split(r":(?![^{]*\})", str(entry).split("/")[0]) for entry in service.get("ports") or []]
    return [(part[0] if len(part) == 3 else "", int(part[-1])) for part in parts]  # host port may be ${X:-1}


def option_values(arguments: list[str], *names: str) -> list[str]:
    """The values of ``-o value``, ``--option value`` and ``--option=value``."""
    inline = [word.split("=", 1) for word in arguments if word.startswith("--") and "=" in word]
    return [value for word, value in zip(arguments, arguments[1:], strict=False) if word in names] + [
        value for name, value in inline if name in names]


def console_scripts() -> set[str]:
    """The commands the project, and its dev-only package in dev/ when there, install."""
    files = [path for path in (REPO / "pyproject.toml", REPO / "dev" / "pyproject.toml") if path.is_file()]
    return {name for path in files for name in tomllib.loads(path.read_text())["project"].get("scripts", {})}


def _requirement_lines() -> list[str]:
    lines = [line.split("#", 1)[0].strip() for line in (REPO / "requirements.txt").read_text().splitlines()]
    return [line for line in lines if line and not line.startswith("-")]


def airflow_pin() -> str:
    pins = [Requirement(line) for line in _requirement_lines()]
    (airflow,) = [pin for pin in pins if canonicalize_name(pin.name) == "apache-airflow"]
    (spec,) = airflow.specifier
    assert spec.operator == "==", f"pin apache-airflow with ==, not {spec}"
    return spec.version


Step = tuple[str, str, str]  # (working directory, INSTRUCTION, value); the directory is "" until a WORKDIR


@dataclass
class Stage:
    name: str
    base: str  # the ARG-resolved image of its FROM, or the name of an earlier stage
    steps: list[Step]

    def values(self, *kinds: str) -> list[str]:
        return [value for _, kind, value in self.steps if kind in kinds]


def parse_stages(path: Path) -> dict[str, Stage]:
    parser = DockerfileParser(fileobj=io.BytesIO(path.read_bytes()))
    bases = iter(parser.parent_images)  # one per FROM, build ARGs substituted
    stages: dict[str, Stage] = {}
    for instruction in parser.structure:
        kind, value = instruction["instruction"], instruction["value"]
        if kind == "FROM":
            name = image_from(value)[1] or f"stage{len(stages)}"
            stage = stages[name] = Stage(name, next(bases), [])
            parent = stages[stage.base].steps if stage.base in stages else []
            cwd = parent[-1][0] if parent else ""  # a stage FROM another starts in its last WORKDIR
        elif kind != "COMMENT" and stages:
            cwd = posixpath.join(cwd, value) if kind == "WORKDIR" else cwd
            stage.steps.append((cwd, kind, value))
    return stages


@pytest.fixture(scope="module")
def stages() -> dict[str, Stage]:
    return parse_stages(DOCKERFILE)


def lineage(stages: dict[str, Stage], name: str) -> list[Stage]:
    """The stage and the earlier stages it is built FROM (its image holds all their layers), base first."""
    chain = [stages[name]]
    while chain[0].base in stages and stages[chain[0].base] not in chain:
        chain.insert(0, stages[chain[0].base])
    return chain


def commands(steps: list[Step]) -> list[tuple[str, list[str]]]:
    """``(working directory, argv)`` of every simple command of every RUN (split on ``&&``, ``;``, pipes...)."""
    result = []
    for cwd, _, value in [step for step in steps if step[1] == "RUN"]:
        lexer = shlex.shlex(re.sub(r"^(--\S+\s+)+", "", value), posix=True, punctuation_chars=True)  # RUN --mount=...
        lexer.whitespace_split = True
        for separator, argv in itertools.groupby(lexer, lambda token: token in {"&&", "||", ";", "|", "&"}):
            result += [] if separator else [(cwd, list(argv))]
    return result


def pip(steps: list[Step], subcommand: str) -> list[tuple[str, list[str]]]:
    """``(working directory, arguments)`` of every ``pip <subcommand>`` (or ``python -m pip``)."""
    found = []
    for cwd, argv in commands(steps):
        argv = argv[2:] if argv[1:3] == ["-m", "pip"] else argv
        if Path(argv[0]).name in {"pip", "pip3"} and argv[1:2] == [subcommand]:
            found.append((cwd, argv[2:]))
    return found


def python_snippets(steps: list[Step]) -> list[str]:
    return [argv[2] for _, argv in commands(steps) if re.fullmatch(r"python[\d.]*", argv[0]) and argv[1:2] == ["-c"]]


def copies(steps: list[Step]) -> list[tuple[list[str], str, dict[str, str]]]:
    """``(sources, destination, flags)`` of every COPY/ADD; a relative destination is resolved on the WORKDIR."""
    result = []
    for cwd, _, value in [step for step in steps if step[1] in {"COPY", "ADD"}]:
        parts = shlex.split(value)
        flags = dict(part[2:].split("=", 1) for part in parts if part.startswith("--") and "=" in part)
        paths = [clean(part) for part in parts if not part.startswith("--")]
        result.append((paths[:-1], clean(posixpath.join(cwd, paths[-1])), flags))
    return result


def clean(path: str) -> str:
    return posixpath.normpath(path).removeprefix("./")


def is_dev_only(argument: str) -> bool:
    """requirements-dev.txt, the dev/ directory, or the jit-audit-dev package (the AWS emulator)."""
    path = clean(argument.split("[", 1)[0])
    named = re.fullmatch(r"[A-Za-z0-9._-]+", path) and canonicalize_name(path) == "jit-audit-dev"
    return bool(named) or path in {"requirements-dev.txt", "dev"} or path.startswith("dev/")


@pytest.mark.parametrize("name", sorted(HEALTH_PROBES))
def test_long_running_services_have_health_checks_and_restart(name: str) -> None:
    service = SERVICES[name]
    argv = healthcheck_argv(service)
    assert argv[: len(HEALTH_PROBES[name])] == HEALTH_PROBES[name], f"{name}: healthcheck runs {argv}"
    assert service.get("restart") in {"always", "unless-stopped"}, f"{name} is not restarted"


@pytest.mark.parametrize("name", AIRFLOW_SERVICES)
def test_airflow_services_merge_the_common_block(name: str) -> None:
    service = SERVICES[name]
    assert service.get("image") == COMMON["image"] and service.get("build") == COMMON["build"], name
    assert environment(service).items() >= environment(COMMON).items(), f"{name} drops or overrides common settings"
    assert "_PIP_ADDITIONAL_REQUIREMENTS" not in environment(service), "install at build time, not at start"
    if name in AIRFLOW_COMMANDS:
        command = words(service.get("command"))
        assert (command[1:] if command[:1] == ["airflow"] else command) == AIRFLOW_COMMANDS[name], command
        assert "entrypoint" not in service, f"{name} must go through the image's /entrypoint"


def test_common_airflow_settings() -> None:
    # Every Airflow service has these (test_airflow_services_merge_the_common_block).
    env, postgres = environment(COMMON), environment(SERVICES["postgres"])
    assert (env.get("AIRFLOW__CORE__LOAD_EXAMPLES") or "").lower() == "false"
    assert published_ports(SERVICES["airflow-apiserver"]) == [("", 8080)]
    api = urlsplit(env.get("AIRFLOW__CORE__EXECUTION_API_SERVER_URL") or "")
    assert (api.hostname, api.port, api.path) == ("airflow-apiserver", 8080, "/execution/"), "not the API server"
    database = urlsplit(env.get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN") or "")
    assert database.scheme.startswith("postgresql") and database.hostname == "postgres"
    expected = (postgres["POSTGRES_DB"], postgres["POSTGRES_USER"], postgres["POSTGRES_PASSWORD"])
    assert (database.path[1:], database.username, database.password) == expected, "Airflow and postgres disagree"
    assert env.get("AIRFLOW__CORE__EXECUTOR") == "CeleryExecutor"
    broker = urlsplit(env["AIRFLOW__CELERY__BROKER_URL"] or "")
    assert (broker.scheme, broker.hostname, broker.port) == ("redis", "redis", 6379)
    backend = urlsplit(env["AIRFLOW__CELERY__RESULT_BACKEND"] or "")
    assert backend.scheme.startswith("db+postgresql") and backend.hostname == "postgres" and backend.path == "/airflow"
    assert backend.password == database.password, "result backend and metadata DB disagree on the password"
    # Redis redelivers an unacknowledged task after the visibility timeout, even while it still runs:
    # it must outlast the longest task a worker runs (the ad-hoc query's 6 h execution_timeout).
    assert int(env["AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__VISIBILITY_TIMEOUT"] or 0) > 6 * 3600
    assert 0 < int(env["AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT"] or 0) < 300, "faster than the default"
    scheduler = environment(SERVICES["airflow-scheduler"])
    assert (scheduler.get("AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK") or "").lower() == "true", "/health on :8974"
    worker = SERVICES["airflow-worker"]
    assert environment(worker).get("DUMB_INIT_SETSID") == "0", "warm shutdown needs DUMB_INIT_SETSID=0"
    assert "stop_grace_period" in worker, "give running tasks time to finish on stop"


@pytest.mark.parametrize("variable", ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "AIRFLOW__CELERY__RESULT_BACKEND"])
def test_database_urls_name_a_driver_the_pins_install(variable: str) -> None:
    """SQLAlchemy loads the URL's driver (what `airflow db migrate` and the Celery workers do first): it
    must be one requirements.txt pins, installed here from the same pins as the image."""
    from sqlalchemy.engine import make_url

    url = make_url((environment(SERVICES["airflow-scheduler"])[variable] or "").removeprefix("db+"))
    assert url.drivername == "postgresql+psycopg2", f"{variable}: name the driver ({url.drivername})"
    url.get_dialect().import_dbapi()  # ImportError if the driver is not installed
    pins = {Requirement(line).name for line in _requirement_lines()}
    assert "psycopg2-binary" in pins and "asyncpg" in pins and "apache-airflow-providers-celery" in pins, pins


def test_depends_on_conditions() -> None:
    for name in AIRFLOW_SERVICES:
        conditions = depends_on(SERVICES[name])
        assert conditions.get("postgres") == "service_healthy", f"{name} does not wait for a healthy Postgres"
        if name != "airflow-init":
            assert conditions.get("airflow-init") == "service_completed_successfully", name
            assert conditions.get("redis") == "service_healthy", f"{name} does not wait for the broker"
    for name in ("airflow-worker", "airflow-triggerer"):  # they talk to the execution API
        assert depends_on(SERVICES[name]).get("airflow-apiserver") == "service_healthy", name
    for name, service in SERVICES.items():
        for dependency, condition in depends_on(service).items():
            assert dependency in SERVICES, f"{name} depends on unknown service {dependency}"
            if condition == "service_healthy":
                assert "healthcheck" in SERVICES[dependency], f"{name} waits for {dependency}: it has no healthcheck"
            if condition == "service_completed_successfully":
                assert str(SERVICES[dependency].get("restart", "no")) == "no", f"{dependency} must run once"


def test_postgres_and_redis_stay_inside() -> None:
    postgres, redis = SERVICES["postgres"], SERVICES["redis"]
    env, argv = environment(postgres), healthcheck_argv(postgres)
    assert option_values(argv, "-U") == [env["POSTGRES_USER"]] and option_values(argv, "-d") == [env["POSTGRES_DB"]]
    assert any(kind == "volume" for kind, _, _ in mounts(postgres)), "Postgres data should live on a named volume"
    for service in (postgres, redis):
        assert re.fullmatch(r"[a-z]+:\d+(\.\d+)*(-[a-z]+)?", service["image"]), f"pin {service['image']}"
        assert "ports" not in service, f"{service['image']} should not be published to the host"


def test_init_migrates_the_database_and_writes_the_admin_password() -> None:
    init, api = SERVICES["airflow-init"], SERVICES["airflow-apiserver"]
    script, env = "\n".join(words(init.get("command"))), environment(init)
    assert re.search(r"^\s*(/entrypoint )?airflow db migrate\s*$", script, re.MULTILINE), "airflow-init must migrate"
    assert "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE" in script and str(init.get("restart")) == "no"
    users = (env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"] or "").split(",")
    assert any(user.rsplit(":", 1)[-1] == "admin" for user in users), "SimpleAuthManager needs an admin user"
    passwords = env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"] or ""
    shared = {(s, t) for kind, s, t in mounts(init) if kind == "volume" and passwords.startswith(t.rstrip("/") + "/")}
    assert shared and shared <= {(s, t) for _, s, t in mounts(api)}, f"{passwords} is not on a shared named volume"


def test_emulator_is_an_optional_profile_on_loopback() -> None:
    assert set(SERVICES) == CORE_SERVICES | EMULATOR_SERVICES, sorted(SERVICES)
    for name in CORE_SERVICES:
        assert "profiles" not in SERVICES[name], f"{name} must start with a plain `docker compose up`"
        assert not set(depends_on(SERVICES[name])) & EMULATOR_SERVICES, f"{name} would need --profile emulator"
    emulator = SERVICES[EMULATOR]
    for name in EMULATOR_SERVICES:
        assert SERVICES[name].get("profiles") == ["emulator"], f"{name} must only start with --profile emulator"
    command = words(emulator.get("command"))
    assert command[0] in console_scripts() and command[1] == "emulator", f"{EMULATOR} runs {command}"
    assert option_values(command, "--host") == ["0.0.0.0"], "listen on the compose network"
    port = int(option_values(command, "--port")[0])
    assert published_ports(emulator) == [("127.0.0.1", port)], "publish the emulator on loopback only"
    assert urlsplit(healthcheck_argv(emulator)[-1]).port == port, "the healthcheck probes another port"
    assert "/entrypoint" not in words(emulator.get("entrypoint")), "the Airflow entrypoint would wait for a database"
    connection = urlsplit(environment(COMMON)["AIRFLOW_CONN_JIT_AUDIT_EMULATOR"] or "")
    extra = {key: values[0] for key, values in parse_qs(connection.query).items()}
    endpoint = urlsplit(extra["endpoint_url"])
    assert connection.scheme == "aws" and extra["region_name"]
    assert (endpoint.hostname, endpoint.port) == (EMULATOR, port), "the emulator connection points elsewhere"
    assert unquote(connection.username or "") == unquote(connection.password or "") == EMULATOR_DUMMY


def test_emulator_seed_fills_what_the_dags_read_by_default() -> None:
    seed = SERVICES[EMULATOR_SEED]
    assert "/entrypoint" not in words(seed.get("entrypoint")) and depends_on(seed) == {EMULATOR: "service_healthy"}
    lines = "\n".join(words(seed.get("command"))).splitlines()
    (argv,) = [argv for argv in map(shlex.split, lines) if argv[1:2] == ["seed"] and argv[0] in console_scripts()]
    variables = {"--table": "jit_audit_table", "--bucket": "jit_audit_export_bucket",
                 "--prefix": "jit_audit_export_prefix"}
    defaults = {spec.variable: spec.default for spec in SETTINGS}
    for option, variable in variables.items():
        assert option_values(argv, option) == [defaults[variable]], f"seed {option}: not the DAGs' default"
    endpoint = urlsplit(environment(seed)["AWS_ENDPOINT_URL"] or "")
    assert (endpoint.hostname, endpoint.port) == (EMULATOR, published_ports(SERVICES[EMULATOR])[0][1])


def test_no_literal_secrets(stages: dict[str, Stage]) -> None:
    problems = []
    for name, block in [("x-airflow-common", COMMON), *SERVICES.items()]:
        env = {key: value or "" for key, value in environment(block).items()}
        # The emulator's services may hold its dummy credentials, next to its endpoint.
        dummy = name in EMULATOR_SERVICES and urlsplit(env.get("AWS_ENDPOINT_URL", "")).hostname == EMULATOR
        problems += [f"{name}: {variable} has a literal value" for variable, value in env.items()
                     if (variable in AWS_CREDENTIALS or SECRET_NAME.search(variable)) and value
                     and not INTERPOLATED.match(value) and not (dummy and value == EMULATOR_DUMMY)]
    for stage in stages.values():
        for value in stage.values("ENV", "ARG"):
            for key, _ in extract_key_values(env_replace=False, args={}, envs={}, instruction_value=value):
                if key in AWS_CREDENTIALS or "PASSWORD" in key:
                    problems.append(f"Dockerfile stage {stage.name}: {key} is baked into the image")
    assert not problems, "\n".join(problems)
    assert not re.search(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b", COMPOSE_FILE.read_text() + DOCKERFILE.read_text())
    assert ".env" in (REPO / ".gitignore").read_text().split(), ".env holds the secrets: keep it out of git"
    env = environment(COMMON)
    for variable in ("AIRFLOW__CORE__FERNET_KEY", "AIRFLOW__API_AUTH__JWT_SECRET", "AIRFLOW__API__SECRET_KEY"):
        assert REQUIRED_FROM_ENV.match(env.get(variable) or ""), f"{variable} must be `${{VAR:?...}}`"
    assert (urlsplit(env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] or "").password or "").startswith("${")
    assert REQUIRED_FROM_ENV.match(environment(SERVICES["airflow-init"]).get("_AIRFLOW_WWW_USER_PASSWORD") or "")
    for variable in ("AIRFLOW_CONN_AWS_DEFAULT", "AIRFLOW_VAR_JIT_AUDIT_AWS_CONN_ID",
                     "AIRFLOW_CONN_JIT_AUDIT_ALERTS_WEBHOOK", "AIRFLOW_CONN_JIT_AUDIT_ALERTS_SNS"):
        assert variable in env and env[variable] is None, f"{variable} should be a pass-through (`{variable}:`)"


def test_volumes_hold_data_not_the_project(stages: dict[str, Stage]) -> None:
    declared = set(COMPOSE.get("volumes") or {})
    for name, service in SERVICES.items():
        for kind, source, target in mounts(service):
            assert kind != "bind", f"{name} bind-mounts {source}: the image is the unit of deployment"
            assert kind != "volume" or source in declared, f"{name} uses undeclared volume {source}"
            assert target.startswith("/") and not target.startswith(PROJECT_SOURCES), f"{name} mounts over {target}"
        assert "PYTHONPATH" not in environment(service), f"{name}: PYTHONPATH would shadow the installed package"
    logs = {name: {s for _, s, t in mounts(SERVICES[name]) if t == "/opt/airflow/logs"} for name in AIRFLOW_COMMANDS}
    assert all(len(found) == 1 for found in logs.values()), f"mount one logs volume at /opt/airflow/logs: {logs}"
    assert len(set().union(*logs.values())) == 1, f"the API server must see the workers' logs: {logs}"
    # A new named volume takes the owner and mode of the image's directory: airflow must be able to write there.
    created = {path for stage in lineage(stages, "runtime") for _, argv in commands(stage.steps)
               if argv[:2] == ["install", "-d"] and option_values(argv, "-o") == ["airflow"] for path in argv[2:]}
    targets = {target for kind, _, target in mounts(COMMON) if kind == "volume"}
    assert targets <= created, f"create {sorted(targets - created)} owned by airflow in the runtime stage"


def test_stages_build_targets_and_base_image(stages: dict[str, Stage]) -> None:
    assert list(stages) == ["build", "runtime", "dev"], f"stages: {list(stages)}"
    assert stages["runtime"].base not in stages, "runtime must not be built FROM another stage (compiler, dev tools)"
    assert stages["dev"].base == "runtime", "the dev stage builds FROM runtime"
    build = COMMON["build"]
    assert (REPO / build["context"] / build.get("dockerfile", "Dockerfile")).resolve() == DOCKERFILE
    assert build["target"] == "runtime", "Airflow runs the runtime stage (never dev: it has the emulator)"
    for name in EMULATOR_SERVICES:
        assert SERVICES[name]["build"] == {**build, "target": "dev"}, name
        assert SERVICES[name]["image"] != COMMON["image"], f"{name} would overwrite the Airflow image's tag"
    for name, stage in stages.items():
        users = stage.values("USER")
        assert not users or users[-1] not in {"root", "0", "0:0"}, f"stage {name} leaves the image running as root"
        for sources, _, flags in copies(stage.steps):
            assert "from" in flags or all((REPO / source).exists() for source in sources), f"no {sources} to COPY"
    pin = airflow_pin()
    bases = [stage.base for stage in stages.values() if stage.base not in stages]
    for image in bases:
        match = re.fullmatch(r"apache/airflow:(\d+\.\d+\.\d+)(?:-python(\d+\.\d+))?(?:@sha256:[0-9a-f]{64})?", image)
        assert match, f"base image {image} is not apache/airflow pinned to an Airflow version"
        assert match.group(1) == pin, f"base image {image} but requirements.txt pins apache-airflow=={pin}"
        requires = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["requires-python"]
        assert not match.group(2) or SpecifierSet(requires).contains(match.group(2)), f"{image} vs {requires}"
    assert len(set(bases)) == 1, f"build and runtime stages must share one base image (ABI of the wheel): {bases}"
    assert f"apache-airflow=={pin}" in (REPO / "constraints.txt").read_text().splitlines()
    # A new pin needs a new tag: with an unchanged one, `docker compose up` keeps running the old image.
    for name, service in [("x-airflow-common", COMMON), *SERVICES.items()]:
        if "airflow" in service.get("image", ""):
            assert re.findall(r":(\d+\.\d+\.\d+)", service["image"]) == [pin], f"{name}: tag the image {pin}"


def test_build_stage_compiles_the_c_extension(stages: dict[str, Stage]) -> None:
    build = stages["build"]
    apt = [argv for _, argv in commands(build.steps) if argv[:2] == ["apt-get", "install"]]
    assert any("build-essential" in argv for argv in apt), "the build stage needs a C compiler"
    users = build.values("USER")
    assert users and users[0] == "root" and users[-1] == "airflow", "apt-get as root, then back to airflow"
    copied = {source for sources, _, _ in copies(build.steps) for source in sources}
    assert {"setup.py", "pyproject.toml"} <= copied, "setup.py declares the extension; copy it"
    (extension,) = re.findall(r"sources=\[([^\]]*)\]", (REPO / "setup.py").read_text())
    package_dirs = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
    for source in [*re.findall(r"[\"']([^\"']+)[\"']", extension), *package_dirs.values()]:
        assert (REPO / source).exists() and source.split("/")[0] in copied, f"{source} is not copied to the build"
    wheels = [arguments for _, arguments in pip(build.steps, "wheel")]
    assert any("." in arguments and "--no-deps" in arguments for arguments in wheels), "no `pip wheel --no-deps .`"


def test_build_stage_fails_when_the_wheel_lacks_the_c_extension(stages: dict[str, Stage], tmp_path: Path) -> None:
    # setup.py marks the extension optional=True, so a failed compile would pass silently: a python -c of the
    # build stage must refuse such a wheel. Run each against a wheel with and one without the compiled module.
    ((_, arguments),) = pip(stages["build"].steps, "wheel")
    wheel_dir = option_values(arguments, "-w", "--wheel-dir")[0]
    failed = {}
    for label, module in [("good", "_speedups.cpython-311-x86_64-linux-gnu.so"), ("bad", "_speedups.c")]:
        (tmp_path / label / wheel_dir).mkdir(parents=True)
        with zipfile.ZipFile(tmp_path / label / wheel_dir / "jit_audit_export-1.0-py3-none-any.whl", "w") as wheel:
            wheel.writestr(f"jit_audit/{module}", "")
        runs = [subprocess.run([sys.executable, "-c", code], cwd=tmp_path / label, timeout=60)
                for code in python_snippets(stages["build"].steps)]
        failed[label] = [run.returncode != 0 for run in runs]
    assert (False, True) in zip(failed["good"], failed["bad"], strict=True), f"no wheel check refuses it: {failed}"


def test_runtime_stage_installs_the_pins_then_the_built_wheel_and_checks_it(stages: dict[str, Stage]) -> None:
    runtime, installs = stages["runtime"], pip(stages["runtime"].steps, "install")
    pinned = [i for i, (_, arguments) in enumerate(installs) if "--no-cache-dir" in arguments
              and option_values(arguments, "-r", "--requirement") == ["requirements.txt"]
              and option_values(arguments, "-c", "--constraint") == ["constraints.txt"]]
    wheels = [i for i, (_, arguments) in enumerate(installs)
              if {"--no-deps", "--no-cache-dir"} <= set(arguments) and any(a.endswith(".whl") for a in arguments)]
    assert pinned, f"no `pip install --no-cache-dir -r requirements.txt -c constraints.txt`: {installs}"
    assert wheels, f"no `pip install --no-cache-dir --no-deps <built wheel>`: {installs}"
    assert pinned[0] < wheels[0], "install the pinned requirements before the project"
    # The wheel comes from the build stage's wheel directory, and nothing else does.
    ((build_cwd, build_arguments),) = pip(stages["build"].steps, "wheel")
    built = clean(posixpath.join(build_cwd, option_values(build_arguments, "-w", "--wheel-dir")[0]))
    from_build = [(sources, to) for sources, to, flags in copies(runtime.steps) if flags.get("from") == "build"]
    assert from_build and all(sources == [built] for sources, _ in from_build), f"take only {built} from the build"
    cwd, arguments = installs[wheels[0]]
    installed = {clean(posixpath.dirname(posixpath.join(cwd, a))) for a in arguments if a.endswith(".whl")}
    assert installed <= {to for _, to in from_build}, f"pip installs {installed}, not the built wheel"
    assert (["dags"], "/opt/airflow/dags") in [(s, to) for s, to, _ in copies(runtime.steps)], "COPY dags/ in"
    imported, looked_up = set(), set()
    for snippet in python_snippets(runtime.steps):
        for node in ast.walk(ast.parse(snippet)):
            if isinstance(node, ast.Import):
                imported |= {alias.name for alias in node.names}
            elif isinstance(node, ast.Call):
                looked_up |= {arg.value for arg in node.args if isinstance(arg, ast.Constant)}
    assert "jit_audit._speedups" in imported, "check that the fast path imports in the runtime image"
    assert {"apache-airflow-providers-celery", "redis"} <= looked_up, "check that Celery's pieces are installed"


def test_dev_tools_only_in_the_dev_stage_and_no_compiler_in_the_runtime_image(stages: dict[str, Stage]) -> None:
    installs = [arguments for _, arguments in pip(stages["dev"].steps, "install")]
    assert any(option_values(arguments, "-r", "--requirement") == ["requirements-dev.txt"]
               and option_values(arguments, "-c", "--constraint") == ["constraints.txt"] for arguments in installs), (
        f"the dev stage does not install requirements-dev.txt with constraints.txt: {installs}")
    assert re.search(r"^moto\[[^]]*server[^]]*\]==", (REPO / "requirements-dev.txt").read_text(), re.MULTILINE)
    # The runtime image is its own stage, the stages it is built FROM, and the wheel of the build stage.
    for stage in [*lineage(stages, "runtime"), stages["build"]]:
        assert stage.name != "dev", "the runtime image must not be built FROM the dev stage"
        for sources, _, _ in copies(stage.steps):
            assert not any(map(is_dev_only, sources)), f"stage {stage.name} copies {sources}: dev only"
        for _, arguments in pip(stage.steps, "install"):
            assert not any(map(is_dev_only, arguments)), f"stage {stage.name} runs pip install {arguments}: dev only"
    for stage in lineage(stages, "runtime"):
        for _, argv in commands(stage.steps):
            if argv[0] in {"apt-get", "apt", "yum", "dnf", "apk"} and argv[1:2] in (["install"], ["add"]):
                assert not COMPILERS & set(argv), f"stage {stage.name} installs a compiler: {argv}"


@pytest.mark.parametrize("variable", ["AIRFLOW_FERNET_KEY", "AIRFLOW_JWT_SECRET", "AIRFLOW_API_SECRET_KEY"])
def test_secret_recipes_in_the_header_work(variable: str) -> None:
    """The header's one-liners (step 1) run, and give what Airflow needs: a Fernet key, and at least
    64 random bytes for the JWT secret (HS512's key size)."""
    (line,) = [line for line in COMPOSE_FILE.read_text().splitlines() if line.startswith(f"#      {variable}=")]
    command = shlex.split(line.split("=", 1)[1].strip())
    assert command[:2] == ["python3", "-c"], line
    value = subprocess.run([sys.executable, "-c", command[2]], capture_output=True, text=True, check=True).stdout.strip()
    if variable == "AIRFLOW_FERNET_KEY":
        from cryptography.fernet import Fernet

        Fernet(value)
    else:
        assert re.fullmatch(r"[A-Za-z0-9_-]+", value), value
        random_bytes = len(value) * 6 // 8  # token_urlsafe: base64url of the random bytes
        assert random_bytes >= (64 if variable == "AIRFLOW_JWT_SECRET" else 32), (variable, random_bytes)

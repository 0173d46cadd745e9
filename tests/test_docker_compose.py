"""Structure of docker-compose.yaml and Dockerfile (there is no Docker engine in CI: nothing is run).

The compose file is read with ``yaml.safe_load`` (which resolves the ``x-airflow-common`` anchor and
its ``<<`` merges the way compose does); ``${...}`` interpolation is left as written, so the tests
look at what a user gets with an empty ``.env`` plus the required secrets. An environment entry
without a value (``KEY:``) is compose's pass-through: set from ``.env``/the shell, else unset.
"""

from __future__ import annotations

import re
import shlex
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parent.parent
COMPOSE_FILE = REPO / "docker-compose.yaml"
DOCKERFILE = REPO / "Dockerfile"

AIRFLOW_COMMANDS = {
    "airflow-apiserver": ["api-server"],
    "airflow-scheduler": ["scheduler"],
    "airflow-dag-processor": ["dag-processor"],
    "airflow-triggerer": ["triggerer"],
    "airflow-worker": ["celery", "worker"],
}
AIRFLOW_SERVICES = ["airflow-init", *AIRFLOW_COMMANDS]
CORE_SERVICES = {"postgres", "redis", *AIRFLOW_SERVICES}
EMULATOR = "aws-emulator"
EMULATOR_SEED = "aws-emulator-seed"
EMULATOR_PROFILE = "emulator"
EMULATOR_SERVICES = {EMULATOR, EMULATOR_SEED}
ONE_SHOT = {"airflow-init", EMULATOR_SEED}
LONG_RUNNING = (CORE_SERVICES | EMULATOR_SERVICES) - ONE_SHOT
#: Health check command per long-running service (as in Apache Airflow's official compose file).
HEALTH_CHECKS = {
    "postgres": r"^pg_isready\b",
    "redis": r"^redis-cli ping$",
    "airflow-apiserver": r"^curl --fail http://localhost:8080/api/v2/version$",
    "airflow-scheduler": r"^curl --fail http://localhost:8974/health$",
    "airflow-dag-processor": r'^airflow jobs check --job-type DagProcessorJob --hostname "\$\$\{HOSTNAME\}"$',
    "airflow-triggerer": r'^airflow jobs check --job-type TriggererJob --hostname "\$\$\{HOSTNAME\}"$',
    "airflow-worker": (
        r"^celery --app airflow\.providers\.celery\.executors\.celery_executor\.app inspect ping"
        r' -d "celery@\$\$\{HOSTNAME\}"$'
    ),
    EMULATOR: r"^curl\b.*http://localhost:5000/moto-api/$",
}
PROJECT_SOURCES = {"/opt/airflow/dags", "/opt/airflow/plugins", "/opt/airflow/include"}
#: The service keys this file may use (a subset of the compose specification's), to catch typos.
SERVICE_KEYS = {
    "build", "image", "environment", "volumes", "depends_on", "command", "entrypoint", "healthcheck",
    "restart", "ports", "expose", "profiles", "stop_grace_period", "user",
}
AWS_CREDENTIAL_VARIABLES = {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"}
#: The emulator's dummy credentials: accepted only by the emulator, allowed only with its endpoint.
EMULATOR_DUMMY = "testing"
SECRET_NAME = re.compile(r"(PASSWORD|SECRET|SECRET_KEY|TOKEN|FERNET_KEY|ACCESS_KEY_ID)$")
# Compose interpolation with no default (`${VAR}`) or a required one (`${VAR:?message}`): no literal value.
NO_LITERAL = re.compile(r"^\$\{[A-Za-z_][A-Za-z0-9_]*(:?\?[^}]*)?\}$")
REQUIRED_FROM_ENV = re.compile(r"^\$\{[A-Za-z_][A-Za-z0-9_]*:?\?[^}]+\}$")
OVERRIDABLE = re.compile(r"^\$\{[A-Za-z_][A-Za-z0-9_]*(:?[-?][^}]*)?\}$")


# --------------------------------------------------------------------------------------------- helpers


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(data, dict), "docker-compose.yaml is not a mapping"
    return data


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


@pytest.fixture(scope="module")
def common(compose: dict[str, Any]) -> dict[str, Any]:
    return compose["x-airflow-common"]


def raw_environment(service: dict[str, Any]) -> dict[str, str | None]:
    """A service's environment; ``None`` is a pass-through entry (``KEY:`` or ``- KEY``)."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, None) for item in env)
    return {key: (None if value is None else str(value)) for key, value in env.items()}


def environment(service: dict[str, Any]) -> dict[str, str]:
    return {key: ("" if value is None else value) for key, value in raw_environment(service).items()}


def words(value: Any) -> list[str]:
    if value is None:
        return []
    return shlex.split(value) if isinstance(value, str) else [str(part) for part in value]


def command_text(service: dict[str, Any]) -> str:
    value = service.get("command") or ""
    return value if isinstance(value, str) else "\n".join(str(part) for part in value)


def healthcheck_command(service: dict[str, Any]) -> str:
    test = service["healthcheck"]["test"]
    if isinstance(test, str):
        return test
    assert test[0] in {"CMD", "CMD-SHELL"}, f"healthcheck test must start with CMD or CMD-SHELL: {test}"
    return test[1] if test[0] == "CMD-SHELL" else " ".join(test[1:])


def depends_on(service: dict[str, Any]) -> dict[str, str]:
    """``{service: condition}``; the short list form means ``service_started``."""
    value = service.get("depends_on") or {}
    if isinstance(value, list):
        return dict.fromkeys(value, "service_started")
    return {name: (options or {}).get("condition", "service_started") for name, options in value.items()}


def mounts(service: dict[str, Any]) -> list[tuple[str, str, str]]:
    """``(type, source, target)`` of every volume entry, short or long syntax."""
    result = []
    for entry in service.get("volumes") or []:
        if isinstance(entry, dict):
            result.append((entry["type"], entry.get("source", ""), entry["target"]))
            continue
        parts = entry.split(":")
        source, target = (parts[0], parts[1]) if len(parts) > 1 else ("", parts[0])
        kind = "bind" if source.startswith((".", "/", "~", "$")) else ("volume" if source else "anonymous")
        result.append((kind, source, target))
    return result


def published_ports(service: dict[str, Any]) -> list[tuple[str, int]]:
    """``(host ip, container port)`` of every published port ("" when bound on all interfaces)."""
    result = []
    for entry in service.get("ports") or []:
        if isinstance(entry, dict):
            result.append((entry.get("host_ip", ""), int(entry["target"])))
            continue
        text = str(entry).split("/")[0]
        # host_ip:host_port:container, host_port:container or container; host_port may be ${...}.
        parts = re.split(r":(?![^{]*\})", text)
        host_ip = parts[0] if len(parts) == 3 else ""
        result.append((host_ip, int(parts[-1])))
    return result


def airflow_pin() -> str:
    pins = []
    for line in (REPO / "requirements.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line or line.startswith("-"):
            continue
        requirement = Requirement(line)
        if canonicalize_name(requirement.name) == "apache-airflow":
            specs = list(requirement.specifier)
            assert len(specs) == 1 and specs[0].operator == "==", f"apache-airflow must be pinned with ==: {line}"
            pins.append(specs[0].version)
    assert len(pins) == 1, f"expected exactly one apache-airflow pin in requirements.txt, found {pins}"
    return pins[0]


def dockerfile_instructions() -> list[tuple[str, str]]:
    """``(INSTRUCTION, arguments)`` in order, continuation lines joined, comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for raw in DOCKERFILE.read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        pending += line
        keyword, _, arguments = pending.partition(" ")
        instructions.append((keyword.upper(), " ".join(arguments.split())))
        pending = ""
    assert not pending, "Dockerfile ends with a line continuation"
    return instructions


def dockerfile_stages() -> dict[str, list[tuple[str, str]]]:
    """Instructions per build stage, keyed by stage name (``AS name``), in order."""
    stages: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] | None = None
    for index, (keyword, arguments) in enumerate(dockerfile_instructions()):
        if keyword == "FROM":
            parts = arguments.split()
            name = parts[-1] if len(parts) >= 3 and parts[-2].upper() == "AS" else f"stage{index}"
            current = stages[name] = [(keyword, arguments)]
        elif current is not None:
            current.append((keyword, arguments))
    return stages


def shell_commands(instructions: list[tuple[str, str]]) -> list[list[str]]:
    """Every simple command of every RUN (split on ``&&``, ``||``, ``;`` and pipes, quotes respected)."""
    commands: list[list[str]] = []
    for keyword, arguments in instructions:
        if keyword != "RUN":
            continue
        lexer = shlex.shlex(arguments, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        current: list[str] = []
        for token in lexer:
            if token in {"&&", "||", ";", "|", "&"}:
                commands.append(current)
                current = []
            else:
                current.append(token)
        commands.append(current)
    return [command for command in commands if command]


def pip(instructions: list[tuple[str, str]], subcommand: str) -> list[list[str]]:
    """Arguments of every ``pip <subcommand>`` in RUN instructions."""
    found = []
    for command in shell_commands(instructions):
        for start in range(len(command) - 1):
            if command[start].endswith("pip") and command[start + 1] == subcommand:
                found.append(command[start + 2 :])
                break
    return found


def option_values(arguments: list[str], *names: str) -> list[str]:
    values = []
    for index, word in enumerate(arguments):
        for name in names:
            if word == name and index + 1 < len(arguments):
                values.append(arguments[index + 1])
            elif word.startswith(name + "=") and name.startswith("--"):
                values.append(word.split("=", 1)[1])
    return values


def copies(instructions: list[tuple[str, str]]) -> list[tuple[list[str], str, dict[str, str]]]:
    """``(sources, destination, flags)`` of every COPY/ADD."""
    result = []
    for keyword, arguments in instructions:
        if keyword not in {"COPY", "ADD"}:
            continue
        parts = shlex.split(arguments)
        flags = dict(part[2:].split("=", 1) for part in parts if part.startswith("--") and "=" in part)
        paths = [part for part in parts if not part.startswith("--")]
        result.append((paths[:-1], paths[-1], flags))
    return result


# ------------------------------------------------------------------------------------------- services


def test_services(services: dict[str, Any]) -> None:
    assert set(services) == CORE_SERVICES | EMULATOR_SERVICES, (
        f"unexpected services: {sorted(set(services) ^ (CORE_SERVICES | EMULATOR_SERVICES))}"
    )
    for name, service in services.items():
        assert set(service) <= SERVICE_KEYS, f"{name}: unknown keys {sorted(set(service) - SERVICE_KEYS)}"


@pytest.mark.parametrize("name", sorted(LONG_RUNNING))
def test_long_running_services_have_health_checks_and_restart(services: dict[str, Any], name: str) -> None:
    service = services[name]
    assert "healthcheck" in service, f"{name} has no healthcheck"
    check = service["healthcheck"]
    assert re.search(HEALTH_CHECKS[name], healthcheck_command(service)), (
        f"{name}: healthcheck `{healthcheck_command(service)}` is not `{HEALTH_CHECKS[name]}`"
    )
    for field in ("interval", "timeout", "retries", "start_period"):
        assert field in check or name == "postgres", f"{name}: healthcheck without {field}"
    assert service.get("restart") in {"always", "unless-stopped"}, f"{name} is not restarted"


@pytest.mark.parametrize("name", sorted(ONE_SHOT))
def test_one_shot_services_run_once(services: dict[str, Any], name: str) -> None:
    assert str(services[name].get("restart", "no")) == "no", f"{name} must run once"
    assert "healthcheck" not in services[name] and "ports" not in services[name]


@pytest.mark.parametrize("name", AIRFLOW_SERVICES)
def test_airflow_services_use_the_common_image_and_build(
    services: dict[str, Any], common: dict[str, Any], name: str
) -> None:
    service = services[name]
    assert service.get("image") == common["image"], f"{name} does not use the x-airflow-common image"
    assert service.get("build") == common["build"], f"{name} does not use the x-airflow-common build"
    assert raw_environment(service).items() >= raw_environment(common).items(), f"{name} drops common environment"
    assert "_PIP_ADDITIONAL_REQUIREMENTS" not in environment(service), "install at build time, not at start"


def test_common_build_is_the_project_dockerfile(common: dict[str, Any]) -> None:
    build = common["build"]
    assert (REPO / build["context"]).resolve() == REPO
    assert (REPO / build["context"] / build.get("dockerfile", "Dockerfile")).resolve() == DOCKERFILE
    assert build["target"] == "runtime"


@pytest.mark.parametrize(("name", "expected"), sorted(AIRFLOW_COMMANDS.items()))
def test_airflow_commands(services: dict[str, Any], name: str, expected: list[str]) -> None:
    command = words(services[name].get("command"))
    if command[:1] == ["airflow"]:  # the image's entrypoint accepts both forms
        command = command[1:]
    assert command == expected
    assert "entrypoint" not in services[name], f"{name} must go through the image's /entrypoint"


def test_airflow_settings(services: dict[str, Any]) -> None:
    for name in AIRFLOW_SERVICES:
        env = environment(services[name])
        assert env.get("AIRFLOW__CORE__LOAD_EXAMPLES", "").lower() == "false", name
        assert env.get("AIRFLOW__CORE__EXECUTION_API_SERVER_URL") == "http://airflow-apiserver:8080/execution/", name
        database = urlsplit(env.get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", ""))
        assert database.scheme.startswith("postgresql"), f"{name}: metadata DB is not PostgreSQL"
        assert database.hostname == "postgres" and database.path == "/airflow", name
    assert ("", 8080) in published_ports(services["airflow-apiserver"])
    scheduler = environment(services["airflow-scheduler"])
    assert scheduler.get("AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK", "").lower() == "true", "/health on :8974"


# --------------------------------------------------------------------------------------- Celery, Redis


def test_celery_executor_with_redis(services: dict[str, Any]) -> None:
    for name in AIRFLOW_SERVICES:
        env = environment(services[name])
        assert env.get("AIRFLOW__CORE__EXECUTOR") == "CeleryExecutor", name
        broker = urlsplit(env["AIRFLOW__CELERY__BROKER_URL"])
        assert (broker.scheme, broker.hostname, broker.port) == ("redis", "redis", 6379), name
        backend = urlsplit(env["AIRFLOW__CELERY__RESULT_BACKEND"])
        assert backend.scheme == "db+postgresql" and backend.hostname == "postgres" and backend.path == "/airflow", name
        database = urlsplit(env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"])
        assert backend.password == database.password, f"{name}: result backend and metadata DB disagree on the password"


def test_redis(services: dict[str, Any]) -> None:
    redis = services["redis"]
    assert re.fullmatch(r"redis:\d+(\.\d+)*(-[a-z]+)?", redis["image"]), f"pin the Redis image: {redis['image']}"
    assert "ports" not in redis, "the broker should not be published to the host"


def test_worker(services: dict[str, Any]) -> None:
    worker = services["airflow-worker"]
    assert environment(worker).get("DUMB_INIT_SETSID") == "0", "warm shutdown needs DUMB_INIT_SETSID=0"
    conditions = depends_on(worker)
    assert conditions.get("redis") == "service_healthy"
    assert conditions.get("airflow-apiserver") == "service_healthy", "tasks talk to the execution API"
    assert "stop_grace_period" in worker, "give running tasks time to finish on stop"


def test_scheduler_waits_for_the_broker(services: dict[str, Any]) -> None:
    assert depends_on(services["airflow-scheduler"]).get("redis") == "service_healthy"


def test_triggerer_runs_for_deferred_sensors(services: dict[str, Any]) -> None:
    assert "TriggererJob" in healthcheck_command(services["airflow-triggerer"])
    assert depends_on(services["airflow-triggerer"]).get("airflow-apiserver") == "service_healthy"


# --------------------------------------------------------------------------------------- dependencies


def test_depends_on_conditions(services: dict[str, Any]) -> None:
    for name in AIRFLOW_SERVICES:
        conditions = depends_on(services[name])
        assert conditions.get("postgres") == "service_healthy", f"{name} does not wait for a healthy Postgres"
        if name != "airflow-init":
            assert conditions.get("airflow-init") == "service_completed_successfully", (
                f"{name} does not wait for airflow-init"
            )
    for name, service in services.items():
        for dependency, condition in depends_on(service).items():
            assert dependency in services, f"{name} depends on unknown service {dependency}"
            if condition == "service_healthy":
                assert "healthcheck" in services[dependency], f"{name} waits for {dependency}, which has no healthcheck"
            if condition == "service_completed_successfully":
                assert dependency in ONE_SHOT, f"{name} waits for {dependency} to exit, but it keeps running"


def test_init_migrates_the_database_once(services: dict[str, Any]) -> None:
    assert re.search(r"\bairflow db migrate\b", command_text(services["airflow-init"]))


def test_postgres(services: dict[str, Any]) -> None:
    postgres = services["postgres"]
    assert postgres["image"] == "postgres:16"
    assert "ports" not in postgres, "the metadata DB should not be published to the host"
    assert any(kind == "volume" for kind, _, _ in mounts(postgres)), "Postgres data should live on a named volume"


# ------------------------------------------------------------------------------------------- profiles


def test_emulator_is_an_optional_profile(services: dict[str, Any]) -> None:
    for name in EMULATOR_SERVICES:
        assert services[name].get("profiles") == [EMULATOR_PROFILE], f"{name} must only start with --profile emulator"
    for name in CORE_SERVICES:
        assert "profiles" not in services[name], f"{name} must start with a plain `docker compose up`"
        assert not set(depends_on(services[name])) & EMULATOR_SERVICES, (
            f"{name} depends on the emulator: `docker compose up` without the profile would fail"
        )


def test_emulator_service(services: dict[str, Any], common: dict[str, Any]) -> None:
    emulator = services[EMULATOR]
    command = words(emulator.get("command"))
    assert command[:2] == ["jit-audit", "emulator"], f"{EMULATOR} runs {command}"
    assert option_values(command, "--host") == ["0.0.0.0"] and option_values(command, "--port") == ["5000"]
    assert published_ports(emulator) == [("127.0.0.1", 5000)], "publish the emulator on loopback only"
    entrypoint = words(emulator.get("entrypoint"))
    assert entrypoint and "/entrypoint" not in entrypoint, "the Airflow entrypoint would run `airflow jit-audit ...`"
    assert emulator["build"]["target"] == "dev" and emulator["image"] != common["image"]
    assert not {"postgres", "airflow-init"} & set(depends_on(emulator)), "the emulator needs no Airflow"


def test_emulator_seed(services: dict[str, Any]) -> None:
    seed = services[EMULATOR_SEED]
    assert seed["build"] == services[EMULATOR]["build"] and seed["image"] == services[EMULATOR]["image"]
    assert "/entrypoint" not in words(seed.get("entrypoint"))
    assert re.search(r"^\s*jit-audit seed\b.*--bucket jit-audit-exports", command_text(seed), re.MULTILINE)
    assert depends_on(seed) == {EMULATOR: "service_healthy"}
    endpoint = urlsplit(environment(seed)["AWS_ENDPOINT_URL"])
    assert (endpoint.hostname, endpoint.port) == (EMULATOR, 5000)


def test_emulator_services_are_marked_local_only() -> None:
    lines = COMPOSE_FILE.read_text().splitlines()
    for name in EMULATOR_SERVICES:
        start = next(index for index, line in enumerate(lines) if line.strip() == f"{name}:")
        comments = []
        for line in reversed(lines[:start]):
            if not line.strip().startswith("#"):
                break
            comments.append(line)
        assert re.search(r"\bLOCAL\b", " ".join(comments)), f"{name} needs a local-only comment"


# -------------------------------------------------------------------------------------------- AWS


def test_aws_default_is_passed_through_not_defined(common: dict[str, Any]) -> None:
    env = raw_environment(common)
    for variable in (
        "AIRFLOW_CONN_AWS_DEFAULT",
        "AIRFLOW_VAR_JIT_AUDIT_AWS_CONN_ID",
        "AIRFLOW_CONN_JIT_AUDIT_ALERTS_WEBHOOK",
        "AIRFLOW_CONN_JIT_AUDIT_ALERTS_SNS",
    ):
        assert variable in env and env[variable] is None, (
            f"{variable} should be a pass-through (`{variable}:`) so that .env can set it and nothing is written here"
        )
    lines = COMPOSE_FILE.read_text().splitlines()
    index = next(i for i, line in enumerate(lines) if line.strip().startswith("AIRFLOW_CONN_AWS_DEFAULT:"))
    comment = " ".join(line for line in lines[max(0, index - 10) : index] if line.strip().startswith("#"))
    assert re.search(r"real AWS", comment) and re.search(r"IAM role", comment) and "role_arn" in comment, (
        "explain how to use real AWS"
    )


def test_emulator_connection(common: dict[str, Any]) -> None:
    uri = urlsplit(environment(common)["AIRFLOW_CONN_JIT_AUDIT_EMULATOR"])
    assert uri.scheme == "aws"
    extra = {key: values[0] for key, values in parse_qs(uri.query).items()}
    endpoint = urlsplit(extra["endpoint_url"])
    assert (endpoint.hostname, endpoint.port) == (EMULATOR, 5000) and extra.get("region_name")
    assert unquote(uri.username or "") == EMULATOR_DUMMY and unquote(uri.password or "") == EMULATOR_DUMMY


def _literal_secrets(name: str, block: dict[str, Any], emulator_only: bool) -> list[str]:
    problems = []
    env = environment(block)
    for variable, value in env.items():
        if value == "" or OVERRIDABLE.match(value):
            continue
        if variable in AWS_CREDENTIAL_VARIABLES:
            if not (emulator_only and value == EMULATOR_DUMMY and "aws-emulator" in env.get("AWS_ENDPOINT_URL", "")):
                problems.append(f"{name}: {variable} has a literal value")
        elif SECRET_NAME.search(variable):
            problems.append(f"{name}: {variable} has a literal value")
        parts = urlsplit(value) if "://" in value else None
        if parts and parts.password and not parts.password.startswith("${"):
            endpoint = parse_qs(parts.query).get("endpoint_url", [""])[0]
            if not (unquote(parts.password) == EMULATOR_DUMMY and urlsplit(endpoint).hostname == EMULATOR):
                problems.append(f"{name}: {variable} holds a literal password")
    return problems


def test_no_literal_secrets(compose: dict[str, Any]) -> None:
    blocks = [("x-airflow-common", compose["x-airflow-common"], False)]
    blocks += [(name, service, name in EMULATOR_SERVICES) for name, service in compose["services"].items()]
    problems = []
    for name, block, emulator_only in blocks:
        problems += _literal_secrets(name, block, emulator_only)
        build = block.get("build")
        if isinstance(build, dict):
            args = build.get("args") or {}
            args = dict(a.split("=", 1) for a in args) if isinstance(args, list) else args
            assert not AWS_CREDENTIAL_VARIABLES & set(args), f"{name}: AWS credentials as build args"
    assert not problems, "\n".join(problems)
    text = COMPOSE_FILE.read_text() + DOCKERFILE.read_text()
    assert not re.search(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b", text), "an AWS access key id is in the file"
    for line in DOCKERFILE.read_text().splitlines():
        assert not re.match(r"\s*(ENV|ARG)\b.*(AWS_(SECRET_ACCESS_KEY|SESSION_TOKEN|ACCESS_KEY_ID)|PASSWORD)", line), line
    assert ".env" in (REPO / ".gitignore").read_text().split(), ".env holds the secrets: keep it out of git"


def test_secrets_come_from_the_environment(services: dict[str, Any], common: dict[str, Any]) -> None:
    env = environment(common)
    for variable in ("AIRFLOW__CORE__FERNET_KEY", "AIRFLOW__API_AUTH__JWT_SECRET", "AIRFLOW__API__SECRET_KEY"):
        assert REQUIRED_FROM_ENV.match(env.get(variable, "")), f"{variable} must be `${{VAR:?...}}`, got {env.get(variable)!r}"
    assert (urlsplit(env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]).password or "").startswith("${")
    assert REQUIRED_FROM_ENV.match(environment(services["airflow-init"]).get("_AIRFLOW_WWW_USER_PASSWORD", ""))


def test_simple_auth_manager_admin(services: dict[str, Any]) -> None:
    env = environment(services["airflow-init"])
    users = env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"].split(",")
    assert any(user.rsplit(":", 1)[-1] == "admin" for user in users), "no admin user for SimpleAuthManager"
    passwords_file = env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"]
    assert "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE" in command_text(services["airflow-init"])
    api_env = environment(services["airflow-apiserver"])
    assert api_env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"] == passwords_file
    shared = {
        (source, target)
        for kind, source, target in mounts(services["airflow-init"])
        if kind == "volume" and passwords_file.startswith(target.rstrip("/") + "/")
    }
    assert shared, f"{passwords_file} is not on a named volume"
    assert shared <= {(source, target) for _, source, target in mounts(services["airflow-apiserver"])}


# ------------------------------------------------------------------------------------------- mounts


def test_the_project_is_baked_into_the_image_not_mounted(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        for kind, source, target in mounts(service):
            assert kind != "bind", f"{name} bind-mounts {source}: the image is the unit of deployment"
            assert not any(target == path or target.startswith(path + "/") for path in PROJECT_SOURCES), (
                f"{name} mounts over {target}, hiding what the image was built with"
            )
        assert "PYTHONPATH" not in environment(service), f"{name}: PYTHONPATH would shadow the installed package"


def test_logs_are_shared_by_everything_that_writes_or_serves_them(services: dict[str, Any]) -> None:
    writers = ["airflow-apiserver", "airflow-worker", "airflow-triggerer", "airflow-scheduler", "airflow-dag-processor"]
    volumes = {name: {source for kind, source, target in mounts(services[name]) if target == "/opt/airflow/logs"}
               for name in writers}
    assert all(len(found) == 1 for found in volumes.values()), f"mount one logs volume at /opt/airflow/logs: {volumes}"
    assert len(set().union(*volumes.values())) == 1, f"the API server must see the workers' logs: {volumes}"


def test_named_volumes_are_declared(compose: dict[str, Any]) -> None:
    declared = set(compose.get("volumes") or {})
    for name, service in compose["services"].items():
        for kind, source, target in mounts(service):
            if kind == "volume":
                assert source in declared, f"{name} uses undeclared volume {source}"
            assert target.startswith("/"), f"{name}: mount target {target} is not absolute"


def test_build_contexts_exist(compose: dict[str, Any]) -> None:
    stages = dockerfile_stages()
    for name, service in [("x-airflow-common", compose["x-airflow-common"]), *compose["services"].items()]:
        build = service.get("build")
        if build is None:
            continue
        build = {"context": build} if isinstance(build, str) else build
        context = REPO / build.get("context", ".")
        assert (context / build.get("dockerfile", "Dockerfile")).is_file(), f"{name}: no Dockerfile"
        if "target" in build:
            assert build["target"] in stages, f"{name}: Dockerfile has no stage {build['target']!r}"


# ----------------------------------------------------------------------------------------- versions


def test_dockerfile_base_image_matches_the_airflow_pin() -> None:
    pin = airflow_pin()
    args = {}
    for keyword, arguments in dockerfile_instructions():
        if keyword == "ARG" and "=" in arguments:
            key, value = arguments.split("=", 1)
            args[key.strip()] = value.strip().strip("\"'")
    bases = []
    stages = set()
    for keyword, arguments in dockerfile_instructions():
        if keyword != "FROM":
            continue
        parts = arguments.split()
        image = next(word for word in parts if not word.startswith("--"))
        image = re.sub(r"\$\{?(\w+)\}?", lambda match: args.get(match.group(1), match.group(0)), image)
        if image not in stages:
            bases.append(image)
        if len(parts) >= 3 and parts[-2].upper() == "AS":
            stages.add(parts[-1])
    assert bases, "the Dockerfile has no base image"
    for image in bases:
        match = re.fullmatch(r"apache/airflow:(\d+\.\d+\.\d+)(?:-python(\d+\.\d+))?(?:@sha256:[0-9a-f]{64})?", image)
        assert match, f"base image {image} is not apache/airflow pinned to an Airflow version"
        assert match.group(1) == pin, f"base image {image} but requirements.txt pins apache-airflow=={pin}"
        if match.group(2):
            requires = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["requires-python"]
            assert SpecifierSet(requires).contains(match.group(2)), f"Python {match.group(2)} vs {requires}"
    assert len(set(bases)) == 1, f"build and runtime stages must share one base image (ABI of the wheel): {bases}"


def test_image_tags_match_the_airflow_pin(compose: dict[str, Any]) -> None:
    pin = airflow_pin()
    for name, service in [("x-airflow-common", compose["x-airflow-common"]), *compose["services"].items()]:
        image = service.get("image", "")
        if "airflow" not in image:
            continue
        versions = re.findall(r":(\d+\.\d+\.\d+)", image)
        assert versions == [pin], f"{name}: image {image} should carry Airflow {pin}"


def test_constraints_agree_with_the_airflow_pin() -> None:
    assert f"apache-airflow=={airflow_pin()}" in (REPO / "constraints.txt").read_text().splitlines()


# ----------------------------------------------------------------------------------------- Dockerfile


def test_dockerfile_stages() -> None:
    stages = dockerfile_stages()
    assert list(stages) == ["build", "runtime", "dev"], f"stages: {list(stages)}"
    assert stages["dev"][0][1].split()[0] == "runtime", "the dev stage builds FROM runtime"


def test_build_stage_compiles_the_c_extension() -> None:
    build = dockerfile_stages()["build"]
    apt = [command for command in shell_commands(build) if command[:2] == ["apt-get", "install"]]
    assert any("build-essential" in command for command in apt), "the build stage needs a C compiler"
    users = [arguments for keyword, arguments in build if keyword == "USER"]
    assert users and users[0] == "root" and users[-1] == "airflow", "apt-get as root, then back to airflow"
    copied = {source.rstrip("/") for sources, _, _ in copies(build) for source in sources}
    setup = (REPO / "setup.py").read_text()
    sources = re.findall(r"sources=\[([^\]]*)\]", setup)
    assert sources, "setup.py no longer declares the C extension's sources"
    for source in re.findall(r"[\"']([^\"']+)[\"']", sources[0]):
        assert (REPO / source).is_file(), source
        assert source.split("/")[0] in copied, f"{source} is not copied into the build stage"
    assert {"setup.py", "pyproject.toml"} <= copied, "setup.py declares the extension; copy it"
    package_dirs = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
    for directory in package_dirs.values():
        assert directory.split("/")[0] in copied, f"pyproject's {directory} is not copied into the build stage"
    wheels = pip(build, "wheel")
    assert any("." in arguments and "--no-deps" in arguments for arguments in wheels), f"no `pip wheel --no-deps .`: {wheels}"
    # setup.py marks the extension optional=True, so a failed compile would pass silently: check the wheel.
    checks = [command for command in shell_commands(build) if command[:2] == ["python", "-c"]]
    assert any("_speedups" in command[2] and ".whl" in command[2] for command in checks), (
        "the build stage must fail when the wheel lacks the compiled jit_audit._speedups"
    )


def test_runtime_stage_installs_requirements_then_the_built_wheel() -> None:
    runtime = dockerfile_stages()["runtime"]
    installs = pip(runtime, "install")
    requirement_installs = [
        index
        for index, arguments in enumerate(installs)
        if option_values(arguments, "-r", "--requirement") == ["requirements.txt"]
        and option_values(arguments, "-c", "--constraint") == ["constraints.txt"]
        and "--no-cache-dir" in arguments
    ]
    wheel_installs = [
        index
        for index, arguments in enumerate(installs)
        if "--no-deps" in arguments and "--no-cache-dir" in arguments and any(a.endswith(".whl") for a in arguments)
    ]
    assert requirement_installs, f"no `pip install --no-cache-dir -r requirements.txt -c constraints.txt`: {installs}"
    assert wheel_installs, f"no `pip install --no-cache-dir --no-deps <built wheel>`: {installs}"
    assert requirement_installs[0] < wheel_installs[0], "install the pinned requirements before the project"
    from_build = [(sources, destination) for sources, destination, flags in copies(runtime) if flags.get("from") == "build"]
    assert from_build and all(source.rstrip("/").endswith("dist") for sources, _ in from_build for source in sources), (
        f"the runtime stage takes only the built wheel from the build stage: {from_build}"
    )
    for sources, _, flags in copies(runtime):
        if "from" not in flags:
            for source in sources:
                assert (REPO / source).exists(), f"the Dockerfile copies {source}, which is not in the repository"
    text = " ".join(" ".join(command) for command in shell_commands(runtime))
    assert "build-essential" not in text, "no compiler in the runtime image"
    assert "import jit_audit._speedups" in text, "check that the fast path imports in the runtime image"
    assert "apache-airflow-providers-celery" in text and "redis" in text, "check Celery's pieces are installed"


def test_runtime_stage_bakes_in_the_dags() -> None:
    runtime = dockerfile_stages()["runtime"]
    assert any(
        sources == ["dags/"] and destination.rstrip("/") == "/opt/airflow/dags" for sources, destination, _ in copies(runtime)
    ), "COPY dags/ /opt/airflow/dags/ in the runtime stage"


def test_dockerfile_dev_stage_adds_the_dev_requirements() -> None:
    stages = dockerfile_stages()
    installs = pip(stages["dev"], "install")
    assert any(
        option_values(arguments, "-r", "--requirement") == ["requirements-dev.txt"]
        and option_values(arguments, "-c", "--constraint") == ["constraints.txt"]
        for arguments in installs
    ), f"the dev stage does not install requirements-dev.txt with constraints.txt: {installs}"
    assert re.search(r"^moto\[[^]]*server[^]]*\]==", (REPO / "requirements-dev.txt").read_text(), re.MULTILINE)
    for name in ("build", "runtime"):
        assert not any("requirements-dev.txt" in arguments for arguments in pip(stages[name], "install")), name


def test_dockerfile_ends_as_a_non_root_user() -> None:
    for name, instructions in dockerfile_stages().items():
        users = [arguments for keyword, arguments in instructions if keyword == "USER"]
        if users:
            assert users[-1] not in {"root", "0", "0:0"}, f"stage {name} leaves the image running as root"

"""Structure of docker-compose.yaml and Dockerfile (there is no Docker engine in CI: nothing is run).

The compose file is read with ``yaml.safe_load`` (which resolves the ``x-airflow-common`` anchor and
its ``<<`` merges the way compose does); ``${...}`` interpolation is left as written, so the tests
look at what a user gets with an empty ``.env`` plus the required secrets.
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
}
AIRFLOW_SERVICES = ["airflow-init", *AIRFLOW_COMMANDS]
EMULATOR = "aws-emulator"
REQUIRED_SERVICES = {"postgres", *AIRFLOW_SERVICES, EMULATOR}
PROJECT_MOUNTS = {
    "dags": "/opt/airflow/dags",
    "plugins": "/opt/airflow/plugins",
    "include": "/opt/airflow/include",
}
AWS_CREDENTIAL_VARIABLES = {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"}
# Compose interpolation with no default (`${VAR}`) or a required one (`${VAR:?message}`): no literal value.
NO_LITERAL = re.compile(r"^\$\{[A-Za-z_][A-Za-z0-9_]*(:?\?[^}]*)?\}$")
REQUIRED_FROM_ENV = re.compile(r"^\$\{[A-Za-z_][A-Za-z0-9_]*:?\?[^}]+\}$")


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


def environment(service: dict[str, Any]) -> dict[str, str]:
    """A service's environment as a dict, whether written as a mapping or as a KEY=VALUE list."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, None) for item in env)
    return {key: ("" if value is None else str(value)) for key, value in env.items()}


def command(service: dict[str, Any]) -> list[str]:
    value = service.get("command")
    if value is None:
        return []
    return shlex.split(value) if isinstance(value, str) else [str(part) for part in value]


def command_text(service: dict[str, Any]) -> str:
    value = service.get("command") or ""
    return value if isinstance(value, str) else "\n".join(str(part) for part in value)


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


def published_container_ports(service: dict[str, Any]) -> set[int]:
    ports = set()
    for entry in service.get("ports") or []:
        if isinstance(entry, dict):
            ports.add(int(entry["target"]))
        else:
            ports.add(int(str(entry).rsplit(":", 1)[-1].split("/")[0]))
    return ports


def interpolation_default(value: str, variable: str) -> str:
    """The default of ``${variable:-default}`` (the whole value must be that expression)."""
    prefix = f"${{{variable}:-"
    assert value.startswith(prefix) and value.endswith("}"), (
        f"{variable} should be `${{{variable}:-...}}` so that .env can override it, got {value!r}"
    )
    return value[len(prefix) : -1]


def airflow_pin() -> str:
    pins = []
    for line in (REPO / "requirements.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line or line.startswith("-"):
            continue
        requirement = Requirement(line)
        if canonicalize_name(requirement.name) == "apache-airflow":
            specs = list(requirement.specifier)
            assert len(specs) == 1 and specs[0].operator == "==", (
                f"apache-airflow must be pinned with ==: {line}"
            )
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
            words = arguments.split()
            name = words[-1] if len(words) >= 3 and words[-2].upper() == "AS" else f"stage{index}"
            current = stages[name] = [(keyword, arguments)]
        elif current is not None:
            current.append((keyword, arguments))
    return stages


def pip_installs(instructions: list[tuple[str, str]]) -> list[list[str]]:
    """Argument lists of every ``pip install`` in RUN instructions (split on ``&&`` / ``;``)."""
    installs = []
    for keyword, arguments in instructions:
        if keyword != "RUN":
            continue
        for part in re.split(r"&&|;|\|\|", arguments):
            words = shlex.split(part)
            for start in range(len(words) - 1):
                if words[start].endswith("pip") and words[start + 1] == "install":
                    installs.append(words[start + 2 :])
                    break
    return installs


def option_values(arguments: list[str], *names: str) -> list[str]:
    values = []
    for index, word in enumerate(arguments):
        for name in names:
            if word == name and index + 1 < len(arguments):
                values.append(arguments[index + 1])
            elif word.startswith(name + "=") and name.startswith("--"):
                values.append(word.split("=", 1)[1])
    return values


# ------------------------------------------------------------------------------------------- services


def test_required_services_exist(services: dict[str, Any]) -> None:
    missing = REQUIRED_SERVICES - set(services)
    assert not missing, f"docker-compose.yaml lacks services {sorted(missing)}"


def test_no_celery_or_redis(services: dict[str, Any]) -> None:
    assert not {"redis", "airflow-worker", "flower"} & set(services), "LocalExecutor stack: no Celery pieces"


@pytest.mark.parametrize("name", AIRFLOW_SERVICES)
def test_airflow_services_use_the_common_image_and_build(
    services: dict[str, Any], common: dict[str, Any], name: str
) -> None:
    service = services[name]
    assert service.get("image") == common["image"], f"{name} does not use the x-airflow-common image"
    assert service.get("build") == common["build"], f"{name} does not use the x-airflow-common build"
    assert environment(service).items() >= environment(common).items(), f"{name} drops common environment"


def test_common_build_is_the_project_dockerfile(common: dict[str, Any]) -> None:
    build = common["build"]
    context = build if isinstance(build, str) else build["context"]
    assert (REPO / context).resolve() == REPO
    dockerfile = "Dockerfile" if isinstance(build, str) else build.get("dockerfile", "Dockerfile")
    assert (REPO / context / dockerfile).resolve() == DOCKERFILE
    assert "_PIP_ADDITIONAL_REQUIREMENTS" not in environment(common), "install at build time, not at start"


@pytest.mark.parametrize("name", AIRFLOW_SERVICES)
def test_airflow_services_mount_dags_plugins_include(services: dict[str, Any], name: str) -> None:
    binds = {target: source for kind, source, target in mounts(services[name]) if kind == "bind"}
    for folder, target in PROJECT_MOUNTS.items():
        assert target in binds, f"{name} does not mount ./{folder} at {target}"
        assert (REPO / binds[target]).resolve() == REPO / folder, (
            f"{name}: {target} comes from {binds[target]}"
        )


@pytest.mark.parametrize(("name", "expected"), sorted(AIRFLOW_COMMANDS.items()))
def test_airflow_commands(services: dict[str, Any], name: str, expected: list[str]) -> None:
    words = command(services[name])
    if words[:1] == ["airflow"]:  # the image's entrypoint accepts both forms
        words = words[1:]
    assert words == expected
    assert "entrypoint" not in services[name], f"{name} must go through the image's /entrypoint"


def test_airflow_settings(services: dict[str, Any]) -> None:
    for name in AIRFLOW_SERVICES:
        env = environment(services[name])
        assert env.get("AIRFLOW__CORE__EXECUTOR") == "LocalExecutor", name
        assert env.get("AIRFLOW__CORE__LOAD_EXAMPLES", "").lower() == "false", name
        assert (
            env.get("AIRFLOW__CORE__EXECUTION_API_SERVER_URL") == "http://airflow-apiserver:8080/execution/"
        ), name
        database = urlsplit(env.get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", ""))
        assert database.scheme.startswith("postgresql"), f"{name}: metadata DB is not PostgreSQL"
        assert database.hostname == "postgres" and database.path == "/airflow", name
    assert 8080 in published_container_ports(services["airflow-apiserver"])


def test_secrets_come_from_the_environment(common: dict[str, Any]) -> None:
    env = environment(common)
    for variable in (
        "AIRFLOW__CORE__FERNET_KEY",
        "AIRFLOW__API_AUTH__JWT_SECRET",
        "AIRFLOW__API__SECRET_KEY",
    ):
        assert REQUIRED_FROM_ENV.match(env.get(variable, "")), (
            f"{variable} must be `${{VAR:?...}}`, got {env.get(variable)!r}"
        )
    database = urlsplit(env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"])
    assert (database.password or "").startswith("${"), "the Postgres password must be overridable from .env"


def test_simple_auth_manager_admin(services: dict[str, Any]) -> None:
    env = environment(services["airflow-init"])
    users = env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"].split(",")
    assert any(user.rsplit(":", 1)[-1] == "admin" for user in users), "no admin user for SimpleAuthManager"
    assert REQUIRED_FROM_ENV.match(env.get("_AIRFLOW_WWW_USER_PASSWORD", "")), (
        "admin password must come from .env"
    )
    passwords_file = env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"]
    assert "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE" in command_text(services["airflow-init"])
    # The API server must see the file airflow-init writes: same path, on a volume both mount.
    api_env = environment(services["airflow-apiserver"])
    assert api_env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"] == passwords_file
    shared = {
        (source, target)
        for kind, source, target in mounts(services["airflow-init"])
        if kind == "volume" and passwords_file.startswith(target.rstrip("/") + "/")
    }
    assert shared, f"{passwords_file} is not on a named volume"
    assert shared <= {(source, target) for kind, source, target in mounts(services["airflow-apiserver"])}


def test_init_migrates_the_database_once(services: dict[str, Any]) -> None:
    init = services["airflow-init"]
    assert re.search(r"\bairflow db migrate\b", command_text(init)), (
        "airflow-init does not run `airflow db migrate`"
    )
    assert str(init.get("restart", "no")) == "no", "airflow-init must run once"
    assert "ports" not in init and "healthcheck" not in init


def test_postgres(services: dict[str, Any]) -> None:
    postgres = services["postgres"]
    assert postgres["image"] == "postgres:16"
    test = postgres["healthcheck"]["test"]
    assert "pg_isready" in (test if isinstance(test, str) else " ".join(test))
    assert "ports" not in postgres, "the metadata DB should not be published to the host"
    assert any(kind == "volume" for kind, _, _ in mounts(postgres)), (
        "Postgres data should live on a named volume"
    )


def test_depends_on_conditions(services: dict[str, Any]) -> None:
    for name in AIRFLOW_SERVICES:
        conditions = depends_on(services[name])
        assert conditions.get("postgres") == "service_healthy", f"{name} does not wait for a healthy Postgres"
        if name != "airflow-init":
            assert conditions.get("airflow-init") == "service_completed_successfully", (
                f"{name} does not wait for airflow-init to complete"
            )
    for name, service in services.items():
        for dependency, condition in depends_on(service).items():
            assert dependency in services, f"{name} depends on unknown service {dependency}"
            if condition == "service_healthy":
                assert "healthcheck" in services[dependency], (
                    f"{name} waits for {dependency}, which has no healthcheck"
                )


def test_apiserver_healthcheck(services: dict[str, Any]) -> None:
    test = services["airflow-apiserver"]["healthcheck"]["test"]
    text = test if isinstance(test, str) else " ".join(test)
    assert "http://localhost:8080/api/v2/version" in text


def test_triggerer_runs_for_deferred_sensors(services: dict[str, Any]) -> None:
    triggerer = services["airflow-triggerer"]
    assert triggerer.get("restart") in {"always", "unless-stopped"}
    assert "TriggererJob" in " ".join(triggerer["healthcheck"]["test"])


# ------------------------------------------------------------------------------------- AWS / emulator


def test_emulator_service(services: dict[str, Any]) -> None:
    emulator = services[EMULATOR]
    words = command(emulator)
    assert words[:2] == ["jit-audit", "emulator"], f"{EMULATOR} runs {words}"
    assert option_values(words, "--host") == ["0.0.0.0"] and option_values(words, "--port") == ["5000"]
    assert 5000 in published_container_ports(emulator)
    entrypoint = emulator.get("entrypoint")
    entrypoint = shlex.split(entrypoint) if isinstance(entrypoint, str) else entrypoint
    assert entrypoint and "/entrypoint" not in entrypoint, (
        "the Airflow entrypoint would run `airflow jit-audit ...`"
    )
    assert not {"postgres", "airflow-init"} & set(depends_on(emulator)), "the emulator needs no Airflow"


def test_emulator_uses_the_dev_stage(services: dict[str, Any], common: dict[str, Any]) -> None:
    build = services[EMULATOR]["build"]
    assert build["target"] == "dev"
    assert common["build"]["target"] != "dev", "the Airflow services must not run the dev stage"
    assert services[EMULATOR]["image"] != common["image"]


def test_emulator_is_marked_local_only() -> None:
    lines = COMPOSE_FILE.read_text().splitlines()
    start = next(index for index, line in enumerate(lines) if line.strip() == f"{EMULATOR}:")
    comments = []
    for line in reversed(lines[:start]):
        if not line.strip().startswith("#"):
            break
        comments.append(line)
    assert re.search(r"local", " ".join(comments), re.IGNORECASE), f"{EMULATOR} needs a local-only comment"


def test_default_aws_connection_points_at_the_emulator(common: dict[str, Any]) -> None:
    value = environment(common)["AIRFLOW_CONN_AWS_DEFAULT"]
    default = urlsplit(interpolation_default(value, "AIRFLOW_CONN_AWS_DEFAULT"))
    assert default.scheme == "aws"
    extra = {key: values[0] for key, values in parse_qs(default.query).items()}
    endpoint = urlsplit(extra["endpoint_url"])
    assert (endpoint.hostname, endpoint.port) == (EMULATOR, 5000)
    assert extra.get("region_name")
    # The only credentials allowed are the emulator's dummy ones, and only with the emulator's endpoint.
    assert (
        unquote(default.username or "testing") == "testing"
        and unquote(default.password or "testing") == "testing"
    )
    lines = COMPOSE_FILE.read_text().splitlines()
    index = next(i for i, line in enumerate(lines) if line.strip().startswith("AIRFLOW_CONN_AWS_DEFAULT:"))
    comment = " ".join(line for line in lines[max(0, index - 10) : index] if line.strip().startswith("#"))
    assert re.search(r"real AWS", comment) and re.search(r"IAM role", comment), "explain how to use real AWS"


def test_no_literal_aws_credentials(compose: dict[str, Any]) -> None:
    blocks = [("x-airflow-common", compose["x-airflow-common"])]
    blocks += list(compose["services"].items())
    for name, block in blocks:
        env = environment(block)
        for variable in AWS_CREDENTIAL_VARIABLES & set(env):
            assert NO_LITERAL.match(env[variable]), f"{name}: {variable} has a literal value"
        build = block.get("build")
        if isinstance(build, dict):
            args = build.get("args") or {}
            args = dict(a.split("=", 1) for a in args) if isinstance(args, list) else args
            assert not AWS_CREDENTIAL_VARIABLES & set(args), f"{name}: AWS credentials as build args"
    text = COMPOSE_FILE.read_text() + DOCKERFILE.read_text()
    assert not re.search(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b", text), "an AWS access key id is in the file"
    for line in DOCKERFILE.read_text().splitlines():
        assert not re.match(r"\s*(ENV|ARG)\b.*AWS_(SECRET_ACCESS_KEY|SESSION_TOKEN|ACCESS_KEY_ID)", line), (
            line
        )


# ----------------------------------------------------------------------------------------- host paths


def test_every_mounted_host_path_exists(compose: dict[str, Any]) -> None:
    declared_volumes = set(compose.get("volumes") or {})
    for name, service in compose["services"].items():
        for kind, source, target in mounts(service):
            if kind == "bind":
                assert "$" not in source, f"{name}: host path {source} depends on the environment"
                path = (REPO / source).resolve()
                assert path.exists(), f"{name} mounts {source}, which is not in the repository"
                assert path == REPO or REPO in path.parents, f"{name} mounts {source}, outside the repository"
            elif kind == "volume":
                assert source in declared_volumes, f"{name} uses undeclared volume {source}"
            assert target.startswith("/"), f"{name}: mount target {target} is not absolute"


def test_build_contexts_exist(compose: dict[str, Any]) -> None:
    stages = dockerfile_stages()
    for name, service in compose["services"].items():
        build = service.get("build")
        if build is None:
            continue
        build = {"context": build} if isinstance(build, str) else build
        context = REPO / build.get("context", ".")
        assert (context / build.get("dockerfile", "Dockerfile")).is_file(), f"{name}: no Dockerfile"
        if "target" in build:
            assert build["target"] in stages, f"{name}: Dockerfile has no stage {build['target']!r}"


# ----------------------------------------------------------------------------------------- Dockerfile


def test_dockerfile_base_image_matches_the_airflow_pin() -> None:
    pin = airflow_pin()
    args = {}
    for keyword, arguments in dockerfile_instructions():
        if keyword == "ARG" and "=" in arguments:
            key, value = arguments.split("=", 1)
            args[key.strip()] = value.strip().strip("\"'")
    bases = []
    for keyword, arguments in dockerfile_instructions():
        if keyword != "FROM":
            continue
        image = next(word for word in arguments.split() if not word.startswith("--"))
        image = re.sub(r"\$\{?(\w+)\}?", lambda match: args.get(match.group(1), match.group(0)), image)
        if image.startswith("apache/airflow"):
            bases.append(image)
    assert bases, "the Dockerfile does not build FROM apache/airflow"
    for image in bases:
        match = re.fullmatch(
            r"apache/airflow:(\d+\.\d+\.\d+)(?:-python(\d+\.\d+))?(?:@sha256:[0-9a-f]{64})?", image
        )
        assert match, f"base image {image} is not pinned to an Airflow version"
        assert match.group(1) == pin, f"base image {image} but requirements.txt pins apache-airflow=={pin}"
        if match.group(2):
            requires = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["requires-python"]
            assert SpecifierSet(requires).contains(match.group(2)), f"Python {match.group(2)} vs {requires}"


def test_image_tags_match_the_airflow_pin(compose: dict[str, Any]) -> None:
    pin = airflow_pin()
    for name, service in [("x-airflow-common", compose["x-airflow-common"]), *compose["services"].items()]:
        image = service.get("image", "")
        if "airflow" not in image:
            continue
        versions = re.findall(r":(\d+\.\d+\.\d+)", image)
        assert versions == [pin], f"{name}: image {image} should carry Airflow {pin}"


def test_constraints_agree_with_the_airflow_pin() -> None:
    pin = airflow_pin()
    constraints = (REPO / "constraints.txt").read_text().splitlines()
    assert f"apache-airflow=={pin}" in constraints


def test_dockerfile_installs_requirements_with_constraints_then_the_project() -> None:
    stages = dockerfile_stages()
    runtime = next(iter(stages.values()))
    installs = pip_installs(runtime)
    requirement_installs = [
        index
        for index, arguments in enumerate(installs)
        if option_values(arguments, "-r", "--requirement") == ["requirements.txt"]
        and option_values(arguments, "-c", "--constraint") == ["constraints.txt"]
        and "--no-cache-dir" in arguments
    ]
    project_installs = [
        index
        for index, arguments in enumerate(installs)
        if "." in arguments and "--no-deps" in arguments and "--no-cache-dir" in arguments
    ]
    assert requirement_installs, (
        f"no `pip install --no-cache-dir -r requirements.txt -c constraints.txt`: {installs}"
    )
    assert project_installs, f"no `pip install --no-cache-dir --no-deps .`: {installs}"
    assert requirement_installs[0] < project_installs[0], "install the pinned requirements before the project"


def test_dockerfile_copies_what_the_installs_need() -> None:
    runtime = next(iter(dockerfile_stages().values()))
    copied = set()
    for keyword, arguments in runtime:
        if keyword in {"COPY", "ADD"}:
            words = [word for word in shlex.split(arguments) if not word.startswith("--")]
            for source in words[:-1]:
                assert (REPO / source).exists(), (
                    f"the Dockerfile copies {source}, which is not in the repository"
                )
                copied.add(source.rstrip("/"))
    needed = {"requirements.txt", "constraints.txt", "pyproject.toml", "include", "plugins"}
    assert needed <= copied, f"the runtime stage does not copy {sorted(needed - copied)}"
    package_dirs = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
    for directory in package_dirs.values():
        assert directory.split("/")[0] in copied, f"pyproject's {directory} is not copied into the image"


def test_dockerfile_dev_stage_adds_the_dev_requirements() -> None:
    stages = dockerfile_stages()
    assert "dev" in stages, "no `dev` stage for the emulator"
    base = stages["dev"][0][1].split()[0]
    assert base in stages and base != "dev", "the dev stage should build FROM the runtime stage"
    installs = pip_installs(stages["dev"])
    assert any(
        option_values(arguments, "-r", "--requirement") == ["requirements-dev.txt"]
        and option_values(arguments, "-c", "--constraint") == ["constraints.txt"]
        for arguments in installs
    ), f"the dev stage does not install requirements-dev.txt with constraints.txt: {installs}"
    dev_requirements = (REPO / "requirements-dev.txt").read_text()
    assert re.search(r"^moto\[[^]]*server[^]]*\]==", dev_requirements, re.MULTILINE), (
        "the emulator needs moto[server]"
    )
    runtime_installs = pip_installs(next(iter(stages.values())))
    assert not any("requirements-dev.txt" in arguments for arguments in runtime_installs), (
        "dev tools in runtime"
    )


def test_dockerfile_ends_as_a_non_root_user() -> None:
    for name, instructions in dockerfile_stages().items():
        users = [arguments for keyword, arguments in instructions if keyword == "USER"]
        if users:
            assert users[-1] not in {"root", "0", "0:0"}, f"stage {name} leaves the image running as root"

"""The pins: the venv `make` built from requirements*.txt + constraints.txt is consistent and is exactly
what constraints.txt says, and it holds what the CeleryExecutor deployment needs (the same two files
the Dockerfile installs; tests/deploy/test_docker_compose.py checks the Dockerfile's side)."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import distributions
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[2]
#: Installed from the working tree (editable or --no-deps), not from PyPI: not in constraints.txt.
LOCAL = {"jit-audit-export", "jit-audit-dev"}
#: What `airflow db migrate`, the scheduler and the Celery workers import on PostgreSQL and Redis.
CELERY_STACK = ["airflow.providers.celery.executors.celery_executor", "celery.backends.database",
                "psycopg2", "asyncpg", "redis", "kombu.transport.redis", "airflow.providers.postgres"]


def _pins(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            requirement = Requirement(line)
            (spec,) = requirement.specifier
            assert spec.operator == "==", f"{path.name}: pin {requirement.name} exactly, not {spec}"
            pins[canonicalize_name(requirement.name)] = spec.version
    return pins


def test_pip_check_passes() -> None:
    result = subprocess.run([sys.executable, "-m", "pip", "check"], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_venv_is_exactly_constraints_txt() -> None:
    installed = {canonicalize_name(dist.metadata["Name"]): dist.version for dist in distributions()}
    installed = {name: version for name, version in installed.items() if name not in LOCAL | {"pip", "setuptools"}}
    constraints = _pins(REPO / "constraints.txt")
    constraints.pop("setuptools", None)
    assert installed == constraints, {
        "installed, not in constraints.txt": sorted(set(installed) - set(constraints)),
        "in constraints.txt, not installed": sorted(set(constraints) - set(installed)),
        "other version": sorted(name for name in set(installed) & set(constraints)
                                if installed[name] != constraints[name]),
    }


def test_requirements_agree_with_constraints() -> None:
    constraints = _pins(REPO / "constraints.txt")
    for name in ("requirements.txt", "requirements-dev.txt"):
        for package, version in _pins(REPO / name).items():
            assert constraints.get(package) == version, f"{name} pins {package}=={version}, constraints.txt " \
                                                        f"{constraints.get(package)}"


def test_the_celery_deployment_imports_from_the_pins() -> None:
    code = "import importlib, sys\nfor name in sys.argv[1:]:\n    importlib.import_module(name)\n"
    result = subprocess.run([sys.executable, "-c", code, *CELERY_STACK], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]

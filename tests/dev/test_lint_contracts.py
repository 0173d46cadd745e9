"""The custom import-linter contract (jit_audit_dev.lint) keeps DAG files on airflow.sdk, and can fail."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

CONFIG = """[importlinter]
root_packages =
    fakedags
include_external_packages = True
contract_types =
    airflow_modules: jit_audit_dev.lint.AirflowModulesContract

[importlinter:contract:sdk]
name = DAG files import Airflow only through airflow.sdk
type = airflow_modules
source_modules =
    fakedags
allowed_modules =
    airflow.sdk
"""


def _lint(tmp_path: Path, source: str) -> subprocess.CompletedProcess[str]:
    package = tmp_path / "fakedags"
    package.mkdir(exist_ok=True)
    (package / "__init__.py").write_text("")
    (package / "a_dag.py").write_text(source)
    (tmp_path / ".importlinter").write_text(CONFIG)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), *sys.path])}
    return subprocess.run([str(Path(sys.executable).with_name("lint-imports")), "--config",
                           str(tmp_path / ".importlinter"), "--no-cache"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)


def test_only_airflow_sdk_imports_keep_the_contract(tmp_path: Path) -> None:
    kept = _lint(tmp_path, "from airflow.sdk import dag, task\nimport airflow.sdk.definitions\n")
    assert kept.returncode == 0, kept.stdout + kept.stderr
    broken = _lint(tmp_path, "from airflow.sdk import dag\nfrom airflow.models import Variable\nimport airflow.utils\n")
    assert broken.returncode == 1, broken.stdout + broken.stderr
    assert "fakedags.a_dag:2: from airflow.models import Variable" in broken.stdout
    assert "fakedags.a_dag:3: import airflow.utils" in broken.stdout
    assert "fakedags.a_dag:1" not in broken.stdout

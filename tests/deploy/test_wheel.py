"""The runtime wheel (what the Dockerfile's build stage builds and the runtime image installs) holds the
product only: jit_audit and jit_audit_airflow, the compiled fast path, the `jit-audit` script, and no
emulator, seeder or moto import (those are the dev package's, dev/)."""

from __future__ import annotations

import ast
import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _imports(source: str) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
    return names


def test_the_runtime_wheel_holds_no_dev_code(tmp_path: Path) -> None:
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-cache-dir", "-q",
                            "--disable-pip-version-check", "-w", str(tmp_path), str(REPO)],
                           capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stderr[-3000:]
    (wheel,) = tmp_path.glob("jit_audit_export-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        sources = {name: archive.read(name).decode() for name in names if name.endswith(".py")}
        entry_points = next(archive.read(name).decode() for name in names if name.endswith("entry_points.txt"))
    packages = {name.split("/")[0] for name in names if not name.split("/")[0].endswith(".dist-info")}
    assert packages == {"jit_audit", "jit_audit_airflow"}, packages
    assert any(name.startswith("jit_audit/_speedups") and name.endswith(".so") for name in names), names
    assert not [name for name in names if "emulator" in name or "seed" in name or "dynamodb_http" in name]
    dev_imports = {name: sorted(module for module in _imports(text)
                                if module.split(".")[0] in ("moto", "jit_audit_dev", "werkzeug"))
                   for name, text in sources.items()}
    assert not {name: found for name, found in dev_imports.items() if found}
    assert "jit-audit = jit_audit.cli:main" in entry_points and "jit-audit-dev" not in entry_points

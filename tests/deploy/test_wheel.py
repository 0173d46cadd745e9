"""The runtime wheel (what the Dockerfile's build stage builds and the runtime image installs) holds the
product only: jit_audit and jit_audit_airflow, the compiled fast path, the `jit-audit` script, and no
emulator, seeder or moto import (those are the dev package's, dev/)."""

from __future__ import annotations

import ast
import shutil
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
    # Built from a copy of what the Dockerfile copies, so nothing a developer's tree holds (build/,
    # compiled objects) can slip in, and the repository gets no build/ or egg-info of this test's.
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "setup.py"):
        shutil.copy2(REPO / name, source / name)
    for folder in ("include", "plugins"):
        shutil.copytree(REPO / folder, source / folder,
                        ignore=shutil.ignore_patterns("__pycache__", "*.so", "*.egg-info"))
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-cache-dir", "-q",
                            "--disable-pip-version-check", "-w", str(tmp_path / "dist"), str(source)],
                           capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stderr[-3000:]
    (wheel,) = (tmp_path / "dist").glob("jit_audit_export-*.whl")
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
    # Exactly the source tree's modules, byte for byte (no stale module from an earlier layout).
    tree = {f"{package}/{path.relative_to(root).as_posix()}": path.read_text()
            for package, root in (("jit_audit", REPO / "include" / "jit_audit"),
                                  ("jit_audit_airflow", REPO / "plugins" / "jit_audit_airflow"))
            for path in root.rglob("*.py") if "__pycache__" not in path.parts}
    assert sources == tree

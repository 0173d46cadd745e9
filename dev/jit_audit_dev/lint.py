"""A custom import-linter contract (``.importlinter``): which Airflow modules a package may import.

import-linter sees Airflow as one external package (``airflow``), so its ``forbidden`` contract
cannot tell ``airflow.sdk`` (Airflow 3's public authoring interface) from ``airflow.models``. This
contract reads each direct import of ``airflow`` that grimp found and keeps only those of an allowed
module (``airflow.sdk`` and below).
"""

from __future__ import annotations

import re
from typing import Any

from importlinter import Contract, ContractCheck, fields, output

_IMPORTED = re.compile(r"^\s*(?:from\s+([\w.]+)\s+import\b|import\s+([\w.]+))")


class AirflowModulesContract(Contract):
    type_name = "airflow_modules"

    source_modules = fields.ListField(subfield=fields.ModuleExpressionField())
    allowed_modules = fields.ListField(subfield=fields.StringField())

    def check(self, graph: Any, verbose: bool) -> ContractCheck:
        allowed = [str(name) for name in self.allowed_modules]  # type: ignore[attr-defined]
        violations = []
        for expression in self.source_modules:  # type: ignore[attr-defined]
            source = expression.expression
            modules = {source} | graph.find_descendants(source)
            for module in sorted(modules):
                for imported in sorted(graph.find_modules_directly_imported_by(module)):
                    if imported != "airflow":
                        continue
                    for detail in graph.get_import_details(importer=module, imported=imported):
                        match = _IMPORTED.match(detail["line_contents"])
                        name = next(filter(None, match.groups())) if match else detail["line_contents"]
                        if not any(name == ok or name.startswith(f"{ok}.") for ok in allowed):
                            violations.append(f"{module}:{detail['line_number']}: {detail['line_contents'].strip()}")
        return ContractCheck(kept=not violations, metadata={"violations": violations, "allowed": allowed})

    def render_broken_contract(self, check: ContractCheck) -> None:
        output.print(f"Only {', '.join(check.metadata['allowed'])} may be imported from Airflow:")
        for violation in check.metadata["violations"]:
            output.print_error(f"- {violation}")

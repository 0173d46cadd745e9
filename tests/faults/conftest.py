"""The fault tests' ``fault_row`` fixture; the table itself is tests/faulttable.py."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any

import pytest
from faulttable import EXPECTED_ROWS, PROPERTY


@dataclass
class FaultRow:
    """What one fault test proved; filled in as the test goes."""

    row: str
    fault: str
    injected: str = ""
    outcome: str = ""
    exported: str = ""

    def record(self, injected: str | None = None, outcome: str | None = None, exported: str | None = None) -> None:
        if injected is not None:
            self.injected = injected
        if outcome is not None:
            self.outcome = outcome
        if exported is not None:
            self.exported = exported


@pytest.fixture()
def fault_row(request: pytest.FixtureRequest) -> Iterator[Any]:
    """``fault_row("5a")`` -> a FaultRow the test fills in; recorded whatever the test's outcome."""
    rows: list[FaultRow] = []
    titles = dict(EXPECTED_ROWS)

    def make(row: str) -> FaultRow:
        made = FaultRow(row=row, fault=titles[row])
        rows.append(made)
        return made

    yield make
    for made in rows:
        request.node.user_properties.append((PROPERTY, asdict(made)))

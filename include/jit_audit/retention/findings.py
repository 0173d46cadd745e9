"""The findings table: one row per check (what was expected, what AWS has, how to fix it)."""

from __future__ import annotations

from dataclasses import dataclass, field

TABLE_HEADER = ("check", "expected", "actual", "fix")


@dataclass(frozen=True)
class Finding:
    """A rule that is broken, and the command or setting that mends it."""

    problem: str
    fix: str
    check: str = ""

    def __str__(self) -> str:
        return f"{self.problem} Fix: {self.fix}"


@dataclass(frozen=True)
class Row:
    """One line of the findings table; ``fix`` is empty when the check passed."""

    check: str
    expected: str
    actual: str
    fix: str = ""
    #: The check did not run (e.g. no maximum retention is set); the table says so instead of OK.
    skipped: bool = False

    @property
    def ok(self) -> bool:
        return not self.fix


@dataclass
class Checklist:
    """What the checks found so far: every row of the table, and the findings among them."""

    rows: list[Row] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)

    def add(self, check: str, expected: str, actual: str, problem: str | None = None, fix: str = "") -> None:
        """A check that ran: passed without a ``problem``, else a finding with its ``fix``."""
        self.rows.append(Row(check, expected, actual, fix if problem else ""))
        if problem:
            self.findings.append(Finding(problem, fix, check))

    def skip(self, check: str, expected: str, why: str) -> None:
        """A check that could not run; the table says why."""
        self.rows.append(Row(check, expected, why, skipped=True))


def table(rows: list[Row]) -> str:
    """Rows as an aligned text table; a passing check shows ``OK`` as its fix, one not run ``SKIPPED``."""
    cells = [TABLE_HEADER] + [
        (row.check, row.expected, row.actual, row.fix or ("SKIPPED" if row.skipped else "OK")) for row in rows
    ]
    widths = [max(len(line[column]) for line in cells) for column in range(3)]

    def render(line: tuple[str, ...]) -> str:
        return " | ".join([*(cell.ljust(width) for cell, width in zip(line[:3], widths, strict=True)), line[3]])

    separator = "-+-".join("-" * width for width in widths) + "-+-" + "-" * 3
    return "\n".join([render(cells[0]), separator, *(render(line) for line in cells[1:])])

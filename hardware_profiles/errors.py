"""Errors a user can fix. The core raises them; the CLI alone turns them into exit codes."""

from __future__ import annotations

from pathlib import Path


class MemwallError(Exception):
    """A problem with the user's input or environment, stated in one line."""


class ProfileError(MemwallError):
    """A profile table (file or in-memory) that breaks its declared schema.

    The message names the source, the row (1-based, counting data rows) and the column, so a
    user can go straight to the cell.
    """

    def __init__(
        self, source: str | Path, problem: str, *, row: int | None = None, column: str | None = None
    ) -> None:
        self.source = str(source)
        self.problem = problem
        self.row = row
        self.column = column
        where = [self.source]
        if row is not None:
            where.append(f"row {row}")
        if column is not None:
            where.append(f"column '{column}'")
        super().__init__(f"{', '.join(where)}: {problem}")


def first_line(exc: BaseException) -> str:
    """A library's error message cut to its first line (Arrow appends the whole
    schema, YAML and CSV parsers the offending lines): one line for the user."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__

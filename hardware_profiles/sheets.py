"""The CSV sheets memwall reads (published serving and training runs, the scale-out network):
every cell as text, so that each reader's checks see what the file says, and the ways a file
can fail to be a sheet at all said in one line naming it; and the cell checks the readers
share, each raising ``ValueError`` with what would have been valid (a reader names the file,
row and column around it)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import pandas as pd

from hardware_profiles.errors import ProfileError, first_line


def read_sheet(path: str | Path, kind: str, columns: Sequence[str]) -> pd.DataFrame:
    """``path`` as a sheet of text cells; a missing, empty or unparseable file is one
    :class:`ProfileError` (``kind``: what the file should be, e.g. "published-runs")."""
    try:
        return pd.read_csv(path, dtype=str, keep_default_na=False)
    except FileNotFoundError:
        raise ProfileError(path, f"no such {kind} file") from None
    except pd.errors.EmptyDataError:
        raise ProfileError(path, f"is empty; expected the columns {', '.join(columns)}") from None
    except (OSError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise ProfileError(path, f"is not a readable CSV file ({first_line(exc)})") from None


def given(value: str) -> str:
    if not value:
        raise ValueError("must not be empty")
    return value


def http_url(value: str) -> str:
    if not value.startswith(("http://", "https://")):
        raise ValueError(f"{value!r} is not an http(s) URL")
    return value


def one_of(choices: Sequence[str]) -> Callable[[str], str]:
    def check(value: str) -> str:
        if value not in choices:
            raise ValueError(f"{value!r} is not valid; valid: {', '.join(choices)}")
        return value

    return check


def count(least: int) -> Callable[[str], int]:
    """A whole number of at least ``least``."""

    def parse(value: str) -> int:
        try:
            number = int(value)
        except ValueError:
            number = least - 1
        if number < least:
            raise ValueError(f"{value!r} must be a whole number >= {least}")
        return number

    return parse


def positive(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        number = 0.0
    if not 0 < number < float("inf"):
        raise ValueError(f"{value!r} must be a number > 0")
    return number

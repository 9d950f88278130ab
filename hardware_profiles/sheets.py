"""The CSV sheets memwall reads (published serving and training runs, the scale-out network):
every cell as text, so that each reader's checks see what the file says, and the ways a file
can fail to be a sheet at all said in one line naming it."""

from __future__ import annotations

from collections.abc import Sequence
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

"""Values as strict JSON can hold them: ``null``, never ``NaN`` or ``Infinity``.

Python's ``json`` prints NaN and infinities as the bare words ``NaN`` and ``Infinity``, which
strict parsers (``jq``, browsers, most other languages) reject. memwall's figures use NaN for
"unknown" and infinity for "nothing bounds it", so every value that leaves as JSON (each
``--json`` option, the records of ``memwall validate``) passes through :func:`strict` once.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any


def strict(value: Any) -> Any:
    """``value`` with NaN and +/-inf as None, recursively: numpy scalars and arrays as plain
    numbers and lists, tuples as lists, dates and timestamps as ISO 8601 text, pandas' NaT
    and NA as None, a DataFrame as its rows, dictionary keys as text, anything else as its
    text."""
    if hasattr(value, "to_dict") and hasattr(value, "columns"):  # a DataFrame
        return [strict(r) for r in value.to_dict("records")]
    if isinstance(value, dict):
        return {str(k): strict(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [strict(v) for v in value]
    if hasattr(value, "tolist") and not isinstance(value, str):  # numpy scalar or array
        return strict(value.tolist())
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, str | int | bool):
        return value
    if _is_missing(value):  # pandas NaT (a datetime) and NA
        return None
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return str(value)


def _is_missing(value: Any) -> bool:
    import pandas as pd  # only for values no cheaper test recognised

    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False

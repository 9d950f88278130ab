"""Values as strict JSON can hold them: ``null``, never ``NaN`` or ``Infinity``.

Python's ``json`` prints NaN and infinities as the bare words ``NaN`` and ``Infinity``, which
strict parsers (``jq``, browsers, most other languages) reject. memwall's figures use NaN for
"unknown" and infinity for "nothing bounds it", so every value that leaves as JSON (each
``--json`` option, the records of ``memwall validate``) is written by :func:`dumps`.

The encoder is orjson: it writes NumPy arrays and scalars itself and every non-finite float as
``null``, in C, so a ranking of 100,000 workloads is one call rather than a Python walk over
millions of values (the walk and the standard library's encoder took half of
``memwall rank --json``'s time). Keys keep their insertion order. What orjson does not write
itself goes through :func:`_plain`: a DataFrame as its rows, pandas' NaT and NA as null, dates
and timestamps as ISO 8601 text (as ``isoformat`` writes them, nanoseconds included), any other
object as its text.

Where the bytes differ from the standard library's ``json.dumps``: floats below 1e-4 are
written without an exponent down to 1e-7 (``7.9e-05`` is ``0.000079``) and exponents carry no
``+`` or leading zero (``1.2e-07`` is ``1.2e-7``), the same numbers either way; text outside
ASCII is written as UTF-8, not ``\\u`` escapes; compact output has no spaces after ``,`` and
``:``; indented output is indented by two spaces.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import orjson

_OPTIONS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME


def dumps(value: Any, indent: bool = True) -> bytes:
    """``value`` as strict JSON text (UTF-8), indented by two spaces unless ``indent`` is
    false; non-finite numbers as ``null``."""
    options = _OPTIONS | orjson.OPT_INDENT_2 if indent else _OPTIONS
    return orjson.dumps(value, default=_plain, option=options)


def strict(value: Any) -> Any:
    """``value`` as plain JSON values (what :func:`dumps` writes, read back): NaN and +/-inf as
    None, NumPy scalars and arrays as numbers and lists, tuples as lists, dates and
    timestamps as ISO 8601 text, pandas' NaT and NA as None, a DataFrame as its rows,
    dictionary keys as text, anything else as its text."""
    return orjson.loads(dumps(value, indent=False))


def _plain(value: Any) -> Any:
    """What orjson hands back: a value it cannot write, as one it can."""
    if hasattr(value, "to_dict") and hasattr(value, "columns"):  # a DataFrame
        return value.to_dict("records")
    if _is_missing(value):  # pandas NaT (a datetime) and NA
        return None
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if hasattr(value, "tolist"):  # a NumPy array orjson does not take (objects, strides)
        return value.tolist()
    return str(value)


def _is_missing(value: Any) -> bool:
    import pandas as pd  # only for values orjson could not write itself

    return value is pd.NaT or value is pd.NA

"""How a figure prints with a decimal prefix: ``1.96e10 B/s`` -> ``19.6 GB/s``.

One function for the CLI's tables, the PDF's cells and its charts, so a figure reads the same
wherever it is shown. Decimal prefixes only, as spec sheets state bandwidth and FLOP/s; a binary
size (GiB) is never printed through here.

It rounds before it picks the prefix: ``999.6e9 B/s`` at three significant digits is
``1 TB/s``, not ``1e+03 GB/s``. Callers differ in digits, in the prefixes they allow, in a
currency sign and in what an unknown figure reads as; those are its parameters, so each keeps
what its readers (and its tests) already see.

Kept free of pandas and numpy: the CLI imports it before it knows whether it needs either.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

# (scale, prefix), smallest first.
PREFIXES: Final = ((1e3, "k"), (1e6, "M"), (1e9, "G"), (1e12, "T"), (1e15, "P"))
EXA: Final = (1e18, "E")
UNKNOWN: Final = "–"


def _undefined(value: float) -> bool:
    """NaN, and pandas' NA and NaT (table cells), told apart without importing pandas."""
    try:
        return bool(value != value)  # NaN and NaT are the values unequal to themselves
    except TypeError:  # pandas.NA: its truth is undefined
        return True


def _number(text: str) -> float:
    return float(text.replace(",", ""))


def si(
    value: float | None,
    unit: str = "",
    *,
    spec: str = ".3g",
    unscaled: str | None = None,
    prefixes: Sequence[tuple[float, str]] = PREFIXES,
    symbol: str = "",
    space: str = " ",
    unknown: str = UNKNOWN,
) -> str:
    """``value`` with the largest of ``prefixes`` it reaches once rounded, then ``unit``.

    ``spec`` formats the scaled number (``.3g``: three significant digits), ``unscaled`` the
    number below the smallest prefix (default: ``spec``). ``symbol`` (``$``) stands between the
    sign and the number; ``space`` between the number and the prefix (kept where both prefix
    and unit are empty: ``si(5.0)`` is ``'5 '``, so ``si(x) + 'token/s'`` reads ``5 token/s``
    and ``5 ktoken/s`` alike). None and NaN print as ``unknown``.
    """
    if value is None or _undefined(value):
        return unknown
    steps = [(1.0, "", unscaled or spec), *((scale, p, spec) for scale, p in prefixes)]
    magnitude = abs(value)
    i = max((k for k, (scale, _, _) in enumerate(steps) if magnitude >= scale), default=0)
    text = format(magnitude / steps[i][0], steps[i][2])
    # Rounding may reach the next prefix: 999.6 at three digits is 1e+03, which is 1 k.
    while i + 1 < len(steps) and _number(text) >= steps[i + 1][0] / steps[i][0]:
        i += 1
        text = format(magnitude / steps[i][0], steps[i][2])
    sign = "-" if value < 0 else ""
    return f"{sign}{symbol}{text}{space}{steps[i][1]}{unit}"

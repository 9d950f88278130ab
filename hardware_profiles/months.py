"""Calendar months as memwall counts them.

A month is the date of its first day. A roadmap change counts from the month that contains its
date, month t of a horizon is the start month plus t, and a user writes a month as ``YYYY-MM``.
Months are whole, so counting them is integer arithmetic on ``year * 12 + month - 1``: no day
count, no 30.44-day month, no dependency for it.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import TYPE_CHECKING

from hardware_profiles.errors import MemwallError

if TYPE_CHECKING:
    import pandas as pd

_YYYY_MM = re.compile(r"(\d{4})-(\d{2})")


def month_start(day: dt.date) -> dt.date:
    """The month that contains ``day``."""
    return day.replace(day=1)


def this_month() -> dt.date:
    """The current month in UTC, as every projection that is not given a start begins."""
    return month_start(dt.datetime.now(dt.UTC).date())


def parse_month(text: str, option: str) -> dt.date:
    """``YYYY-MM`` as the first day of that month; ``option`` names where it was given."""
    match = _YYYY_MM.fullmatch(text.strip())
    if not match or not 1 <= int(match.group(2)) <= 12:
        raise MemwallError(f"{option} must be a month as YYYY-MM (e.g. 2027-01), got {text!r}")
    return dt.date(int(match.group(1)), int(match.group(2)), 1)


def add_months(day: dt.date, months: int) -> dt.date:
    """The month ``months`` after the one containing ``day`` (before it where negative)."""
    index = day.year * 12 + day.month - 1 + months
    return dt.date(index // 12, index % 12 + 1, 1)


def month_index(start: dt.date, day: dt.date) -> int:
    """Months from ``start``'s month to ``day``'s: 0 in the same month, negative before it."""
    return (day.year - start.year) * 12 + (day.month - start.month)


def month_indexes(start: dt.date, days: pd.Series) -> pd.Series:
    """:func:`month_index` of a datetime column, NaN where it holds NaT."""
    index: pd.Series = (days.dt.year - start.year) * 12 + days.dt.month - start.month
    return index

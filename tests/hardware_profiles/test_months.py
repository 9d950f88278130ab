"""Calendar months: parsing ``YYYY-MM``, adding months and counting them."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from hardware_profiles.errors import MemwallError
from hardware_profiles.months import (
    add_months,
    month_index,
    month_indexes,
    month_start,
    parse_month,
    this_month,
)


@pytest.mark.parametrize(
    ("text", "month"),
    [("2027-01", dt.date(2027, 1, 1)), (" 2026-12 ", dt.date(2026, 12, 1))],
)
def test_a_month_is_parsed_as_its_first_day(text: str, month: dt.date) -> None:
    assert parse_month(text, "--start") == month


@pytest.mark.parametrize("text", ["2027-13", "2027-00", "2027-1", "27-01", "2027-01-05", ""])
def test_anything_but_yyyy_mm_is_refused_naming_the_option(text: str) -> None:
    with pytest.raises(MemwallError, match=r"^--start-month must be a month as YYYY-MM \(e\.g\."):
        parse_month(text, "--start-month")


@pytest.mark.parametrize(
    ("day", "months", "month"),
    [
        (dt.date(2027, 1, 31), 0, dt.date(2027, 1, 1)),
        (dt.date(2027, 11, 15), 1, dt.date(2027, 12, 1)),
        (dt.date(2027, 12, 1), 1, dt.date(2028, 1, 1)),
        (dt.date(2027, 1, 1), 25, dt.date(2029, 2, 1)),
        (dt.date(2027, 1, 1), -1, dt.date(2026, 12, 1)),
        (dt.date(2027, 3, 1), -15, dt.date(2025, 12, 1)),
    ],
)
def test_adding_months_lands_on_the_first_of_a_month(
    day: dt.date, months: int, month: dt.date
) -> None:
    assert add_months(day, months) == month
    assert month_index(day, month) == months


def test_a_month_index_counts_calendar_months_not_days() -> None:
    start = dt.date(2027, 1, 1)
    assert month_index(start, dt.date(2027, 1, 31)) == 0
    assert month_index(start, dt.date(2027, 2, 1)) == 1
    assert month_index(start, dt.date(2026, 12, 31)) == -1
    assert month_start(dt.date(2027, 2, 28)) == dt.date(2027, 2, 1)


def test_a_column_of_dates_is_counted_alike_and_nat_stays_missing() -> None:
    start = dt.date(2027, 11, 1)
    days = pd.to_datetime(pd.Series([dt.date(2027, 11, 30), dt.date(2028, 2, 1), None]))
    index = month_indexes(start, days)
    assert index.iloc[:2].tolist() == [0, 3]
    assert pd.isna(index.iloc[2])


def test_this_month_is_the_first_day_of_the_current_utc_month() -> None:
    now = dt.datetime.now(dt.UTC).date()
    assert this_month() in {month_start(now), add_months(now, 1)}  # a midnight may pass
    assert this_month().day == 1

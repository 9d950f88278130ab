"""The one SI-prefix formatter, on its own and as each of its callers uses it."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from flows.cli_validate import _si as validate_figure
from hardware_profiles.prefixes import PREFIXES, si
from reports.charts import _decade_label
from reports.fleet import _figure
from reports.whatif_charts import money


@pytest.mark.parametrize(
    ("value", "unit", "shown"),
    [
        (1.96e10, "B/s", "19.6 GB/s"),
        (1.5e11, "FLOP", "150 GFLOP"),
        (3.35e12, "B/s", "3.35 TB/s"),
        (2e15, "FLOP/s", "2 PFLOP/s"),
        (2e18, "FLOP", "2e+03 PFLOP"),  # nothing above P unless asked for
        (0.0, "B", "0 B"),
        (-5e9, "B", "-5 GB"),
        (-0.0, "B", "0 B"),
        (1e-6, "s", "1e-06 s"),  # no milli or micro: callers print small times themselves
        (12345, "B", "12.3 kB"),
        (np.float64(3e12), "B/s", "3 TB/s"),
        (np.int64(7000), "B", "7 kB"),
        (math.inf, "B/s", "inf PB/s"),
    ],
)
def test_a_figure_takes_the_largest_prefix_it_reaches(value: float, unit: str, shown: str) -> None:
    assert si(value, unit) == shown


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (999.6e9, "1 TB/s"),  # was '1e+03 GB/s': the prefix was picked before rounding
        (999.4e9, "999 GB/s"),
        (999.6, "1 kB/s"),
        (999_950.0, "1 MB/s"),
        (-999.6e9, "-1 TB/s"),
        (999.6e15, "1e+03 PB/s"),  # no prefix above P to move to
    ],
)
def test_rounding_comes_before_the_prefix(value: float, shown: str) -> None:
    assert si(value, "B/s") == shown


@pytest.mark.parametrize("unknown", [None, math.nan, np.float64("nan"), pd.NA, pd.NaT])
def test_an_unknown_figure_prints_as_the_callers_mark(unknown: float | None) -> None:
    assert si(unknown, "B") == "–"
    assert si(unknown, "B", unknown="-") == "-"


def test_an_empty_unit_keeps_the_space_so_a_unit_can_follow() -> None:
    assert si(5.0) + "token/s" == "5 token/s"
    assert si(5e3) + "token/s" == "5 ktoken/s"


def test_digits_grouping_and_prefixes_are_the_callers() -> None:
    # memwall validate: two decimals after a prefix up to T, grouped, '-' where unknown.
    assert validate_figure(1.515625e9, "B") == "1.52 GB"
    assert validate_figure(4.2e15, "FLOP") == "4,200.00 TFLOP"
    assert validate_figure(512.0, "B") == "512 B"
    assert validate_figure(999.996e9, "B") == "1.00 TB"  # was '1,000.00 GB'
    assert validate_figure(None, "B") == "-"
    # The fleet's device figures start at M.
    assert _figure(2.5e5, "bytes_per_s") == "2.5e+05 B/s"
    assert _figure(3.1e12, "bytes_per_s") == "3.1 TB/s"
    assert _figure(9.9e14, "flops_per_s") == "990 TFLOP/s"
    assert _figure(math.nan, "bytes_per_s") == "–"
    assert si(1.515625e9, "B", prefixes=PREFIXES[:4]) == "1.52 GB"


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (5_760_000, "$5.76M"),
        (-250_000, "-$250k"),
        (0, "$0"),
        (999.4, "$999"),
        (999.6, "$1k"),  # was '$1000'
        (2.05e6, "$2.05M"),
        (1.64e10, "$16.4B"),
        (999.6e6, "$1B"),  # was '$1e+03M'
        (-0.4, "-$0"),
    ],
)
def test_money_is_dollars_with_k_m_and_b(value: float, shown: str) -> None:
    assert money(value) == shown


@pytest.mark.parametrize(
    ("exponent", "label"),
    [
        (-5, "1e-05"),
        (-1, "0.1"),
        (0, "1"),
        (1, "10"),
        (2, "100"),
        (3, "1 k"),
        (4, "10 k"),
        (12, "1 T"),
        (14, "100 T"),
        (15, "1 P"),
        (18, "1 E"),
        (20, "100 E"),
    ],
)
def test_a_chart_decade_reads_as_a_spec_sheet_writes_it(exponent: int, label: str) -> None:
    assert _decade_label(exponent) == label

"""Demand fitted on what the serving engines counted: today's rate and its yearly growth.

Input: one series of hourly mean rates (units per second, e.g. generated tokens per second)
over a window, as Prometheus returns it for ``avg_over_time((query)[1h:5m])`` at a 1 h step.

- **Demand today** (``demand_units_per_s``): the mean, over the last :data:`PEAK_DAYS` days of
  the window (24 h periods counted back from its end), of each day's busiest hour. A workload
  must be served at its daily peak, not its daily mean, and the mean of several days' peaks
  keeps one odd day (a launch, an outage) from setting the figure.
- **Growth** (``demand_growth_per_year``): ordinary least squares of ``ln(daily mean rate)``
  against time in years (``scipy.stats.linregress``); ``g = exp(slope) - 1``. Daily means
  remove the diurnal cycle, which would otherwise dominate the residuals. Days are the 24 h
  periods counted back from the window's end; a day with fewer than :data:`MIN_DAY_HOURS`
  hourly samples (the window's ragged first day, a Prometheus outage) would carry part of a
  daily cycle and is left out, and so is a day with no traffic at all (mean 0: no log).
- **Spread** (``demand_growth_sigma``): the slope's standard error (n - 2 degrees of freedom)
  carried through ``exp``: ``sigma_g = exp(slope)·se(slope)``. Residuals of consecutive days
  are correlated in real traffic, so this understates the true spread; it is a floor, not a
  confidence bound.

A rate that is negative, NaN or infinite is refused: a counter reset or a broken recording
rule, never demand.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Final

import numpy as np

from hardware_profiles.errors import MemwallError

HOUR_S: Final = 3600
DAY_S: Final = 86400
YEAR_S: Final = 365.25 * DAY_S
PEAK_DAYS: Final = 7
MIN_FIT_DAYS: Final = 7  # days with traffic a growth fit needs
MIN_DAY_HOURS: Final = 18  # hours of samples a day needs to enter the growth fit
STATISTIC: Final = (
    f"mean of the busiest hour of each of the last {PEAK_DAYS} days; growth: log-linear fit of "
    "the daily mean rate"
)


class DemandError(MemwallError):
    """A demand series that cannot stand for a workload's demand."""


@dataclass(frozen=True)
class DemandFit:
    """What one workload's series says, and over which window it said it."""

    units_per_s: float
    growth_per_year: float
    growth_sigma: float
    window_start: dt.datetime
    window_end: dt.datetime
    days_fitted: int


def _utc(seconds: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(seconds, dt.UTC)


def check_rates(times_s: np.ndarray, rates: np.ndarray, what: str) -> None:
    """Refuse rates no counter can produce, naming the first such sample and when."""
    bad = ~np.isfinite(rates) | (rates < 0)
    if bad.any():
        i = int(bad.argmax())
        kind = "NaN" if np.isnan(rates[i]) else "infinite" if np.isinf(rates[i]) else "negative"
        raise DemandError(
            f"{what} returned a {kind} rate ({rates[i]:g} at "
            f"{_utc(float(times_s[i])):%Y-%m-%d %H:%M} UTC); a counter's rate is finite and "
            ">= 0: refused"
        )


def busiest_hours(times_s: np.ndarray, rates: np.ndarray, end_s: float) -> np.ndarray:
    """The highest hourly rate of each of the last :data:`PEAK_DAYS` days that have data."""
    day = np.floor((end_s - times_s) / DAY_S).astype(int)
    peaks = [rates[day == d].max() for d in range(PEAK_DAYS) if (day == d).any()]
    return np.array(peaks, dtype=float)


def fit_demand(times_s: np.ndarray, rates: np.ndarray, end_s: float, what: str) -> DemandFit:
    """Demand today, its growth per year and the growth's spread, from hourly rates.

    ``times_s`` are Unix seconds (each the end of its hour), ``end_s`` the window's end;
    ``what`` names the series in messages (the workload and its query).
    """
    times_s = np.asarray(times_s, dtype=float)
    rates = np.asarray(rates, dtype=float)
    if times_s.size == 0:
        raise DemandError(f"{what} returned no samples in the window")
    check_rates(times_s, rates, what)
    peaks = busiest_hours(times_s, rates, end_s)
    if peaks.size == 0 or peaks.mean() <= 0:
        raise DemandError(
            f"{what} shows no demand in the last {PEAK_DAYS} days (rate 0 or no samples); "
            "demand_units_per_s must be > 0"
        )
    day = np.floor((end_s - times_s) / DAY_S).astype(int)
    days, hours = np.unique(day, return_counts=True)
    days = days[hours >= MIN_DAY_HOURS]
    means = np.array([rates[day == d].mean() for d in days])
    mids = np.array([times_s[day == d].mean() for d in days]) / YEAR_S
    used = means > 0
    if used.sum() < MIN_FIT_DAYS:
        raise DemandError(
            f"{what} has traffic on {int(used.sum())} day(s) of the window; a growth fit needs "
            f"at least {MIN_FIT_DAYS}"
        )
    # Imported here: scipy.stats costs every audit half a second to import, and only a
    # workload whose demand comes from Prometheus is fitted.
    from scipy.stats import linregress

    line = linregress(mids[used], np.log(means[used]))
    slope, se = float(line.slope), float(line.stderr)
    return DemandFit(
        units_per_s=float(peaks.mean()),
        growth_per_year=math.exp(slope) - 1.0,
        growth_sigma=math.exp(slope) * se,
        window_start=_utc(float(times_s.min())),
        window_end=_utc(end_s),
        days_fitted=int(used.sum()),
    )

"""Workloads' demand read from Prometheus: each ``demand_query`` over a window, fitted.

Returns the workloads with ``demand_units_per_s``, ``demand_growth_per_year`` and
``demand_growth_sigma`` replaced where a query answered, and a provenance table (the demand
history's columns but the run's) saying, per workload, where its demand came from and over
which window. Workloads without a query keep the figures their file states.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from hardware_profiles.schema import DEMAND_HISTORY
from tasks.analysis.demand import DAY_S, DemandError, DemandFit, fit_demand
from tasks.prometheus import (
    DEFAULT_TIMEOUT_S,
    PrometheusError,
    PrometheusUnreachable,
    hourly,
    query_range,
)

DEFAULT_WINDOW_DAYS = 90
PROVENANCE_COLUMNS = [c for c in DEMAND_HISTORY.columns if c not in ("run_id", "recorded_at")]


def _has_query(workloads: pd.DataFrame) -> pd.Series:
    if "demand_query" not in workloads.columns:
        return pd.Series(False, index=workloads.index)
    queries = workloads["demand_query"]
    return queries.notna() & (queries.astype(str).str.strip() != "")


def file_provenance(workloads: pd.DataFrame, detail: str) -> pd.DataFrame:
    """Every workload's demand as its file states it."""
    sigma = (
        workloads["demand_growth_sigma"]
        if "demand_growth_sigma" in workloads.columns
        else pd.Series(None, index=workloads.index, dtype=object)
    )
    frame = pd.DataFrame(
        {
            "workload_id": workloads["workload_id"].astype(str).to_numpy(),
            "name": workloads["name"].astype(str).to_numpy(),
            "source": "file",
            "demand_units_per_s": workloads["demand_units_per_s"].astype(float).to_numpy(),
            "demand_growth_per_year": workloads["demand_growth_per_year"].astype(float).to_numpy(),
            "demand_growth_sigma": sigma.astype(float).to_numpy(),
            "query": None,
            "window_start": pd.Series(
                pd.NaT, index=range(len(workloads)), dtype="datetime64[us, UTC]"
            ),
            "window_end": pd.Series(
                pd.NaT, index=range(len(workloads)), dtype="datetime64[us, UTC]"
            ),
            "detail": detail,
        }
    )
    return frame[PROVENANCE_COLUMNS]


def fetch_fit(
    url: str, workload_id: str, query: str, days: int, end: dt.datetime, timeout_s: float
) -> DemandFit:
    """One workload's fit; one series or a one-line error naming the workload and query."""
    what = f"workload {workload_id!r}: demand_query {query!r}"
    end_s = float(int(end.timestamp()) // 3600 * 3600)
    try:
        series = query_range(url, hourly(query), end_s - days * DAY_S, end_s, timeout_s=timeout_s)
    except PrometheusUnreachable:
        raise
    except PrometheusError as exc:
        raise PrometheusError(f"{what}: {exc}") from None
    if not series:
        raise DemandError(f"{what} returned no series from {url}")
    if len(series) > 1:
        shown = "; ".join(str(s.labels) for s in series[:2]) + ("; ..." if len(series) > 2 else "")
        raise DemandError(
            f"{what} returned {len(series)} series from {url} ({shown}); "
            "it must return one: aggregate it, e.g. sum(...)"
        )
    return fit_demand(series[0].times_s, series[0].values, end_s, what)


def sync_demand(
    workloads: pd.DataFrame,
    url: str,
    source: str,
    *,
    days: int = DEFAULT_WINDOW_DAYS,
    end: dt.datetime | None = None,
    only: set[str] | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Workloads with their demand refitted from ``url``, and the provenance of every row.

    ``only`` limits the sync to those workload ids (all with a query when None); ``source``
    names the workloads file in the provenance of rows left as written.
    """
    if days < 2:
        raise DemandError(f"--days must be >= 2 (a growth fit needs days), got {days}")
    end = end or dt.datetime.now(dt.UTC)
    if only is not None:
        unknown = only - set(workloads["workload_id"].astype(str))
        if unknown:
            raise DemandError(
                f"{source} has no workload {', '.join(sorted(unknown))}; its workloads are "
                f"{', '.join(workloads['workload_id'].astype(str))}"
            )
    out = workloads.copy()
    if "demand_growth_sigma" not in out.columns:
        out["demand_growth_sigma"] = np.nan
    out["demand_growth_sigma"] = out["demand_growth_sigma"].astype(float)
    provenance = file_provenance(workloads, f"as written in {source}")
    wanted = _has_query(workloads)
    if only is not None:
        wanted &= workloads["workload_id"].astype(str).isin(only)
    rows = provenance.to_dict("records")
    for position in (int(p) for p in np.flatnonzero(wanted.to_numpy())):
        row = workloads.iloc[position]
        query = str(row["demand_query"]).strip()
        fit = fetch_fit(url, str(row["workload_id"]), query, days, end, timeout_s)
        label = out.index[position]
        out.loc[label, "demand_units_per_s"] = fit.units_per_s
        out.loc[label, "demand_growth_per_year"] = fit.growth_per_year
        out.loc[label, "demand_growth_sigma"] = fit.growth_sigma
        rows[position].update(
            source="prometheus",
            demand_units_per_s=fit.units_per_s,
            demand_growth_per_year=fit.growth_per_year,
            demand_growth_sigma=fit.growth_sigma,
            query=query,
            window_start=pd.Timestamp(fit.window_start),
            window_end=pd.Timestamp(fit.window_end),
            detail=f"Prometheus {url}, {days} days to {fit.window_end:%Y-%m-%d %H:%M} UTC "
            f"({fit.days_fitted} days with traffic)",
        )
    provenance = pd.DataFrame(rows, columns=PROVENANCE_COLUMNS)
    for column in ("window_start", "window_end"):
        provenance[column] = pd.to_datetime(provenance[column], utc=True)
    return out, provenance


def demand_or_file(
    workloads: pd.DataFrame, url: str | None, source: str, days: int = DEFAULT_WINDOW_DAYS
) -> tuple[pd.DataFrame, pd.DataFrame, str | None]:
    """The audit's demand: synced from ``url`` when given and reachable, else the file's.

    The third item is a one-line warning when Prometheus could not be reached (the audit goes
    on with the file's demand); bad queries and bad rates are errors, as in ``sync``.
    """
    if url is None or not _has_query(workloads).any():
        detail = f"as written in {source}" + ("" if url is None else " (no demand_query set)")
        return workloads, file_provenance(workloads, detail), None
    try:
        synced, provenance = sync_demand(workloads, url, source, days=days)
    except PrometheusUnreachable as exc:
        warning = f"{exc}: using the demand written in {source}"
        return workloads, file_provenance(workloads, f"as written in {source} ({exc})"), warning
    return synced, provenance, None

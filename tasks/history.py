"""Every run's measurements and ranking, kept as an append-only Parquet dataset, and drift.

Layout under the history location (a path or an fsspec URL)::

    measurements/<run id>.parquet   the run's measurements rows (the measurements schema)
    ranking/<run id>.parquet        the run's ranking, one row per workload
    demand/<run id>.parquet         the demand the run projected, and where it came from

One file per run, never rewritten: two audits recording at once write two different files, so
neither can lose the other's rows, and there is no lock to leave behind.

Drift: a device's figure (triad bandwidth, matmul throughput per dtype; the best size of the
run) more than :data:`DEGRADED_FRACTION` below the median of its previous runs, once there are
at least :data:`MIN_TRAILING_RUNS` of them, is ``degraded``. The median, not the mean, so one
bad week does not hide the next.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Final

import pandas as pd

from hardware_profiles.schema import DEMAND_HISTORY, MEASUREMENTS, RANKING_HISTORY, Table
from tasks.storage import join, list_parquet, read_parquet, write_parquet

DEGRADED_FRACTION: Final = 0.10
MIN_TRAILING_RUNS: Final = 3
TREND_PROBES: Final = ("triad", "matmul")
_USABLE: Final = ("ok", "unstable")


@dataclass(frozen=True)
class RecordedRun:
    measurements: str
    ranking: str


def record_run(
    history: str,
    run_id: str,
    measurements: pd.DataFrame,
    ranking: pd.DataFrame,
    recorded_at: dt.datetime,
) -> RecordedRun:
    """Append one run: one new file per table, each written all at once."""
    ranked = ranking[[c for c in RANKING_HISTORY.columns if c in ranking.columns]].assign(
        run_id=run_id, recorded_at=recorded_at
    )
    # A workload whose pool has no hardware in the horizon has no headroom figure: recorded as
    # 0 (no supply), the column being required.
    ranked["headroom_now"] = ranked["headroom_now"].fillna(0.0)
    return RecordedRun(
        measurements=write_parquet(
            measurements, join(history, "measurements", f"{run_id}.parquet"), MEASUREMENTS
        ),
        ranking=write_parquet(
            ranked, join(history, "ranking", f"{run_id}.parquet"), RANKING_HISTORY
        ),
    )


def _read_all(history: str, folder: str, table: Table) -> pd.DataFrame:
    frames = [read_parquet(path, table) for path in list_parquet(join(history, folder))]
    frames = [f for f in frames if not f.empty]
    if not frames:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in table.columns})
    return pd.concat(frames, ignore_index=True)


def read_measurements(history: str) -> pd.DataFrame:
    return _read_all(history, "measurements", MEASUREMENTS)


def read_rankings(history: str) -> pd.DataFrame:
    return _read_all(history, "ranking", RANKING_HISTORY)


def trend(measurements: pd.DataFrame) -> pd.DataFrame:
    """One row per device, figure and run, oldest first, with its drift verdict.

    A figure is a probe and dtype (``triad float32``, ``matmul bfloat16``); its value in a run
    is the best usable result of that run on that device. ``trailing_median`` is the median of
    the device's earlier runs (null until :data:`MIN_TRAILING_RUNS` exist); ``degraded`` is
    true when the value is more than :data:`DEGRADED_FRACTION` below it.
    """
    columns = [
        "host",
        "device_index",
        "device_kind",
        "figure",
        "unit",
        "run_id",
        "measured_at",
        "value",
        "trailing_median",
        "change",
        "degraded",
    ]
    usable = measurements[
        measurements["probe"].isin(TREND_PROBES)
        & measurements["status"].isin(_USABLE)
        & measurements["best"].notna()
    ]
    if usable.empty:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in columns})
    usable = usable.assign(figure=usable["probe"] + " " + usable["dtype"])
    keys = ["host", "device_index", "device_kind", "figure", "unit"]
    per_run = (
        usable.groupby([*keys, "run_id"], dropna=False)
        .agg(value=("best", "max"), measured_at=("measured_at", "min"))
        .reset_index()
        .sort_values([*keys, "measured_at", "run_id"], kind="stable")
    )
    per_run["trailing_median"] = per_run.groupby(keys, dropna=False)["value"].transform(
        lambda v: (
            v.expanding()
            .median()
            .shift(1)
            .where(v.expanding().count().shift(1).ge(MIN_TRAILING_RUNS))
        )
    )
    per_run["change"] = per_run["value"] / per_run["trailing_median"] - 1.0
    per_run["degraded"] = per_run["change"].lt(-DEGRADED_FRACTION)
    return per_run[columns].reset_index(drop=True)


def record_demand(history: str, run_id: str, demand: pd.DataFrame, recorded_at: dt.datetime) -> str:
    """Append the demand one run projected (``tasks.demand``'s provenance rows) as
    ``demand/<run id>.parquet``: the trend of demand beside the trend of the hardware."""
    rows = demand.assign(run_id=run_id, recorded_at=recorded_at)[DEMAND_HISTORY.columns]
    return write_parquet(rows, join(history, "demand", f"{run_id}.parquet"), DEMAND_HISTORY)


def read_demand(history: str) -> pd.DataFrame:
    """Every recorded run's demand, oldest run first."""
    rows = _read_all(history, "demand", DEMAND_HISTORY)
    return rows.sort_values(["recorded_at", "workload_id"], kind="stable").reset_index(drop=True)

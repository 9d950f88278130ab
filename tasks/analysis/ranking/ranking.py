"""The ranking: earliest starvation first, then lowest headroom; workloads that never starve
in the horizon last, by their lowest headroom. One row per workload, with the mitigation that
moves its starvation month the furthest, and the P10-P90 band of its starvation month
(``tasks.analysis.projection.uncertainty``)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from tasks.analysis.projection.horizon import NEVER
from tasks.analysis.projection.projector import Projection
from tasks.analysis.projection.uncertainty import Band, band
from tasks.analysis.ranking.mitigations import best_mitigation, mitigate
from tasks.analysis.walls.under_load import under_load_columns
from tasks.analysis.walls.walls import Walls, classify, wall_columns

RANKING_COLUMNS = (
    "rank",
    "workload_id",
    "name",
    "owner",
    "pool",
    "phase",
    "precision",
    "arithmetic_intensity_flops_per_byte",
    "ridge_flops_per_byte",
    "bound",
    "utilization_now",
    "headroom_now",
    "min_headroom",
    "min_headroom_month",
    "starve_month",
    "starve_month_p10",
    "starve_month_p90",
    "shortfall_month",
    "best_mitigation",
    "months_gained",
    "served_from",
    "wall",
    "wall_month",
    "devices_per_replica",
    "max_batch",
    "served_batch",
    "replica_accelerator_id",
    "wall_remedy",
)


@dataclass(frozen=True)
class Ranked:
    """The ranking and the mitigations table it was drawn from."""

    ranking: pd.DataFrame
    mitigations: pd.DataFrame
    order: np.ndarray  # ranking row i is workload order[i] of the projection
    walls: Walls | None = None
    band: Band | None = None  # in the projection's workload order, like ``order`` indexes


def _month_or_none(months: list[dt.date], index: np.ndarray) -> np.ndarray:
    lookup = np.array([*months, None], dtype=object)
    return np.asarray(lookup[np.where(index == NEVER, len(months), index)])


def rank(
    projection: Projection,
    *,
    with_mitigations: bool = True,
    catalog: pd.DataFrame | None = None,
    supply_spread: np.ndarray | None = None,
) -> Ranked:
    """The ranking; with the ``catalog`` (memory sizes, interconnects) also the capacity and
    latency walls and each workload's replica (:mod:`tasks.analysis.walls.walls`);
    ``supply_spread`` overrides each workload's supply spread for the band."""
    projector = projection.projector
    outcome = projection.outcome
    workloads = projection.workloads
    n, n_months = outcome.headroom.shape
    starve = outcome.starve_index
    # NaN headroom = not served that month; fmin skips it (all NaN: never served).
    min_headroom = np.fmin.reduce(outcome.headroom, axis=1)
    min_month = np.where(
        projection.placement.served_from == NEVER,
        NEVER,
        np.where(np.isnan(outcome.headroom), np.inf, outcome.headroom).argmin(axis=1),
    )
    order = np.lexsort(
        (
            workloads["workload_id"].astype(str).to_numpy(),
            min_headroom,
            np.where(starve == NEVER, n_months, starve),
        )
    )
    mitigations = mitigate(projection) if with_mitigations else _no_mitigations()
    walls = classify(projection, catalog)
    if with_mitigations:
        label, gained = best_mitigation(mitigations, n)
    else:
        label, gained = np.full(n, None, dtype=object), np.zeros(n)
    first = np.where(projection.placement.served_from == NEVER, 0, projection.placement.served_from)
    bandwidth_now = np.einsum(
        "nh,nh->n",
        projector.fleet.counts[projector.placement.pool_index, :, first],
        projector.workload_bandwidth(),
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        ridge_now = projection.placement.at_first_served(outcome.peak_flops_per_s) / bandwidth_now
    ai = projector.baseline_figures.intensity
    dates = band(projection, supply_spread)
    table = pd.DataFrame(
        {
            "workload_id": workloads["workload_id"].to_numpy(),
            "name": workloads["name"].to_numpy(),
            "owner": workloads["owner"].to_numpy(),
            "pool": workloads["pool"].to_numpy(),
            "phase": workloads["phase"].to_numpy(),
            "precision": workloads["precision"].to_numpy(),
            "arithmetic_intensity_flops_per_byte": ai,
            "ridge_flops_per_byte": ridge_now,
            "bound": projection.bound_now(),
            "utilization_now": projection.placement.at_first_served(outcome.utilization),
            "headroom_now": projection.placement.at_first_served(outcome.headroom),
            "min_headroom": min_headroom,
            "min_headroom_month": _month_or_none(projection.months, min_month),
            "starve_month": _month_or_none(projection.months, starve),
            "starve_month_p10": _month_or_none(projection.months, dates.starve_p10_index),
            "starve_month_p90": _month_or_none(projection.months, dates.starve_p90_index),
            "shortfall_month": _month_or_none(projection.months, outcome.shortfall_index),
            "best_mitigation": label,
            "months_gained": gained.astype(int),
            "served_from": _month_or_none(projection.months, projection.placement.served_from),
            **wall_columns(projection, walls),
            "served_batch": _served_batch(projection.served_batch),
            **under_load_columns(projection, walls, catalog),
        }
    ).iloc[order]
    table.insert(0, "rank", np.arange(1, n + 1))
    return Ranked(table.reset_index(drop=True), mitigations, order, walls, dates)


def _served_batch(served: np.ndarray) -> pd.arrays.IntegerArray:
    """The batch a workload's supply was evaluated at where its SLO caps it below its own
    batch (:mod:`tasks.analysis.projection.serving`); null where it is served at its own."""
    missing = np.isnan(served)
    return pd.arrays.IntegerArray(np.where(missing, 0, served).astype(np.int64), missing)


def _no_mitigations() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "workload_id": pd.Series(dtype=object),
            "mitigation": pd.Series(dtype=object),
            "label": pd.Series(dtype=object),
            "applicable": pd.Series(dtype=bool),
            "starve_index": pd.Series(dtype=np.int64),
            "months_gained": pd.Series(dtype=float),
        }
    )


def records(frame: pd.DataFrame) -> Iterator[Any]:
    """A frame's rows as named tuples, typed loosely: columns hold mixed values (dates or
    missing, labels or missing) that pandas' stubs cannot describe per column."""
    return frame.itertuples(index=False)


# (key, column, how each value is written) in the order ``memwall rank --json`` prints them.
_JSON_COLUMNS = (
    ("workload_id", "workload_id", "text"),
    ("rank", "rank", "integer"),
    ("starve_month", "starve_month", "month"),
    ("starve_month_p10", "starve_month_p10", "month"),
    ("starve_month_p90", "starve_month_p90", "month"),
    ("bound", "bound", "text"),
    ("utilization_now", "utilization_now", "number"),
    ("min_headroom", "min_headroom", "number"),
    ("best_mitigation", "best_mitigation", "text or null"),
    ("months_gained", "months_gained", "integer"),
    ("served_from", "served_from", "month"),
    ("wall", "wall", "text or null"),
    ("wall_month", "wall_month", "month"),
    ("devices_per_replica", "devices_per_replica", "integer or null"),
    ("max_batch", "max_batch", "integer or null"),
    ("served_batch", "served_batch", "integer or null"),
    ("wall_remedy", "wall_remedy", "text or null"),
    ("replica_layout", "replica_layout", "text or null"),
    ("tpot_under_load_s", "tpot_under_load_s", "number"),
    ("output_tokens_per_s_under_load", "output_tokens_per_s_under_load", "number"),
)


def _json_column(column: pd.Series, kind: str) -> list[Any]:
    """One column as plain values, converted once per column (a month is formatted once per
    distinct month, not once per row); a number that is not finite, or a missing value, is
    None."""
    if kind == "number":
        values = column.to_numpy(dtype=float, na_value=np.nan)
        finite = np.isfinite(values).tolist()
        return [v if f else None for f, v in zip(finite, values.tolist(), strict=True)]
    if kind == "integer":
        return column.to_numpy(dtype=np.int64).tolist()
    missing = column.isna().to_numpy()
    if kind == "integer or null":
        values = column.to_numpy(dtype=float, na_value=np.nan)
        whole = np.where(missing, 0, values).astype(np.int64).tolist()
        return [None if m else v for m, v in zip(missing.tolist(), whole, strict=True)]
    values = column.astype(object).to_numpy()
    if kind == "month":
        text = {v: f"{v:%Y-%m}" for v in pd.unique(values[~missing])}
        return [None if m else text[v] for m, v in zip(missing.tolist(), values, strict=True)]
    if kind == "text":
        return [str(v) for v in values]
    return [None if m else str(v) for m, v in zip(missing.tolist(), values, strict=True)]


def ranking_rows(ranking: pd.DataFrame) -> list[dict[str, object]]:
    """The ranking as JSON-ready rows (``memwall rank --json``, the Prefect table artifact),
    built column by column: 100,000 rows in a fraction of a second."""
    keys = [key for key, _, _ in _JSON_COLUMNS]
    columns = [_json_column(ranking[column], kind) for _, column, kind in _JSON_COLUMNS]
    return [dict(zip(keys, values, strict=True)) for values in zip(*columns, strict=True)]

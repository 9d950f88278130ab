"""The ranking: earliest starvation first, then lowest headroom; workloads that never starve
in the horizon last, by their lowest headroom. One row per workload, with the mitigation that
moves its starvation month the furthest, and the P10-P90 band of its starvation month
(``tasks.analysis.projection.uncertainty``) and of its wall's month.

Training workloads laid out as jobs (a ``layout`` and ``global_batch_tokens``) are ranked by
the same rule on their job's headroom (:mod:`tasks.analysis.walls.training`): their bound is
what binds their step (memory, network or compute), their utilisation the MFU, their wall and
month the step's, their best mitigation the training one that moves that wall the furthest,
and their "replica" the whole job (devices, model, layout)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from tasks.analysis.projection.expert_sources import EXPERT_COLUMNS, expert_columns
from tasks.analysis.projection.horizon import NEVER, first_month
from tasks.analysis.projection.projector import Outcome, Projection
from tasks.analysis.projection.uncertainty import Band, band, workload_classes
from tasks.analysis.projection.uncertainty import supply_spread as projection_spread
from tasks.analysis.ranking.mitigations import best_mitigation, mitigate
from tasks.analysis.walls.training import (
    TrainingJobs,
    job_mitigations,
    job_walls,
    ranked_outcome,
    training_jobs,
)
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
    "wall_month_p10",
    "wall_month_p90",
    "devices_per_replica",
    "max_batch",
    "served_batch",
    "replica_accelerator_id",
    "wall_remedy",
    "step_time_s",
    *EXPERT_COLUMNS,
)


@dataclass(frozen=True)
class Ranked:
    """The ranking and the mitigations table it was drawn from."""

    ranking: pd.DataFrame
    mitigations: pd.DataFrame
    order: np.ndarray  # ranking row i is workload order[i] of the projection
    walls: Walls | None = None
    band: Band | None = None  # in the projection's workload order, like ``order`` indexes
    # What was ranked: the projection's outcome, the training jobs' rows from their step.
    outcome: Outcome | None = None
    training: TrainingJobs | None = None  # the training workloads laid out as jobs, if any


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
    latency walls and each workload's replica (:mod:`tasks.analysis.walls.walls`), and the
    training workloads laid out as jobs (module docstring); ``supply_spread`` overrides each
    workload's supply spread for the band."""
    jobs = None if catalog is None else training_jobs(projection, catalog)
    laid_out = jobs if jobs is not None and len(jobs.rows) else None
    if laid_out is not None:
        projection = replace(projection, outcome=ranked_outcome(projection.outcome, laid_out))
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
    bound = projection.bound_now()
    shortfall = outcome.shortfall_index
    if laid_out is not None:
        # A job short of steps is a compute shortfall only where compute binds its step.
        shortfall = shortfall.copy()
        shortfall[laid_out.rows] = np.where(laid_out.wall == "compute", laid_out.wall_index, NEVER)
        walls = job_walls(walls, laid_out, projection)
        bound = bound.astype(object)
        bound[laid_out.rows] = laid_out.bound
        if with_mitigations:
            mitigations = job_mitigations(mitigations, laid_out)
            label[laid_out.rows] = laid_out.best_label
            gained[laid_out.rows] = laid_out.best_months
        if supply_spread is None:
            supply_spread = _spread(projection, laid_out)
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
    wall_p10, wall_p90 = _wall_band(walls, dates, outcome)
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
            "bound": bound,
            "utilization_now": projection.placement.at_first_served(outcome.utilization),
            "headroom_now": projection.placement.at_first_served(outcome.headroom),
            "min_headroom": min_headroom,
            "min_headroom_month": _month_or_none(projection.months, min_month),
            "starve_month": _month_or_none(projection.months, starve),
            "starve_month_p10": _month_or_none(projection.months, dates.starve_p10_index),
            "starve_month_p90": _month_or_none(projection.months, dates.starve_p90_index),
            "shortfall_month": _month_or_none(projection.months, shortfall),
            "best_mitigation": label,
            "months_gained": gained.astype(int),
            "served_from": _month_or_none(projection.months, projection.placement.served_from),
            **wall_columns(projection, walls),
            "wall_month_p10": _month_or_none(projection.months, wall_p10),
            "wall_month_p90": _month_or_none(projection.months, wall_p90),
            "served_batch": _served_batch(projection.served_batch),
            **under_load_columns(projection, walls, catalog),
            **expert_columns(projection),
        }
    )
    step = np.full(n, np.nan)
    if laid_out is not None:
        summary = laid_out.findings.summary
        step[laid_out.rows] = summary["step_time_s"].to_numpy(dtype=float)
        layouts = table["replica_layout"].to_numpy(dtype=object).copy()
        layouts[laid_out.rows] = summary["layout"].to_numpy(dtype=object)
        table["replica_layout"] = layouts
    table["step_time_s"] = step
    table = table.iloc[order]
    table.insert(0, "rank", np.arange(1, n + 1))
    return Ranked(table.reset_index(drop=True), mitigations, order, walls, dates, outcome, jobs)


def _spread(projection: Projection, jobs: TrainingJobs) -> np.ndarray:
    """Each workload's supply spread for the band: the projection's, a job's its step's."""
    spread = projection_spread(projection.projector, workload_classes(projection.workloads))
    spread[jobs.rows] = jobs.step_spread
    return spread


def _wall_band(walls: Walls, dates: Band, outcome: Outcome) -> tuple[np.ndarray, np.ndarray]:
    """The P10 and P90 month of each workload's wall where an efficiency's spread moves it: a
    bandwidth wall's are its starvation's; a compute or network wall's, the first months the
    P10 and P90 headroom fall short while not memory-bound. NEVER for capacity and latency
    walls (no spread moves them) and for workloads that meet no wall."""
    wall = walls.wall
    with np.errstate(invalid="ignore"):
        short_p10 = first_month(
            outcome.supported[:, None] & (dates.headroom_p10 < 1) & ~outcome.memory_bound
        )
        short_p90 = first_month(
            outcome.supported[:, None] & (dates.headroom_p90 < 1) & ~outcome.memory_bound
        )
    bandwidth = wall == "bandwidth"
    shortfall = (wall == "compute") | (wall == "network")
    low = np.where(bandwidth, dates.starve_p10_index, np.where(shortfall, short_p10, NEVER))
    high = np.where(bandwidth, dates.starve_p90_index, np.where(shortfall, short_p90, NEVER))
    return np.asarray(low), np.asarray(high)


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
    ("wall_month_p10", "wall_month_p10", "month"),
    ("wall_month_p90", "wall_month_p90", "month"),
    ("devices_per_replica", "devices_per_replica", "integer or null"),
    ("max_batch", "max_batch", "integer or null"),
    ("served_batch", "served_batch", "integer or null"),
    ("wall_remedy", "wall_remedy", "text or null"),
    ("replica_layout", "replica_layout", "text or null"),
    ("tpot_under_load_s", "tpot_under_load_s", "number"),
    ("output_tokens_per_s_under_load", "output_tokens_per_s_under_load", "number"),
    ("step_time_s", "step_time_s", "number"),
    ("engine_generation", "engine_generation", "text"),
    ("expert_share", "expert_share", "number"),
    ("expert_share_source", "expert_share_source", "text or null"),
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

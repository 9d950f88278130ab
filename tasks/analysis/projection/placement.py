"""Where each workload runs and what it asks for: its pool and phase, the first month its
pool holds hardware, the month its demand starts, its demand curve and its share of the pool.

Pools and workloads that start later: a workload whose pool holds no hardware in a month is not
served then; its ``served_from`` is the first month its pool holds any, NEVER when none in the
horizon (reported as unserved). A workload with a ``start_month`` has no demand before it and
its ``demand_units_per_s`` is the demand at that month: D(t) = D0·(1+g)^((t-s)/12) for t >= s,
where s = max(0, start month index); a start after the horizon is an error.

The rows are checked here, before anything is evaluated: a pool the roadmap does not have, a
start after the horizon, a compute precision no model of the pool has a peak for, a serving
layout that cannot split the row's model (the replicas are sized on it).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
import pandas as pd

from hardware_profiles.errors import ProfileError
from hardware_profiles.months import month_indexes
from tasks.analysis.projection.horizon import NEVER, Fleet, first_month
from tasks.analysis.supply.ceilings import PEAK_INDEX, PHASE_ORDER, Ceilings, lookup
from tasks.analysis.supply.engine_generation import GENERATIONS, workload_generation
from tasks.analysis.workload.layout import SERVING_PHASES, LayoutError, check_layout, parse_layout
from tasks.analysis.workload.presets import PRESETS


@dataclass(frozen=True)
class Placement:
    """Per workload: its pool and phase as indexes into the fleet and the ceilings, the
    generation of the engine that serves it (an index into :data:`GENERATIONS`, the ceilings'
    first expert-share axis), the first month its pool holds hardware (NEVER: none in the
    horizon), the month its demand starts, and its demand in every month, (workloads,
    months)."""

    pool_index: np.ndarray
    phase_index: np.ndarray
    generation_index: np.ndarray
    served_from: np.ndarray
    start_index: np.ndarray
    demand: np.ndarray

    def take(self, rows: np.ndarray) -> Placement:
        return Placement(**{f.name: getattr(self, f.name)[rows] for f in fields(self)})

    def at_first_served(self, values: np.ndarray) -> np.ndarray:
        """(workloads, months) values at each workload's first served month (month 0 for a
        workload never served): what the ranking calls "now"."""
        first = np.where(self.served_from == NEVER, 0, self.served_from)
        return np.asarray(values[np.arange(len(first)), first])


def place(
    workloads: pd.DataFrame,
    fleet: Fleet,
    ceilings: Ceilings,
    workloads_source: str = "workloads",
    roadmap_source: str = "roadmap",
) -> Placement:
    """Each workload's placement on ``fleet``; a row that cannot be placed is an error naming
    the file, the row and the column."""
    pool_of = {p: i for i, p in enumerate(fleet.pools)}
    pool_names = workloads["pool"].astype(str)
    unknown = ~pool_names.isin(list(pool_of))
    if unknown.any():
        row = int(unknown.to_numpy().argmax())
        raise ProfileError(
            workloads_source,
            f"pool {pool_names.iloc[row]!r} has no hardware in the roadmap "
            f"({roadmap_source}); its pools are {', '.join(fleet.pools)}",
            row=row + 1,
            column="pool",
        )
    pool_index = pool_names.map(pool_of).to_numpy(dtype=np.int64)
    phase_index = lookup(
        workloads["phase"].to_numpy(dtype=object), {p: i for i, p in enumerate(PHASE_ORDER)}
    ).astype(np.int64)
    start_index = _start_index(workloads, fleet, workloads_source)
    t = np.arange(len(fleet.months))[None, :] - np.clip(start_index, 0, None)[:, None]
    growth = 1.0 + workloads["demand_growth_per_year"].to_numpy(dtype=float)
    demand = np.where(
        t >= 0,
        workloads["demand_units_per_s"].to_numpy(dtype=float)[:, None]
        * (growth[:, None] ** (t / 12.0)),
        0.0,
    )
    placement = Placement(
        pool_index=pool_index,
        phase_index=phase_index,
        generation_index=engine_generations(workloads)[0],
        served_from=first_month(fleet.pool_total()[pool_index] > 0),
        start_index=start_index,
        demand=demand,
    )
    _check_supported(workloads, fleet, ceilings, placement, workloads_source)
    _check_layouts(workloads, workloads_source)
    return placement


def engine_generations(workloads: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Per workload: the generation of the engine its row states (``engine``; none: the
    newest) as an index into :data:`GENERATIONS`, and why
    (:func:`~tasks.analysis.supply.engine_generation.workload_generation`). A fleet's table
    repeats a handful of engines over many rows: each is read once."""
    stated = (
        workloads["engine"] if "engine" in workloads else pd.Series(None, index=workloads.index)
    )
    codes, distinct = pd.factorize(stated, use_na_sentinel=True)
    read = [workload_generation(str(engine)) for engine in distinct]
    read.append(workload_generation(None))  # code -1: no engine stated
    index = np.array([GENERATIONS.index(generation) for generation, _ in read])
    reasons = np.array([why for _, why in read], dtype=object)
    return index[codes], reasons[codes]


def _check_layouts(workloads: pd.DataFrame, source: str) -> None:
    """A decode or prefill row's stated layout must split its model preset; the refusal lists
    the layouts that would (each distinct model and layout checked once)."""
    if "layout" not in workloads or "model_preset" not in workloads:
        return
    stated = (
        workloads["layout"].notna()
        & workloads["model_preset"].isin(list(PRESETS))
        & workloads["phase"].isin(list(SERVING_PHASES))
    ).to_numpy()
    checked: set[tuple[str, str]] = set()
    for row in np.flatnonzero(stated):
        key = (str(workloads["model_preset"].iloc[row]), str(workloads["layout"].iloc[row]))
        if key in checked:
            continue
        try:
            check_layout(PRESETS[key[0]], parse_layout(key[1]))
        except LayoutError as exc:
            raise ProfileError(source, str(exc), row=int(row) + 1, column="layout") from None
        checked.add(key)


def _start_index(workloads: pd.DataFrame, fleet: Fleet, source: str) -> np.ndarray:
    """Month index of each workload's start_month (0 where none); a start after the horizon
    is an error naming the row."""
    starts = workloads.get("start_month")
    if starts is None or starts.isna().all():
        return np.zeros(len(workloads), dtype=np.int64)
    when = pd.to_datetime(starts.astype(object))
    first = fleet.months[0]
    index = month_indexes(first, when).fillna(0).to_numpy(dtype=np.int64)
    late = index >= len(fleet.months)
    if late.any():
        row = int(late.argmax())
        raise ProfileError(
            source,
            f"start_month {starts.iloc[row]:%Y-%m} is after the horizon "
            f"{fleet.months[0]:%Y-%m} to {fleet.months[-1]:%Y-%m}; give a month within it "
            "or a longer horizon",
            row=row + 1,
            column="start_month",
        )
    return index


def unsupported(
    precision: np.ndarray, fleet: Fleet, ceilings: Ceilings, placement: Placement
) -> np.ndarray:
    """Per workload: whether some model its pool holds in the horizon has no peak at the
    workload's compute ``precision`` (no such units)."""
    peak = ceilings.flops[placement.phase_index, :, lookup(precision, PEAK_INDEX)]
    return np.asarray((np.isnan(peak) & fleet.held()[placement.pool_index]).any(axis=1))


def _check_supported(
    workloads: pd.DataFrame,
    fleet: Fleet,
    ceilings: Ceilings,
    placement: Placement,
    source: str,
) -> None:
    precisions = workloads["precision"].to_numpy(dtype=object)
    lacks = unsupported(precisions, fleet, ceilings, placement)
    if not lacks.any():
        return
    row = int(lacks.argmax())
    pool = placement.pool_index[row]
    held = fleet.counts[pool].max(axis=1) > 0
    precision = str(precisions[row])
    lacking = [
        m
        for m, h, f in zip(
            fleet.models,
            held,
            ceilings.flops[placement.phase_index[row], :, PEAK_INDEX[precision]],
            strict=True,
        )
        if h and np.isnan(f)
    ]
    workload = workloads["workload_id"].iloc[row]
    raise ProfileError(
        source,
        f"precision {precision!r} has no peak on {', '.join(lacking)} in pool "
        f"{fleet.pools[pool]!r} for workload {workload!r} (no {precision} units); "
        f"compute at a precision that hardware has (weights may still be stored at "
        f"{precision}: weight-only)",
        row=row + 1,
        column="precision",
    )


def pool_shares(workloads: pd.DataFrame, full_pool_supply_units_per_s: np.ndarray) -> np.ndarray:
    """Each workload's share of its pool: as given, else what the given shares leave, split in
    proportion to the fraction of the whole pool each workload needs today.

    Splitting by need (demand over what the whole pool could supply) gives every workload of a
    pool the same headroom today, so differences over time come from growth and hardware alone.
    """
    need = workloads["demand_units_per_s"].to_numpy(dtype=float) / full_pool_supply_units_per_s
    given = workloads["pool_share"]
    has_share = given.notna().to_numpy()
    pools = workloads["pool"]
    left = (
        1
        - pd.Series(np.where(has_share, given.fillna(0.0), 0.0))
        .groupby(pools.to_numpy())
        .transform("sum")
        .to_numpy()
    )
    open_need = (
        pd.Series(np.where(has_share, 0.0, need))
        .groupby(pools.to_numpy())
        .transform("sum")
        .to_numpy()
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        proportional = np.clip(left, 0.0, None) * need / open_need
    return np.where(has_share, given.fillna(0.0).to_numpy(dtype=float), proportional)

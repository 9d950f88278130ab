"""Which wall each workload hits, and when: bandwidth, capacity, latency or compute.

Per workload and month t of the horizon, while its pool holds hardware and it has demand:

- **capacity**: no accelerator model the pool holds at t can form a replica of at most
  ``max_devices_per_replica`` devices (and at most as many as the pool holds) that holds the
  weights plus the KV cache of the workload's batch at its context;
- **latency**: the workload has a target (decode: ``tpot_slo_s``; prefill: ``ttft_slo_s``) and on
  no model the pool holds at t does batch 1 meet it, whatever the replica's size up to the cap:
  no number of the same devices fixes it, only faster memory (or fewer bytes per token);
- **bandwidth**: starvation as the projection defines it (memory-bound, headroom < 1);
- **compute**: headroom < 1 while compute-bound;
- **network** (training jobs only): headroom < 1 while a job's collectives outlast its compute.

A training workload laid out as a job (a ``layout`` and ``global_batch_tokens``) takes its
walls from its step instead (:mod:`tasks.analysis.walls.training`): capacity where its layout
does not fit, else network, bandwidth or compute as its step is bound, from the month demand
outgrows one step per step time.

A month's wall is the first of these that holds, in that order (what does not fit cannot run; what
cannot meet its target at batch 1 cannot be saved by more of the same devices). A workload's
``wall`` is the wall of its first month past one, ``wall_index`` that month. The replica reported
(``devices_per_replica``, ``max_batch``) is on the model its pool holds most of, among those a
replica can be formed on, in the workload's first served month, as the projection sized it
(:mod:`tasks.analysis.projection.serving`; :mod:`tasks.analysis.supply.replicas` for the formulas).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from tasks.analysis.projection.horizon import NEVER
from tasks.analysis.projection.projector import Projection
from tasks.analysis.projection.serving import Serving, serve
from tasks.analysis.supply.replicas import Replicas
from tasks.analysis.walls.remedies import wall_remedies

WALLS = ("capacity", "latency", "network", "bandwidth", "compute")
# Month states of the timeline chart.
NO_DEMAND, NOT_SERVED, FINE, TIGHT, PAST_WALL = 0, 1, 2, 3, 4
# Headroom below this (and >= 1) is "tight": one year of 20 % growth from a shortfall.
TIGHT_HEADROOM = 1.2
ADDRESSED_BY = {
    "bandwidth": "more memory bandwidth in the roadmap, lower precision, a larger decode batch",
    "capacity": "devices with more memory, a lower-precision KV cache or weights, a larger "
    "max_devices_per_replica, a shorter context; a training job: more tensor or pipeline "
    "parallelism, recompute, ZeRO-3",
    "latency": "faster memory in the roadmap, lower precision; speculative decoding (not modelled)",
    "compute": "more FLOP/s in the roadmap, lower-precision compute",
    "network": "a faster scale-out network, more tokens per device per step (a larger "
    "global batch, or fewer data-parallel ranks: more tensor or pipeline parallelism)",
}


@dataclass(frozen=True)
class Walls:
    """Per workload (projection order): its wall and month, replica, and month states."""

    wall: np.ndarray  # object: a name of WALLS or None
    wall_index: np.ndarray  # first month past a wall, NEVER where none
    month_wall: np.ndarray  # (workloads, months): index into WALLS, -1 where none
    state: np.ndarray  # (workloads, months): NO_DEMAND .. PAST_WALL
    devices_per_replica: np.ndarray  # NaN: no replica (capacity or latency wall), or unknown
    max_batch: np.ndarray  # NaN: unknown; inf: nothing bounds it
    replica_accelerator_id: np.ndarray  # object, None where unknown
    remedy: np.ndarray  # object: what lifts a capacity or latency wall, None for the rest


def classify(projection: Projection, catalog: pd.DataFrame | None) -> Walls:
    """Walls of every workload in every month, on the replicas the projection sized; without
    a catalog (no memory sizes) only the bandwidth and compute walls are known."""
    placement = projection.placement
    outcome = projection.outcome
    serving = _serving(projection, catalog)
    n, months = outcome.headroom.shape
    served = projection.fleet.pool_total()[placement.pool_index] > 0
    active = np.arange(months)[None, :] >= placement.start_index[:, None]
    live = served & active
    with np.errstate(invalid="ignore"):
        short = live & (outcome.headroom < 1)
    # One (workloads, months) flag per wall, in WALLS order; the network's is the jobs'.
    flags = [np.zeros((n, months), dtype=bool) for _ in range(3)]
    if serving is not None:
        formable, fast = _formable(projection, serving.replicas)
        has_slo = ~np.isnan(serving.step.slo_s)
        flags[0] = live & ~formable
        flags[1] = live & has_slo[:, None] & ~fast
    flags += [short & outcome.memory_bound, short & ~outcome.memory_bound]
    stacked = np.stack(flags)  # (walls, workloads, months)
    month_wall = np.where(stacked.any(axis=0), stacked.argmax(axis=0), -1)
    past = month_wall >= 0
    wall_index = np.where(past.any(axis=1), past.argmax(axis=1), NEVER)
    names = np.array([*WALLS, None], dtype=object)
    first_wall = month_wall[np.arange(n), np.where(wall_index == NEVER, 0, wall_index)]
    wall = names[np.where(wall_index == NEVER, len(WALLS), first_wall)]
    state = month_states(projection, np.arange(n), outcome.headroom, past)
    if serving is None or catalog is None:
        unknown = np.full(n, np.nan)
        none = np.full(n, None, dtype=object)
        return Walls(wall, wall_index, month_wall, state, unknown, unknown.copy(), none, none)
    remedy = wall_remedies(projection, serving, catalog, wall, wall_index)
    return Walls(
        wall,
        wall_index,
        month_wall,
        state,
        serving.devices,
        serving.max_batch,
        serving.accelerator,
        remedy,
    )


def month_states(
    projection: Projection, rows: np.ndarray, headroom: np.ndarray, past: np.ndarray
) -> np.ndarray:
    """The timeline's state of the workloads at ``rows`` in every month, from their headroom
    and whether each month is past a wall, (rows, months)."""
    placement = projection.placement
    served = projection.fleet.pool_total()[placement.pool_index[rows]] > 0
    active = np.arange(len(projection.months))[None, :] >= placement.start_index[rows, None]
    with np.errstate(invalid="ignore"):
        tight = headroom < TIGHT_HEADROOM
    return np.asarray(
        np.select([~active, ~served, past, tight], [NO_DEMAND, NOT_SERVED, PAST_WALL, TIGHT], FINE)
    )


def _serving(projection: Projection, catalog: pd.DataFrame | None) -> Serving | None:
    """The projection's serving; for a projection made without the catalog, replicas sized
    for the walls alone (its supply stays at each workload's own batch)."""
    if catalog is None:
        return None
    if projection.serving is not None:
        return projection.serving
    return serve(
        projection.workloads,
        projection.fleet,
        projection.placement,
        projection.projector.ceilings,
        catalog,
    )


def _formable(projection: Projection, replicas: Replicas) -> tuple[np.ndarray, np.ndarray]:
    """Per workload and month: whether some model its pool holds then has enough devices for
    a replica of the workload's batch (within the cap), and for one meeting its target at
    batch 1. One (workloads of a pool x months) comparison per pool and model, never a
    (workloads x models x months) array."""
    pool_index = projection.placement.pool_index
    n, months = len(pool_index), len(projection.months)
    formable = np.zeros((n, months), dtype=bool)
    fast = np.zeros((n, months), dtype=bool)
    for pool in np.unique(pool_index):
        rows = np.flatnonzero(pool_index == pool)
        for h, held in enumerate(projection.fleet.counts[pool]):
            if not (held > 0).any():
                continue
            fit = np.where(replicas.fits[rows, h], replicas.fit_devices[rows, h], np.inf)
            formable[rows] |= fit[:, None] <= held[None, :]
            lat = np.where(replicas.latency_ok[rows, h], replicas.latency_devices[rows, h], np.inf)
            fast[rows] |= lat[:, None] <= held[None, :]
    return formable, fast


def wall_columns(projection: Projection, walls: Walls) -> dict[str, object]:
    """The ranking's wall columns (projection order): wall, wall_month, devices_per_replica,
    max_batch (null where unbounded or unknown), replica_accelerator_id, wall_remedy."""
    months = np.array([*projection.months, None], dtype=object)
    # Categoricals: a few distinct labels, not 100,000 strings for pandas to convert.
    return {
        "wall": pd.Categorical(walls.wall, categories=list(WALLS)),
        "wall_month": months[
            np.where(walls.wall_index == NEVER, len(months) - 1, walls.wall_index)
        ],
        "devices_per_replica": _integers(walls.devices_per_replica),
        "max_batch": _integers(walls.max_batch),
        "replica_accelerator_id": pd.Categorical(walls.replica_accelerator_id),
        "wall_remedy": pd.Categorical(walls.remedy),
    }


def _integers(values: np.ndarray) -> pd.arrays.IntegerArray:
    """Whole numbers, null where NaN or infinite (unknown, or nothing bounds them)."""
    missing = ~np.isfinite(values)
    return pd.arrays.IntegerArray(np.where(missing, 0, values).astype(np.int64), missing)

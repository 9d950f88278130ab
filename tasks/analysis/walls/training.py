"""Training jobs in the walls and the ranking: each laid-out job's headroom month by month, the
wall it meets and when, and the months each of its mitigations buys.

A job (:mod:`tasks.analysis.training.audit`) supplies ``1/step`` steps per second while its
layout fits, none where it does not. Its demand is the workload's, month by month as the
placement curves it (``D(t) = D0·(1+g)^((t−s)/12)`` from its start month s). Its headroom is
``H(t) = 1/(step·D(t))``: NaN before its pool holds hardware, +inf before it starts, as the
projection defines a serving workload's. Its wall month is the first month with ``H(t) < 1``
(every live month where the layout does not fit), and the wall is the one that binds its step:
capacity (the layout's memory per device), network, bandwidth (HBM) or compute. Against
``H(0) = 2`` with demand doubling yearly (g = 1), ``H(t) = 2/2^(t/12)`` is below 1 first at
t = 13: month 12 is exactly at 1, not past it.

A job whose step is bound by HBM is memory-bound, so its wall month is its starvation month;
network- and compute-bound jobs report theirs as a shortfall (the projection's rule). The band
(:mod:`tasks.analysis.projection.uncertainty`) takes the step's spread, the GEMM efficiency's
(:mod:`tasks.analysis.supply.efficiency`), as a serving workload takes its supply's.

A mitigation with step ``s'`` gives ``H'(t) = H(t)·s/s'`` (0 where it does not fit); the months
it buys are its wall month less the baseline's, a month beyond the horizon counting as the
horizon's end (a lower bound), as for a serving mitigation.

Limits, stated: a job runs on its pool's main model of its first served month for the whole
horizon (a roadmap that later replaces that model does not move it), and jobs sharing a pool
are not checked against each other's devices.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from hardware_profiles.scale_out import read_scale_out
from tasks.analysis.projection.horizon import NEVER, first_month
from tasks.analysis.projection.projector import Outcome, Projection
from tasks.analysis.training.audit import (
    TrainingFindings,
    has_layout,
    main_hardware,
    training_findings,
)
from tasks.analysis.training.backtest import builtin_fit
from tasks.analysis.walls.walls import WALLS, Walls, month_states

MITIGATION_PREFIX = "training:"


@dataclass(frozen=True)
class TrainingJobs:
    """The training workloads laid out as jobs, in ``rows`` order (their positions in the
    projection's workload order). ``findings`` carries the step of each job and of each
    mitigation, with the month columns this module adds: the summary's ``wall_index`` and
    the mitigations' ``wall_index`` and ``months_gained``."""

    rows: np.ndarray  # (jobs,) positions in the projection's workloads
    findings: TrainingFindings
    headroom: np.ndarray  # (jobs, months)
    wall: np.ndarray  # (jobs,) object: the wall that binds each job's step
    bound: np.ndarray  # (jobs,) object: memory, network or compute
    wall_index: np.ndarray  # (jobs,) first month past the wall, NEVER where none
    step_spread: np.ndarray  # (jobs,) log spread of each step
    mfu: np.ndarray  # (jobs,) 0 where the layout does not fit
    best_label: np.ndarray  # (jobs,) object: the mitigation buying most months, None if none
    best_months: np.ndarray  # (jobs,) the months it buys


def job_headroom(supply: np.ndarray, demand: np.ndarray, served: np.ndarray) -> np.ndarray:
    """Supply (jobs,) over demand (jobs, months), steps per second; NaN where ``served`` is
    false, +inf where there is no demand yet."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.asarray(np.where(served, supply[:, None] / demand, np.nan))


def wall_month(headroom: np.ndarray) -> np.ndarray:
    """Per job, the first month its headroom is below 1 (NaN months are not), NEVER if none."""
    with np.errstate(invalid="ignore"):
        return first_month(headroom < 1)


def months_gained(baseline: np.ndarray, mitigated: np.ndarray, months: int) -> np.ndarray:
    """Months a mitigation moves the wall later, NEVER counting as the horizon's end."""
    base = np.where(baseline == NEVER, months, baseline)
    return np.asarray(np.where(mitigated == NEVER, months, mitigated) - base)


def training_jobs(projection: Projection, catalog: pd.DataFrame) -> TrainingJobs | None:
    """The jobs of the projection's training workloads with a layout (None: there are none)."""
    workloads = projection.workloads
    if not has_layout(workloads).any():
        return None
    fleet = projection.fleet
    scale_out = read_scale_out()
    found = training_findings(
        workloads, catalog, main_hardware(fleet.pools, fleet.models, fleet.counts), scale_out,
        builtin_fit(catalog, scale_out),
    )  # fmt: skip
    summary = found.summary
    position = {w: i for i, w in enumerate(workloads["workload_id"].astype(str))}
    if summary.empty:
        return _no_jobs(found, len(fleet.months))
    rows = summary["workload_id"].map(position).to_numpy(dtype=int)
    placement = projection.placement
    demand = placement.demand[rows]
    served = (fleet.pool_total()[placement.pool_index] > 0)[rows]
    fits = summary["fits"].to_numpy(dtype=bool)
    step = summary["step_time_s"].to_numpy(dtype=float)
    headroom = job_headroom(np.where(fits, 1.0 / step, 0.0), demand, served)
    wall_index = wall_month(headroom)
    # Every job has mitigations: a faster network always times (the step did).
    mitigations = found.mitigations
    job = pd.Index(summary["workload_id"]).get_indexer(mitigations["workload_id"])
    fitting = mitigations["fits"].to_numpy(dtype=bool)
    mitigated = np.where(fitting, 1.0 / mitigations["step_time_s"].to_numpy(dtype=float), 0.0)
    index = wall_month(job_headroom(mitigated, demand[job], served[job]))
    gained = months_gained(wall_index[job], index, len(fleet.months))
    mitigations = (
        mitigations.assign(wall_index=index, months_gained=gained.astype(float))
        .sort_values(["workload_id", "months_gained"], ascending=[True, False], kind="stable")
        .reset_index(drop=True)
    )
    best = mitigations.drop_duplicates("workload_id").set_index("workload_id")
    best = best[best["months_gained"] > 0].reindex(summary["workload_id"])
    return TrainingJobs(
        rows=rows,
        findings=TrainingFindings(
            summary.assign(wall_index=wall_index), mitigations, found.skipped
        ),
        headroom=headroom,
        wall=summary["wall"].to_numpy(dtype=object),
        bound=summary["bound"].to_numpy(dtype=object),
        wall_index=wall_index,
        step_spread=summary["step_spread"].to_numpy(dtype=float),
        mfu=np.where(fits, summary["mfu"].to_numpy(dtype=float), 0.0),
        best_label=np.asarray(
            best["mitigation"].astype(object).where(best["mitigation"].notna(), None)
        ),
        best_months=best["months_gained"].fillna(0.0).to_numpy(dtype=float),
    )


def _no_jobs(found: TrainingFindings, months: int) -> TrainingJobs:
    """No job laid out (``found.skipped`` says why): empty arrays, the notes kept."""
    none = np.zeros(0, dtype=object)
    return TrainingJobs(
        np.zeros(0, dtype=int), found, np.zeros((0, months)), none, none,
        np.zeros(0, dtype=int), np.zeros(0), np.zeros(0), none, np.zeros(0),
    )  # fmt: skip


def ranked_outcome(outcome: Outcome, jobs: TrainingJobs) -> Outcome:
    """The projection's outcome with each job's row from its step: its headroom, memory-bound
    where HBM binds its step, its utilisation the MFU."""
    headroom = outcome.headroom.copy()
    memory_bound = outcome.memory_bound.copy()
    utilization = outcome.utilization.copy()
    headroom[jobs.rows] = jobs.headroom
    memory_bound[jobs.rows] = (jobs.bound == "memory")[:, None]
    utilization[jobs.rows] = jobs.mfu[:, None]
    return replace(outcome, headroom=headroom, memory_bound=memory_bound, utilization=utilization)


def job_walls(walls: Walls, jobs: TrainingJobs, projection: Projection) -> Walls:
    """``walls`` with each job's wall, month states and "replica" (the whole job) from its
    step; a capacity wall is lifted by the mitigations whose layout fits."""
    rows = jobs.rows
    summary = jobs.findings.summary
    with np.errstate(invalid="ignore"):
        past = jobs.headroom < 1
    code = np.array([WALLS.index(w) for w in jobs.wall], dtype=int)
    state = walls.state.copy()
    state[rows] = month_states(projection, rows, jobs.headroom, past)
    wall = walls.wall.copy()
    wall[rows] = [
        None if i == NEVER else w for w, i in zip(jobs.wall, jobs.wall_index, strict=True)
    ]
    wall_index = walls.wall_index.copy()
    wall_index[rows] = jobs.wall_index
    month_wall = walls.month_wall.copy()
    month_wall[rows] = np.where(past, code[:, None], -1)
    devices = walls.devices_per_replica.astype(float, copy=True)
    devices[rows] = summary["devices"].to_numpy(dtype=float)
    max_batch = walls.max_batch.astype(float, copy=True)
    max_batch[rows] = np.nan
    accelerator = walls.replica_accelerator_id.copy()
    accelerator[rows] = summary["accelerator_id"].to_numpy(dtype=object)
    remedy = walls.remedy.copy()
    fitting = jobs.findings.mitigations
    fitting = fitting[fitting["fits"].astype(bool)] if not fitting.empty else fitting
    lifts = fitting.groupby("workload_id", sort=False)["mitigation"].agg(", ".join)
    remedy[rows] = [
        lifts.get(w) if name == "capacity" else None
        for w, name in zip(summary["workload_id"], wall[rows], strict=True)
    ]
    return Walls(wall, wall_index, month_wall, state, devices, max_batch, accelerator, remedy)


def job_mitigations(mitigations: pd.DataFrame, jobs: TrainingJobs) -> pd.DataFrame:
    """The ranking's mitigations table with each job's serving mitigations (a precision of
    weights or KV, a decode batch, another pool) replaced by its training ones, in the
    table's columns (``starve_index`` being the month the job's wall moves to)."""
    ids = set(jobs.findings.summary["workload_id"])
    mine = jobs.findings.mitigations
    rows = pd.DataFrame(
        {
            "workload_id": mine["workload_id"].to_numpy(dtype=object),
            "mitigation": [MITIGATION_PREFIX + str(m) for m in mine["mitigation"]],
            "label": mine["mitigation"].to_numpy(dtype=object),
            "applicable": np.ones(len(mine), dtype=bool),
            "reason": np.full(len(mine), "", dtype=object),
            "starve_index": mine["wall_index"].to_numpy(dtype=np.int64),
            "months_gained": mine["months_gained"].to_numpy(dtype=float),
        }
    )
    kept = mitigations[~mitigations["workload_id"].isin(ids)]
    for column in ("mitigation", "label"):
        kept = kept.assign(**{column: kept[column].astype(object)})
    return pd.concat([kept, rows], ignore_index=True)

"""Month by month over the roadmap: each workload's headroom, bound and starvation month.

Everything is a numpy array of shape (workloads, months): 100,000 workloads over 18 months is
1.8 million cells, a few dense operations, no Python loop per workload. A pool's fleet is a
(pools, models, months) array of counts, so a pool's rate for every workload in it is one
matrix product of the per-device rates (workloads x models) with its counts (models x months).

Month t is the start month plus t; a roadmap change counts from the month containing its
effective date (changes before the start are part of the fleet at t = 0); demand at t is
D0·(1+g)^(t/12). A workload starves in the first month its headroom drops below 1 while it is
memory-bound; a shortfall while compute-bound is reported apart, as more bandwidth would not
fix it.

Pools and workloads that start later: a workload whose pool holds no hardware in a month is not
served then (headroom NaN: no supply figure, so neither starvation nor shortfall); its
``served_from`` is the first month its pool holds any, NEVER when none in the horizon (reported
as unserved). A workload with a ``start_month`` has no demand before it (headroom +inf) and its
``demand_units_per_s`` is the demand at that month: D(t) = D0·(1+g)^((t-s)/12) for t >= s, where
s = max(0, start month index); a start after the horizon is an error.

The batch a workload is served at: with the catalog (memory sizes), a decode or prefill
workload whose latency target (``tpot_slo_s`` / ``ttft_slo_s``) caps its largest batch on its
replica (``max_batch``, 1 <= max_batch < batch) has its supply evaluated at max_batch, not at
its own batch: fewer sequences share each read of the weights, so each unit costs more bytes
(:mod:`tasks.analysis.served_batch` re-derives the figures as the batch mitigation does).
``Projector.served_batch`` holds that batch (NaN: served at its own), ``served_workloads`` the
table at it (what the mitigations re-derive from; the walls read the workload's own batch).
Where batch 1 already
misses the target (max_batch 0, a latency wall) the figures are kept and the wall reports it.
"""

from __future__ import annotations

import copy
import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd

from hardware_profiles.errors import MemwallError, ProfileError
from hardware_profiles.months import add_months, month_index, month_indexes
from tasks.analysis.ceilings import PEAK_INDEX, PHASE_ORDER, Ceilings, Figures, lookup
from tasks.analysis.roofline import COMPUTE, MEMORY, pool_shares
from tasks.profiles import Profiles

DEFAULT_HORIZON_MONTHS = 18
MAX_HORIZON_MONTHS = 120
NEVER = -1


class HorizonError(MemwallError):
    """A projection horizon outside what memwall projects."""


def horizon_months(start: dt.date, months: int) -> list[dt.date]:
    """The first day of each month of the horizon, the start month first."""
    if not 1 <= months <= MAX_HORIZON_MONTHS:
        raise HorizonError(
            f"a horizon of {months} months is out of range; valid: 1 to {MAX_HORIZON_MONTHS}"
        )
    return [add_months(start, t) for t in range(months)]


@dataclass(frozen=True)
class FleetArray:
    """Accelerators per pool, model and month: counts[pool, model, month]."""

    pools: list[str]
    models: list[str]
    counts: np.ndarray

    def pool_total(self) -> np.ndarray:
        """Devices per pool and month, (pools, months)."""
        return np.asarray(self.counts.sum(axis=1))


def fleet_by_month(roadmap: pd.DataFrame, months: list[dt.date]) -> FleetArray:
    """The running sum of the roadmap's count deltas at every month of the horizon."""
    pools = sorted(set(roadmap["pool"].astype(str)))
    models = sorted(set(roadmap["accelerator_id"].astype(str)))
    pool_of = {p: i for i, p in enumerate(pools)}
    model_of = {m: i for i, m in enumerate(models)}
    start = months[0]
    when = np.array([month_index(start, d) for d in roadmap["effective_date"]], dtype=np.int64)
    keep = when < len(months)
    deltas = np.zeros((len(pools), len(models), len(months)))
    np.add.at(
        deltas,
        (
            np.array([pool_of[p] for p in roadmap["pool"].astype(str)], dtype=np.int64)[keep],
            np.array([model_of[m] for m in roadmap["accelerator_id"].astype(str)], dtype=np.int64)[
                keep
            ],
            np.clip(when, 0, None)[keep],
        ),
        roadmap["count_delta"].to_numpy(dtype=float)[keep],
    )
    return FleetArray(pools, models, np.cumsum(deltas, axis=2))


@dataclass(frozen=True)
class Outcome:
    """One evaluation of (workloads x months): the arrays the ranking and report read."""

    headroom: np.ndarray
    memory_bound: np.ndarray
    utilization: np.ndarray
    attainable_flops_per_s: np.ndarray
    peak_flops_per_s: np.ndarray
    supported: np.ndarray

    @property
    def starve_index(self) -> np.ndarray:
        """First month with headroom < 1 while memory-bound, NEVER (-1) where none."""
        return _first(self.supported[:, None] & (self.headroom < 1) & self.memory_bound)

    @property
    def shortfall_index(self) -> np.ndarray:
        """First month with headroom < 1 while compute-bound: reported, not starvation."""
        return _first(self.supported[:, None] & (self.headroom < 1) & ~self.memory_bound)


def _first(mask: np.ndarray) -> np.ndarray:
    hit = mask.any(axis=1)
    return np.where(hit, mask.argmax(axis=1), NEVER)


class Projector:
    """The fleet, ceilings, shares and demand of one roadmap, ready to evaluate variants of
    the workloads (the baseline, then each mitigation) without redoing the joins."""

    def __init__(
        self,
        workloads: pd.DataFrame,
        roadmap: pd.DataFrame,
        calibrated: pd.DataFrame,
        start: dt.date,
        months: int = DEFAULT_HORIZON_MONTHS,
        *,
        workloads_source: str = "workloads",
        roadmap_source: str = "roadmap",
        catalog: pd.DataFrame | None = None,
    ) -> None:
        self.months = horizon_months(start, months)
        self.workloads = workloads
        self.workloads_source = workloads_source
        self.calibrated = calibrated
        self.fleet = fleet_by_month(roadmap, self.months)
        self.ceilings = Ceilings.of(calibrated, self.fleet.models)
        pool_of = {p: i for i, p in enumerate(self.fleet.pools)}
        pool_names = workloads["pool"].astype(str)
        unknown = ~pool_names.isin(list(pool_of))
        if unknown.any():
            row = int(unknown.to_numpy().argmax())
            raise ProfileError(
                workloads_source,
                f"pool {pool_names.iloc[row]!r} has no hardware in the roadmap "
                f"({roadmap_source}); its pools are {', '.join(self.fleet.pools)}",
                row=row + 1,
                column="pool",
            )
        self.pool_index = pool_names.map(pool_of).to_numpy(dtype=np.int64)
        self.phase_index = lookup(
            workloads["phase"].to_numpy(dtype=object), {p: i for i, p in enumerate(PHASE_ORDER)}
        ).astype(np.int64)
        self.served_from = _first(self.fleet.pool_total()[self.pool_index] > 0)
        self.start_index = self._start_index()
        t = np.arange(len(self.months))[None, :] - np.clip(self.start_index, 0, None)[:, None]
        growth = 1.0 + workloads["demand_growth_per_year"].to_numpy(dtype=float)
        self.demand = np.where(
            t >= 0,
            workloads["demand_units_per_s"].to_numpy(dtype=float)[:, None]
            * (growth[:, None] ** (t / 12.0)),
            0.0,
        )
        self.served_batch = np.full(len(workloads), np.nan)
        self.served_workloads = workloads
        self.replica_devices = np.ones(len(workloads))
        if catalog is not None:
            # Imported here: sizing replicas reads this projector's fleet and ceilings.
            from tasks.analysis.served_batch import at_batch, slo_batch

            self.served_batch, devices = slo_batch(self, catalog)
            self.replica_devices = np.where(np.isfinite(devices), devices, 1.0)
            self.served_workloads = at_batch(workloads, self.served_batch)
        self.baseline_figures = Figures.of(self.served_workloads)
        self._baseline_terms = self._terms(self.baseline_figures, self.fleet.counts)
        self._raise_unsupported(self._baseline_terms[3])
        full_supply_served = np.where(
            self.served_from == NEVER,
            np.nan,
            self.at_first_served(self._baseline_terms[0]) / self.baseline_figures.flops_per_unit,
        )
        self.share = pool_shares(workloads, full_supply_served)

    # Every attribute holding one entry per workload: ``restricted`` slices exactly these, so a
    # new per-workload attribute belongs here too.
    _PER_WORKLOAD = (
        "pool_index",
        "phase_index",
        "served_from",
        "start_index",
        "demand",
        "served_batch",
        "replica_devices",
        "share",
    )

    def restricted(self, rows: np.ndarray) -> Projector:
        """This projector over ``rows`` only: per-workload arrays sliced, fleet and ceilings
        shared. Headroom is per workload (share x supply / demand), so it is unchanged."""
        view = copy.copy(self)
        view.workloads = self.workloads.iloc[rows]
        view.served_workloads = self.served_workloads.iloc[rows]
        for name in self._PER_WORKLOAD:
            setattr(view, name, getattr(self, name)[rows])
        view.baseline_figures = self.baseline_figures.take(rows)
        view._baseline_terms = view._terms(view.baseline_figures, self.fleet.counts)
        return view

    def _start_index(self) -> np.ndarray:
        """Month index of each workload's start_month (0 where none); a start after the
        horizon is an error naming the row."""
        starts = self.workloads.get("start_month")
        if starts is None or starts.isna().all():
            return np.zeros(len(self.workloads), dtype=np.int64)
        when = pd.to_datetime(starts.astype(object))
        first = self.months[0]
        index = month_indexes(first, when).fillna(0).to_numpy(dtype=np.int64)
        late = index >= len(self.months)
        if late.any():
            row = int(late.argmax())
            raise ProfileError(
                self.workloads_source,
                f"start_month {starts.iloc[row]:%Y-%m} is after the horizon "
                f"{self.months[0]:%Y-%m} to {self.months[-1]:%Y-%m}; give a month within it "
                "or a longer horizon",
                row=row + 1,
                column="start_month",
            )
        return index

    def at_first_served(self, values: np.ndarray) -> np.ndarray:
        """(workloads, months) values at each workload's first served month (month 0 for a
        workload never served): what the ranking calls "now"."""
        first = np.where(self.served_from == NEVER, 0, self.served_from)
        return np.asarray(values[np.arange(len(first)), first])

    def _raise_unsupported(self, supported: np.ndarray) -> None:
        if supported.all():
            return
        row = int((~supported).argmax())
        pool = self.pool_index[row]
        held = self.fleet.counts[pool].max(axis=1) > 0
        precision = str(self.baseline_figures.precision[row])
        lacking = [
            m
            for m, h, f in zip(
                self.fleet.models,
                held,
                self.ceilings.flops[self.phase_index[row], :, PEAK_INDEX[precision]],
                strict=True,
            )
            if h and np.isnan(f)
        ]
        workload = self.workloads["workload_id"].iloc[row]
        raise ProfileError(
            self.workloads_source,
            f"precision {precision!r} has no peak on {', '.join(lacking)} in pool "
            f"{self.fleet.pools[pool]!r} for workload {workload!r} (no {precision} units); "
            f"compute at a precision that hardware has (weights may still be stored at "
            f"{precision}: weight-only)",
            row=row + 1,
            column="precision",
        )

    def _terms(
        self, figures: Figures, counts: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Per workload and month: Σ n·min(F, AI·BW), Σ n·AI·BW, Σ n·F, and whether every
        model the workload's pool holds has a peak at its precision.

        ``counts`` is (pools, models, months): what the workloads of each pool run on.
        """
        bandwidth_term, peak = self.per_device_terms(figures)
        held = counts.max(axis=2) > 0  # (pools, models)
        supported = ~(np.isnan(peak) & held[self.pool_index]).any(axis=1)
        peak = np.nan_to_num(peak)
        attainable = self._less_overhead(figures, np.minimum(peak, bandwidth_term))
        n_months = counts.shape[2]
        out = [np.zeros((len(peak), n_months)) for _ in range(3)]
        for pool in np.unique(self.pool_index):
            rows = self.pool_index == pool
            c = counts[pool]
            for target, per_device in zip(out, (attainable, bandwidth_term, peak), strict=True):
                # einsum, not @: BLAS threads cost more than they save on (n x 5) @ (5 x 18).
                target[rows] = np.einsum("nh,ht->nt", per_device[rows], c)
        return out[0], out[1], out[2], supported

    def _less_overhead(self, figures: Figures, attainable: np.ndarray) -> np.ndarray:
        """FLOP/s a device delivers once each unit also pays n·o of step overhead
        (:mod:`tasks.analysis.step_overhead`), (workloads, models)."""
        per_unit = (
            figures.overheads_per_unit[:, None]
            * self.ceilings.overhead_s[self.phase_index]
            * self.replica_devices[:, None]
        )
        if not per_unit.any():
            return attainable
        flops = figures.flops_per_unit[:, None]
        with np.errstate(divide="ignore", invalid="ignore"):
            slower = flops / (flops / attainable + per_unit)
        return np.asarray(np.where(attainable > 0, slower, attainable))

    def per_device_terms(self, figures: Figures) -> tuple[np.ndarray, np.ndarray]:
        """AI·BW and F of one device of each model for each workload, (workloads, models);
        F is NaN where the model has no peak at the workload's precision."""
        peak_index = lookup(figures.precision, PEAK_INDEX)
        peak = self.ceilings.flops[self.phase_index, :, peak_index]
        return figures.intensity[:, None] * self.workload_bandwidth(), np.asarray(peak)

    def workload_bandwidth(self) -> np.ndarray:
        """Usable bandwidth of each model for each workload's phase, (workloads, models)."""
        return np.asarray(self.ceilings.bandwidth[self.phase_index])

    def evaluate(self, figures: Figures, counts: np.ndarray | None = None) -> Outcome:
        """Headroom, bound and utilisation of every workload in every month."""
        if figures is self.baseline_figures and counts is None:
            attainable, bandwidth_term, peak, supported = self._baseline_terms
        else:
            attainable, bandwidth_term, peak, supported = self._terms(
                figures, self.fleet.counts if counts is None else counts
            )
        supply = self.share[:, None] * attainable / figures.flops_per_unit[:, None]
        counts = self.fleet.counts if counts is None else counts
        served = counts.sum(axis=1)[self.pool_index] > 0
        with np.errstate(divide="ignore", invalid="ignore"):
            utilization = np.where(peak > 0, attainable / peak, 0.0)
            headroom = np.where(served, supply / self.demand, np.nan)
        return Outcome(
            headroom=headroom,
            memory_bound=bandwidth_term < peak,
            utilization=utilization,
            attainable_flops_per_s=attainable,
            peak_flops_per_s=peak,
            supported=supported,
        )

    def counts_on_pool_hardware(self, target: int) -> np.ndarray | None:
        """Counts as if every pool held as many devices as it does, each month, but of the
        mix of models pool ``target`` holds that month; None where ``target`` is ever empty."""
        total = self.fleet.pool_total()
        if (total[target] <= 0).any():
            return None
        mix = self.fleet.counts[target] / total[target][None, :]  # (models, months)
        return np.asarray(total[:, None, :] * mix[None, :, :])


@dataclass(frozen=True)
class Projection:
    """The baseline projection of one roadmap: what the ranking and the report read."""

    projector: Projector
    outcome: Outcome

    @property
    def months(self) -> list[dt.date]:
        return self.projector.months

    def bound_now(self) -> np.ndarray:
        memory_bound = self.projector.at_first_served(self.outcome.memory_bound)
        return np.where(memory_bound, MEMORY, COMPUTE)


def project(
    workloads: pd.DataFrame,
    roadmap: pd.DataFrame,
    calibrated: pd.DataFrame,
    start: dt.date,
    months: int = DEFAULT_HORIZON_MONTHS,
    *,
    workloads_source: str = "workloads",
    roadmap_source: str = "roadmap",
    catalog: pd.DataFrame | None = None,
) -> Projection:
    projector = Projector(
        workloads,
        roadmap,
        calibrated,
        start,
        months,
        workloads_source=workloads_source,
        roadmap_source=roadmap_source,
        catalog=catalog,
    )
    return Projection(projector, projector.evaluate(projector.baseline_figures))


def project_profiles(
    profiles: Profiles, calibrated: pd.DataFrame, start: dt.date, months: int
) -> Projection:
    """:func:`project` on loaded profiles, errors naming the files they came from."""
    return project(
        profiles.workloads,
        profiles.roadmap,
        calibrated,
        start,
        months,
        workloads_source=profiles.workloads_source,
        roadmap_source=profiles.roadmap_source,
        catalog=profiles.catalog,
    )

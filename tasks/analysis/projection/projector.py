"""Month by month over the roadmap: each workload's headroom, bound and starvation month.

Everything is a numpy array of shape (workloads, months): 100,000 workloads over 18 months is 1.8
million cells, a few dense operations, no Python loop per workload. A pool's fleet is a (pools,
models, months) array of counts (:mod:`tasks.analysis.projection.horizon`), so a pool's rate for
every workload in it is one matrix product of the per-device rates (workloads x models) with its
counts (models x months).

Demand at t is D0·(1+g)^(t/12) from the workload's start
(:mod:`tasks.analysis.projection.placement`). A workload starves in the first month its headroom
drops below 1 while it is memory-bound; a shortfall while compute-bound is reported apart, as more
bandwidth would not fix it. A workload whose pool holds no hardware in a month is not served then
(headroom NaN: no supply figure, so neither starvation nor shortfall).

:func:`project` is the recipe: the fleet month by month, its ceilings, each workload's
placement, how it is served (:mod:`tasks.analysis.projection.serving`: its replica and the batch its
latency target allows, sized once, with the catalog's memory sizes), then the
:class:`Projector`, which only evaluates figures over that setting: the baseline, then each
mitigation's variant. A workload whose target caps its batch on its replica has its supply
evaluated at that batch, not at its own: fewer sequences share each read of the weights, so
each unit costs more bytes. Where batch 1 already misses the target (a latency wall) the
figures are kept and the wall reports it.
"""

from __future__ import annotations

import copy
import datetime as dt
import functools
from dataclasses import dataclass

import numpy as np
import pandas as pd

from hardware_profiles.schema import Profiles
from tasks.analysis.projection.horizon import (
    DEFAULT_HORIZON_MONTHS,
    NEVER,
    Fleet,
    first_month,
    fleet_by_month,
    horizon_months,
)
from tasks.analysis.projection.placement import Placement, place, pool_shares
from tasks.analysis.projection.serving import Serving, serve
from tasks.analysis.supply.ceilings import COMPUTE, MEMORY, PEAK_INDEX, Ceilings, lookup
from tasks.analysis.workload.figures import Figures


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
        return starving(self.supported, self.headroom, self.memory_bound)

    @property
    def shortfall_index(self) -> np.ndarray:
        """First month with headroom < 1 while compute-bound: reported, not starvation."""
        return first_month(self.supported[:, None] & (self.headroom < 1) & ~self.memory_bound)


def starving(supported: np.ndarray, headroom: np.ndarray, memory_bound: np.ndarray) -> np.ndarray:
    """First month with headroom < 1 while memory-bound, NEVER (-1) where none."""
    return first_month(supported[:, None] & (headroom < 1) & memory_bound)


class Projector:
    """Evaluates variants of the workloads' figures (the baseline, then each mitigation) over
    one setting: the fleet, its ceilings, each workload's placement and the devices of its
    replica (which pay each step's overhead). A workload's ``share`` of its pool is fixed by
    the baseline (:func:`share_of_pools`); until then it is 1."""

    def __init__(
        self,
        fleet: Fleet,
        ceilings: Ceilings,
        placement: Placement,
        baseline_figures: Figures,
        replica_devices: np.ndarray,
        share: np.ndarray | None = None,
    ) -> None:
        self.fleet = fleet
        self.ceilings = ceilings
        self.placement = placement
        self.baseline_figures = baseline_figures
        self.replica_devices = replica_devices
        self.share = np.ones(len(replica_devices)) if share is None else share
        self._baseline_terms = self._terms(baseline_figures, fleet.counts)

    def sharing(self, share: np.ndarray) -> Projector:
        """This evaluator with each workload's ``share`` of its pool (the cached baseline
        terms do not depend on it)."""
        view = copy.copy(self)
        view.share = share
        return view

    def restricted(self, rows: np.ndarray) -> Projector:
        """This evaluator over ``rows`` only, fleet and ceilings shared. Headroom is per
        workload (share x supply / demand), so it is unchanged."""
        return Projector(
            self.fleet,
            self.ceilings,
            self.placement.take(rows),
            self.baseline_figures.take(rows),
            self.replica_devices[rows],
            self.share[rows],
        )

    def full_pool_supply(self) -> np.ndarray:
        """Units/s the whole of each workload's pool would supply it in its first served
        month at the baseline figures; NaN where never served."""
        attainable = self.placement.at_first_served(self._baseline_terms[0])
        return np.where(
            self.placement.served_from == NEVER,
            np.nan,
            attainable / self.baseline_figures.flops_per_unit,
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
        supported = ~(np.isnan(peak) & held[self.placement.pool_index]).any(axis=1)
        peak = np.nan_to_num(peak)
        attainable = self._less_overhead(figures, np.minimum(peak, bandwidth_term))
        # The three terms side by side, so each pool's rows are gathered and written once.
        per_device = np.stack([attainable, bandwidth_term, peak], axis=1)
        out = np.empty((len(peak), 3, counts.shape[2]))
        for pool in np.unique(self.placement.pool_index):
            rows = self.placement.pool_index == pool
            # einsum, not @: BLAS threads cost more than they save on (n x 5) @ (5 x 18).
            out[rows] = np.einsum("nkh,ht->nkt", per_device[rows], counts[pool])
        return out[:, 0], out[:, 1], out[:, 2], supported

    def _less_overhead(self, figures: Figures, attainable: np.ndarray) -> np.ndarray:
        """FLOP/s a device delivers once each unit also pays n·o of step overhead
        (:mod:`tasks.analysis.workload.step_overhead`), (workloads, models)."""
        per_unit = (
            figures.overheads_per_unit[:, None]
            * self.ceilings.overhead_s[self.placement.phase_index]
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
        F is NaN where the model has no peak at the workload's precision. A MoE decode
        workload's routed-expert share of its bytes and FLOPs runs at its class's share r of
        the dense efficiencies on its engine's generation (:meth:`Ceilings.expert_slowdown`):
        both terms are divided by how much longer that makes them."""
        phase = self.placement.phase_index
        peak_index = lookup(figures.precision, PEAK_INDEX)
        peak = self.ceilings.flops[phase, :, peak_index]
        slowdown = functools.partial(
            self.ceilings.expert_slowdown,
            phase,
            self.placement.generation_index,
            figures.architecture_class,
        )
        bandwidth_term = figures.intensity[:, None] * self.workload_bandwidth()
        return (
            bandwidth_term / slowdown(figures.expert_bytes_share),
            np.asarray(peak) / slowdown(figures.expert_flops_share),
        )

    def workload_bandwidth(self) -> np.ndarray:
        """Usable bandwidth of each model for each workload's phase, (workloads, models)."""
        return np.asarray(self.ceilings.bandwidth[self.placement.phase_index])

    def evaluate(self, figures: Figures, counts: np.ndarray | None = None) -> Outcome:
        """Headroom, bound and utilisation of every workload in every month."""
        if figures is self.baseline_figures and counts is None:
            attainable, bandwidth_term, peak, supported = self._baseline_terms
        else:
            attainable, bandwidth_term, peak, supported = self._terms(
                figures, self.fleet.counts if counts is None else counts
            )
        headroom = self._headroom(figures, attainable, counts)
        with np.errstate(divide="ignore", invalid="ignore"):
            utilization = np.where(peak > 0, attainable / peak, 0.0)
        return Outcome(
            headroom=headroom,
            memory_bound=bandwidth_term < peak,
            utilization=utilization,
            attainable_flops_per_s=attainable,
            peak_flops_per_s=peak,
            supported=supported,
        )

    def starve_index(
        self, figures: Figures, counts: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(starvation month index, supported) of every workload: what a mitigation's try
        reads of :meth:`evaluate`, without the utilisation and bound arrays it would keep."""
        attainable, bandwidth_term, peak, supported = self._terms(
            figures, self.fleet.counts if counts is None else counts
        )
        headroom = self._headroom(figures, attainable, counts)
        return starving(supported, headroom, bandwidth_term < peak), supported

    def _headroom(
        self, figures: Figures, attainable: np.ndarray, counts: np.ndarray | None
    ) -> np.ndarray:
        """Supply over demand per workload and month; NaN in a month its pool holds nothing."""
        supply = self.share[:, None] * attainable / figures.flops_per_unit[:, None]
        counts = self.fleet.counts if counts is None else counts
        served = counts.sum(axis=1)[self.placement.pool_index] > 0
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.asarray(np.where(served, supply / self.placement.demand, np.nan))


def share_of_pools(workloads: pd.DataFrame, projector: Projector) -> Projector:
    """``projector`` with each workload's share of its pool (:func:`pool_shares`), split by
    what the whole pool would supply it at the baseline."""
    return projector.sharing(pool_shares(workloads, projector.full_pool_supply()))


@dataclass(frozen=True)
class Projection:
    """The baseline projection of one roadmap: the workloads and calibrated ceilings it was
    made from, the fleet, each workload's placement, how it is served (None without a
    catalog), the evaluator and its baseline outcome. What the walls, the ranking and the
    findings read."""

    workloads: pd.DataFrame
    calibrated: pd.DataFrame
    fleet: Fleet
    placement: Placement
    serving: Serving | None
    projector: Projector
    outcome: Outcome

    @property
    def months(self) -> list[dt.date]:
        return self.fleet.months

    @property
    def served_workloads(self) -> pd.DataFrame:
        """The workload table at the batch each is served at (its own without a catalog)."""
        return self.workloads if self.serving is None else self.serving.workloads

    @property
    def served_batch(self) -> np.ndarray:
        """The batch a latency target caps each workload to, NaN where it is its own."""
        if self.serving is None:
            return np.full(len(self.workloads), np.nan)
        return self.serving.served_batch

    def bound_now(self) -> np.ndarray:
        memory_bound = self.placement.at_first_served(self.outcome.memory_bound)
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
    """The recipe: fleet, ceilings, placement, serving (with a catalog), then evaluation."""
    fleet = fleet_by_month(roadmap, horizon_months(start, months))
    ceilings = Ceilings.of(calibrated, fleet.models)
    placement = place(workloads, fleet, ceilings, workloads_source, roadmap_source)
    serving = None if catalog is None else serve(workloads, fleet, placement, ceilings, catalog)
    figures = Figures.of(workloads if serving is None else serving.workloads)
    devices = np.ones(len(workloads)) if serving is None else serving.replica_devices
    projector = share_of_pools(workloads, Projector(fleet, ceilings, placement, figures, devices))
    outcome = projector.evaluate(figures)
    return Projection(workloads, calibrated, fleet, placement, serving, projector, outcome)


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

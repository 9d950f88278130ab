"""What the projection reads: the fleet's calibrated ceilings per phase and the workloads'
figures, as arrays; mitigations are variants of the figures over the same ceilings.

For one accelerator model h at precision p with calibrated bandwidth BW_h and FLOP/s F_h,p, a
workload of arithmetic intensity AI attains min(F, AI·BW): bound by :data:`MEMORY` where the
bandwidth term is the smaller, by :data:`COMPUTE` otherwise. A pool holds several models, so the
pool's attainable rate is the count-weighted sum of each model's
(:mod:`tasks.analysis.projection.projector`), and its compute utilisation is that sum over its
peak."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TypeVar

import numpy as np
import pandas as pd

from hardware_profiles.schema import PEAK_PRECISIONS
from tasks.analysis.supply.efficiency import PHASE_CEILINGS, SPREAD_CLASSES, generation_key
from tasks.analysis.supply.engine_generation import GENERATIONS
from tasks.analysis.workload.architecture import ARCHITECTURE_CLASSES

T = TypeVar("T")

MEMORY = "memory"
COMPUTE = "compute"
# The phases the ceilings are kept for, in the order of Ceilings' first axis.
PHASE_ORDER = (*PHASE_CEILINGS, "other")
# Where each workload's FLOPs run: the peak of its compute precision, on its own units only.
PEAK_INDEX = {p: i for i, p in enumerate(PEAK_PRECISIONS)}


def lookup(values: np.ndarray, table: dict[str, T]) -> np.ndarray:
    """``table[v]`` for every v, looking up each distinct value once (hashed, not sorted:
    100,000 rows hold a handful of distinct values)."""
    codes, distinct = pd.factorize(np.asarray(values, dtype=object), use_na_sentinel=False)
    return np.asarray(np.array([table[str(v)] for v in distinct])[codes])


@dataclass(frozen=True)
class Ceilings:
    """Calibrated ceilings of the fleet's models per phase (:data:`PHASE_ORDER`): bandwidth
    (phases, models) and FLOP/s (phases, models, peak precisions), NaN where a model has no
    peak at that precision; and the spread (log standard deviation) of the bandwidth and
    compute efficiencies behind them, (phases, models); and the step overhead in seconds
    (per layer in decode and prefill, 0 elsewhere), (phases, models); and the
    leave-one-source-out spread of each architecture class (phases, :data:`SPREAD_CLASSES`,
    models), NaN where the phase's efficiency on that model is not a fitted default; and the
    routed experts' share of the dense efficiencies per engine generation and architecture
    class (:data:`GENERATIONS`, phases, ARCHITECTURE_CLASSES, models), 1 where none was
    fitted (None: 1 everywhere)."""

    bandwidth: np.ndarray
    flops: np.ndarray
    bandwidth_spread: np.ndarray
    flops_spread: np.ndarray
    overhead_s: np.ndarray
    class_spread: np.ndarray
    expert_share: np.ndarray | None = field(default=None)

    def expert_slowdown(
        self,
        phase_index: np.ndarray,
        generation_index: np.ndarray,
        classes: np.ndarray | None,
        share: np.ndarray | None,
    ) -> np.ndarray:
        """1 + (1/r − 1)·share per workload and model: how much longer a workload's bytes (or
        FLOPs), ``share`` of them routed-expert matmuls at r of the dense efficiency (that of
        the workload's engine generation), take than at the dense efficiency alone; 1
        without expert shares or a fitted r."""
        if self.expert_share is None or classes is None or share is None:
            return np.ones((len(phase_index), self.bandwidth.shape[1]))
        r = self.expert_share[generation_index, phase_index, classes]
        return np.asarray(1.0 + (1.0 / r - 1.0) * share[:, None])

    @staticmethod
    def of(calibrated: pd.DataFrame, models: list[str]) -> Ceilings:
        table = calibrated.set_index("accelerator_id").reindex(models)

        def column(name: str) -> np.ndarray:
            return table[name].to_numpy(dtype=float)

        stream_bw = column("bandwidth_bytes_per_s")
        stream_flops = np.stack([column(f"flops_per_s_{p}") for p in PEAK_PRECISIONS], axis=1)
        stream_flops_eff = np.stack(
            [column(f"flops_efficiency_{p}") for p in PEAK_PRECISIONS], axis=1
        )
        spec_bw = stream_bw / column("bandwidth_efficiency")
        spec_flops = stream_flops / stream_flops_eff
        bandwidth, flops, bw_spread, flops_spread, overhead = [], [], [], [], []

        def share(phase: str, name: str, generation: str) -> np.ndarray:
            """Engine ``generation``'s column; 1 where the phase has no expert share."""
            key = f"expert_share_{generation_key(f'{phase}_{name}', generation)}"
            return column(key) if key in table else np.ones(len(models))

        shares = [
            [np.stack([share(phase, c, g) for c in ARCHITECTURE_CLASSES]) for phase in PHASE_ORDER]
            for g in GENERATIONS
        ]
        unknown = np.full((len(SPREAD_CLASSES), len(models)), np.nan)
        by_class = [
            np.stack([column(f"class_spread_{phase}_{c}") for c in SPREAD_CLASSES])
            if f"class_spread_{phase}_{SPREAD_CLASSES[0]}" in table
            else unknown
            for phase in PHASE_ORDER
        ]
        for phase in PHASE_CEILINGS:
            name = f"step_overhead_s_{phase}"
            overhead.append(column(name) if name in table else np.zeros(len(models)))
            bandwidth.append(spec_bw * column(f"bandwidth_efficiency_{phase}"))
            # NaN: no efficiency of the phase's own; the STREAM-based per-precision figures.
            f_eff = column(f"flops_efficiency_{phase}")[:, None]
            flops.append(np.where(np.isnan(f_eff), stream_flops, spec_flops * f_eff))
            bw_spread.append(column(f"bandwidth_spread_{phase}"))
            flops_spread.append(column(f"flops_spread_{phase}"))
        # "other" work has no phase of its own: the STREAM-based figures, training's spread.
        bandwidth.append(stream_bw)
        flops.append(stream_flops)
        bw_spread.append(bw_spread[-1])
        flops_spread.append(flops_spread[-1])
        overhead.append(np.zeros(len(models)))
        return Ceilings(
            np.stack(bandwidth),
            np.stack(flops),
            np.stack(bw_spread),
            np.stack(flops_spread),
            np.nan_to_num(np.stack(overhead)),
            np.stack(by_class),
            np.nan_to_num(np.array(shares, dtype=float), nan=1.0),
        )

"""A workload table as the arrays the projection reads: FLOPs and bytes per unit, the compute
precision, and how often a unit pays its phase's step overhead. The mitigations are variants
of these figures evaluated over the same fleet."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from tasks.analysis.workload.step_overhead import overheads_per_unit


@dataclass(frozen=True)
class Figures:
    """A workload table's figures as the projection reads them; mitigations are variants.
    ``overheads_per_unit``: how many times a unit pays its phase's step overhead
    (:mod:`tasks.analysis.workload.step_overhead`)."""

    flops_per_unit: np.ndarray
    bytes_per_unit: np.ndarray
    precision: np.ndarray
    overheads_per_unit: np.ndarray

    @staticmethod
    def of(workloads: pd.DataFrame) -> Figures:
        return Figures(
            workloads["flops_per_unit"].to_numpy(dtype=float),
            workloads["bytes_per_unit"].to_numpy(dtype=float),
            workloads["precision"].to_numpy(dtype=object),
            overheads_per_unit(workloads),
        )

    def take(self, rows: np.ndarray) -> Figures:
        return Figures(
            self.flops_per_unit[rows],
            self.bytes_per_unit[rows],
            self.precision[rows],
            self.overheads_per_unit[rows],
        )

    @property
    def intensity(self) -> np.ndarray:
        return np.asarray(self.flops_per_unit / self.bytes_per_unit)

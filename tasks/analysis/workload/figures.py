"""A workload table as the arrays the projection reads: FLOPs and bytes per unit, the compute
precision, how often a unit pays its phase's step overhead, and the routed experts' shares of
the bytes and FLOPs with the model's architecture class (a decode step's grouped GEMM runs at
its class's own share of the dense efficiencies: ``tasks.analysis.supply.published_fit``). The
mitigations are variants of these figures evaluated over the same fleet; a batch mitigation
re-derives the expert shares at its batch (a larger batch touches more experts), a precision
mitigation keeps the baseline's."""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from tasks.analysis.workload.architecture import ARCHITECTURE_CLASSES
from tasks.analysis.workload.layout import Layout, stated_layout
from tasks.analysis.workload.layout_figures import layout_figures
from tasks.analysis.workload.presets import PRESETS, estimate_workload
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
    # Decode's routed-expert share of the bytes and of the FLOPs (0 elsewhere), and the index
    # of the model's class in ARCHITECTURE_CLASSES (dense, 0, where no preset says).
    expert_bytes_share: np.ndarray | None = None
    expert_flops_share: np.ndarray | None = None
    architecture_class: np.ndarray | None = None

    @staticmethod
    def of(workloads: pd.DataFrame) -> Figures:
        bytes_share, flops_share, classes = expert_shares(workloads)
        return Figures(
            workloads["flops_per_unit"].to_numpy(dtype=float),
            workloads["bytes_per_unit"].to_numpy(dtype=float),
            workloads["precision"].to_numpy(dtype=object),
            overheads_per_unit(workloads),
            bytes_share,
            flops_share,
            classes,
        )

    def take(self, rows: np.ndarray) -> Figures:
        def part(values: np.ndarray | None) -> np.ndarray | None:
            return None if values is None else values[rows]

        return Figures(
            self.flops_per_unit[rows],
            self.bytes_per_unit[rows],
            self.precision[rows],
            self.overheads_per_unit[rows],
            part(self.expert_bytes_share),
            part(self.expert_flops_share),
            part(self.architecture_class),
        )

    def with_units(
        self, flops: np.ndarray, nbytes: np.ndarray, precision: np.ndarray, overheads: np.ndarray
    ) -> Figures:
        """A variant's figures: other units, the same expert shares and classes."""
        return Figures(
            flops, nbytes, precision, overheads,
            self.expert_bytes_share, self.expert_flops_share, self.architecture_class,
        )  # fmt: skip

    @property
    def intensity(self) -> np.ndarray:
        return np.asarray(self.flops_per_unit / self.bytes_per_unit)


def expert_shares(workloads: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per row: the routed experts' share of a decode step's bytes and of its FLOPs (from its
    preset at its batch and context, on the busiest device of its stated serving layout, else
    on one device: the experts split as the rest of the weights do), and its class's index in
    ARCHITECTURE_CLASSES; 0 and dense where the row names no preset, is no MoE decode, or
    states no batch and context. A fleet's table repeats a handful of shapes over many rows:
    each shape is worked out once."""
    n = len(workloads)
    bytes_share, flops_share = np.zeros(n), np.zeros(n)
    if "model_preset" not in workloads:
        return bytes_share, flops_share, np.zeros(n, dtype=int)
    names = workloads["model_preset"].astype(str)
    position = {c: i for i, c in enumerate(ARCHITECTURE_CLASSES)}
    index = {name: position[a.architecture_class] for name, a in PRESETS.items()}
    classes = names.map(index).fillna(0).to_numpy(dtype=int)
    moe = {name for name, a in PRESETS.items() if a.is_moe}
    chosen = (names.isin(moe) & (workloads["phase"] == "decode")).to_numpy()
    if not chosen.any():
        return bytes_share, flops_share, classes
    keys = [k for k in _SHAPE_KEYS if k in workloads]
    shapes = workloads.loc[chosen, keys]
    codes, _ = pd.factorize(pd.MultiIndex.from_frame(shapes.astype(str)))
    first = np.unique(codes, return_index=True)[1]  # a row of each shape, in code order
    pairs = np.array([_shares(row) for row in shapes.iloc[first].to_dict("records")])[codes]
    bytes_share[chosen], flops_share[chosen] = pairs[:, 0], pairs[:, 1]
    return bytes_share, flops_share, classes


# What a row's step depends on (presets.estimate_workload's inputs).
_SHAPE_KEYS = (
    "model_preset", "phase", "batch", "context_tokens", "precision", "weight_precision",
    "kv_precision", "layout",
)  # fmt: skip


def _shares(cells: dict[Hashable, object]) -> tuple[float, float]:
    row = {str(k): v for k, v in cells.items()}
    est = estimate_workload(row)
    if est is None:
        return 0.0, 0.0
    step = layout_figures(PRESETS[str(row["model_preset"])], est, stated_layout(row) or Layout())
    return (
        step.expert_read_bytes_per_device / step.step_bytes_per_device,
        step.expert_flops_per_device / step.step_flops_per_device,
    )

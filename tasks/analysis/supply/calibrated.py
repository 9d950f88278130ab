"""What a workload gets from a calibrated catalog (the table
:func:`tasks.analysis.supply.efficiency.phase_columns` builds): the efficiencies, the routed
experts' share and the step overhead on one accelerator model, each with its source and
spread, and the table of them the report's method page lists."""

from __future__ import annotations

import numpy as np
import pandas as pd

from tasks.analysis.supply.efficiency import (
    EXPERTS_AS_DENSE,
    FITTED_CEILING,
    NO_OVERHEAD,
    PER_PRECISION,
    PHASE_CEILINGS,
    Efficiency,
    Overhead,
    generation_key,
)
from tasks.analysis.workload.architecture import ARCHITECTURE_CLASSES
from tasks.analysis.workload.step_overhead import OVERHEAD_PER


def efficiencies_for(
    calibrated: pd.DataFrame, accelerator_id: str, phase: str, precision: str
) -> tuple[Efficiency, Efficiency]:
    """The (bandwidth, compute) efficiencies a ``phase`` workload at ``precision`` gets on
    ``accelerator_id``: the phase's own where it has one, else the STREAM-based figure at
    that precision."""
    row = calibrated.set_index("accelerator_id").loc[accelerator_id].to_dict()
    bandwidth = Efficiency(
        float(row[f"bandwidth_efficiency_{phase}"]),
        str(row[f"bandwidth_from_{phase}"]),
        float(row[f"bandwidth_spread_{phase}"]),
    )
    value = float(row[f"flops_efficiency_{phase}"])
    source = str(row[f"flops_from_{phase}"])
    if np.isnan(value):
        # int4 work runs on the int8 units where the catalog has no int4 peak of its own.
        peak = precision if f"flops_efficiency_{precision}" in row else "int8"
        value = float(row[f"flops_efficiency_{peak}"])
        origin = str(row[f"flops_from_{peak}"])
        stream = f"STREAM matmul {peak} measured" if origin == "measured" else "default"
        source = source.replace(PER_PRECISION, stream)
    return bandwidth, Efficiency(value, source, float(row[f"flops_spread_{phase}"]))


def experts_for(
    calibrated: pd.DataFrame,
    accelerator_id: str,
    phase: str,
    architecture_class: str,
    generation: str | None = None,
) -> Efficiency:
    """The routed experts' share of the dense efficiencies a ``phase`` workload of
    ``architecture_class`` gets on ``accelerator_id`` (the module docstring's table): engine
    ``generation``'s own (None: that of the engine the catalog was calibrated for)."""
    if phase not in FITTED_CEILING or architecture_class not in ARCHITECTURE_CLASSES:
        return EXPERTS_AS_DENSE
    row = calibrated.set_index("accelerator_id").loc[accelerator_id].to_dict()
    key = f"{phase}_{architecture_class}"
    if generation is not None:
        key = generation_key(key, generation)
    return Efficiency(
        float(row[f"expert_share_{key}"]),
        str(row[f"expert_from_{key}"]),
        float(row[f"expert_spread_{key}"]),
    )


def overhead_for(calibrated: pd.DataFrame, accelerator_id: str, phase: str) -> Overhead:
    """The step overhead a ``phase`` workload pays on ``accelerator_id`` (the module docstring's
    table)."""
    if phase not in FITTED_CEILING:
        return NO_OVERHEAD
    row = calibrated.set_index("accelerator_id").loc[accelerator_id].to_dict()
    return Overhead(float(row[f"step_overhead_s_{phase}"]), str(row[f"step_overhead_from_{phase}"]))


def efficiency_sources(calibrated: pd.DataFrame, models: list[str], precision: str) -> pd.DataFrame:
    """One row per model and phase: the bandwidth and compute efficiencies the projection
    used (compute at ``precision`` where the phase has none of its own), each with its source
    and spread; what the report's method page lists."""
    rows = []
    names = set(calibrated["accelerator_id"].astype(str))
    for model in models:
        if model not in names:
            continue
        for phase in PHASE_CEILINGS:
            bandwidth, flops = efficiencies_for(calibrated, model, phase, precision)
            overhead = overhead_for(calibrated, model, phase)
            rows.append(
                {
                    "accelerator_id": model,
                    "phase": phase,
                    "bandwidth_efficiency": bandwidth.value,
                    "bandwidth_spread": bandwidth.spread,
                    "bandwidth_source": bandwidth.source,
                    "flops_efficiency": flops.value,
                    "flops_spread": flops.spread,
                    "flops_source": flops.source,
                    "step_overhead_s": overhead.seconds,
                    "step_overhead_per": OVERHEAD_PER.get(phase, ""),
                    "step_overhead_source": overhead.source,
                }
            )
    return pd.DataFrame(
        rows,
        columns=[
            "accelerator_id", "phase", "bandwidth_efficiency", "bandwidth_spread",
            "bandwidth_source", "flops_efficiency", "flops_spread", "flops_source",
            "step_overhead_s", "step_overhead_per", "step_overhead_source",
        ],
    )  # fmt: skip

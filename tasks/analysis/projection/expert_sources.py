"""Which routed-expert share each workload's supply was projected with, and why.

A MoE decode workload's routed experts run at its class's fitted share r of the dense
efficiencies, fitted per engine generation (``tasks.analysis.supply.published_fit``): MLA-MoE
reaches far less of them on an early-2025 engine than on a current one. The workload's row
says which engine serves it (``engine``; none: a current one), and the projection takes that
generation's r (:attr:`~tasks.analysis.projection.placement.Placement.generation_index`). This
module says so per workload, as ``rank --json`` and the PDF print it: the generation, the r on
the model its pool holds most of in its first served month, and r's source with why that
generation (:func:`~tasks.analysis.supply.engine_generation.workload_generation`'s reason).
"""

from __future__ import annotations

from typing import Final

import numpy as np
import pandas as pd

from tasks.analysis.projection.horizon import NEVER
from tasks.analysis.projection.placement import engine_generations
from tasks.analysis.projection.projector import Projection
from tasks.analysis.supply.ceilings import PHASE_ORDER
from tasks.analysis.supply.efficiency import generation_key
from tasks.analysis.supply.engine_generation import GENERATIONS
from tasks.analysis.workload.architecture import ARCHITECTURE_CLASSES

EXPERT_COLUMNS: Final = ("engine_generation", "expert_share", "expert_share_source")


def expert_columns(projection: Projection) -> dict[str, np.ndarray]:
    """Per workload (projection order): ``engine_generation``, the generation of the engine
    its row states; ``expert_share``, the r its routed experts were projected at, and
    ``expert_share_source``, r's source and why that generation: NaN and None where the
    workload has no routed-expert share (not a MoE decode, or figures given by hand) or its
    pool holds no hardware in the horizon. Each distinct (model, phase, class, engine) is
    looked up once."""
    placement = projection.placement
    n = len(placement.pool_index)
    out: dict[str, np.ndarray] = {
        "engine_generation": np.asarray(GENERATIONS, dtype=object)[placement.generation_index],
        "expert_share": np.full(n, np.nan),
        "expert_share_source": np.full(n, None, dtype=object),
    }
    figures = projection.projector.baseline_figures
    ceilings = projection.projector.ceilings
    shares, classes = figures.expert_bytes_share, figures.architecture_class
    if shares is None or classes is None or ceilings.expert_share is None:
        return out
    chosen = (shares > 0) & (placement.served_from != NEVER)
    if not chosen.any():
        return out
    fleet = projection.fleet
    first = np.where(placement.served_from == NEVER, 0, placement.served_from)
    model = fleet.counts[placement.pool_index, :, first].argmax(axis=1)
    out["expert_share"][chosen] = ceilings.expert_share[
        placement.generation_index, placement.phase_index, classes, model
    ][chosen]
    reasons = engine_generations(projection.workloads)[1]
    keys = pd.MultiIndex.from_arrays(
        [model[chosen], placement.phase_index[chosen], classes[chosen],
         placement.generation_index[chosen], reasons[chosen]]
    )  # fmt: skip
    codes, distinct = pd.factorize(keys)
    calibrated = projection.calibrated.set_index("accelerator_id")
    said = []
    for m, phase, c, g, why in distinct:
        key = generation_key(f"{PHASE_ORDER[phase]}_{ARCHITECTURE_CLASSES[c]}", GENERATIONS[g])
        source = str(calibrated.at[fleet.models[m], f"expert_from_{key}"])
        said.append(f"{source}; {why}")
    out["expert_share_source"][chosen] = np.asarray(said, dtype=object)[codes]
    return out

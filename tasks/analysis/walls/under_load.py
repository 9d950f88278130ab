"""Decode under load on the replica each workload is reported on: what ``rank`` prints beside
the walls.

For a decode workload made from a model preset that states its request shape
(``prompt_tokens``, ``output_tokens``), the time per output token and the output tokens/s a
continuous-batching engine delivers at the workload's served batch (the concurrency), with
the prompts that arrive riding on its steps (:mod:`tasks.analysis.supply.mixed_step`), on the
replica the walls report (its accelerator model and device count), laid out as the row's
``layout`` says, else as an engine would lay out those devices, as the projection's replica
sizing does (:mod:`tasks.analysis.projection.serving`, whose layout every served workload's
``replica_layout`` reports); this is the serving figure beside it. A MoE model's routed experts
run at the share of the dense efficiencies fitted for the generation of the engine the row
states, as in the projection. Each distinct case is predicted once.
"""

from __future__ import annotations

from typing import Any, Final

import numpy as np
import pandas as pd

from hardware_profiles.errors import MemwallError
from tasks.analysis.projection.projector import Projection
from tasks.analysis.supply.calibrated import efficiencies_for, experts_for, overhead_for
from tasks.analysis.supply.engine_generation import GENERATIONS
from tasks.analysis.supply.mixed_step import mixed_step
from tasks.analysis.supply.predict import predict
from tasks.analysis.walls.walls import Walls
from tasks.analysis.workload.layout import parse_layout
from tasks.analysis.workload.presets import PRESETS
from tasks.analysis.workload.workload_model import estimate

UNDER_LOAD_COLUMNS: Final = (
    "replica_layout",
    "tpot_under_load_s",
    "output_tokens_per_s_under_load",
)
_NEEDED: Final = ("model_preset", "prompt_tokens", "output_tokens", "batch", "context_tokens")


def under_load_columns(
    projection: Projection, walls: Walls, catalog: pd.DataFrame | None
) -> dict[str, np.ndarray]:
    """The module docstring's figures per workload (projection order); None/NaN where the
    row states no request shape, has no replica or names no known preset, and all of them
    without the catalog (no replica is known)."""
    rows = projection.served_workloads
    n = len(rows)
    # Every served workload's replica layout, as the projection sized it (the row's own, or
    # the engine's for its devices); the under-load prediction below lays it out the same way.
    sized = projection.serving
    out: dict[str, np.ndarray] = {
        "replica_layout": np.full(n, None, dtype=object) if sized is None else sized.layout.copy(),
        "tpot_under_load_s": np.full(n, np.nan),
        "output_tokens_per_s_under_load": np.full(n, np.nan),
    }
    if catalog is None or any(c not in rows for c in _NEEDED):
        return out
    chosen = (
        (rows["phase"] == "decode").to_numpy()
        & rows["model_preset"].isin(list(PRESETS)).to_numpy()
        & rows["prompt_tokens"].notna().to_numpy()
        & rows["output_tokens"].notna().to_numpy()
        & np.isfinite(walls.devices_per_replica)
    )
    if not chosen.any():
        return out
    models = catalog.set_index("accelerator_id", drop=False)
    cases: dict[tuple[Any, ...], tuple[str, float, float]] = {}
    layouts = rows["layout"] if "layout" in rows else pd.Series(None, index=rows.index)
    for i in np.flatnonzero(chosen):
        row = rows.iloc[i]
        stated = _text(layouts.iloc[i])
        key = (
            row["model_preset"], int(row["batch"]), int(row["context_tokens"]),
            str(row["precision"]), _text(row.get("weight_precision")),
            _text(row.get("kv_precision")),
            walls.replica_accelerator_id[i], int(walls.devices_per_replica[i]),
            stated,
            int(row["prompt_tokens"]), int(row["output_tokens"]),
            GENERATIONS[projection.placement.generation_index[i]],
        )  # fmt: skip
        if key not in cases:
            try:
                cases[key] = _predict(projection, models, *key)
            except MemwallError:
                continue  # a layout or precision this replica cannot run: left unstated
        layout, tpot, rate = cases[key]
        out["replica_layout"][i] = layout
        out["tpot_under_load_s"][i] = tpot
        out["output_tokens_per_s_under_load"][i] = rate
    return out


def _text(value: Any) -> str | None:
    """A cell as text, None where it is missing."""
    return None if value is None or pd.isna(value) else str(value)


def _predict(
    projection: Projection,
    models: pd.DataFrame,
    preset: str,
    batch: int,
    context: int,
    precision: str,
    weights: str | None,
    kv: str | None,
    accelerator: str,
    devices: int,
    stated: str | None,
    prompt: int,
    output: int,
    generation: str,
) -> tuple[str, float, float]:
    arch = PRESETS[preset]
    est = estimate(
        arch, phase="decode", batch=batch, context=context,
        weights=weights or precision, kv=kv, activations=precision,
    )  # fmt: skip
    layout = None if stated is None else parse_layout(stated)
    row = {str(k): v for k, v in models.loc[accelerator].items()}
    bandwidth, flops = efficiencies_for(projection.calibrated, accelerator, "decode", precision)
    experts = experts_for(
        projection.calibrated, accelerator, "decode", arch.architecture_class, generation
    )
    step = predict(
        arch, est, row, bandwidth, flops,
        devices if layout is None else layout.devices,
        overhead_for(projection.calibrated, accelerator, "decode"), layout, experts=experts,
    )  # fmt: skip
    prefill = efficiencies_for(projection.calibrated, accelerator, "prefill", precision)[1]
    loaded = mixed_step(arch, step, est, row, prefill, prompt, output)
    return str(step.layout), loaded.step_time_s, loaded.output_tokens_per_s

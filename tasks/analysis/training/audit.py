"""Training workloads in the audit: each one's step on its pool's hardware, the resource that
binds it, and what each mitigation does to the step.

A training workload with a layout (the ``layout``, ``global_batch_tokens``, ``micro_batch``,
``recompute``, ``zero_stage`` and ``optimizer`` columns beside ``model_preset`` and
``context_tokens``) runs as one job on ``dp·tp·pp·cp`` devices of its pool's main accelerator
model (the one it holds most of in its first month with hardware). Its supply is one optimizer
step per :func:`step_time` (none where the layout does not fit: the capacity wall); its demand
is ``demand_units_per_s`` steps per second. When demand outgrows the supply the job meets the
wall that binds its step: the network where its collectives outlast its compute, HBM bandwidth
where its memory traffic does, else compute. The months that takes, and the months each
mitigation buys, are the walls stage's (:mod:`tasks.analysis.walls.training`): they need the
demand curve and the horizon.

Mitigations, each a recomputation of the step: FP8 matmuls (where the device has FP8 units:
compute and the matmul inputs' activation bytes; optimizer state unchanged), selective or full
recomputation, ZeRO-3 where the state is not yet sharded, twice the tensor or the pipeline
parallelism (half the data parallelism), twice the micro-batch (a larger per-device batch
within the same global batch), a scale-out network twice as fast. What each risks in accuracy
and what it costs is stated, not modelled.

A row that states its layout wrongly (a micro-batch above the global batch, a layout that does
not divide the model, more devices than its pool ever holds of one model) is refused when the
profiles are loaded (:func:`check_rows`), naming the file, row and column.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Final

import numpy as np
import pandas as pd

from hardware_profiles.errors import MemwallError, ProfileError
from tasks.analysis.supply.calibration import DEFAULT_FLOPS_EFFICIENCY
from tasks.analysis.supply.efficiency import Efficiency
from tasks.analysis.training.backtest import STREAM_BANDWIDTH, Key, lookup
from tasks.analysis.training.layout import TrainingRun, check_run, parse_layout
from tasks.analysis.training.network import Network, network_for
from tasks.analysis.training.recipe import OPTIMIZERS
from tasks.analysis.training.step_time import StepTime, device_from_catalog, step_time
from tasks.analysis.workload.architecture import Architecture
from tasks.analysis.workload.presets import PRESETS, preset

# What each mitigation risks and costs: stated, not modelled.
RISKS: Final = {
    "fp8 matmuls": (
        "convergence risk: loss spikes or divergence without a tested FP8 recipe (per-tensor "
        "delayed or block scaling); check loss parity against bf16",
        "no hardware; engineering and parity runs",
    ),
    "selective recompute": ("none: recomputation is exact", "extra forward FLOPs (in the time)"),
    "full recompute": ("none: recomputation is exact", "a third more FLOPs (in the time)"),
    "2x tensor parallel": (
        "none: the same global batch and maths",
        "none; more activation traffic on the scale-up link",
    ),
    "2x pipeline parallel": (
        "none: the same global batch and maths",
        "none; a larger pipeline bubble",
    ),
    "ZeRO-3 (FSDP)": (
        "none: the same maths, the state sharded",
        "weights gathered every micro-batch: more data-parallel traffic (in the time)",
    ),
    "2x micro-batch": (
        "none: the global batch is unchanged",
        "more activation memory per device",
    ),
    "2x scale-out network": (
        "none",
        "NICs and switches at twice the bandwidth per device (e.g. 400 to 800 Gb/s)",
    ),
}
# The ranking's word for the resource that binds a step, by the step's wall.
BOUND: Final = {"network": "network", "bandwidth": "memory", "compute": "compute"}
_COLUMNS: Final = ("layout", "global_batch_tokens", "model_preset", "context_tokens")


@dataclass(frozen=True)
class TrainingFindings:
    """One row per training workload with a layout (``summary``) and one per mitigation that
    could be computed for it (``mitigations``); ``skipped`` names rows memwall could not lay
    out, and why. The walls stage adds each row's months (:mod:`tasks.analysis.walls.training`)."""

    summary: pd.DataFrame
    mitigations: pd.DataFrame
    skipped: list[str]


@dataclass(frozen=True)
class _Setting:
    arch: Architecture
    network: Network
    fitted: Mapping[Key, Efficiency]
    accelerator: Mapping[str, Any]


def _given(row: Mapping[str, Any], key: str) -> Any:
    value = row.get(key)
    return None if value is None or value != value else value


def has_layout(workloads: pd.DataFrame) -> pd.Series:
    """Rows of training workloads that state everything a layout needs."""
    if not set(_COLUMNS) <= set(workloads.columns):
        return pd.Series(False, index=workloads.index)
    stated = workloads[list(_COLUMNS)].notna().all(axis=1)
    return stated & (workloads["phase"] == "training")


def _run(row: Mapping[str, Any]) -> TrainingRun:
    context = int(row["context_tokens"])
    tokens = int(row["global_batch_tokens"])
    if tokens % context:
        raise MemwallError(
            f"global_batch_tokens {tokens:,} is not a whole number of {context}-token sequences"
        )
    return TrainingRun(
        layout=parse_layout(str(row["layout"])),
        global_batch=tokens // context,
        sequence=context,
        micro_batch=int(_given(row, "micro_batch") or 1),
        zero=int(_given(row, "zero_stage") if _given(row, "zero_stage") is not None else 1),
        recompute=str(_given(row, "recompute") or "selective"),
        optimizer=str(_given(row, "optimizer") or "adam"),
        compute=str(row["precision"]),
    )


def _column(run: TrainingRun) -> str:
    """The column a refused row's check is about: what the user would edit."""
    if run.optimizer not in OPTIMIZERS:
        return "optimizer"
    if run.micro_batch > run.global_batch or run.global_batch % (run.layout.dp * run.micro_batch):
        return "micro_batch"
    return "layout"


def check_rows(
    workloads: pd.DataFrame, source: str, pool_devices: Mapping[str, int] | None = None
) -> None:
    """Refuse the first training row whose layout no engine could run: its global batch not
    whole sequences, a micro-batch above the global batch (or not splitting it over dp), a
    layout that does not divide the model's heads or layers, or (with ``pool_devices``, the
    most devices of one model each pool ever holds) more devices than its pool has. The error
    names ``source``, the row (1-based) and the column. Rows of a model memwall has no preset
    for are left to the audit, which says it could not lay them out."""
    for index in np.flatnonzero(has_layout(workloads).to_numpy()):
        position = int(index) + 1
        row = {str(k): v for k, v in workloads.iloc[index].items()}
        name = str(row.get("model_preset", "")).strip().lower()
        if name not in PRESETS:
            continue
        try:
            run = _run(row)
        except MemwallError as exc:
            column = "layout" if "layout" in str(exc) else "global_batch_tokens"
            raise ProfileError(source, str(exc), row=position, column=column) from None
        try:
            check_run(preset(name), run)
        except MemwallError as exc:
            raise ProfileError(source, str(exc), row=position, column=_column(run)) from None
        pool = str(row["pool"])
        held = None if pool_devices is None else pool_devices.get(pool)
        if held is not None and run.layout.devices > held:
            rest = run.layout.tp * run.layout.pp * run.layout.cp
            valid = (
                f"with tp·pp·cp = {rest}, valid dp: 1 to {held // rest}"
                if held >= rest
                else f"fewer than its tp·pp·cp = {rest}"
            )
            raise ProfileError(
                source,
                f"layout {run.layout.text()} spans dp·tp·pp·cp = {run.layout.devices} devices; "
                f"pool {pool!r} never holds more than {held} of one model: {valid}",
                row=position,
                column="layout",
            )


def most_devices(roadmap: pd.DataFrame) -> dict[str, int]:
    """The most devices of one model each pool of a roadmap ever holds (running sums of its
    count changes, by date): the largest job its pool could ever run."""
    per_date = roadmap.groupby(["pool", "accelerator_id", "effective_date"], sort=True)[
        "count_delta"
    ].sum()
    held = per_date.groupby(level=["pool", "accelerator_id"]).cumsum()
    return {str(pool): int(count) for pool, count in held.groupby(level="pool").max().items()}


def _time(setting: _Setting, run: TrainingRun, network: Network | None = None) -> StepTime:
    device = device_from_catalog(setting.accelerator, run.compute)
    matmul = lookup(setting.fitted, device.name, run.compute) or Efficiency(
        DEFAULT_FLOPS_EFFICIENCY, "default (STREAM-based)", 0.0
    )
    check_run(setting.arch, run)
    return step_time(
        setting.arch, run, device, network or setting.network, matmul, STREAM_BANDWIDTH
    )


def binding(result: StepTime) -> str:
    """The resource that binds the step as the ranking words it (memory, network, compute),
    whether or not the layout fits: what would bind it once it does."""
    pressure = result.pressures()
    name, value = max(((k, pressure[k]) for k in ("network", "bandwidth")), key=lambda kv: kv[1])
    return BOUND[name if value >= 1 else "compute"]


def _variants(
    run: TrainingRun, network: Network
) -> dict[str, Callable[[], tuple[TrainingRun, Network]]]:
    lay = run.layout

    def relaid(**degrees: int) -> Callable[[], tuple[TrainingRun, Network]]:
        return lambda: (replace(run, layout=replace(lay, **degrees)), network)

    found: dict[str, Callable[[], tuple[TrainingRun, Network]]] = {
        "fp8 matmuls": lambda: (replace(run, compute="fp8"), network),
        "2x micro-batch": lambda: (replace(run, micro_batch=2 * run.micro_batch), network),
        "2x scale-out network": lambda: (
            run,
            replace(network, scale_out_bytes_per_s=2 * network.scale_out_bytes_per_s),
        ),
    }
    if run.recompute != "selective":
        found["selective recompute"] = lambda: (replace(run, recompute="selective"), network)
    if run.recompute != "full":
        found["full recompute"] = lambda: (replace(run, recompute="full"), network)
    if run.zero < 3 and lay.dp * lay.cp > 1:
        found["ZeRO-3 (FSDP)"] = lambda: (replace(run, zero=3), network)
    if lay.dp % 2 == 0:
        found["2x tensor parallel"] = relaid(tp=2 * lay.tp, dp=lay.dp // 2)
        found["2x pipeline parallel"] = relaid(pp=2 * lay.pp, dp=lay.dp // 2)
    return found


def training_findings(
    workloads: pd.DataFrame,
    catalog: pd.DataFrame,
    pool_hardware: Mapping[str, tuple[str, int]],
    scale_out: pd.DataFrame,
    fitted: Mapping[Key, Efficiency],
) -> TrainingFindings:
    """Summary and mitigations of every training workload with a layout (module docstring).
    ``pool_hardware`` maps a pool to its main accelerator model and the devices it holds."""
    models = catalog.set_index("accelerator_id", drop=False)
    summary: list[dict[str, Any]] = []
    mitigations: list[dict[str, Any]] = []
    skipped: list[str] = []
    rows: list[dict[str, Any]] = workloads.loc[has_layout(workloads)].to_dict("records")  # type: ignore[assignment]
    for row in rows:
        workload = str(row["workload_id"])
        pool = str(row["pool"])
        try:
            if pool not in pool_hardware:
                raise MemwallError(f"pool {pool!r} holds no hardware in the horizon")
            accelerator_id, held = pool_hardware[pool]
            accelerator = {str(k): v for k, v in models.loc[accelerator_id].items()}
            run = _run(row)
            if run.layout.devices > held:
                raise MemwallError(
                    f"layout {run.layout.text()} needs {run.layout.devices} devices; pool "
                    f"{pool!r} holds {held} x {accelerator_id}"
                )
            network = network_for(accelerator, scale_out)
            setting = _Setting(preset(str(row["model_preset"])), network, fitted, accelerator)
            base = _time(setting, run)
        except MemwallError as exc:
            skipped.append(f"{workload}: {exc}")
            continue
        summary.append(
            {
                "workload_id": workload,
                "name": row.get("name"),
                "model_preset": setting.arch.name,
                "accelerator_id": accelerator_id,
                "layout": run.layout.text(),
                "devices": run.layout.devices,
                "zero": run.zero,
                "recompute": run.recompute,
                "precision": run.compute,
                "global_batch_tokens": run.global_batch_tokens,
                **{f"memory_{k}": v for k, v in base.memory.as_json().items()},
                **{f"time_{k}_s": v for k, v in base.parts.items()},
                "step_time_s": base.step_time_s,
                "mfu": base.mfu,
                "tokens_per_s": base.tokens_per_s,
                "fits": base.fits,
                "wall": base.wall,
                "bound": binding(base),
                "matmul_efficiency_source": base.matmul_efficiency.source,
                "step_spread": base.matmul_efficiency.spread,
            }
        )
        for name, make in _variants(run, setting.network).items():
            changed, network = make()
            try:
                result = _time(setting, changed, network)
            except MemwallError:
                continue  # the variant does not divide the model, or the device lacks FP8
            risk, cost = RISKS[name]
            mitigations.append(
                {
                    "workload_id": workload,
                    "mitigation": name,
                    "layout": changed.layout.text(),
                    "step_time_s": result.step_time_s,
                    "speedup": base.step_time_s / result.step_time_s,
                    "fits": result.fits,
                    "wall": result.wall,
                    "accuracy_risk": risk,
                    "cost": cost,
                }
            )
    return TrainingFindings(pd.DataFrame(summary), pd.DataFrame(mitigations), skipped)


def main_hardware(pools: list[str], models: list[str], counts: Any) -> dict[str, tuple[str, int]]:
    """Each pool's main model and its device count in the pool's first month with hardware,
    from fleet counts (pools, models, months)."""
    found: dict[str, tuple[str, int]] = {}
    for p, pool in enumerate(pools):
        totals = counts[p].sum(axis=0)
        months = [t for t in range(len(totals)) if totals[t] > 0]
        if not months:
            continue
        at = counts[p, :, months[0]]
        best = int(at.argmax())
        found[pool] = (models[best], int(at[best]))
    return found

"""``memwall predict --workload ID``: one workload of the workloads file, predicted as the
audit serves it.

Everything comes from the workload's row: its model preset, precisions (weights, KV, compute),
layout, prompt/output tokens (decode under load), batch and context, and the engine that serves
it (its generation's fitted routed-expert share, as the projection takes it; ``--engine``
stands for it); its hardware is the replica the projection reports for it (the model its pool
holds most of in its first served month, and the devices a replica of it spans there,
:mod:`tasks.analysis.projection.serving`).
The efficiency is the audit's, in its order, with one step before it: what production measured
for this very workload on that model over the last ``--days`` (``--prometheus``), where the
window has calibrating samples of it; else the workload probes (``--measurements``,
``--history``), the defaults fitted on published runs, the STREAM figures. The step's P10-P90
band is the one the audit records for the workload (:func:`flows.cli_prediction.step_band`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from flows.cli_analysis import start_month
from flows.cli_common import print_json, warn
from flows.cli_prediction import (
    calibrated_catalog,
    print_prediction,
    print_under_load,
    stdout,
    step_band,
)
from flows.timings import STARTED, Stopwatch
from hardware_profiles.errors import MemwallError

if TYPE_CHECKING:
    import pandas as pd

    from tasks.analysis.supply.efficiency import Efficiency
    from tasks.analysis.workload.architecture import Architecture

WorkloadOption = Annotated[
    str | None,
    typer.Option(
        "--workload",
        help="Predict this workload of --workloads (default: the built-in examples) at its own "
        "batch, context, precisions and layout, on the hardware its pool serves it on.",
    ),
]
PrometheusOption = Annotated[
    str | None,
    typer.Option(
        "--prometheus",
        help="With --workload: Prometheus with the serving telemetry; the decode efficiency "
        "production measured for that workload over --days comes first. Unreachable: one "
        "warning line, the other sources stand.",
    ),
]
DaysOption = Annotated[
    float, typer.Option("--days", help="With --prometheus: the window to read, in days.")
]
PHASES = ("decode", "prefill")


@dataclass(frozen=True)
class Served:
    """Where the audit serves a workload: the accelerator model and a replica's devices."""

    accelerator: str
    devices: int
    why: str


def workload_row(workloads: pd.DataFrame, workload_id: str) -> tuple[int, dict[str, Any]]:
    """The workload's position in the table and its row (NaN as None), or an error listing
    every valid id."""
    ids = workloads["workload_id"].astype(str).tolist()
    if workload_id not in ids:
        raise MemwallError(
            f"--workload: unknown workload {workload_id!r}; the workloads are "
            f"{', '.join(sorted(ids))}"
        )
    position = ids.index(workload_id)
    row = workloads.iloc[position].to_dict()
    return position, {str(k): None if _missing(v) else v for k, v in row.items()}


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _checked(row: dict[str, Any]) -> tuple[str, int, int]:
    """The row's model preset, batch and context, or why it cannot be predicted."""
    wid = row["workload_id"]
    if row["phase"] not in PHASES:
        raise MemwallError(
            f"--workload {wid}: a {row['phase']} workload; predict --workload covers "
            f"{' and '.join(PHASES)} (a training run: memwall predict --phase training --layout)"
        )
    if not isinstance(row.get("model_preset"), str):
        raise MemwallError(
            f"--workload {wid}: no model_preset in its row (its figures were given, not "
            "modelled), so there is no step to predict; give the row a preset"
        )
    missing = [c for c in ("batch", "context_tokens") if row.get(c) is None]
    if missing:
        raise MemwallError(f"--workload {wid}: its row has no {' or '.join(missing)}")
    return str(row["model_preset"]), int(row["batch"]), int(row["context_tokens"])


def served_on(projection: Any, index: int, row: dict[str, Any], arch: Architecture) -> Served:
    """The replica the projection reports for the workload at ``index``, its devices rounded
    up to the fewest that split ``arch`` (the projection sizes a replica by memory: 3 devices
    hold a 70B model's batch, an engine runs it on 4)."""
    from tasks.analysis.workload.layout import valid_layouts

    serving = projection.serving
    accelerator = None if serving is None else serving.accelerator[index]
    if accelerator is None:
        raise MemwallError(
            f"--workload {row['workload_id']}: its pool {row['pool']!r} holds no hardware in "
            "the roadmap's horizon, so it is served nowhere to predict"
        )
    sized = float(serving.devices[index])
    held = int(sized) if math.isfinite(sized) and sized >= 1 else 1
    devices = next((n for n in range(held, 8 * held + 1) if valid_layouts(arch, n)), held)
    why = f"the model pool {row['pool']} holds most of in its first served month"
    if devices != held:
        why += f"; a replica of {held} rounded up to {devices}, the fewest devices it splits over"
    return Served(str(accelerator), devices, why)


def _production(
    url: str, days: float, workload_id: str, profiles: Any
) -> dict[tuple[str, str], Efficiency]:
    """What production measured for the workload, or nothing (said in one warning line)."""
    from tasks.observe import observe
    from tasks.prometheus import PrometheusUnreachable

    try:
        seen, _ = observe({"": url}, profiles.workloads, profiles.catalog, days=days)
    except PrometheusUnreachable as exc:
        warn(f"{exc}: no production efficiency, the other sources stand")
        return {}
    measured = seen.workload_efficiencies(workload_id)
    if not measured:
        warn(
            f"no calibrating production samples of {workload_id} in the last {days:g} days at "
            f"{url}: the other sources stand"
        )
    return measured


def predict_workload(
    workload_id: str,
    workloads: Path | None,
    roadmap: Path | None,
    catalog: Path | None,
    measurements: Path | None,
    history: str | None,
    runs: Path | None,
    prometheus: str | None,
    days: float,
    as_json: bool,
    engine: str | None = None,
) -> None:
    """Predict one workload of the workloads file as the audit serves it (module docstring);
    ``engine`` (``--engine``) stands for the row's own."""
    from tasks.analysis.projection.horizon import DEFAULT_HORIZON_MONTHS
    from tasks.analysis.projection.projector import project_profiles
    from tasks.analysis.supply.calibrated import efficiencies_for, experts_for, overhead_for
    from tasks.analysis.supply.mixed_step import mixed_step
    from tasks.analysis.supply.predict import predict as predict_step
    from tasks.analysis.supply.production import ServedModel
    from tasks.analysis.workload.layout import parse_layout
    from tasks.analysis.workload.presets import preset
    from tasks.analysis.workload.workload_model import estimate
    from tasks.profiles import load_scenarios, pick_scenario

    watch = Stopwatch(STARTED)
    watch.lap("start-up")
    if days <= 0:
        raise MemwallError(f"--days must be > 0, got {days:g}")
    _, profiles = pick_scenario(load_scenarios(workloads, roadmap, catalog), None)
    index, row = workload_row(profiles.workloads, workload_id)
    name, batch, context = _checked(row)
    arch = preset(name)
    layout = None if row.get("layout") is None else parse_layout(str(row["layout"]))
    watch.lap("load")
    production = _production(prometheus, days, workload_id, profiles) if prometheus else {}
    if prometheus:
        watch.lap("production telemetry")
    models = profiles.catalog
    stated = engine if engine is not None else row.get("engine")
    calibrated = calibrated_catalog(
        models, measurements, runs, history, production=production, engine=stated
    )
    projection = project_profiles(profiles, calibrated, start_month(None), DEFAULT_HORIZON_MONTHS)
    where = served_on(projection, index, row, arch)
    if production and (where.accelerator, "decode") not in production:
        warn(
            f"production measured {workload_id} on {', '.join(a for a, _ in production)}, not on "
            f"{where.accelerator} where its pool serves it: the other sources stand there"
        )
    devices = where.devices if layout is None else layout.devices
    phase = str(row["phase"])
    weights = str(row.get("weight_precision") or row["precision"])
    kv = None if row.get("kv_precision") is None else str(row["kv_precision"])
    compute = str(row["precision"])
    est = estimate(
        arch, phase=phase, batch=batch, context=context, weights=weights, kv=kv,
        activations=compute,
    )  # fmt: skip
    bandwidth, flops = efficiencies_for(calibrated, where.accelerator, phase, compute)
    spec = models.set_index("accelerator_id", drop=False).loc[where.accelerator]
    spec_row = {str(k): v for k, v in spec.items()}
    result = predict_step(
        arch, est, spec_row, bandwidth, flops, devices,
        overhead_for(calibrated, where.accelerator, phase), layout,
        experts=experts_for(calibrated, where.accelerator, phase, arch.architecture_class),
    )  # fmt: skip
    loaded = None
    prompt, output = row.get("prompt_tokens"), row.get("output_tokens")
    if phase == "decode" and prompt is not None and output is not None:
        prefill = efficiencies_for(calibrated, where.accelerator, "prefill", compute)[1]
        loaded = mixed_step(arch, result, est, spec_row, prefill, int(prompt), int(output))
    served = ServedModel(workload_id, name, weights, kv, compute)
    band = step_band(calibrated, served, where.accelerator, phase, flops, result.step_time_s)
    watch.lap("predict")
    about = {
        "workload_id": workload_id,
        "pool": row["pool"],
        "phase": phase,
        "accelerator_id": where.accelerator,
        "devices": devices,
        "served_on": where.why,
        "engine": stated,
        "efficiency_source": bandwidth.source if phase == "decode" else flops.source,
        **band.as_json(),
    }
    if as_json:
        figures = result.as_json()
        if loaded is not None:
            figures["under_load"] = loaded.as_json()
        print_json({**figures, "workload": about}, timings=watch.timings())
        return
    stdout.print(
        f"workload {workload_id} ({row['name']}), pool {row['pool']}: on {where.accelerator}, "
        f"{where.why}",
        markup=False,
    )
    print_prediction(
        est.model, result, phase, batch, context, est.weights, est.kv, compute, where.accelerator
    )
    if loaded is not None:
        print_under_load(loaded)
    stdout.print(
        f"step band      {band.text()}; efficiency from {about['efficiency_source']}", markup=False
    )

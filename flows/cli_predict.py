"""``memwall predict``: one workload's step on one accelerator model, given by its model and
shape, or (``--workload ID``, :mod:`flows.cli_predict_workload`) by its row of the workloads
file. ``memwall backtest`` checks the same prediction against published measured runs
(:mod:`flows.cli_backtest`).

Both use the efficiencies the projection uses (``tasks.analysis.supply.efficiency``): workload-probe
measurements where given (``--measurements``, ``--history``), else the defaults fitted on the
published runs, else the STREAM-based defaults; every efficiency is printed with its source.
"""

from __future__ import annotations

from typing import Annotated

import typer

from flows.cli_analysis import MeasurementsOption
from flows.cli_common import (
    CatalogOption,
    RoadmapOption,
    WorkloadsOption,
    print_json,
    require_positive,
)
from flows.cli_predict_workload import (
    DaysOption,
    PrometheusOption,
    WorkloadOption,
    predict_workload,
)
from flows.cli_prediction import (
    HistoryReadOption,
    JsonOption,
    RunsOption,
    calibrated_catalog,
    print_prediction,
    print_under_load,
    stdout,
    step_band,
)
from flows.cli_training import predict_training
from flows.cli_training_options import (
    GlobalBatchTokensOption,
    MicroBatchOption,
    OptimizerOption,
    ScaleOutOption,
    ScaleOutRateOption,
    TrainingRecomputeOption,
    TrainingRunsOption,
    UnevenOption,
    ZeroOption,
)
from flows.cli_workloads import (
    ActivationsOption,
    BatchOption,
    ConfigOption,
    ContextOption,
    KvOption,
    PresetOption,
    WeightsOption,
    architecture_from_options,
)
from flows.timings import STARTED, Stopwatch
from hardware_profiles.errors import MemwallError


def predict(
    preset: PresetOption = None,
    config: ConfigOption = None,
    phase: Annotated[str, typer.Option("--phase", help="decode, prefill or training.")] = "decode",
    batch: BatchOption = 1,
    context: ContextOption = 4096,
    weights: WeightsOption = "bf16",
    kv: KvOption = None,
    activations: ActivationsOption = "bf16",
    accelerator: Annotated[
        str, typer.Option("--accelerator", help="Catalog accelerator id, e.g. nvidia-h100-sxm.")
    ] = "nvidia-h100-sxm",
    devices: Annotated[
        int | None,
        typer.Option(
            "--devices",
            help="Devices of that model in one replica (default: the layout's, else 1).",
        ),
    ] = None,
    layout: Annotated[
        str | None,
        typer.Option(
            "--layout",
            help="Serving layout, e.g. tp=8 or dp_attention=8,ep=8 (degrees tp, dp_attention, "
            "ep, pp). Default: the layout an engine launches the model with on --devices. With "
            "--phase training: the training layout, e.g. dp=64,tp=8,pp=16 (degrees dp tp pp cp "
            "ep vp; dp·tp·pp·cp is the device count; ep is carved out of dp·cp).",
        ),
    ] = None,
    prompt: Annotated[
        int | None,
        typer.Option(
            "--prompt",
            help="Decode under load: prompt tokens of each arriving request (with --output); "
            "--batch is then the concurrency.",
        ),
    ] = None,
    output: Annotated[
        int | None,
        typer.Option("--output", help="Decode under load: output tokens of each request."),
    ] = None,
    engine: Annotated[
        str | None,
        typer.Option(
            "--engine",
            help="Serving engine, NAME or 'NAME VERSION' (e.g. 'SGLang 0.4.3'): its generation's "
            "fitted routed-expert share. Default: the --workload row's engine, else a current "
            "engine.",
        ),
    ] = None,
    catalog: CatalogOption = None,
    measurements: MeasurementsOption = None,
    history: HistoryReadOption = None,
    runs: RunsOption = None,
    as_json: JsonOption = False,
    global_batch_tokens: GlobalBatchTokensOption = None,
    micro_batch: MicroBatchOption = 1,
    recompute: TrainingRecomputeOption = "selective",
    zero: ZeroOption = 1,
    optimizer: OptimizerOption = None,
    uneven_stages: UnevenOption = False,
    scale_out: ScaleOutOption = None,
    scale_out_gb_s: ScaleOutRateOption = None,
    training_runs: TrainingRunsOption = None,
    workload: WorkloadOption = None,
    workloads: WorkloadsOption = None,
    roadmap: RoadmapOption = None,
    prometheus: PrometheusOption = None,
    days: DaysOption = 7,
) -> None:
    """Predicted step time, tokens/s per replica and per device, and the bound of one workload
    on one replica of an accelerator model laid out as --layout says (or as an engine would),
    with the efficiencies used and their source. JSON keys: step_time_s, tokens_per_s,
    tokens_per_s_per_device, bound, bandwidth_efficiency, flops_efficiency (and *_source,
    *_spread), memory/compute/communication/overhead_time_s, communication_bytes_time_s,
    communication_latency_time_s, collective_calls_per_step, link_source, overhead_source,
    layout, layout_reason, per_device (weights, KV, activations, step bytes and FLOPs of the
    busiest device, all-to-all and all-reduce bytes per step, expert ranks' mean and busiest
    load, collectives), notes; with --prompt and --output (decode), under_load: the prefill
    tokens riding on each step (concurrency · prompt / output), the time per output token and
    the output tokens/s a continuous-batching engine delivers. With --phase training --layout:
    the training step of that layout (flows.cli_training; JSON: step_time_s, mfu,
    tokens_per_s, time_by_part_s, memory_per_device, wall). With --workload ID: that workload of
    --workloads at its own batch, context, precisions, layout, prompt/output tokens and engine
    (--engine stands for it), on the replica its pool serves it on (flows.cli_predict_workload;
    JSON: the keys above and workload: workload_id, pool, phase, accelerator_id, devices,
    served_on, engine, efficiency_source, supply_spread, supply_spread_source, step_p10_s,
    step_p90_s)."""
    from tasks.analysis.supply.engine_generation import stated_engine_problem

    problem = None if engine is None else stated_engine_problem(engine)
    if problem is not None:
        raise MemwallError(f"--engine {problem}")
    if workload is not None:
        given = [
            flag
            for flag, value in (("--preset", preset), ("--config", config), ("--layout", layout),
                                ("--prompt", prompt), ("--output", output))
            if value is not None
        ]  # fmt: skip
        if given:
            raise MemwallError(
                f"--workload takes its model and shape from its row; drop {', '.join(given)}"
            )
        predict_workload(
            workload, workloads, roadmap, catalog, measurements, history, runs, prometheus,
            days, as_json, engine,
        )  # fmt: skip
        return
    if prometheus is not None or workloads is not None or roadmap is not None:
        raise MemwallError("--workloads, --roadmap and --prometheus go with --workload ID")
    if phase == "training" and (layout or global_batch_tokens):
        predict_training(**{k: v for k, v in locals().items() if k in _TRAINING_KEYS})
        return
    from hardware_profiles.catalog import load_catalog
    from tasks.analysis.supply.calibrated import efficiencies_for, experts_for, overhead_for
    from tasks.analysis.supply.mixed_step import mixed_step
    from tasks.analysis.supply.predict import predict as predict_step
    from tasks.analysis.supply.production import ServedModel
    from tasks.analysis.workload.layout import parse_layout
    from tasks.analysis.workload.workload_model import estimate

    watch = Stopwatch(STARTED)
    watch.lap("start-up")
    require_positive("--batch", batch)
    require_positive("--context", context)
    chosen = None if layout is None else parse_layout(layout)
    if devices is None:
        devices = 1 if chosen is None else chosen.devices
    require_positive("--devices", devices)
    if (prompt is None) != (output is None):
        raise MemwallError("--prompt and --output go together (decode under load)")
    if prompt is not None and output is not None:
        require_positive("--prompt", prompt)
        require_positive("--output", output)
        if phase != "decode":
            raise MemwallError(f"--prompt/--output describe decode under load, not {phase}")
    arch = architecture_from_options(preset, config)
    models = load_catalog(catalog)
    known = list(models["accelerator_id"].astype(str))
    if accelerator not in known:
        raise MemwallError(
            f"--accelerator: unknown accelerator {accelerator!r}; the catalog has "
            f"{', '.join(sorted(known))}"
        )
    est = estimate(
        arch,
        phase=phase,
        batch=batch,
        context=context,
        weights=weights,
        kv=kv,
        activations=activations,
    )
    calibrated = calibrated_catalog(models, measurements, runs, history, engine=engine)
    bandwidth, flops = efficiencies_for(calibrated, accelerator, phase, activations)
    row = models.set_index("accelerator_id", drop=False).loc[accelerator]
    result = predict_step(
        arch, est, {str(k): v for k, v in row.items()}, bandwidth, flops, devices,
        overhead_for(calibrated, accelerator, phase), chosen,
        experts=experts_for(calibrated, accelerator, phase, arch.architecture_class),
    )  # fmt: skip
    loaded = None
    if prompt is not None and output is not None:
        loaded = mixed_step(
            arch, result, est, {str(k): v for k, v in row.items()},
            efficiencies_for(calibrated, accelerator, "prefill", activations)[1], prompt, output,
        )  # fmt: skip
    served = ServedModel("predict", arch.name, est.weights, est.kv, activations)
    band = step_band(calibrated, served, accelerator, phase, flops, result.step_time_s)
    watch.lap("predict")
    if as_json:
        figures = {**result.as_json(), "band": band.as_json()}
        if loaded is not None:
            figures["under_load"] = loaded.as_json()
        print_json(figures, timings=watch.timings())
        return
    print_prediction(est.model, result, phase, batch, context, est.weights, est.kv, activations,
                      accelerator)  # fmt: skip
    if loaded is not None:
        print_under_load(loaded)
    stdout.print(f"step band      {band.text()}", markup=False)


_TRAINING_KEYS = frozenset(
    ("preset", "config", "layout", "global_batch_tokens", "micro_batch", "recompute", "zero",
     "optimizer", "uneven_stages", "context", "weights", "activations", "accelerator",
     "devices", "catalog", "scale_out", "scale_out_gb_s", "training_runs", "as_json")
)  # fmt: skip

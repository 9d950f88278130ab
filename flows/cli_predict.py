"""``memwall predict`` and ``memwall backtest``: one workload's step on one accelerator model,
and the same prediction checked against published measured runs.

Both use the efficiencies the projection uses (``tasks.analysis.supply.efficiency``): workload-probe
measurements where given (``--measurements``, ``--history``), else the defaults fitted on the
published runs, else the STREAM-based defaults; every efficiency is printed with its source.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from flows.cli_analysis import MeasurementsOption
from flows.cli_common import CatalogOption, print_json, require_positive, warn, warn_set_aside
from flows.cli_training import (
    GlobalBatchTokensOption,
    MicroBatchOption,
    OptimizerOption,
    ScaleOutOption,
    ScaleOutRateOption,
    TrainingRecomputeOption,
    TrainingRunsOption,
    UnevenOption,
    ZeroOption,
    backtest_training,
    predict_training,
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

if TYPE_CHECKING:
    from tasks.analysis.supply.backtest import Backtest, Summary
    from tasks.analysis.supply.efficiency import Efficiency
    from tasks.analysis.supply.mixed_step import MixedStep
    from tasks.analysis.supply.predict import Prediction

stdout = Console(highlight=False)

RunsOption = Annotated[
    Path | None,
    typer.Option(
        "--runs",
        help="Published-runs CSV (default: the built-in "
        "hardware_profiles/data/published_runs.csv).",
        dir_okay=False,
    ),
]
HistoryReadOption = Annotated[
    str | None,
    typer.Option(
        "--history",
        help="History dataset (folder or fsspec URL): its latest workload-probe measurements "
        "count as measured efficiencies.",
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print the figures as JSON.")]


def _seconds(value: float) -> str:
    if value >= 1:
        return f"{value:.3g} s"
    if value >= 1e-3:
        return f"{value * 1e3:.3g} ms"
    return f"{value * 1e6:.3g} us"


def _gb(value: float) -> str:
    return f"{value / 1e9:,.3g} GB"


def _rate(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:.3g}"


def _efficiency(e: Efficiency) -> str:
    return f"{e.value:.3f} (±{100 * e.spread:.0f} %)  {e.source}"


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
            "fitted routed-expert share. Default: a current engine.",
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
    tokens_per_s, time_by_part_s, memory_per_device, wall)."""
    if phase == "training" and (layout or global_batch_tokens):
        predict_training(**{k: v for k, v in locals().items() if k in _TRAINING_KEYS})
        return
    from hardware_profiles.catalog import load_catalog
    from hardware_profiles.parquet import read_table
    from hardware_profiles.schema import MEASUREMENTS
    from tasks.analysis.supply.backtest import load_backtest
    from tasks.analysis.supply.calibration import calibrate
    from tasks.analysis.supply.efficiency import efficiencies_for, experts_for, overhead_for
    from tasks.analysis.supply.mixed_step import mixed_step
    from tasks.analysis.supply.predict import predict as predict_step
    from tasks.analysis.workload.layout import parse_layout
    from tasks.analysis.workload.workload_model import estimate
    from tasks.history import read_measurements

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
    calibrated = calibrate(
        models,
        read_table(measurements, MEASUREMENTS) if measurements else None,
        fitted=load_backtest(models, runs, by_source=False).fitted,
        history=read_measurements(history) if history else None,
        engine=engine,
    )
    if history:
        warn_set_aside(history)
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
    watch.lap("predict")
    if as_json:
        figures = result.as_json()
        if loaded is not None:
            figures["under_load"] = loaded.as_json()
        print_json(figures, timings=watch.timings())
        return
    _print_prediction(est.model, result, phase, batch, context, est.weights, est.kv, activations,
                      accelerator)  # fmt: skip
    if loaded is not None:
        _print_under_load(loaded)


_TRAINING_KEYS = frozenset(
    ("preset", "config", "layout", "global_batch_tokens", "micro_batch", "recompute", "zero",
     "optimizer", "uneven_stages", "context", "weights", "activations", "accelerator",
     "devices", "catalog", "scale_out", "scale_out_gb_s", "training_runs", "as_json")
)  # fmt: skip


def _print_prediction(
    model: str,
    p: Prediction,
    phase: str,
    batch: int,
    context: int,
    weights: str,
    kv: str,
    compute: str,
    accelerator: str,
) -> None:
    f = p.figures
    c = p.collectives
    lines = [
        f"{model} {phase}, batch {batch}, context {context}; weights {weights}, KV {kv}, "
        f"compute {compute}",
        f"on {p.devices} x {accelerator}, layout {p.layout} ({p.layout_reason})",
        f"per device     weights {_gb(f.weight_bytes_per_device)}, "
        f"KV {_gb(f.kv_bytes_per_device)}, activations "
        f"{_gb(f.activation_bytes_per_device)}; a step reads {_gb(f.step_bytes_per_device)} "
        f"and computes {f.step_flops_per_device / 1e12:.3g} TFLOP on the busiest device",
        f"step time      {_seconds(p.step_time_s)}  (memory {_seconds(p.memory_time_s)}, "
        f"compute {_seconds(p.compute_time_s)}, communication "
        f"{_seconds(p.communication_time_s)}, overhead {_seconds(p.overhead_time_s)})",
        f"tokens/s       {_rate(p.tokens_per_s)} per replica, "
        f"{_rate(p.tokens_per_s_per_device)} per device",
        f"bound          {p.bound}",
        f"bandwidth eff. {_efficiency(p.bandwidth_efficiency)}",
        f"compute eff.   {_efficiency(p.flops_efficiency)}",
    ]
    if c.calls:
        lines.append(
            f"collectives    {c.calls} calls a step: {_seconds(c.latency_s)} latency + "
            f"{_seconds(c.bytes_s)} over the link  {p.link_source}"
        )
    if f.expert_read_bytes_per_device or f.expert_flops_per_device:
        lines.append(
            f"routed experts {_gb(f.expert_read_bytes_per_device)} read, "
            f"{f.expert_flops_per_device / 1e12:.3g} TFLOP on the busiest device; share of "
            f"the dense efficiencies {_efficiency(p.expert_efficiency)}"
        )
    if f.alltoall_bytes_per_step:
        lines.append(
            f"expert parallel all-to-all {_gb(f.alltoall_bytes_per_step)} a step (dispatch and "
            f"combine); busiest expert rank {f.expert_load_busiest:,.1f} token copies against a "
            f"mean of {f.expert_load_mean:,.1f} (uniform routing)"
        )
    lines.append(
        f"step overhead  {_seconds(p.overhead_time_s)}  {p.overhead.source} (what is left "
        "beside the collectives' latency)"
    )
    for line in lines:
        stdout.print(line, markup=False)
    for note in p.notes:
        warn(note)


def _print_under_load(m: MixedStep) -> None:
    lines = [
        f"under load     {m.concurrency} sequences, {m.prompt_tokens}-token prompts, "
        f"{m.output_tokens} output tokens: {m.prefill_tokens_per_step:,.0f} prompt tokens ride "
        "on each decode step (concurrency x prompt / output, chunked prefill)",
        f"               time per output token {_seconds(m.step_time_s)} (alone "
        f"{_seconds(m.decode.step_time_s)}), {_rate(m.output_tokens_per_s)} output tokens/s "
        f"per replica; prompt matmuls at {_efficiency(m.prefill_efficiency)}",
    ]
    for line in lines:
        stdout.print(line, markup=False)


def _percent(value: float) -> str:
    return "-" if math.isnan(value) else f"{round(100 * value, 1) + 0.0:+.1f} %"


def summary_line(s: Summary) -> str:
    if s.runs == 0:
        return f"{s.split}: no runs"
    return f"{s.split}: {s.runs} runs, MAPE {100 * s.mape:.1f} %, bias {_percent(s.bias)}"


def backtest_json(result: Backtest) -> dict[str, Any]:
    from tasks.analysis.supply.backtest import GROUPINGS
    from tasks.analysis.supply.collectives import LINK_KINDS
    from tasks.analysis.workload.step_overhead import OVERHEAD_PER

    return {
        "runs": result.runs.to_dict("records"),
        "leave_one_source_out": {
            "sources": result.sources,
            "overall": result.loso_summary().as_json(),
            **{
                f"by_{grouping}": {s.split: s.as_json() for s in result.loso_by(grouping)}
                for grouping in GROUPINGS
            },
            "class_spread": dict(result.fitted.class_spread),
        },
        "summary": {s: result.summary(s).as_json() for s in ("fit", "holdout")},
        "summary_by_phase": {
            s: {p: result.summary(s, phase=p).as_json() for p in ("decode", "prefill")}
            for s in ("fit", "holdout")
        },
        "leave_one_out_summary": result.loo_summary().as_json(),
        "stream_defaults_summary": {
            s: result.summary(s, stream=True).as_json() for s in ("fit", "holdout")
        },
        "fitted": [
            {
                "phase": phase,
                "ceiling": "bandwidth" if phase == "decode" else "flops",
                "vendor": vendor,
                "efficiency": e.value,
                "spread": e.spread,
                "source": e.source,
            }
            for (phase, vendor), e in result.fitted.efficiencies.items()
        ]
        + [
            {
                "phase": phase,
                "ceiling": ceiling,
                "vendor": None,
                "efficiency": e.value,
                "spread": e.spread,
                "source": e.source,
            }
            for (phase, ceiling), e in result.fitted.other_ceiling.items()
        ],
        "expert_matmuls": [
            {
                "phase": "decode",
                "architecture_class": name,
                "share_of_dense": e.value,
                "spread": e.spread,
                "source": e.source,
            }
            for name, e in result.fitted.expert_matmuls.items()
        ],
        "overheads": [
            {
                "phase": phase,
                "seconds": o.seconds,
                "per": OVERHEAD_PER[phase],
                "source": o.source,
            }
            for phase, o in result.fitted.overheads.items()
        ],
        "collective_latency_per_call": [
            {"link": k.name, "seconds": k.latency_s, "source": k.source} for k in LINK_KINDS
        ],
        "skipped": result.skipped,
    }


def backtest(
    runs: RunsOption = None,
    catalog: CatalogOption = None,
    as_json: JsonOption = False,
    phase: Annotated[
        str, typer.Option("--phase", help="serving (decode and prefill) or training.")
    ] = "serving",
    training_runs: TrainingRunsOption = None,
    scale_out: ScaleOutOption = None,
) -> None:
    """Predict every published measured run with `memwall predict`'s maths and print the
    signed error per run (predicted / measured step time - 1), then the leave-one-source-out
    MAPE and bias (each source's rows predicted by defaults fitted on the other sources),
    overall and per architecture class, vendor, phase and source; then, as before, MAPE and bias for
    the rows the defaults were fitted on and, apart, for the held-out rows. --phase training: the
    published training runs (flows.cli_training)."""
    if phase not in ("serving", "training"):
        raise MemwallError(f"--phase {phase!r} is not valid; valid: serving, training")
    if phase == "training":
        backtest_training(training_runs, catalog, scale_out, as_json)
        return
    from hardware_profiles.catalog import load_catalog
    from tasks.analysis.supply.backtest import load_backtest

    watch = Stopwatch(STARTED)
    watch.lap("start-up")
    result = load_backtest(load_catalog(catalog), runs)
    watch.lap("backtest")
    if as_json:
        print_json(backtest_json(result), timings=watch.timings())
        return
    print_backtest(result, stdout)


def print_backtest(result: Backtest, out: Console) -> None:
    """The backtest as ``memwall backtest`` and ``benchmarks/backtest.py`` print it."""

    from tasks.analysis.supply.backtest import GROUPINGS
    from tasks.analysis.supply.collectives import LINK_KINDS
    from tasks.analysis.supply.published_fit import MIN_CLASS_SOURCES
    from tasks.analysis.workload.step_overhead import OVERHEAD_PER

    def say(line: str) -> None:
        out.print(line, markup=False, soft_wrap=True)

    if result.runs.empty:
        say("no published runs to backtest")
    else:
        say("run / split / model on hardware / phase, batch / metric: measured, predicted")
    for r in result.runs.to_dict("records"):
        say(
            f"{r['run_id']:<12} {r['split']:<7} {r['model_preset']} on {r['devices']} x "
            f"{r['hardware']} ({r['layout']}), {r['phase']} batch {r['batch']}, "
            f"{r['metric']}: measured {r['measured_value']:.4g}, predicted "
            f"{r['predicted_value']:.4g}, error {_percent(float(r['error']))} ({r['bound']}-bound)",
        )
    for (phase, vendor), e in result.fitted.efficiencies.items():
        ceiling = "bandwidth" if phase == "decode" else "compute"
        say(
            f"default {phase} {ceiling} efficiency ({vendor or 'all vendors'}): {_efficiency(e)}",
        )
    for (phase, ceiling), e in result.fitted.other_ceiling.items():
        name = "compute" if ceiling == "flops" else ceiling
        say(f"default {phase} {name} efficiency (all vendors): {_efficiency(e)}")
    for name, e in result.fitted.expert_matmuls.items():
        say(f"default decode routed-expert matmul share ({name}): {_efficiency(e)}")
    unfitted = sorted(
        set(result.runs["architecture_class"]) - {"dense", *result.fitted.expert_matmuls}
    ) if not result.runs.empty else []  # fmt: skip
    for name in unfitted:
        say(
            f"decode routed-expert matmuls ({name}): as the dense ones, no fit of their own "
            f"(the class's fit rows come from fewer than {MIN_CLASS_SOURCES} sources)"
        )
    for phase, o in result.fitted.overheads.items():
        say(f"{phase} step overhead: {_seconds(o.seconds)} per {OVERHEAD_PER[phase]}  {o.source}")
    say(
        "collectives' latency per call, counted apart from the step overhead: "
        + ", ".join(f"{k.name} {_seconds(k.latency_s)}" for k in LINK_KINDS)
    )
    say("error = predicted / measured step time - 1 (negative: predicted too fast)")
    if not result.runs.empty:
        say(
            f"{summary_line(result.loso_summary())} from {result.sources} "
            f"source{'s' if result.sources != 1 else ''} (headline: "
            "each source's rows predicted by defaults fitted on the other sources)"
        )
        for grouping in GROUPINGS:
            for part in result.loso_by(grouping):
                say(f"  {grouping} {summary_line(part)}")
        spreads = ", ".join(f"{k} {v:.2f}" for k, v in result.fitted.class_spread.items())
        say(f"  date bands' supply spread (RMS log error, leave-one-source-out): {spreads}")
        say(
            "fit/holdout split and leave-one-out on fit rows (secondary: rows of one source "
            "fall on both sides)"
        )
    for split in ("fit", "holdout"):
        say(summary_line(result.summary(split)))
        for phase in ("decode", "prefill"):
            part = result.summary(split, phase=phase)
            if part.runs:
                say(f"  {phase}: {summary_line(part).split(': ', 1)[1]}")
        stream = result.summary(split, stream=True)
        if stream.runs:
            say(f"  with the STREAM defaults instead: {summary_line(stream)}")
    loo = result.loo_summary()
    if loo.runs:
        say(f"{summary_line(loo)} (fit rows, each predicted by defaults fitted on the others)")
    noted: dict[str, list[str]] = {}
    for run_id, notes in zip(result.runs["run_id"], result.runs["notes"], strict=True):
        for note in notes:
            noted.setdefault(note, []).append(str(run_id))
    for note, run_ids in noted.items():
        say(f"note ({', '.join(run_ids)}): {note}")
    for note in result.skipped:
        say(f"skipped {note}")

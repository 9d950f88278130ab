"""Training from the command line: ``memwall predict --phase training --layout ...`` and
``memwall plan training`` (``memwall backtest --phase training``: flows.cli_training_backtest).

The maths is :mod:`tasks.analysis.training`; this module reads the options (declared in
:mod:`flows.cli_training_options`, which the other commands share), the catalog, the
scale-out table and the published training runs (whose fit gives the GEMM efficiency each
prediction uses, with its source), and prints. ``flows.cli_predict`` calls into it for the
training phase, so its own options stay the serving ones.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Final

import typer
from rich.console import Console

from flows.cli_common import CatalogOption, print_json, require_positive, warn
from flows.cli_training_options import (
    GlobalBatchTokensOption,
    ScaleOutOption,
    ScaleOutRateOption,
    TrainingRunsOption,
    global_batch,
    parse_tokens,
)
from flows.cli_workloads import ConfigOption, ContextOption, PresetOption, architecture_from_options
from flows.timings import STARTED, Stopwatch
from hardware_profiles.errors import MemwallError
from hardware_profiles.prefixes import si

if TYPE_CHECKING:
    import pandas as pd

    from tasks.analysis.supply.efficiency import Efficiency
    from tasks.analysis.training.layout import TrainingRun
    from tasks.analysis.training.step_time import StepTime
    from tasks.analysis.workload.architecture import Architecture

stdout = Console(highlight=False)
plan_app = typer.Typer(help="Search layouts: the fastest that fit.", no_args_is_help=True)

JsonOption = Annotated[bool, typer.Option("--json", help="Print the figures as JSON.")]
AcceleratorOption = Annotated[
    str, typer.Option("--accelerator", help="Catalog accelerator id, e.g. nvidia-h100-sxm.")
]


def seconds_text(value: float) -> str:
    return f"{value:.3g} s" if value >= 1 else f"{value * 1e3:.3g} ms"


def _accelerator_row(models: pd.DataFrame, accelerator: str) -> dict[str, Any]:
    known = list(models["accelerator_id"].astype(str))
    if accelerator not in known:
        raise MemwallError(
            f"--accelerator: unknown accelerator {accelerator!r}; the catalog has "
            f"{', '.join(sorted(known))}"
        )
    row = models.set_index("accelerator_id", drop=False).loc[accelerator]
    return {str(k): v for k, v in row.items()}


def _matmul_efficiency(
    models: pd.DataFrame, scale_out: pd.DataFrame, runs: Path | None, accelerator: str, compute: str
) -> Efficiency:
    """The GEMM efficiency fitted on the published training runs (most specific first), else
    the STREAM-based default."""
    from hardware_profiles.published_training_runs import read_published_training_runs
    from tasks.analysis.supply.calibration import DEFAULT_FLOPS_EFFICIENCY
    from tasks.analysis.supply.efficiency import Efficiency
    from tasks.analysis.training.backtest import fit_table, lookup, prepare

    cases, _ = prepare(read_published_training_runs(runs), models, scale_out)
    fitted = lookup(fit_table([c for c in cases if c.split == "fit"]), accelerator, compute)
    return fitted or Efficiency(DEFAULT_FLOPS_EFFICIENCY, "default (STREAM-based)", 0.0)


def predict_training(
    *,
    preset: str | None,
    config: Path | None,
    layout: str | None,
    global_batch_tokens: str | None,
    micro_batch: int,
    recompute: str,
    zero: int,
    optimizer: str | None,
    uneven_stages: bool,
    context: int,
    weights: str,
    activations: str,
    accelerator: str,
    devices: int | None,
    catalog: Path | None,
    scale_out: Path | None,
    scale_out_gb_s: float | None,
    training_runs: Path | None,
    as_json: bool,
) -> None:
    """``memwall predict --phase training --layout ...``: step time by part, memory per
    device by term, MFU, tokens/s and the wall it is closest to."""
    from hardware_profiles.catalog import load_catalog
    from hardware_profiles.scale_out import read_scale_out
    from tasks.analysis.training.backtest import STREAM_BANDWIDTH
    from tasks.analysis.training.layout import TrainingRun, check_run, parse_layout
    from tasks.analysis.training.network import network_for
    from tasks.analysis.training.plan import PlanError, nearest, plan
    from tasks.analysis.training.step_time import device_from_catalog, step_time

    watch = Stopwatch(STARTED)
    watch.lap("start-up")
    if layout is None:
        raise MemwallError("--phase training with a layout needs --layout, e.g. dp=64,tp=8,pp=16")
    if global_batch_tokens is None:
        raise MemwallError("--phase training --layout needs --global-batch-tokens, e.g. 16M")
    require_positive("--context", context)
    require_positive("--micro-batch", micro_batch)
    if scale_out_gb_s is not None:
        require_positive("--scale-out-gb-s", scale_out_gb_s)
    arch = architecture_from_options(preset, config)
    run = TrainingRun(
        layout=parse_layout(layout),
        global_batch=global_batch(parse_tokens(global_batch_tokens), context),
        sequence=context,
        micro_batch=micro_batch,
        zero=zero,
        recompute=recompute,
        optimizer=optimizer or ("adam-fp32" if weights == "fp32" else "adam"),
        compute=activations,
        uneven_stages=uneven_stages,
    )
    check_run(arch, run, devices)
    models = load_catalog(catalog)
    row = _accelerator_row(models, accelerator)
    table = read_scale_out(scale_out)
    device = device_from_catalog(row, run.compute)
    network = network_for(row, table, None if scale_out_gb_s is None else scale_out_gb_s * 1e9)
    matmul = _matmul_efficiency(models, table, training_runs, accelerator, run.compute)
    result = step_time(arch, run, device, network, matmul, STREAM_BANDWIDTH)
    fitting = []
    if not result.fits:
        try:
            candidates = plan(
                arch, run.layout.devices, run.global_batch, run.sequence, device, network,
                matmul, STREAM_BANDWIDTH, run.compute,
            )  # fmt: skip
            fitting = nearest(run, candidates)
        except PlanError as exc:
            warn(str(exc))
    watch.lap("predict")
    if as_json:
        document = {
            "model": arch.name,
            "accelerator": accelerator,
            **_run_json(run),
            **result.as_json(),
            "nearest_fitting_layouts": [_planned_json(p.run, p.result) for p in fitting],
        }
        print_json(document, timings=watch.timings())
        return
    _print_prediction(arch, run, accelerator, result)
    if fitting:
        say("layouts that fit, nearest first:")
        for p in fitting:
            say("  " + _planned_line(p.run, p.result))


def say(line: str) -> None:
    stdout.print(line, markup=False, soft_wrap=True)


def _run_json(run: TrainingRun) -> dict[str, Any]:
    return {
        "layout": run.layout.text(),
        "global_batch_sequences": run.global_batch,
        "global_batch_tokens": run.global_batch_tokens,
        "sequence": run.sequence,
        "micro_batch": run.micro_batch,
        "micro_batches": run.micro_batches,
        "zero": run.zero,
        "recompute": run.recompute,
        "optimizer": run.optimizer,
        "compute_precision": run.compute,
    }


def _planned_json(run: TrainingRun, result: StepTime) -> dict[str, Any]:
    return {
        **_run_json(run),
        "step_time_s": result.step_time_s,
        "mfu": result.mfu,
        "tokens_per_s": result.tokens_per_s,
        "memory_per_device_bytes": result.memory.total,
        "wall": result.wall,
        "nearest_other_wall": result.nearest_other_wall[0],
    }


def _planned_line(run: TrainingRun, result: StepTime) -> str:
    nearest, pressure = result.nearest_other_wall
    return (
        f"{run.layout.text():<28} ZeRO-{run.zero} {run.recompute:<9} micro {run.micro_batch}  "
        f"step {seconds_text(result.step_time_s):>8}  MFU {100 * result.mfu:4.1f} %  "
        f"{si(result.memory.total, 'B')}/device  bound: {result.wall} "
        f"(next: {nearest} {pressure:.2f})"
    )


_PART_NAMES: Final = {
    "matmul": "matmul",
    "recompute": "recompute",
    "hbm": "HBM beyond matmul",
    "tensor_parallel": "tensor parallel",
    "context_parallel": "context parallel",
    "expert_parallel": "expert parallel",
    "pipeline_p2p": "pipeline p2p",
    "pipeline_bubble": "pipeline bubble",
    "data_parallel": "data parallel (exposed)",
    "optimizer": "optimizer",
}


def _print_prediction(
    arch: Architecture, run: TrainingRun, accelerator: str, result: StepTime
) -> None:
    parts = ", ".join(
        f"{_PART_NAMES[k]} {seconds_text(v)}" for k, v in result.parts.items() if v > 0
    )
    memory = result.memory
    terms = {
        "weights": memory.weights,
        "gradients": memory.gradients,
        "optimizer state": memory.optimizer_state,
        "activations": memory.activations,
    }
    pressure = result.pressures()
    nearest, near = result.nearest_other_wall
    wall = result.wall
    if wall == "capacity":
        largest = max(terms, key=lambda k: terms[k])
        wall += (
            f": {si(memory.total, 'B')} per device exceeds the "
            f"{si(result.usable_memory_bytes, 'B')} usable; {largest} "
            f"({si(terms[largest], 'B')}) is the largest term"
        )
    else:
        wall += f" (next: {nearest} at {near:.2f} of its wall)"
    lines = [
        f"{arch.name} training on {run.layout.devices} x {accelerator}, layout "
        f"{run.layout.text()}; ZeRO-{run.zero}, {run.recompute} recompute, {run.optimizer}, "
        f"compute {run.compute}",
        f"global batch   {run.global_batch} x {run.sequence} tokens ({run.global_batch_tokens:,}); "
        f"micro-batch {run.micro_batch}, {run.micro_batches} micro-batches per step",
        f"step time      {seconds_text(result.step_time_s)} "
        f"(±{100 * result.matmul_efficiency.spread:.0f} %)   tokens/s {si(result.tokens_per_s)}"
        f"   MFU {100 * result.mfu:.1f} % of the dense bf16 peak",
        f"time by part   {parts}",
        f"memory/device  {si(memory.total, 'B')} of {si(result.usable_memory_bytes, 'B')} usable: "
        + ", ".join(f"{k} {si(v, 'B')}" for k, v in terms.items()),
        f"bound          {wall}",
        f"pressures      capacity {pressure['capacity']:.2f}, network {pressure['network']:.2f}, "
        f"HBM bandwidth {pressure['bandwidth']:.2f} (1 = at the wall)",
        f"GEMM eff.      {result.matmul_efficiency.value:.3f}  {result.matmul_efficiency.source}",
        f"HBM eff.       {result.bandwidth_efficiency.value:.3f}  "
        f"{result.bandwidth_efficiency.source}",
        f"network        {result.network_source}",
    ]
    for line in lines:
        say(line)


@plan_app.command("training")
def plan_training(
    preset: PresetOption = None,
    config: ConfigOption = None,
    devices: Annotated[int, typer.Option("--devices", help="Devices to lay the run over.")] = 8,
    global_batch_tokens: GlobalBatchTokensOption = None,
    context: ContextOption = 4096,
    activations: Annotated[
        str, typer.Option("--activations", "--precision", help="Matmul precision: bf16, fp8.")
    ] = "bf16",
    accelerator: AcceleratorOption = "nvidia-h100-sxm",
    top: Annotated[int, typer.Option("--top", help="Layouts to print.")] = 5,
    catalog: CatalogOption = None,
    scale_out: ScaleOutOption = None,
    scale_out_gb_s: ScaleOutRateOption = None,
    training_runs: TrainingRunsOption = None,
    as_json: JsonOption = False,
) -> None:
    """The fastest layouts of N devices that fit the model in memory, with step time, MFU,
    memory per device and the wall each is closest to. JSON: a list of layouts."""
    from hardware_profiles.catalog import load_catalog
    from hardware_profiles.scale_out import read_scale_out
    from tasks.analysis.training.backtest import STREAM_BANDWIDTH
    from tasks.analysis.training.network import network_for
    from tasks.analysis.training.plan import plan
    from tasks.analysis.training.step_time import device_from_catalog

    watch = Stopwatch(STARTED)
    watch.lap("start-up")
    require_positive("--devices", devices)
    require_positive("--context", context)
    require_positive("--top", top)
    if global_batch_tokens is None:
        raise MemwallError("plan training needs --global-batch-tokens, e.g. 16M")
    arch = architecture_from_options(preset, config)
    sequences = global_batch(parse_tokens(global_batch_tokens), context)
    models = load_catalog(catalog)
    row = _accelerator_row(models, accelerator)
    table = read_scale_out(scale_out)
    device = device_from_catalog(row, activations)
    network = network_for(row, table, None if scale_out_gb_s is None else scale_out_gb_s * 1e9)
    matmul = _matmul_efficiency(models, table, training_runs, accelerator, activations)
    found = plan(
        arch, devices, sequences, context, device, network, matmul, STREAM_BANDWIDTH, activations
    )[:top]
    watch.lap("plan")
    if as_json:
        print_json([_planned_json(p.run, p.result) for p in found], timings=watch.timings())
        return
    say(
        f"{arch.name} on {devices} x {accelerator}, {sequences} x {context} tokens per step, "
        f"compute {activations}: the {len(found)} fastest layouts that fit"
    )
    for p in found:
        say("  " + _planned_line(p.run, p.result))
    say(f"GEMM eff. {matmul.value:.3f} (±{100 * matmul.spread:.0f} %)  {matmul.source}")
    say(f"network   {network.source}")

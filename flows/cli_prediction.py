"""What ``memwall predict`` (of a model, or of a workload from the workloads file) and
``memwall backtest`` share: their options, and how a predicted step is printed."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from flows.cli_common import warn, warn_set_aside

if TYPE_CHECKING:
    from collections.abc import Mapping

    import pandas as pd

    from tasks.analysis.supply.efficiency import Efficiency
    from tasks.analysis.supply.mixed_step import MixedStep
    from tasks.analysis.supply.predict import Prediction
    from tasks.analysis.supply.production import ServedModel

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


def seconds(value: float) -> str:
    if value >= 1:
        return f"{value:.3g} s"
    if value >= 1e-3:
        return f"{value * 1e3:.3g} ms"
    return f"{value * 1e6:.3g} us"


def gb(value: float) -> str:
    return f"{value / 1e9:,.3g} GB"


def rate(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:.3g}"


def efficiency_text(e: Efficiency) -> str:
    return f"{e.value:.3f} (±{100 * e.spread:.0f} %)  {e.source}"


@dataclass(frozen=True)
class StepBand:
    """A predicted step's P10-P90 band and the supply spread it comes from (None: no band)."""

    spread: float | None
    source: str | None
    low_s: float | None
    high_s: float | None

    def as_json(self) -> dict[str, Any]:
        return {
            "supply_spread": self.spread,
            "supply_spread_source": self.source,
            "step_p10_s": self.low_s,
            "step_p90_s": self.high_s,
        }

    def text(self) -> str:
        if self.spread is None or self.low_s is None or self.high_s is None:
            return "no band: the efficiency's spread is unknown"
        return (
            f"P10-P90 {seconds(self.low_s)} to {seconds(self.high_s)} (supply spread "
            f"±{100 * self.spread:.0f} %, {self.source})"
        )


def step_band(
    calibrated: pd.DataFrame,
    served: ServedModel,
    accelerator: str,
    phase: str,
    flops: Efficiency,
    step_s: float,
) -> StepBand:
    """The audit's band around a predicted step of ``served``: a decode step's supply spread as
    the projection takes it (the class's leave-one-source-out spread where the efficiency is
    a fitted default), a prefill's from its compute efficiency."""
    from tasks.analysis.supply.selfcheck import sourced_supply_spread_on
    from tasks.analysis.supply.selfcheck import step_band as band_of

    sourced = (
        sourced_supply_spread_on(calibrated)(served, accelerator)
        if phase == "decode"
        else (flops.spread, "the prefill compute efficiency's own spread")
    )
    spread, source = (None, None) if sourced is None or sourced[0] is None else sourced
    low, high = band_of(step_s, spread)
    return StepBand(spread, source, low, high)


def print_prediction(
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
        f"per device     weights {gb(f.weight_bytes_per_device)}, "
        f"KV {gb(f.kv_bytes_per_device)}, activations "
        f"{gb(f.activation_bytes_per_device)}; a step reads {gb(f.step_bytes_per_device)} "
        f"and computes {f.step_flops_per_device / 1e12:.3g} TFLOP on the busiest device",
        f"step time      {seconds(p.step_time_s)}  (memory {seconds(p.memory_time_s)}, "
        f"compute {seconds(p.compute_time_s)}, communication "
        f"{seconds(p.communication_time_s)}, overhead {seconds(p.overhead_time_s)})",
        f"tokens/s       {rate(p.tokens_per_s)} per replica, "
        f"{rate(p.tokens_per_s_per_device)} per device",
        f"bound          {p.bound}",
        f"bandwidth eff. {efficiency_text(p.bandwidth_efficiency)}",
        f"compute eff.   {efficiency_text(p.flops_efficiency)}",
    ]
    if c.calls:
        lines.append(
            f"collectives    {c.calls} calls a step: {seconds(c.latency_s)} latency + "
            f"{seconds(c.bytes_s)} over the link  {p.link_source}"
        )
    if f.expert_read_bytes_per_device or f.expert_flops_per_device:
        lines.append(
            f"routed experts {gb(f.expert_read_bytes_per_device)} read, "
            f"{f.expert_flops_per_device / 1e12:.3g} TFLOP on the busiest device; share of "
            f"the dense efficiencies {efficiency_text(p.expert_efficiency)}"
        )
    if f.alltoall_bytes_per_step:
        lines.append(
            f"expert parallel all-to-all {gb(f.alltoall_bytes_per_step)} a step (dispatch and "
            f"combine); busiest expert rank {f.expert_load_busiest:,.1f} token copies against a "
            f"mean of {f.expert_load_mean:,.1f} (uniform routing)"
        )
    lines.append(
        f"step overhead  {seconds(p.overhead_time_s)}  {p.overhead.source} (what is left "
        "beside the collectives' latency)"
    )
    for line in lines:
        stdout.print(line, markup=False)
    for note in p.notes:
        warn(note)


def print_under_load(m: MixedStep) -> None:
    lines = [
        f"under load     {m.concurrency} sequences, {m.prompt_tokens}-token prompts, "
        f"{m.output_tokens} output tokens: {m.prefill_tokens_per_step:,.0f} prompt tokens ride "
        "on each decode step (concurrency x prompt / output, chunked prefill)",
        f"               time per output token {seconds(m.step_time_s)} (alone "
        f"{seconds(m.decode.step_time_s)}), {rate(m.output_tokens_per_s)} output tokens/s "
        f"per replica; prompt matmuls at {efficiency_text(m.prefill_efficiency)}",
    ]
    for line in lines:
        stdout.print(line, markup=False)


def calibrated_catalog(
    models: pd.DataFrame,
    measurements: Path | None,
    runs: Path | None,
    history: str | None,
    *,
    production: Mapping[tuple[str, str], Efficiency] | None = None,
    engine: str | None = None,
) -> pd.DataFrame:
    """The catalog calibrated as a prediction uses it: this host's measurements, the published
    runs' fit with each architecture class's leave-one-source-out spread (the audit's, its
    per-source folds kept on disk by ``tasks.published_backtest``: what the band around a
    prediction needs), the history's and production's efficiencies, in the audit's order; a
    history's set-aside files said on stderr."""
    from hardware_profiles.parquet import read_table
    from hardware_profiles.schema import MEASUREMENTS
    from tasks.analysis.supply.calibration import calibrate
    from tasks.history import read_measurements
    from tasks.published_backtest import published_backtest

    calibrated = calibrate(
        models,
        read_table(measurements, MEASUREMENTS) if measurements else None,
        fitted=published_backtest(models, runs).fitted,
        history=read_measurements(history) if history else None,
        production=production,
        engine=engine,
    )
    if history:
        warn_set_aside(history)
    return calibrated

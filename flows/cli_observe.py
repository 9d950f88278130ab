"""``memwall observe``: the efficiency this fleet's serving engines reach, from their telemetry.

One row per served model and accelerator model: the batch and context as served, the measured
decode step against memwall's prediction, achieved bandwidth (production efficiency, and DCGM's
measured utilization beside it), FLOP utilization, KV fill, and a verdict line. Telemetry that
cannot stand for one workload (a shared GPU, a missing profiling field, a scrape gap, too few
samples) is listed, never used. Library imports happen inside the command.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from flows.cli_common import CatalogOption, WorkloadsOption, print_json, stderr
from hardware_profiles.errors import MemwallError

if TYPE_CHECKING:
    import pandas as pd

stdout = Console(highlight=False)


def pools(values: list[str]) -> dict[str, str]:
    """``--prometheus URL`` or ``--prometheus POOL=URL`` (repeated, one per pool)."""
    out: dict[str, str] = {}
    for value in values:
        pool, sep, url = value.partition("=")
        if not sep or pool.startswith(("http://", "https://")):
            pool, url = "", value
        if pool in out:
            raise MemwallError(
                f"--prometheus: pool {pool or '(unnamed)'!r} given twice; give one URL per pool "
                "as POOL=URL"
            )
        out[pool] = url
    return out


def _percent(value: Any) -> str:
    return (
        "–"
        if value is None or (isinstance(value, float) and math.isnan(value))
        else (f"{100 * float(value):.0f} %")
    )


def _number(value: Any, fmt: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return format(float(value), fmt)


def _percent_change(value: Any) -> str:
    text = _number(None if value is None else 100 * float(value), "+.0f")
    return text if text == "–" else f"{text} %"


def print_rows(rows: pd.DataFrame) -> None:
    from tasks.analysis.supply.production import WEAKER, describe_ttft

    table = Table(
        "workload", "accelerator", "GPUs", "batch", "context", "step (ms)", "predicted",
        "error", "achieved TB/s", "% spec", "measured", "FLOP/s %", "KV fill", "TTFT",
    )  # fmt: skip
    for _, r in rows.iterrows():
        achieved = r["achieved_bandwidth_bytes_per_s"]
        table.add_row(
            str(r["workload_id"] or r["model_name"]),
            str(r["accelerator_id"]),
            str(r["gpus"]),
            _number(r["batch"], ".1f"),
            _number(r["context"], ",.0f"),
            _number(1e3 * r["measured_step_s"], ".2f"),
            _number(None if r["predicted_step_s"] is None else 1e3 * r["predicted_step_s"], ".2f"),
            _percent_change(r["error"]),
            _number(None if achieved is None else achieved / 1e12, ".2f"),
            _percent(r["production_bandwidth_efficiency"]),
            _percent(r["bandwidth_utilization"]) + ("*" if r["bandwidth_signal"] == WEAKER else ""),
            _percent(r["flops_utilization"]),
            _percent(r["kv_cache_usage"]),
            describe_ttft(r["ttft_s"], r["ttft_spread"]),
        )
    stdout.print(table)
    if (rows["bandwidth_signal"] == WEAKER).any():
        stdout.print(f"* measured {WEAKER}", markup=False)
    for _, r in rows.iterrows():
        who = f"{r['workload_id'] or r['model_name']} on {r['accelerator_id']}"
        if isinstance(r["verdict"], str):  # a row that does not calibrate has none (NaN)
            spread = float(r["production_bandwidth_spread"])
            stdout.print(f"{who}: {r['verdict']} (±{100 * spread:.0f} %, {r['source']})")
        else:
            stdout.print(f"{who}: no efficiency", markup=False)
        if isinstance(r["notes"], str) and r["notes"]:
            stdout.print(f"  {r['notes']}", markup=False)


def observe(
    prometheus: Annotated[
        list[str],
        typer.Option(
            "--prometheus",
            help="Prometheus base URL (dcgm-exporter and the serving engines' metrics), or "
            "POOL=URL, repeated for one Prometheus per pool.",
        ),
    ],
    days: Annotated[float, typer.Option("--days", help="Window to read, in days.")] = 7,
    workloads: WorkloadsOption = None,
    catalog: CatalogOption = None,
    min_samples: Annotated[
        int,
        typer.Option("--min-samples", help="Usable 5-minute samples a row needs to calibrate."),
    ] = 288,
    amd_sampling_interval_us: Annotated[
        float,
        typer.Option(
            "--amd-sampling-interval-us",
            help="The AMD device-metrics-exporter's profiler SamplingInterval (µs): the window "
            "its gpu_prof_fetch_size and gpu_prof_write_size count over.",
        ),
    ] = 1000.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the rows as JSON.")] = False,
) -> None:
    """Production efficiency per workload and accelerator model, from serving telemetry.
    JSON rows: workload_id, model_name, accelerator_id, gpus, batch, context, measured_step_s,
    predicted_step_s, error, bandwidth_utilization (DCGM, AMD's or the TPU's exporter: achieved
    over peak), production_bandwidth_efficiency, flops_utilization, kv_cache_usage, source,
    notes, ttft_s and ttft_spread (time to first token), and more (the spread, byte-model
    error, bandwidth_signal, verdict)."""
    from hardware_profiles.catalog import load_catalog
    from hardware_profiles.parquet import read_table
    from hardware_profiles.schema import WORKLOADS
    from tasks.analysis.workload.examples import example_workloads
    from tasks.observe import observe as observe_fleet

    if days <= 0:
        raise MemwallError(f"--days must be > 0, got {days:g}")
    if amd_sampling_interval_us < 1000:
        raise MemwallError(
            "--amd-sampling-interval-us must be at least 1000 (the exporter's minimum), got "
            f"{amd_sampling_interval_us:g}"
        )
    urls = pools(prometheus)
    frame = example_workloads() if workloads is None else read_table(workloads, WORKLOADS)
    seen, names = observe_fleet(
        urls,
        frame,
        load_catalog(catalog),
        days=days,
        min_samples=min_samples,
        amd_sampling_interval_us=amd_sampling_interval_us,
    )
    for line in (*(f"names found: {n}" for n in names), *seen.findings):
        stderr.print(line, markup=False, highlight=False, soft_wrap=True)
    if as_json:
        print_json(seen.rows.astype(object).where(seen.rows.notna(), None).to_dict("records"))
        return
    if seen.rows.empty:
        stdout.print("no serving engine's telemetry found in the window", markup=False)
        return
    print_rows(seen.rows)

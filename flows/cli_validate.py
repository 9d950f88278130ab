"""``memwall validate``: the workload model checked against this host's devices.

Per case it prints the step time the model predicts from ceilings measured in this run (the triad
and the GEMM rate at each part's own shape, timed in turns with the case; see
``tasks.analysis.supply.validation``), the measured one, their ratio, the XLA cross-check of bytes
and FLOPs, and what each prediction is made of (its parts and the ceiling that bound each). Like
``memwall probe`` it needs no Prefect server.
"""

from __future__ import annotations

import datetime as dt
import math
import sys
import uuid
from typing import Annotated, Any

import typer

from flows.cli_common import CatalogOption, print_json, stderr
from flows.timings import STARTED, Stopwatch
from hardware_profiles.prefixes import PREFIXES, si


def _si(value: float | None, unit: str) -> str:
    """Two decimals after a prefix up to T, thousands grouped, ``-`` where unknown."""
    return si(value, unit, spec=",.2f", unscaled=",.3g", prefixes=PREFIXES[:4], unknown="-")


def _seconds(value: Any) -> str:
    return "-" if value is None else f"{value * 1e3:,.1f} ms"


def _share(a: Any, b: Any) -> str:
    return "-" if a is None or b is None or not b else f"{a / b:.2f}"


def table(records: list[dict[str, Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    from reports.validation_text import parts_text, roofline_error, xla_bytes_share
    from tasks.analysis.supply.validation import median_abs_error

    out = Table(title="memwall validate", title_justify="left")
    for name in (
        "case",
        "layers",
        "predicted",
        "measured",
        "ratio",
        "model bytes",
        "XLA/model B",
        "model FLOPs",
        "XLA/model F",
        "status",
    ):
        out.add_column(name, justify="left" if name in ("case", "status") else "right")
    for r in records:
        out.add_row(
            str(r["case"]),
            f"{r['layers_run']}/{r['layers_total']}",
            _seconds(r["predicted_step_s"]),
            _seconds(r["measured_step_s"]),
            "-" if r["ratio"] is None else f"{r['ratio']:.2f}",
            _si(r["model_bytes"], "B"),
            xla_bytes_share(r),
            _si(r["model_flops"], "FLOP"),
            _share(r["xla_flops"], r["model_flops"]),
            str(r["status"]),
        )
    console = Console(highlight=False, width=None if sys.stdout.isatty() else 150)
    console.print(out)
    for r in records:
        if r["predicted_parts"]:
            made_of = f"{r['case']}: predicted = {parts_text(r)}"
            console.print(made_of, markup=False, soft_wrap=True, style="dim")
    for r in records:
        if r["reason"]:
            console.print(f"{r['case']}: {r['reason']}", markup=False, soft_wrap=True, style="dim")
    decode = [r["ratio"] for r in records if r["phase"] == "decode" and r["ratio"] is not None]
    error = median_abs_error(decode)
    if decode:
        console.print(
            f"decode: median |measured/predicted - 1| = {error:.0%} over {len(decode)} case(s); "
            "predicted = the workload model's bytes and FLOPs of the layers run and the head, "
            "per part (matmuls, experts, LM head, attention) the longer of its bytes at the "
            "triad's bandwidth and its FLOPs at the GEMM rate at its own shape (both measured "
            "here, in turns with the case), the parts added up; XLA/model B in brackets: less "
            "XLA's charge for the embedding gather (its whole table).",
            soft_wrap=True,
        )
        roofline = roofline_error(records)
        if not math.isnan(roofline):
            console.print(
                f"a single roofline on the triad and the square GEMM: median {roofline:.0%}",
                soft_wrap=True,
            )


def validate(
    quick: Annotated[
        bool,
        typer.Option("--quick", help="Small cases and one layer each: a minute or two on a CPU."),
    ] = False,
    model: Annotated[
        list[str] | None,
        typer.Option(
            "--model",
            metavar="PRESET",
            help="Validate these model presets (repeatable) instead of the built-in set.",
        ),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the cases as a JSON array instead of a table.")
    ] = False,
    catalog: CatalogOption = None,
) -> None:
    """Run workload-shaped probes (real decode steps and prefills of model presets) on this
    host's devices and compare each measured step time with the workload model's prediction
    from this run's measured ceilings; also XLA's own bytes and FLOPs of each step."""
    from tasks.analysis.workload.presets import preset

    for name in model or []:
        preset(name)  # an unknown preset fails now, listing the valid ones
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    from hardware_profiles.catalog import load_catalog
    from tasks.discovery import discover
    from tasks.probes.runner import run_steps
    from tasks.probes.validation import cases, record, validation_steps

    watch = Stopwatch(STARTED)
    watch.lap("start-up")
    table_ = load_catalog(catalog)
    accelerators = discover(table_)
    run_id = f"{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:6]}"
    first = {a.device_kind: a for a in reversed(accelerators)}
    steps, results = [], []
    for accelerator in first.values():
        chosen = cases(model, accelerator.platform, quick)
        more, found = validation_steps(accelerator, table_, chosen, quick, run_id)
        steps += more
        results.append(found)
    with Progress(
        "{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=stderr,
        transient=True,
    ) as progress:
        bar = progress.add_task("validating", total=len(steps))

        def show(label: str) -> None:
            done = progress.tasks[0].description != "validating"
            progress.update(bar, description=label, advance=1 if done else 0)

        run_steps(steps, f"validation on {accelerators[0].host}", show)
        progress.update(bar, completed=len(steps))
    records = [record(r) for found in results for r in found]
    watch.lap("validation")
    if as_json:
        print_json(records, timings=watch.timings())
    else:
        table(records)

"""``memwall probe``: measure this host's accelerators without the rest of the audit.

It runs the same probes as ``memwall audit`` (tasks.probes.runner) but needs no Prefect server:
measuring a host should not depend on orchestration being up.
"""

from __future__ import annotations

import datetime as dt
import math
import sys
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from flows.cli_common import CatalogOption, print_json, stderr, warn
from flows.timings import STARTED, Stopwatch
from hardware_profiles.errors import MemwallError

if TYPE_CHECKING:
    import pandas as pd


NoWaitOption = Annotated[
    bool,
    typer.Option(
        "--no-wait",
        help="If another memwall is probing this host, exit at once (status 75) instead of "
        "waiting for it.",
    ),
]


def _check_out(out: Path) -> None:
    """Fail before minutes of probing, not after, when the Parquet cannot be written."""
    if out.is_dir():
        raise MemwallError(f"{out}: is a folder; --out names the Parquet file to write")
    parent = next((p for p in out.absolute().parents if p.exists()), None)
    if parent is not None and not parent.is_dir():
        raise MemwallError(f"{out}: cannot write here, {parent} is a file, not a folder")


def _rate(value: Any, unit: str) -> str:
    if value is None or math.isnan(value):
        return "-"
    if unit == "bytes_per_s":
        return f"{value / 1e9:,.1f} GB/s"
    return f"{value / 1e12:,.3f} TFLOP/s" if value >= 1e12 else f"{value / 1e9:,.1f} GFLOP/s"


def _size(row: dict[Any, Any]) -> str:
    """A GEMM's n, else the working set."""
    if str(row["probe"]).startswith("matmul"):
        return next((p.strip() for p in str(row["detail"]).split(";") if "n=" in p), "")
    return f"{row['working_set_bytes'] / 2**20:,.0f} MiB" if row["working_set_bytes"] else ""


def _table(frame: pd.DataFrame) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="memwall probes", title_justify="left")
    for name in ("device", "probe", "dtype", "size", "best", "median", "CV", "of spec"):
        table.add_column(name, justify="left" if name in ("probe", "dtype") else "right")
    table.add_column("status")
    style = {"ok": "green", "unstable": "yellow", "waived": "dim", "failed": "bold red"}
    notes = []
    for row in frame.to_dict("records"):
        device = "all" if row["device_index"] == -1 else str(row["device_index"])
        table.add_row(
            device,
            str(row["probe"]),
            str(row["dtype"]),
            _size(row),
            _rate(row["best"], row["unit"]),
            _rate(row["median"], row["unit"]),
            "-" if math.isnan(row["cv"]) else f"{row['cv']:.1%}",
            "-" if math.isnan(row["efficiency"]) else f"{row['efficiency']:.0%}",
            f"[{style[row['status']]}]{row['status']}[/]",
        )
        if row["status"] in ("waived", "failed") or str(row["probe"]).endswith("-sustained"):
            reason = str(row["detail"]).split(" | ")[0]
            notes.append(f"{device} {row['probe']} {row['dtype']}: {reason}")
    # Wide enough for the table when piped to a file, where rich would assume 80 columns.
    console = Console(highlight=False, width=None if sys.stdout.isatty() else 140)
    console.print(table)
    for note in notes:
        console.print(note, markup=False, soft_wrap=True, style="dim")
    host = str(frame["detail"].iloc[-1]).split(" | host: ")[-1]
    console.print(f"host: {host}", markup=False, soft_wrap=True)


def probe(
    quick: Annotated[
        bool,
        typer.Option("--quick", help="Small sizes and few repetitions: seconds, not minutes."),
    ] = False,
    sustained: Annotated[
        float,
        typer.Option(
            "--sustained",
            metavar="SECONDS",
            min=0,
            help=(
                "Also repeat the triad and a GEMM for SECONDS each and report the drift "
                "from the first tenth to the last (throttling)."
            ),
        ),
    ] = 0.0,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json", help="Print the measurement rows as a JSON array instead of a table."
        ),
    ] = False,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Also write the measurements to this Parquet file."),
    ] = None,
    catalog: CatalogOption = None,
    no_wait: NoWaitOption = False,
) -> None:
    """Measure every accelerator JAX sees: STREAM bandwidth (copy, scale, add, triad, read),
    GEMM throughput per dtype and size, host<->device and device<->device transfer, each
    validated against a hand-derived value; prints a table, or JSON rows with --json."""
    if out is not None:
        _check_out(out)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    from hardware_profiles.catalog import load_catalog
    from hardware_profiles.parquet import write_table
    from hardware_profiles.schema import MEASUREMENTS
    from tasks.discovery import discover
    from tasks.hostlock import probing
    from tasks.probes.runner import ProbePlan, host_steps, run_steps

    table = load_catalog(catalog)
    accelerators = discover(table)
    plan = ProbePlan.for_platform(accelerators[0].platform, quick=quick, sustained_s=sustained)
    run_id = f"{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:6]}"
    steps = host_steps(accelerators, table, plan, run_id)
    watch = Stopwatch(STARTED)
    watch.lap("start-up")
    with (
        probing(f"memwall probe {run_id}", wait=not no_wait, on_wait=warn),
        Progress(
            "{task.description}",
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=stderr,
            transient=True,
        ) as progress,
    ):
        bar = progress.add_task("probing", total=len(steps))

        def show(label: str) -> None:
            done = progress.tasks[0].description != "probing"
            progress.update(bar, description=label, advance=1 if done else 0)

        frame = run_steps(steps, f"probe results on {accelerators[0].host}", show)
        progress.update(bar, completed=len(steps))
    watch.lap("probes")
    if out is not None:
        write_table(frame, out, MEASUREMENTS)
        stderr.print(f"measurements: {out}", markup=False)
    if as_json:
        print_json(frame[MEASUREMENTS.columns], indent=False, timings=watch.timings())
    else:
        _table(frame)

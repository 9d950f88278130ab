"""``memwall history``: what each run measured per device, the demand it projected, and (with
``--accuracy``) memwall's own error on this fleet, read back from the history dataset."""

from __future__ import annotations

import math
import sys
from typing import Annotated

import typer

from flows.cli_common import print_json, stderr, warn_set_aside
from flows.cli_ops import DEFAULT_HISTORY
from flows.timings import STARTED, Stopwatch


def _number(value: object) -> float | None:
    if value is None:
        return None
    number = float(str(value))
    return None if math.isnan(number) else number


def history(
    location: Annotated[
        str,
        typer.Option(
            "--history",
            help="History dataset: a folder or fsspec URL (the fleet's is <storage>/history).",
        ),
    ] = str(DEFAULT_HISTORY),
    as_json: Annotated[bool, typer.Option("--json", help="One JSON array on stdout.")] = False,
    demand: Annotated[
        bool, typer.Option("--demand", help="Only the demand each run projected, per workload.")
    ] = False,
    accuracy: Annotated[
        bool,
        typer.Option(
            "--accuracy",
            help="memwall's own error on this fleet: each run's predicted decode steps against "
            "what production measured since, per workload and overall.",
        ),
    ] = False,
) -> None:
    """Each device's bandwidth and matmul throughput over time; `degraded` marks a figure more
    than 10 % below the median of at least 3 earlier runs, `straggler` one more than 5 % below
    the median of its model's devices in the same run. Files that cannot be read are moved
    to quarantine/ beside them, and listed here (on stderr) until someone deals with them.
    Then the demand each run projected, per workload, and where it came from (Prometheus or
    the workloads file). With --accuracy, memwall's own error on this fleet instead: the steps
    each run predicted at the served batch and context against what production measured
    since; a workload whose latest measurement left its P10-P90 band is flagged."""
    from flows import cli_demand
    from tasks.history import read_measurements, trend

    if accuracy:
        from flows.cli_selfcheck import print_accuracy

        print_accuracy(location, as_json)
        return
    watch = Stopwatch(STARTED)
    watch.lap("start-up")
    if demand:
        demand_rows = cli_demand.demand_trend(location)
        warn_set_aside(location)
        watch.lap("history")
        if as_json:
            print_json(cli_demand.demand_json(demand_rows), timings=watch.timings())
        else:
            cli_demand.print_demand_trend(demand_rows, location)
        return

    rows = trend(read_measurements(location))
    if as_json:
        warn_set_aside(location)
        records = [
            {
                "host": r["host"],
                "device_index": int(str(r["device_index"])),
                "device_kind": r["device_kind"],
                "figure": r["figure"],
                "unit": r["unit"],
                "run_id": r["run_id"],
                "measured_at": r["measured_at"].isoformat(),
                "value": _number(r["value"]),
                "trailing_median": _number(r["trailing_median"]),
                "change": _number(r["change"]),
                "degraded": bool(r["degraded"]),
                "vs_model": _number(r["vs_model"]),
                "straggler": bool(r["straggler"]),
            }
            for _, r in rows.iterrows()
        ]
        watch.lap("history")
        print_json(records, timings=watch.timings())
        return
    demand_rows = cli_demand.demand_trend(location)
    warn_set_aside(location)
    if rows.empty:
        stderr.print(f"no runs recorded in {location} yet", markup=False)
        return
    from rich.console import Console
    from rich.table import Table

    table = Table("device", "figure", "run", "measured (UTC)", "value", "vs median", "vs model", "")
    for _, r in rows.iterrows():
        unit = "GB/s" if r["unit"] == "bytes_per_s" else "TFLOP/s"
        scale = 1e9 if r["unit"] == "bytes_per_s" else 1e12
        change = _number(r["change"])
        table.add_row(
            f"{r['host']} {r['device_kind']} #{r['device_index']}",
            str(r["figure"]),
            str(r["run_id"]),
            f"{r['measured_at']:%Y-%m-%d %H:%M}",
            f"{float(str(r['value'])) / scale:.4g} {unit}",
            "–" if change is None else f"{100 * change:+.1f} %",
            "–" if (peers := _number(r["vs_model"])) is None else f"{100 * peers:+.1f} %",
            " ".join(
                flag
                for flag, on in (
                    ("[bold red]degraded[/]", bool(r["degraded"])),
                    ("[bold red]straggler[/]", bool(r["straggler"])),
                )
                if on
            ),
        )
    # Wide enough for every column when piped, where rich would assume 80 columns.
    Console(width=None if sys.stdout.isatty() else 160).print(table)
    cli_demand.print_demand_trend(demand_rows, location)

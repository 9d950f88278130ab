"""``memwall catalog|roadmap``: the hardware side, the accelerators memwall knows and the
purchase plans that put them in pools.

Library imports happen inside the commands to keep ``memwall --help`` instant.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from flows.cli_common import CatalogOption, RoadmapOption, print_json, require_positive, stderr
from flows.timings import STARTED, Stopwatch
from hardware_profiles.errors import MemwallError
from hardware_profiles.months import parse_month, this_month

stdout = Console(highlight=False)

catalog_app = typer.Typer(
    help="List the accelerator catalog or add your own models to a catalog file.",
    no_args_is_help=True,
)
roadmap_app = typer.Typer(help="Show what a roadmap puts in each pool.", no_args_is_help=True)


# --- catalog ----------------------------------------------------------------------------------


@catalog_app.command("list")
def catalog_list(
    catalog: CatalogOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the rows as JSON.")] = False,
) -> None:
    """Accelerator models with memory, bandwidth, dense peaks (bf16, fp8, fp4), the bf16 ridge
    point, status and source (--json adds every column, strict JSON: null where unknown)."""
    from hardware_profiles.catalog import load_catalog

    watch = Stopwatch(STARTED)
    watch.lap("start-up")
    frame = load_catalog(catalog)
    watch.lap("load")
    if as_json:
        print_json(frame, timings=watch.timings())
        return
    table = Table()
    for header in ("id", "name", "memory", "bandwidth", "bf16", "fp8", "fp4", "ridge", "status"):
        table.add_column(header, no_wrap=header in ("id", "status"))
    table.add_column("source (host; full URL and note in --json)", overflow="fold")
    for r in catalog_records(frame):
        table.add_row(*_list_cells(r))
    stdout.print(table)
    stdout.print(
        "Peaks are dense TFLOP/s (vendor headlines are often sparse, twice these); ridge = bf16 "
        "FLOP per byte. status: shipping, announced (vendor figures, not yet on sale) or "
        "preliminary (figures not the vendor's own); each row's note says what was not "
        "confirmed (--json).",
        markup=False,
    )


def catalog_records(frame: Any) -> list[dict[str, Any]]:
    """Every column of every row as JSON-ready values: floats, ISO dates, None for unknown."""
    import pandas as pd

    records: list[dict[str, Any]] = []
    for row in frame.to_dict("records"):
        record: dict[str, Any] = {}
        for key, value in row.items():
            if isinstance(value, dt.date):
                record[key] = value.isoformat()
            elif hasattr(value, "tolist"):
                record[key] = value.tolist()
            elif value is None or (not isinstance(value, list | str) and pd.isna(value)):
                record[key] = None
            else:
                record[key] = value
        records.append(record)
    return records


def _list_cells(r: dict[str, Any]) -> list[str]:
    from urllib.parse import urlsplit

    from hardware_profiles.schema import GB, TB, TERA

    def peak(precision: str) -> str:
        value = r[f"peak_flops_per_s_{precision}"]
        return "-" if value is None else f"{value / TERA:,.0f}"

    bandwidth = float(r["mem_bandwidth_bytes_per_s"])
    bf16 = r["peak_flops_per_s_bf16"]
    return [
        r["accelerator_id"],
        r["name"],
        f"{r['memory_bytes'] / GB:.4g} GB",
        f"{bandwidth / TB:.3g} TB/s",
        peak("bf16"),
        peak("fp8"),
        peak("fp4"),
        "-" if bf16 is None else f"{bf16 / bandwidth:.0f}",
        r["status"] or "unknown",
        urlsplit(r["source_url"]).netloc if r["source_url"] else r["source"],
    ]


@catalog_app.command("add")
def catalog_add(
    accelerator_id: Annotated[str, typer.Option("--id", help="Unique accelerator id.")],
    vendor: Annotated[str, typer.Option("--vendor")],
    name: Annotated[str, typer.Option("--name")],
    memory_gb: Annotated[float, typer.Option("--memory-gb", help="Memory, GB (10^9 bytes).")],
    bandwidth_tb_s: Annotated[
        float, typer.Option("--bandwidth-tb-s", help="Memory bandwidth, TB/s (10^12 B/s).")
    ],
    source: Annotated[str, typer.Option("--source", help="Where the figures come from.")],
    to: Annotated[
        Path,
        typer.Option(
            "--to", help="Catalog Parquet file (created from the built-in catalog).", dir_okay=False
        ),
    ],
    pattern: Annotated[
        list[str] | None,
        typer.Option("--pattern", help="Substring of JAX's device_kind (repeatable)."),
    ] = None,
    fp32: Annotated[float | None, typer.Option("--fp32-tflops", help="Dense peak.")] = None,
    tf32: Annotated[float | None, typer.Option("--tf32-tflops", help="Dense peak.")] = None,
    bf16: Annotated[float | None, typer.Option("--bf16-tflops", help="Dense peak.")] = None,
    fp16: Annotated[float | None, typer.Option("--fp16-tflops", help="Dense peak.")] = None,
    fp8: Annotated[float | None, typer.Option("--fp8-tflops", help="Dense peak.")] = None,
    fp6: Annotated[float | None, typer.Option("--fp6-tflops", help="Dense peak.")] = None,
    fp4: Annotated[float | None, typer.Option("--fp4-tflops", help="Dense peak.")] = None,
    int8: Annotated[float | None, typer.Option("--int8-tops", help="Dense peak.")] = None,
    int4: Annotated[
        float | None,
        typer.Option("--int4-tops", help="Dense peak; only where the device has int4 units."),
    ] = None,
    tdp_watts: Annotated[float | None, typer.Option("--tdp-watts", help="Board power, W.")] = None,
    interconnect_gb_s: Annotated[
        float | None,
        typer.Option(
            "--interconnect-gb-s",
            help="Scale-up link (NVLink, ICI, Infinity Fabric) per device, GB/s PER DIRECTION.",
        ),
    ] = None,
    status: Annotated[
        str, typer.Option("--status", help="shipping, announced or preliminary.")
    ] = "shipping",
    source_url: Annotated[
        str | None, typer.Option("--source-url", help="Where the figures were read.")
    ] = None,
    note: Annotated[
        str | None, typer.Option("--note", help="What could not be confirmed, and why.")
    ] = None,
    release_date: Annotated[str | None, typer.Option("--release-date", help="YYYY-MM-DD.")] = None,
    price: Annotated[float | None, typer.Option("--price-usd", help="List price.")] = None,
) -> None:
    """Add an accelerator model (spec-sheet units, DENSE peaks, not sparse) to a catalog file."""
    import pandas as pd

    from hardware_profiles.catalog import Provenance, builtin_catalog, sheet_row
    from hardware_profiles.parquet import read_table, validate_frame, write_table
    from hardware_profiles.schema import CATALOG, CATALOG_STATUSES

    try:
        released = dt.date.fromisoformat(release_date) if release_date else None
    except ValueError:
        raise MemwallError(f"--release-date {release_date!r} is not a YYYY-MM-DD date") from None
    peaks = {
        "fp32": fp32,
        "tf32": tf32,
        "bf16": bf16,
        "fp16": fp16,
        "fp8": fp8,
        "fp6": fp6,
        "fp4": fp4,
        "int8": int8,
        "int4": int4,
    }
    for precision, value in peaks.items():
        unit = "tops" if precision.startswith("int") else "tflops"
        if value is not None and value <= 0:
            raise MemwallError(f"--{precision}-{unit} must be > 0, got {value:g}")
    for option, given in (("--tdp-watts", tdp_watts), ("--interconnect-gb-s", interconnect_gb_s)):
        if given is not None and given <= 0:
            raise MemwallError(f"{option} must be > 0, got {given:g}")
    if status not in CATALOG_STATUSES:
        raise MemwallError(f"--status {status!r}: valid are {', '.join(CATALOG_STATUSES)}")
    row = sheet_row(
        accelerator_id=accelerator_id,
        vendor=vendor,
        name=name,
        device_kind_patterns=list(pattern or []),
        memory_gb=memory_gb,
        mem_bandwidth_tb_s=bandwidth_tb_s,
        dense_tflops=peaks,
        release_date=released,
        list_price_usd=price,
        source=source,
        provenance=Provenance(
            tdp_watts=tdp_watts,
            interconnect_gb_s=interconnect_gb_s,
            status=status,
            source_url=source_url,
            checked_on=dt.date.today(),
            note=note,
        ),
    )
    new = validate_frame(pd.DataFrame([row]), CATALOG, "the new accelerator")
    existing = read_table(to, CATALOG) if to.exists() else builtin_catalog()
    combined = validate_frame(pd.concat([existing, new], ignore_index=True), CATALOG, to)
    write_table(combined, to, CATALOG)
    stderr.print(f"added {accelerator_id} to {to} ({len(combined)} models)", markup=False)


# --- roadmap ----------------------------------------------------------------------------------


@roadmap_app.command("show")
def roadmap_show(
    roadmap: RoadmapOption = None,
    scenario: Annotated[
        str | None,
        typer.Option("--scenario", help="Scenario to show (default: baseline)."),
    ] = None,
    start: Annotated[
        str | None, typer.Option("--start", help="First month, YYYY-MM (default: this month).")
    ] = None,
    months: Annotated[int, typer.Option("--months", help="Months to show.")] = 18,
    catalog: CatalogOption = None,
) -> None:
    """Each pool's fleet per month: count of each model, changes and spend."""
    from hardware_profiles.catalog import load_catalog, require_known
    from hardware_profiles.examples import SOURCE, example_roadmap
    from hardware_profiles.fleet import require_non_negative
    from hardware_profiles.parquet import read_table
    from hardware_profiles.roadmaps import fleet_by_month, pick_scenario, scenario_names
    from hardware_profiles.schema import ROADMAP

    require_positive("--months", months)
    frame = example_roadmap() if roadmap is None else read_table(roadmap, ROADMAP)
    source = SOURCE if roadmap is None else str(roadmap)
    require_known(load_catalog(catalog), frame["accelerator_id"], source)
    first = parse_month(start, "--start") if start else this_month()
    chosen = pick_scenario(frame, scenario, source)
    require_non_negative(chosen, source)
    names = scenario_names(frame)
    fleet = fleet_by_month(chosen, first, months)
    stdout.print(f"scenario {scenario or names[0]} (scenarios: {', '.join(names)})", markup=False)
    for pool, group in fleet.groupby("pool", sort=True):
        models = sorted(group["accelerator_id"].unique())
        table = Table(title=f"pool {pool}")
        table.add_column("month")
        for model in models:
            table.add_column(model, justify="right")
        table.add_column("spend", justify="right")
        for month, rows in group.groupby("month", sort=True):
            counts = rows.set_index("accelerator_id")
            cells = []
            for model in models:
                if model not in counts.index:
                    cells.append("")
                    continue
                count = int(counts.loc[model, "count"])
                delta = int(counts.loc[model, "delta"])
                cells.append(f"{count} ({delta:+d})" if delta else str(count))
            spend = float(rows["spend_usd"].sum())
            table.add_row(f"{month:%Y-%m}", *cells, f"${spend:,.0f}" if spend else "")
        stdout.print(table)

"""``memwall workloads sync`` and ``memwall workloads query``: demand from Prometheus.

``query`` writes the built-in PromQL for a serving engine's token counter into a workload's
``demand_query``; ``sync`` runs every workload's query over a window and writes the fitted
demand, growth and spread back (``tasks.analysis.demand`` states the statistic). Registered on
the ``workloads`` group; library imports happen inside the commands.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from flows.cli_common import WorkloadsOption, stderr
from flows.cli_workloads import workloads_app
from hardware_profiles.errors import MemwallError
from hardware_profiles.prefixes import si

if TYPE_CHECKING:
    import pandas as pd

stdout = Console(highlight=False)

PrometheusOption = Annotated[
    str,
    typer.Option("--prometheus", help="Prometheus base URL, e.g. http://prometheus:9090."),
]
AuditPrometheusOption = Annotated[
    str | None,
    typer.Option(
        "--prometheus",
        help="Prometheus base URL: workloads with a demand_query take their demand from it "
        "(90 days); if it cannot be reached the audit says so and uses the file's demand.",
    ),
]
ToOption = Annotated[
    Path,
    typer.Option(
        "--to", help="Workloads Parquet file to write (may be --workloads).", dir_okay=False
    ),
]


def _read(path: Path | None) -> tuple[pd.DataFrame, str]:
    from hardware_profiles.parquet import read_table
    from hardware_profiles.schema import WORKLOADS
    from tasks.analysis.workload.examples import SOURCE, example_workloads

    if path is None:
        return example_workloads(), SOURCE
    return read_table(path, WORKLOADS), str(path)


def print_provenance(provenance: pd.DataFrame) -> None:
    """One row per workload: where its demand came from, and the figures."""
    table = Table("workload", "source", "demand", "growth/yr", "± sigma", "window")
    for _, r in provenance.iterrows():
        sigma = r["demand_growth_sigma"]
        window = (
            f"{r['window_start']:%Y-%m-%d} to {r['window_end']:%Y-%m-%d}"
            if r["source"] == "prometheus"
            else "–"
        )
        table.add_row(
            str(r["workload_id"]),
            str(r["source"]),
            f"{si(float(r['demand_units_per_s']), '')}/s",
            f"{float(r['demand_growth_per_year']):+.1%}",
            "–" if sigma is None or sigma != sigma else f"{float(sigma):.1%}",
            window,
        )
    stdout.print(table)


@workloads_app.command("sync")
def sync_command(
    prometheus: PrometheusOption,
    to: ToOption,
    workloads: WorkloadsOption = None,
    days: Annotated[
        int, typer.Option("--days", help="Window of the range query and the growth fit.")
    ] = 90,
    only: Annotated[
        list[str] | None,
        typer.Option("--workload", help="Sync only this workload id (repeat for more)."),
    ] = None,
) -> None:
    """Fit each workload's demand_units_per_s (mean of the busiest hour of each of the last 7
    days), demand_growth_per_year and demand_growth_sigma (log-linear fit over the window) on
    its demand_query's answer, and write the table to --to."""
    from hardware_profiles.parquet import write_table
    from hardware_profiles.schema import WORKLOADS
    from tasks.demand import sync_demand

    frame, source = _read(workloads)
    if "demand_query" not in frame.columns or frame["demand_query"].isna().all():
        raise MemwallError(
            f"{source}: no workload has a demand_query; set one with `memwall workloads query`"
        )
    synced, provenance = sync_demand(
        frame, prometheus, source, days=days, only=set(only) if only else None
    )
    write_table(synced, to, WORKLOADS)
    print_provenance(provenance)
    fitted = int((provenance["source"] == "prometheus").sum())
    stderr.print(f"synced {fitted} workload(s) from {prometheus} into {to}", markup=False)


@workloads_app.command("query")
def query_command(
    engine: Annotated[str, typer.Option("--engine", help="vllm, sglang, trtllm or tgi.")],
    model: Annotated[
        str,
        typer.Option(
            "--model", help="Served model name as the engine labels it (TGI: the scrape job)."
        ),
    ],
    phase: Annotated[str, typer.Option("--phase", help="decode or prefill tokens.")] = "decode",
    workload: Annotated[
        str | None,
        typer.Option("--workload", help="Set this workload's demand_query (with --to)."),
    ] = None,
    workloads: WorkloadsOption = None,
    to: Annotated[
        Path | None, typer.Option("--to", help="Workloads file to write.", dir_okay=False)
    ] = None,
) -> None:
    """Print the built-in PromQL for a serving engine's token counter; with --workload and
    --to, set it as that workload's demand_query."""
    from tasks.prometheus import engine_query

    query = engine_query(engine, phase, model)
    if workload is None:
        print(query)
        return
    if to is None:
        raise MemwallError("--workload needs --to, the workloads file to write")
    from hardware_profiles.parquet import write_table
    from hardware_profiles.schema import WORKLOADS

    frame, source = _read(workloads)
    ids = frame["workload_id"].astype(str)
    if workload not in set(ids):
        raise MemwallError(
            f"{source} has no workload {workload!r}; its workloads are {', '.join(ids)}"
        )
    frame = frame.assign(demand_query=frame.get("demand_query")).astype({"demand_query": object})
    frame.loc[ids == workload, "demand_query"] = query
    write_table(frame, to, WORKLOADS)
    stderr.print(f"{workload}: demand_query = {query}", markup=False, soft_wrap=True)


def demand_trend(location: str) -> pd.DataFrame:
    """Every recorded run's demand per workload, oldest first, with the change since the
    workload's previous run."""
    from tasks.history import read_demand

    rows = read_demand(location)
    previous = rows.groupby("workload_id", sort=False)["demand_units_per_s"].shift(1)
    return rows.assign(change=rows["demand_units_per_s"].astype(float) / previous - 1.0)


def demand_json(rows: pd.DataFrame) -> list[dict[str, object]]:
    import pandas as pd

    def number(value: Any) -> float | None:
        return None if value is None or pd.isna(value) else float(value)

    def stamp(value: Any) -> str | None:
        return None if value is None or pd.isna(value) else pd.Timestamp(value).isoformat()

    return [
        {
            "workload_id": str(r["workload_id"]),
            "run_id": str(r["run_id"]),
            "recorded_at": stamp(r["recorded_at"]),
            "source": str(r["source"]),
            "demand_units_per_s": number(r["demand_units_per_s"]),
            "demand_growth_per_year": number(r["demand_growth_per_year"]),
            "demand_growth_sigma": number(r["demand_growth_sigma"]),
            "change": number(r["change"]),
            "query": r["query"] if isinstance(r["query"], str) else None,
            "window_start": stamp(r["window_start"]),
            "window_end": stamp(r["window_end"]),
        }
        for _, r in rows.iterrows()
    ]


def print_demand_trend(rows: pd.DataFrame, location: str) -> None:
    """The demand each run projected, per workload: the trend beside the hardware's."""
    import pandas as pd

    if rows.empty:
        stderr.print(f"no demand recorded in {location} yet", markup=False)
        return
    table = Table("workload", "run", "recorded (UTC)", "source", "demand", "growth/yr", "vs last")
    for _, r in rows.iterrows():
        change = r["change"]
        sigma = r["demand_growth_sigma"]
        table.add_row(
            str(r["workload_id"]),
            str(r["run_id"]),
            f"{r['recorded_at']:%Y-%m-%d %H:%M}",
            str(r["source"]),
            f"{si(float(r['demand_units_per_s']), '')}/s",
            f"{float(r['demand_growth_per_year']):+.1%}"
            + ("" if pd.isna(sigma) else f" ± {float(sigma):.1%}"),
            "–" if pd.isna(change) else f"{float(change):+.1%}",
        )
    stdout.print(table)

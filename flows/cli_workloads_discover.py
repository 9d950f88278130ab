"""``memwall workloads discover``: propose the workloads file from the fleet's own telemetry.

One row per served model and pool, read where ``memwall observe`` reads (dcgm-exporter and the
serving engines), matched to a preset by the served model's name, with its demand fitted on
the engine's token counter. The table is printed for review; the matched rows are appended to
``--to`` (validated as one table with what it holds, written atomically), each saying in its
``origin`` which series it came from. Nothing is written when nothing matched. Registered on
the ``workloads`` group; library imports happen inside the command.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from flows.cli_common import CatalogOption, RoadmapOption, print_json, stderr
from flows.cli_observe import _number, _percent, pools
from flows.cli_workloads import workloads_app
from hardware_profiles.errors import MemwallError
from hardware_profiles.prefixes import si

if TYPE_CHECKING:
    import pandas as pd

stdout = Console(highlight=False)


def _growth(growth: Any, sigma: Any) -> str:
    """``+12 % ± 30 %``: the fit's growth with its standard error (a week fits it loosely)."""
    if growth is None or growth != growth:
        return "–"
    return f"{100 * float(growth):+.0f} % ± {_percent(sigma)}"


def print_proposals(proposals: pd.DataFrame) -> None:
    table = Table(
        "workload", "served model", "pool", "preset", "accelerators", "GPUs", "batch",
        "context", "KV fill", "tokens/s", "growth/yr", "status",
    )  # fmt: skip
    for _, r in proposals.iterrows():
        demand = r["demand_units_per_s"]
        table.add_row(
            str(r["workload_id"]),
            str(r["model_name"]),
            str(r["pool"]),
            str(r["model_preset"] or "–"),
            str(r["accelerators"]),
            str(r["gpus"]),
            _number(r["batch"], ".1f"),
            _number(r["context"], ",.0f"),
            _percent(r["kv_cache_usage"]),
            "–" if demand is None or demand != demand else si(float(demand)),
            _growth(r["demand_growth_per_year"], r["demand_growth_sigma"]),
            str(r["status"]),
        )
    stdout.print(table)
    for _, r in proposals.iterrows():
        stdout.print(f"{r['workload_id']}: {r['source']}", markup=False, soft_wrap=True)


def workload_rows(proposals: pd.DataFrame) -> pd.DataFrame:
    """The proposed rows in the workloads table's words: decode, per token, the preset at the
    batch and context served (the figures the workload model gives, as ``workloads import``
    derives them)."""
    import pandas as pd

    return pd.DataFrame(
        {
            "workload_id": proposals["workload_id"],
            "name": proposals["model_name"],
            "owner": proposals["owner"],
            "pool": proposals["pool"],
            "phase": "decode",
            "precision": "bf16",
            "unit": "token",
            "model_preset": proposals["model_preset"],
            "batch": proposals["batch"].astype(float).round().clip(lower=1).astype("int64"),
            "context_tokens": proposals["context"].astype(float).round().astype("int64"),
            "weight_precision": proposals["weight_precision"],
            "kv_precision": proposals["kv_precision"],
            "demand_units_per_s": proposals["demand_units_per_s"].astype(float),
            "demand_growth_per_year": proposals["demand_growth_per_year"].astype(float),
            "demand_growth_sigma": proposals["demand_growth_sigma"].astype(float),
            "demand_query": proposals["demand_query"],
            "origin": proposals["source"],
        }
    )


def _pools(values: list[str], pool: str) -> dict[str, str]:
    urls = pools(values)
    if "" in urls:
        if pool in urls:
            raise MemwallError(f"--prometheus: pool {pool!r} given twice (--pool and POOL=URL)")
        urls[pool] = urls.pop("")
    return urls


@workloads_app.command("discover")
def discover_command(
    prometheus: Annotated[
        list[str],
        typer.Option(
            "--prometheus",
            help="Prometheus base URL (dcgm-exporter and the serving engines' metrics), or "
            "POOL=URL, repeated for one Prometheus per pool.",
        ),
    ],
    to: Annotated[
        Path,
        typer.Option(
            "--to", help="Workloads Parquet file to append to (created if absent).", dir_okay=False
        ),
    ],
    pool: Annotated[
        str, typer.Option("--pool", help="Roadmap pool of a URL given without POOL=.")
    ] = "inference",
    days: Annotated[
        int, typer.Option("--days", help="Window to read and fit demand over, in days (>= 2).")
    ] = 7,
    roadmap: RoadmapOption = None,
    catalog: CatalogOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the rows as JSON.")] = False,
) -> None:
    """Propose one workload per served model and pool from serving telemetry: the preset its
    served name matches (or a mark for --config), the accelerator models (DCGM modelName), the
    batch and context as served, KV fill, demand and growth from the engine's token counter and
    that demand_query. Prints the table for review and appends the matched rows to --to, each
    with its origin (the series it came from); writes nothing when nothing matched."""
    from flows.cli_workloads_add import _append_workloads, _check_pools, _fill_from_model
    from hardware_profiles.catalog import load_catalog
    from tasks.served_workloads import discover

    urls = _pools(prometheus, pool)
    found = discover(urls, load_catalog(catalog), days=days)
    for line in (*(f"names found: {n}" for n in found.names), *found.findings):
        stderr.print(line, markup=False, highlight=False, soft_wrap=True)
    if as_json:
        proposals = found.proposals.astype(object)
        print_json(proposals.where(proposals.notna(), None).to_dict("records"))
    elif not found.proposals.empty:
        print_proposals(found.proposals)
    if found.proposals.empty:
        raise MemwallError(
            f"no serving engine's telemetry found in {days} days at "
            f"{', '.join(urls.values())}; nothing written to {to}"
        )
    writable = found.writable
    if writable.empty:
        why = "; ".join(
            f"{r.model_name}: {r.status}" for r in found.proposals.itertuples(index=False)
        )
        raise MemwallError(
            f"no served model could be matched and measured ({why}); nothing written to {to}"
        )
    new = _fill_from_model(workload_rows(writable), "the discovered workloads")
    _check_pools(new, roadmap, catalog, "the discovered workloads")
    combined = _append_workloads(new, to, "the discovered workloads")
    left = len(found.proposals) - len(writable)
    stderr.print(
        f"wrote {len(writable)} discovered workloads to {to} ({len(combined)} in all)"
        + (f"; {left} not written (see status)" if left else ""),
        markup=False,
    )

"""Date bands with and without production telemetry: the P10-P90 width of every starving
workload on the built-in examples.

Without telemetry, decode supply takes the efficiency fitted on published runs, whose spread
is its residuals there (tens of per cent). With telemetry, each accelerator model of the
example roadmap gets a decode efficiency measured in production at the same central value
but with a 10 % spread (the log standard deviation ``memwall observe`` reports for a fleet
whose step times scatter by 10 %). Prints, per workload that starves in either run, its
starvation month and P10-P90 band both ways, the band's width in months (">" where it runs
past the horizon) and whether it meets the target (at most 4 months with telemetry; decode
only: telemetry measures decode steps). The central month moves too: a production efficiency
holds the step overhead the fitted default adds on top of it. It never fails.

The projection runs 48 months, not the audit's 18, so that a band is measured whole rather
than cut at the horizon (a band cut there says only ">n"). The last column is the floor the
spread alone sets: a supply known to a log standard deviation s moves the month a workload
growing by g a year meets its wall by ``12·z·s/ln(1+g)`` either side (z = 1.2816 for P10 and
P90), so no model can draw a band narrower than that from a fleet whose steps scatter by s.

    .venv/bin/python -m benchmarks.production_bands
"""

from __future__ import annotations

import datetime as dt
import math
import sys
from typing import Any

import pandas as pd

from hardware_profiles.catalog import builtin_catalog
from hardware_profiles.examples import example_roadmap
from tasks.analysis.projection.projector import project
from tasks.analysis.ranking.ranking import rank
from tasks.analysis.supply.backtest import load_backtest
from tasks.analysis.supply.calibrated import efficiencies_for
from tasks.analysis.supply.calibration import calibrate
from tasks.analysis.supply.efficiency import Efficiency
from tasks.analysis.workload.examples import example_workloads

START = dt.date(2026, 12, 1)
HORIZON = 48
Z_P90 = 1.2816
SPREAD = 0.10
TARGET_MONTHS = 4


def _index(month: Any) -> int | None:
    if month is None or pd.isna(month):
        return None
    when = pd.Timestamp(str(month))
    return (when.year - START.year) * 12 + when.month - START.month


def ranking(production: dict[tuple[str, str], Efficiency] | None) -> pd.DataFrame:
    catalog, roadmap = builtin_catalog(), example_roadmap()
    fitted = load_backtest(catalog).fitted
    calibrated = calibrate(catalog, fitted=fitted, production=production)
    projection = project(example_workloads(), roadmap, calibrated, START, HORIZON, catalog=catalog)
    return rank(projection, catalog=catalog).ranking.set_index("workload_id")


def _month(value: Any) -> str:
    return "beyond" if value is None or pd.isna(value) else f"{pd.Timestamp(str(value)):%Y-%m}"


def width(row: pd.Series) -> str:
    low, high = _index(row["starve_month_p10"]), _index(row["starve_month_p90"])
    if low is None:
        return "-"
    if high is None:
        return f">{HORIZON - low}"
    return str(high - low)


def main() -> int:
    catalog = builtin_catalog()
    baseline = calibrate(catalog, fitted=load_backtest(catalog).fitted)
    window = "benchmark: planted at a 10 % spread"
    production = {}
    for model in sorted(set(example_roadmap()["accelerator_id"])):
        fitted, _ = efficiencies_for(baseline, model, "decode", "bf16")
        source = f"measured in production, {window}"
        production[(model, "decode")] = Efficiency(fitted.value, source, SPREAD)
    before, after = ranking(None), ranking(production)
    growth = example_workloads().set_index("workload_id")["demand_growth_per_year"]
    print(
        f"{'workload':<18}{'phase':<8}{'without telemetry':<36}{'with telemetry':<36}"
        f"{'target':<18}floor"
    )
    for workload_id in before.index:
        b, a = before.loc[workload_id], after.loc[workload_id]
        if pd.isna(b["starve_month"]) and pd.isna(a["starve_month"]):
            continue
        phase = str(example_workloads().set_index("workload_id").loc[workload_id, "phase"])

        def shown(r: pd.Series) -> str:
            return (
                f"{_month(r['starve_month'])} ({_month(r['starve_month_p10'])} to "
                f"{_month(r['starve_month_p90'])}), {width(r)} mo"
            )

        wide = width(a)
        met = (
            "n/a (not decode)"
            if phase != "decode"
            else "met"
            if not wide.startswith(">") and wide != "-" and int(wide) <= TARGET_MONTHS
            else "MISSED"
        )
        floor = 2 * 12 * Z_P90 * SPREAD / math.log1p(float(growth.loc[workload_id]))
        print(f"{workload_id:<18}{phase:<8}{shown(b):<36}{shown(a):<36}{met:<18}{floor:.1f} mo")
    return 0


if __name__ == "__main__":
    sys.exit(main())

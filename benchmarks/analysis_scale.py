"""Projection, ranking (with replicas, latency targets and walls) and mitigations at scale:
100,000 workloads x 18 months on a roadmap of 4 pools (one served from mid-horizon) and 5
accelerator models, with per-phase efficiencies fitted on the built-in published runs and a
P10-P90 date band for every workload (demand_growth_sigma set).

Prints wall times, the peak resident memory of this process, and each time as a ratio to its
target and to a reference measured in the same run (sorting as many float64s as the
projection has cells), so figures from different machines can be compared. It never fails.

    .venv/bin/python -m benchmarks.analysis_scale [--workloads N] [--months M]
"""

from __future__ import annotations

import argparse
import datetime as dt
import resource
import sys
import time
from collections.abc import Callable
from typing import TypeVar

import numpy as np
import pandas as pd

from hardware_profiles.catalog import builtin_catalog
from hardware_profiles.parquet import validate_frame
from hardware_profiles.schema import ROADMAP, WORKLOADS
from tasks.analysis.projection.projector import project
from tasks.analysis.ranking.precision_needs import near_the_wall, precision_needs
from tasks.analysis.ranking.ranking import rank
from tasks.analysis.supply.backtest import load_backtest
from tasks.analysis.supply.calibration import calibrate

T = TypeVar("T")
POOLS = ("inference", "training", "edge")
START = dt.date(2027, 1, 1)
TOP_N = 10  # the workloads the report shows (reports.content.TOP_N)


def roadmap() -> pd.DataFrame:
    """4 pools, 5 models: H100 and L40S installed, H200, B200 and L4 arriving; the "new" pool
    has no hardware until 2027-06."""
    rows = [
        ("inference", "2025-06-01", "nvidia-h100-sxm", 512, 30_000.0),
        ("inference", "2027-04-01", "nvidia-h200-sxm", 256, 32_000.0),
        ("inference", "2027-10-01", "nvidia-b200", 256, 45_000.0),
        ("training", "2025-01-01", "nvidia-h100-sxm", 1024, 30_000.0),
        ("training", "2027-07-01", "nvidia-b200", 512, 45_000.0),
        ("edge", "2024-09-01", "nvidia-l40s", 64, 9_000.0),
        ("edge", "2027-02-01", "nvidia-l4", 128, 3_000.0),
        ("new", "2027-06-01", "nvidia-h200-sxm", 64, 32_000.0),
    ]
    frame = pd.DataFrame(
        rows, columns=["pool", "effective_date", "accelerator_id", "count_delta", "unit_cost_usd"]
    )
    frame["effective_date"] = pd.to_datetime(frame["effective_date"]).dt.date
    return validate_frame(frame, ROADMAP, "benchmark roadmap")


def workloads(n: int, seed: int = 0) -> pd.DataFrame:
    """n synthetic workloads: intensities from 0.5 to 20,000 FLOP/byte, growth 0 to 200 %."""
    rng = np.random.default_rng(seed)
    phase = rng.choice(["decode", "prefill", "training", "other"], n)
    flops = 10 ** rng.uniform(9, 12, n)
    intensity = 10 ** rng.uniform(-0.3, 4.3, n)
    frame = pd.DataFrame(
        {
            "workload_id": [f"w{i:06d}" for i in range(n)],
            "name": [f"workload {i}" for i in range(n)],
            "owner": rng.choice(["search", "ads", "chat", "research"], n),
            "pool": rng.choice(list(POOLS), n),
            "phase": phase,
            "precision": rng.choice(["bf16", "fp16", "fp8"], n),
            "unit": "token",
            "flops_per_unit": flops,
            "bytes_per_unit": flops / intensity,
            "memory_footprint_bytes": 1e10,
            "demand_units_per_s": 10 ** rng.uniform(0, 3, n),
            "demand_growth_per_year": rng.uniform(0, 2, n),
            "demand_growth_sigma": rng.uniform(0, 0.5, n),
            "batch": np.where(phase == "decode", rng.choice([1, 8, 32, 128], n), 1),
            "context_tokens": 4096,
            "tpot_slo_s": np.where(phase == "decode", 10 ** rng.uniform(-3, -1, n), np.nan),
            "ttft_slo_s": np.where(phase == "prefill", 10 ** rng.uniform(-1, 1, n), np.nan),
            "max_devices_per_replica": rng.choice([1, 4, 8], n),
            # One in ten starts mid-horizon; the "new" pool's hardware arrives mid-horizon.
            "start_month": pd.Series(dt.date(2027, 7, 1), index=range(n)).where(
                rng.random(n) < 0.1
            ),
        }
    )
    frame.loc[rng.random(n) < 0.05, "pool"] = "new"
    return validate_frame(frame, WORKLOADS, "benchmark workloads")


def timed(f: Callable[[], T]) -> tuple[T, float]:
    start = time.perf_counter()
    value = f()
    return value, time.perf_counter() - start


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workloads", type=int, default=100_000)
    parser.add_argument("--months", type=int, default=18)
    args = parser.parse_args(argv)

    table = workloads(args.workloads)
    plan = roadmap()
    catalog = builtin_catalog()
    (fitted, t_fit) = timed(lambda: load_backtest(catalog).fitted)
    calibrated = calibrate(catalog, fitted=fitted)
    cells = args.workloads * args.months
    reference_data = np.random.default_rng(1).random(cells)
    _, reference = timed(lambda: np.sort(reference_data))

    projection, t_project = timed(
        lambda: project(table, plan, calibrated, START, args.months, catalog=catalog)
    )
    _, t_rank = timed(lambda: rank(projection, with_mitigations=False, catalog=catalog))
    ranked, t_all = timed(lambda: rank(projection, catalog=catalog))
    top = ranked.order[:TOP_N]
    _, t_needs_top = timed(lambda: precision_needs(projection, top))
    near = np.flatnonzero(near_the_wall(projection))
    needs_all, t_needs_all = timed(lambda: precision_needs(projection, near))
    peak_gib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 2**30

    starving = int(ranked.ranking["starve_month"].notna().sum())
    banded = ranked.ranking["starve_month_p10"].notna() & ranked.ranking["starve_month_p90"].notna()
    print(f"fit defaults on published runs {t_fit:8.3f} s (once per run, not per workload)")
    helped = int(ranked.ranking["best_mitigation"].notna().sum())
    at_slo_batch = int(ranked.ranking["served_batch"].notna().sum())
    print(f"workloads x months        {args.workloads:,} x {args.months} = {cells:,} cells")
    print(f"reference: np.sort cells  {reference:8.3f} s")
    print(
        f"project                   {t_project:8.3f} s  ({t_project / reference:6.1f}x reference)"
    )
    print(f"rank (no mitigations)     {t_rank:8.3f} s  ({t_rank / reference:6.1f}x reference)")
    both = t_project + t_rank
    print(f"project + rank            {both:8.3f} s  target <= 3 s: {both / 3:5.2f} of it")
    full = t_project + t_all
    print(f"project + rank + mitig.   {full:8.3f} s  target <= 10 s: {full / 10:5.2f} of it")
    print(
        f"precision needs, top {TOP_N}  {t_needs_top:8.3f} s  (the report's table; "
        f"{t_needs_top / reference:.2f}x reference)"
    )
    print(
        f"precision needs, all      {t_needs_all:8.3f} s  ({len(near):,} workloads near the "
        f"wall x their pools' models = {len(needs_all):,} rows)"
    )
    print(f"peak resident memory      {peak_gib:8.2f} GiB target <= 4 GiB: {peak_gib / 4:5.2f}")
    print(f"starving in the horizon   {starving:,}; with a mitigation that helps: {helped:,}")
    print(f"served at the SLO batch   {at_slo_batch:,} (latency target caps their batch)")
    walls = {k: v for k, v in ranked.ranking["wall"].value_counts().items() if v > 0}
    print(f"walls                     {walls}")
    print(f"band within the horizon   {int(banded.sum()):,} starve by P90 (rank includes the band)")


if __name__ == "__main__":
    main(sys.argv[1:])

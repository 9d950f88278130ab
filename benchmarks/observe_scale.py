"""``memwall observe`` at fleet scale: its time against a real Prometheus on loopback.

Backfills ``--days`` of 5-minute samples for ``--gpus`` GPUs (dcgm-exporter's DRAM_ACTIVE and
GPU_UTIL) serving ``--workloads`` workloads (each on ``gpus / workloads`` one-GPU vLLM pods,
all of vLLM's series memwall reads), planted at a bandwidth efficiency of 0.5, then times the
whole of :func:`tasks.observe.observe` (the range queries, the joins, the workload model per
sample, the predictions). Prints the backfill time apart, the observe time against its target
(10 s for 200 GPUs x 20 workloads x 14 days), each of ``--repeat`` runs against the same
backfill and their median (the host is shared: one run is a noisy figure), and the recovered
efficiencies' worst error. It never fails. Needs Debian's ``prometheus`` package
(``prometheus`` and ``promtool``).

    .venv/bin/python -m benchmarks.observe_scale [--gpus 200] [--workloads 20] [--days 14]
        [--repeat 3]
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from hardware_profiles.catalog import builtin_catalog
from tasks.analysis.workload.examples import example_workloads
from tasks.analysis.workload.presets import preset
from tasks.analysis.workload.workload_model import estimate
from tasks.observe import observe
from tasks.prometheus import engine_query
from tests.integration.conftest import backfilled_prometheus

TARGET_S = 10.0
SCRAPE_S = 300
H100_BW = 3.35e12
PLANTED = 0.5
BATCH, PROMPT, GENERATED = 8, 2000, 400


def _lines(name: str, labels: str, times: np.ndarray, values: np.ndarray) -> list[str]:
    return [f"{name}{{{labels}}} {v:.6g} {int(t)}" for t, v in zip(times, values, strict=True)]


def openmetrics(gpus: int, workloads: int, days: float, end_s: float) -> str:
    times = np.arange(end_s - days * 86400, end_s + 1, SCRAPE_S)
    context = PROMPT + GENERATED // 2
    e = estimate(preset("llama-3.1-8b"), phase="decode", batch=BATCH, context=context)
    step = e.bytes_per_unit * BATCH / (H100_BW * PLANTED)
    tokens = np.cumsum(np.full(times.size, BATCH * SCRAPE_S / step))
    requests = np.cumsum(np.full(times.size, 2.0))
    lines: list[str] = []
    for g in range(gpus):
        model = f"bench/model-{g % workloads}"
        pod = f'namespace="serving",pod="pod-{g}"'
        labels = f'model_name="{model}",{pod}'
        lines += _lines("vllm:num_requests_running", labels, times, np.full(times.size, BATCH))
        lines += _lines("vllm:kv_cache_usage_perc", labels, times, np.full(times.size, 0.4))
        lines += _lines("vllm:inter_token_latency_seconds_count", labels, times, tokens)
        lines += _lines("vllm:inter_token_latency_seconds_sum", labels, times, tokens * step)
        for name, mean in (("prompt", PROMPT), ("generation", GENERATED)):
            lines += _lines(f"vllm:request_{name}_tokens_count", labels, times, requests)
            lines += _lines(f"vllm:request_{name}_tokens_sum", labels, times, requests * mean)
        gpu = (
            f'gpu="{g % 8}",UUID="GPU-{g}",modelName="NVIDIA H100 80GB HBM3",'
            f'Hostname="host-{g // 8}",{pod}'
        )
        lines += _lines("DCGM_FI_PROF_DRAM_ACTIVE", gpu, times, np.full(times.size, PLANTED))
        lines += _lines("DCGM_FI_DEV_GPU_UTIL", gpu, times, np.full(times.size, 90.0))
    return "\n".join([*lines, "# EOF", ""])


def workload_table(workloads: int) -> pd.DataFrame:
    base = example_workloads()
    row = base[base["workload_id"] == "agent-8b-decode"].iloc[0]
    frame = pd.DataFrame([row] * workloads).reset_index(drop=True)
    frame["workload_id"] = [f"bench-{k}" for k in range(workloads)]
    frame["demand_query"] = [
        engine_query("vllm", "decode", f"bench/model-{k}") for k in range(workloads)
    ]
    return frame


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gpus", type=int, default=200)
    parser.add_argument("--workloads", type=int, default=20)
    parser.add_argument("--days", type=float, default=14)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    end_s = float(int(time.time()) // 3600 * 3600)
    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        text = openmetrics(args.gpus, args.workloads, args.days, end_s)
        with backfilled_prometheus(Path(folder), text) as url:
            backfill_s = time.perf_counter() - started
            runs_s = []
            for _ in range(max(1, args.repeat)):
                started = time.perf_counter()
                seen, _ = observe(
                    {"": url},
                    workload_table(args.workloads),
                    builtin_catalog(),
                    days=args.days,
                    end=dt.datetime.fromtimestamp(end_s, dt.UTC),
                )
                runs_s.append(time.perf_counter() - started)
    samples = int(args.days * 86400 / SCRAPE_S)
    errors = seen.rows["production_bandwidth_efficiency"].astype(float) / PLANTED - 1
    print(
        f"{args.gpus} GPUs x {args.workloads} workloads x {args.days:g} days of 5-minute samples "
        f"({samples:,} per series): backfill {backfill_s:.1f} s (not counted)"
    )
    scale = args.gpus * args.days / (200 * 14)  # series x samples: the GPUs carry them
    print(
        f"memwall observe: {statistics.median(runs_s):.2f} s median of "
        f"{', '.join(f'{t:.2f}' for t in runs_s)} s for {len(seen.rows)} rows (target "
        f"{TARGET_S:g} s at 200 GPUs x 14 days; this run reads {scale:.2f} times its samples)"
    )
    print(f"recovered efficiency: worst error {100 * float(errors.abs().max()):.2f} % of planted")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Speed of the layout search: ``memwall plan training`` for Llama 3.1 405B on 16,384 H100s
with 16M tokens per step (target: under 5 s), timed in-process over a few repeats, with the
layouts it tried and the best it found. It never fails a build.

    .venv/bin/python -m benchmarks.training_plan [--devices N] [--repeats R]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

from hardware_profiles.catalog import builtin_catalog
from hardware_profiles.scale_out import read_scale_out
from tasks.analysis.supply.efficiency import Efficiency
from tasks.analysis.training.backtest import STREAM_BANDWIDTH
from tasks.analysis.training.network import network_for
from tasks.analysis.training.plan import candidates, plan
from tasks.analysis.training.step_time import device_from_catalog
from tasks.analysis.workload.presets import preset


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--devices", type=int, default=16_384)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    arch = preset("llama-3.1-405b")
    models = builtin_catalog().set_index("accelerator_id", drop=False)
    row = {str(k): v for k, v in models.loc["nvidia-h100-sxm"].items()}
    device = device_from_catalog(row, "bf16")
    network = network_for(row, read_scale_out())
    matmul = Efficiency(0.4, "benchmark: a fixed GEMM efficiency", 0.0)
    sequences = 16 * 2**20 // 8192
    tried = sum(1 for _ in candidates(arch, args.devices, sequences, 8192, 8, "bf16"))
    seconds = []
    for _ in range(args.repeats):
        started = time.perf_counter()
        found = plan(arch, args.devices, sequences, 8192, device, network, matmul, STREAM_BANDWIDTH)
        seconds.append(time.perf_counter() - started)
    best = found[0]
    print(
        f"plan training llama-3.1-405b on {args.devices} x nvidia-h100-sxm, 16M tokens: "
        f"{tried} layouts tried, {len(found)} fit; median {statistics.median(seconds):.2f} s, "
        f"max {max(seconds):.2f} s over {args.repeats} runs (target < 5 s: "
        f"{max(seconds) / 5:.2f} of it)"
    )
    print(
        f"best: {best.run.layout.text()} ZeRO-{best.run.zero} {best.run.recompute} micro "
        f"{best.run.micro_batch}: step {best.result.step_time_s:.2f} s, MFU "
        f"{100 * best.result.mfu:.1f} %, {best.result.memory.total / 1e9:.1f} GB per device"
    )


if __name__ == "__main__":
    main(sys.argv[1:])

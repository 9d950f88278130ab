"""How close memwall's probes come to the best reference on this CPU.

Interleaves, round by round, memwall's triad and copy probes with likwid-bench's hand-written
assembly kernels (where Debian's ``likwid`` is installed) and numpy's in-place equivalents, and
memwall's float32 GEMM with numpy's (OpenBLAS). Every figure counts bytes the STREAM way
(12 bytes per float32 triad element, 16 per float64 copy element). Interleaving spreads any
change in the machine's load over all contenders alike.

Targets: memwall triad / best reference triad >= 0.90 (median of rounds); memwall float32
GEMM / numpy >= 0.90 at n = 4096. This prints figures; it never fails a build.

    python benchmarks/probe_accuracy.py [--rounds 5] [--sizes 1024 2048 4096]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import jax
import numpy as np

from tasks.discovery import cpu_last_level_cache_bytes, host_state
from tasks.probes import bandwidth, matmul
from tasks.probes.kernels import BANDWIDTH_KERNELS, MATMUL

CPU = jax.devices("cpu")[0]
MiB = 2**20
MIN_WORKING_SET = 256 * MiB
# likwid-bench kernels, most capable first; the first this CPU supports is used.
LIKWID_TRIAD = ("stream_sp_avx512_fma", "stream_sp_avx_fma", "stream_sp_avx", "stream_sp_sse")
LIKWID_COPY = ("copy_avx512", "copy_avx", "copy_sse", "copy")
_FLAG_NEEDS = {"avx512": "avx512f", "fma": "fma", "avx": "avx", "sse": "sse2"}


def cpu_flags() -> set[str]:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def pick_likwid(candidates: Sequence[str], available: set[str], flags: set[str]) -> str | None:
    """The most capable kernel likwid offers that this CPU's flags allow."""
    for name in candidates:
        needs = [flag for part, flag in _FLAG_NEEDS.items() if part in name.split("_")]
        if name in available and all(flag in flags for flag in needs):
            return name
    return None


def likwid_kernels() -> set[str] | None:
    if shutil.which("likwid-bench") is None:
        return None
    listing = subprocess.run(["likwid-bench", "-a"], capture_output=True, text=True, check=False)
    return {line.split(" - ")[0].strip() for line in listing.stdout.splitlines() if " - " in line}


def likwid_rate(kernel: str, working_set_bytes: int, threads: int) -> float:
    """likwid-bench's bytes per second (it counts bytes as STREAM does)."""
    size_kb = working_set_bytes // 1024
    command = ["likwid-bench", "-t", kernel, "-w", f"S0:{size_kb}kB:{threads}"]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    match = re.search(r"MByte/s:\s+([\d.]+)", out)
    if match is None:
        raise RuntimeError(f"no MByte/s in likwid-bench output:\n{out}")
    return float(match.group(1)) * 1e6


def best_rate(work: float, run: Callable[[], object], repetitions: int) -> float:
    run()  # warm-up
    fastest = float("inf")
    for _ in range(repetitions):
        start = time.perf_counter()
        run()
        fastest = min(fastest, time.perf_counter() - start)
    return work / fastest


def numpy_triad(elements: int, repetitions: int) -> float:
    """a = b + s·c in place: numpy needs two passes (a = s·c; a += b), so this reference is
    slower than a one-pass triad would be, though counted at the same bytes."""
    a, b, c = (np.full(elements, v, np.float32) for v in (0.5, 0.25, 0.75))
    s = np.float32(0.4)

    def run() -> None:
        np.multiply(c, s, out=a)
        np.add(a, b, out=a)

    return best_rate(BANDWIDTH_KERNELS["triad"].bytes_moved(elements, 4), run, repetitions)


def numpy_copy(elements: int, repetitions: int) -> float:
    a, c = np.full(elements, 0.5, np.float32), np.zeros(elements, np.float32)
    work = BANDWIDTH_KERNELS["copy"].bytes_moved(elements, 4)
    return best_rate(work, lambda: np.copyto(c, a), repetitions)


def numpy_gemm(n: int, repetitions: int) -> float:
    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal((n, n), dtype=np.float32) for _ in range(2))
    c = np.empty((n, n), np.float32)
    return best_rate(MATMUL.flops(n), lambda: np.matmul(a, b, out=c), repetitions)


def median_line(label: str, ratios: list[float], target: float | None = None) -> str:
    verdict = ""
    if target is not None:
        met = "met" if statistics.median(ratios) >= target else "NOT met"
        verdict = f"  (target >= {target:.2f}: {met})"
    rounds = " ".join(f"{r:.3f}" for r in ratios)
    return f"{label:<34} median {statistics.median(ratios):.3f}  rounds [{rounds}]{verdict}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1024, 2048, 4096])
    parser.add_argument("--repetitions", type=int, default=10, help="per bandwidth probe")
    args = parser.parse_args()

    threads = os.cpu_count() or 1
    llc = cpu_last_level_cache_bytes() or 0
    working_set = max(4 * llc, MIN_WORKING_SET)
    triad_n = working_set // 12 // 1024 * 1024
    copy_n = working_set // 8 // 1024 * 1024
    available = likwid_kernels()
    flags = cpu_flags()
    l_triad = pick_likwid(LIKWID_TRIAD, available, flags) if available else None
    l_copy = pick_likwid(LIKWID_COPY, available, flags) if available else None
    print(f"host: {host_state().describe()}")
    print(f"jax {jax.__version__}; numpy {np.__version__}; {threads} threads")
    print(f"working set {working_set / MiB:.0f} MiB (>= 4x LLC {llc / MiB:g} MiB)")
    if available is None:
        print("likwid-bench: absent (Debian package 'likwid'); references are numpy only")
    else:
        print(f"likwid-bench kernels: triad {l_triad}, copy {l_copy} ({threads} threads)")

    ratios: dict[str, list[float]] = {}

    def note(key: str, value: float) -> None:
        ratios.setdefault(key, []).append(value)

    for round_no in range(1, args.rounds + 1):
        mw_triad = bandwidth.measure_bandwidth(
            "triad", CPU, "float32", triad_n, args.repetitions
        ).summary.best
        refs_triad = {"numpy": numpy_triad(triad_n, args.repetitions)}
        if l_triad:
            refs_triad["likwid"] = likwid_rate(l_triad, working_set, threads)
        mw_copy = bandwidth.measure_bandwidth(
            "copy", CPU, "float32", copy_n, args.repetitions
        ).summary.best
        refs_copy = {"numpy": numpy_copy(copy_n, args.repetitions)}
        if l_copy:
            refs_copy["likwid"] = likwid_rate(l_copy, working_set, threads)
        line = [f"round {round_no}: triad memwall {mw_triad / 1e9:.2f} GB/s"]
        line += [f"{k} {v / 1e9:.2f}" for k, v in refs_triad.items()]
        line += [f"| copy memwall {mw_copy / 1e9:.2f} GB/s"]
        line += [f"{k} {v / 1e9:.2f}" for k, v in refs_copy.items()]
        for name, ref in refs_triad.items():
            note(f"triad memwall/{name}", mw_triad / ref)
        note("triad memwall/best reference", mw_triad / max(refs_triad.values()))
        for name, ref in refs_copy.items():
            note(f"copy memwall/{name}", mw_copy / ref)
        note("copy memwall/best reference", mw_copy / max(refs_copy.values()))
        for n in args.sizes:
            reps = 3 if n >= 4096 else 5
            mw = matmul.measure_matmul(CPU, "float32", n, reps, warmup=1).summary.best
            ref = numpy_gemm(n, reps)
            line.append(f"| gemm {n} memwall {mw / 1e9:.1f} numpy {ref / 1e9:.1f} GFLOP/s")
            note(f"gemm f32 n={n} memwall/numpy", mw / ref)
        print(" ".join(line), flush=True)

    print("\npaired ratios (memwall best / reference best, per round):")
    for key, values in ratios.items():
        target = None
        if key == "triad memwall/best reference" or key == f"gemm f32 n={4096} memwall/numpy":
            target = 0.90
        print(median_line(key, values, target))


if __name__ == "__main__":
    main()

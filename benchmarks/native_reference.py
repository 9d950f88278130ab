"""Native references, measured in the same run as memwall's probes: what the same device gives
through code that is not JAX's. A probe figure over its spec says how near the data sheet it
came; over a native figure it says whether memwall's own measurement (its kernels, its timing,
XLA's code) leaves anything on the table that the hardware would give another program.

On a GPU: a device-to-device copy and a bf16 matmul through PyTorch (``Tensor.copy_``,
``torch.matmul``, cuBLAS), else CuPy (which has no bfloat16: its matmul runs float16), each
timed by CUDA events around every call. On a CPU: likwid-bench's hand-written copy (where
Debian's ``likwid`` is installed) and numpy's ``copyto`` and float32 ``matmul`` (OpenBLAS).
Bytes are counted as STREAM counts them, once read and once written; a GEMM is 2·n³ FLOPs.
"""

from __future__ import annotations

import importlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from benchmarks.probe_accuracy import LIKWID_COPY, cpu_flags, likwid_kernels, likwid_rate
from benchmarks.probe_accuracy import pick_likwid as pick_likwid_kernel
from tasks.probes.kernels import BANDWIDTH_KERNELS, MATMUL
from tasks.probes.statistics import Summary, summarize


@dataclass(frozen=True)
class Native:
    """One native figure: a copy's bytes per second or a matmul's FLOP/s, and where it came
    from (the library, its version, the call, the sizes, how it was timed)."""

    probe: str  # "copy" or "matmul", as memwall names the probe it stands beside
    dtype: str
    unit: str
    summary: Summary | None  # None: one figure, no repetitions of ours (likwid-bench's own)
    best: float
    source: str


@dataclass(frozen=True)
class References:
    """What was measured, and why anything expected was not."""

    found: list[Native]
    absent: list[str]

    def best(self, probe: str, dtype: str) -> Native | None:
        """The fastest native figure for ``probe`` at ``dtype`` (a copy: any dtype, bytes
        are bytes)."""
        fits = [n for n in self.found if n.probe == probe and (probe == "copy" or n.dtype == dtype)]
        return max(fits, key=lambda n: n.best, default=None)


def _module(name: str) -> Any | None:
    try:
        return importlib.import_module(name)
    except Exception:
        return None


def _copy_bytes(elements: int, itemsize: int) -> int:
    return BANDWIDTH_KERNELS["copy"].bytes_moved(elements, itemsize)


def _timed(work: float, call: Callable[[], float], repetitions: int, warmup: int = 2) -> Summary:
    """``call`` returns the seconds one run took (device time where it can tell)."""
    for _ in range(warmup):
        call()
    return summarize(work, [call() for _ in range(repetitions)])


def torch_references(ordinal: int, copy_elements: int, n: int, repetitions: int) -> References:
    torch = _module("torch")
    if torch is None:
        return References([], ["PyTorch is not installed"])
    if not torch.cuda.is_available():
        return References([], [f"PyTorch {torch.__version__} sees no CUDA device"])
    device = torch.device(f"cuda:{ordinal}")
    name = torch.cuda.get_device_name(device)
    version = f"PyTorch {torch.__version__} on {name} (cuda:{ordinal})"
    with torch.cuda.device(device):
        copy = _torch_copy(torch, device, copy_elements, repetitions)
        gemm = _torch_matmul(torch, device, n, repetitions)
        torch.cuda.empty_cache()
    work = _copy_bytes(copy_elements, 4)
    return References(
        [
            Native(
                "copy",
                "float32",
                "bytes_per_s",
                copy,
                copy.best,
                f"{version}: Tensor.copy_ of {copy_elements:,} float32 "
                f"({work / 2**30:.2f} GiB read+written), CUDA events, best of {copy.repetitions}",
            ),
            Native(
                "matmul",
                "bfloat16",
                "flops_per_s",
                gemm,
                gemm.best,
                f"{version}: torch.matmul of random {n}x{n} bfloat16 (cuBLAS), CUDA events, "
                f"best of {gemm.repetitions}",
            ),
        ],
        [],
    )


def _torch_events(torch: Any, run: Callable[[], Any]) -> Callable[[], float]:
    """One call's device time, by CUDA events recorded around it on the current stream."""

    def call() -> float:
        start = torch.cuda.Event(enable_timing=True)
        end = torch.cuda.Event(enable_timing=True)
        start.record()
        run()
        end.record()
        end.synchronize()
        return float(start.elapsed_time(end)) / 1e3

    return call


def _torch_copy(torch: Any, device: Any, elements: int, repetitions: int) -> Summary:
    src = torch.full((elements,), 0.5, dtype=torch.float32, device=device)
    dst = torch.zeros_like(src)
    copy = _timed(
        _copy_bytes(elements, 4), _torch_events(torch, lambda: dst.copy_(src)), repetitions
    )
    if not bool(torch.equal(src, dst)):
        raise RuntimeError("PyTorch's copy did not copy")
    return copy


def _torch_matmul(torch: Any, device: Any, n: int, repetitions: int) -> Summary:
    generator = torch.Generator(device=device).manual_seed(0)
    a, b = (
        torch.randn((n, n), generator=generator, device=device, dtype=torch.bfloat16) for _ in "ab"
    )
    c = torch.empty_like(a)
    return _timed(
        MATMUL.flops(n), _torch_events(torch, lambda: torch.matmul(a, b, out=c)), repetitions
    )


def cupy_references(ordinal: int, copy_elements: int, n: int, repetitions: int) -> References:
    cupy = _module("cupy")
    if cupy is None:
        return References([], ["CuPy is not installed"])
    version = f"CuPy {cupy.__version__} on CUDA device {ordinal}"

    def events(run: Callable[[], Any]) -> Callable[[], float]:
        def call() -> float:
            start, end = cupy.cuda.Event(), cupy.cuda.Event()
            start.record()
            run()
            end.record()
            end.synchronize()
            return float(cupy.cuda.get_elapsed_time(start, end)) / 1e3

        return call

    with cupy.cuda.Device(ordinal):
        src = cupy.full((copy_elements,), 0.5, dtype=cupy.float32)
        dst = cupy.zeros_like(src)
        copy = _timed(
            _copy_bytes(copy_elements, 4), events(lambda: cupy.copyto(dst, src)), repetitions
        )
        rng = cupy.random.default_rng(0)
        a, b = (rng.standard_normal((n, n), dtype=cupy.float32).astype(cupy.float16) for _ in "ab")
        c = cupy.empty_like(a)
        gemm = _timed(MATMUL.flops(n), events(lambda: cupy.matmul(a, b, out=c)), repetitions)
    return References(
        [
            Native(
                "copy",
                "float32",
                "bytes_per_s",
                copy,
                copy.best,
                f"{version}: cupy.copyto of {copy_elements:,} float32, CUDA events, "
                f"best of {copy.repetitions}",
            ),
            Native(
                "matmul",
                "float16",
                "flops_per_s",
                gemm,
                gemm.best,
                f"{version}: cupy.matmul of random {n}x{n} float16 (cuBLAS; CuPy has no "
                f"bfloat16), CUDA events, best of {gemm.repetitions}",
            ),
        ],
        [],
    )


def gpu_references(ordinal: int, copy_elements: int, n: int, repetitions: int) -> References:
    """PyTorch where it runs, else CuPy; each absence said."""
    first = torch_references(ordinal, copy_elements, n, repetitions)
    if first.found:
        return first
    second = cupy_references(ordinal, copy_elements, n, repetitions)
    return References(second.found, first.absent + second.absent)


def _wall(run: Callable[[], Any]) -> Callable[[], float]:
    def call() -> float:
        start = time.perf_counter()
        run()
        return time.perf_counter() - start

    return call


def cpu_references(copy_elements: int, n: int, repetitions: int) -> References:
    """numpy's copy and float32 matmul, and likwid-bench's copy at the same working set."""
    found, absent = [], []
    src = np.full(copy_elements, 0.5, np.float32)
    dst = np.zeros(copy_elements, np.float32)
    work = _copy_bytes(copy_elements, 4)
    copy = _timed(work, _wall(lambda: np.copyto(dst, src)), repetitions)
    found.append(
        Native(
            "copy",
            "float32",
            "bytes_per_s",
            copy,
            copy.best,
            f"numpy {np.__version__}: copyto of {copy_elements:,} float32 "
            f"({work / 2**20:,.0f} MiB read+written), one thread, wall clock, "
            f"best of {copy.repetitions}",
        )
    )
    available = likwid_kernels()
    kernel = pick_likwid_kernel(LIKWID_COPY, available, cpu_flags()) if available else None
    if kernel is None:
        absent.append("likwid-bench is not installed (Debian package likwid)")
    else:
        threads = os.cpu_count() or 1
        rate = likwid_rate(kernel, work, threads)
        found.append(
            Native(
                "copy",
                "float64",
                "bytes_per_s",
                None,
                rate,
                f"likwid-bench -t {kernel} -w S0:{work // 1024}kB:{threads} "
                f"(hand-written assembly, {threads} threads; its own best figure)",
            )
        )
    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal((n, n), dtype=np.float32) for _ in "ab")
    c = np.empty((n, n), np.float32)
    gemm = _timed(MATMUL.flops(n), _wall(lambda: np.matmul(a, b, out=c)), repetitions)
    found.append(
        Native(
            "matmul",
            "float32",
            "flops_per_s",
            gemm,
            gemm.best,
            f"numpy {np.__version__}: matmul of random {n}x{n} float32 (its BLAS), wall clock, "
            f"best of {gemm.repetitions}",
        )
    )
    absent.append("no native bfloat16 matmul on a CPU here (numpy has none)")
    return References(found, absent)

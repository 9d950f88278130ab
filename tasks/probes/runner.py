"""Run a plan of probes on one accelerator and turn each outcome into a measurements row.

A probe that cannot run (a dtype the device lacks, memory it cannot get even after shrinking)
becomes a ``waived`` row with the reason; a result that fails validation becomes ``failed``.
Neither stops the other probes.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jax
import jaxlib
import numpy as np
import pandas as pd

from hardware_profiles.parquet import validate_frame
from hardware_profiles.schema import MEASUREMENTS, PEAK_PRECISIONS, Accelerator, MiB, peak_column
from tasks.analysis.calibration import DTYPE_PRECISION
from tasks.discovery import free_memory_bytes, last_level_cache_bytes
from tasks.probes import bandwidth, matmul
from tasks.probes.kernels import BANDWIDTH_KERNELS
from tasks.probes.statistics import Summary

Progress = Callable[[str], None]
_SHRINK_TRIES = 3


@dataclass(frozen=True)
class ProbePlan:
    """Which probes to run, how big and how often."""

    bandwidth_kernels: tuple[str, ...] = ("triad",)
    bandwidth_dtypes: tuple[str, ...] = ("float32",)
    matmul_dtypes: tuple[str, ...] = ("float32", "bfloat16")
    matmul_sizes: tuple[int, ...] = (1024, 2048)
    repetitions: int = 20
    warmup: int = 2
    # Bandwidth working set: at least this many times the last-level cache, and this floor.
    cache_multiple: int = 4
    min_working_set_bytes: int = 256 * MiB
    # Never use more than this fraction of the device's free memory.
    max_free_fraction: float = 0.4

    @classmethod
    def quick(cls) -> ProbePlan:
        """Small and fast, for tests and demos: still 4x the last-level cache."""
        return cls(
            matmul_dtypes=("float32",),
            matmul_sizes=(256, 512),
            repetitions=5,
            warmup=1,
            min_working_set_bytes=4 * MiB,
        )

    def __post_init__(self) -> None:
        unknown = [k for k in self.bandwidth_kernels if k not in BANDWIDTH_KERNELS]
        if unknown:
            raise ValueError(
                f"unknown bandwidth kernel(s) {unknown}; valid: {', '.join(BANDWIDTH_KERNELS)}"
            )
        if self.repetitions < 1:
            raise ValueError("repetitions must be >= 1")


def software_versions() -> str:
    backend = jax.extend.backend.get_backend() if hasattr(jax, "extend") else None
    platform_version = getattr(backend, "platform_version", "") if backend else ""
    jaxlib_version = getattr(jaxlib, "__version__", "unknown")
    return f"jax {jax.__version__}; jaxlib {jaxlib_version}; {platform_version}".strip("; ")


def bandwidth_elements(plan: ProbePlan, kernel: str, dtype: str, device: Any) -> int:
    """Elements per array so the kernel's working set is out of cache and fits in memory."""
    arrays = BANDWIDTH_KERNELS[kernel].arrays
    itemsize = np.dtype(jax.numpy.dtype(dtype)).itemsize
    target = max(
        plan.cache_multiple * last_level_cache_bytes(device.platform), plan.min_working_set_bytes
    )
    free = free_memory_bytes(device)
    if free is not None:
        target = min(target, int(free * plan.max_free_fraction))
    elements = target // (arrays * itemsize)
    return max(1024, elements - elements % 1024)


def unsupported_reason(dtype: str) -> str | None:
    """Why JAX cannot run ``dtype`` here, or None. Checked up front: JAX would otherwise
    silently run float64 as float32 and the row would be mislabelled."""
    try:
        jdtype = jax.numpy.dtype(dtype)
    except TypeError:
        return f"unknown dtype {dtype!r}"
    if jax.dtypes.canonicalize_dtype(jdtype) != jdtype:
        return f"{dtype} needs JAX's 64-bit mode (JAX_ENABLE_X64=1)"
    return None


def _specs(catalog: pd.DataFrame, accelerator_id: str | None) -> dict[str, float]:
    """The catalog's numeric spec figures for one model (none for an unknown device)."""
    rows = catalog[catalog["accelerator_id"] == accelerator_id]
    if accelerator_id is None or rows.empty:
        return {}
    row = rows.iloc[0]
    return {
        name: float(row[name])
        for name in ("mem_bandwidth_bytes_per_s", *(peak_column(p) for p in PEAK_PRECISIONS))
        if pd.notna(row[name])
    }


def _is_out_of_memory(exc: BaseException) -> bool:
    text = str(exc).lower()
    return "resource_exhausted" in text or "out of memory" in text or isinstance(exc, MemoryError)


def _reason(exc: BaseException) -> str:
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {first}"[:300]


def _status(summary: Summary | None, error: float, tolerance: float) -> str:
    if summary is None:
        return "waived"
    if not math.isfinite(error) or error > tolerance:
        return "failed"
    return "unstable" if summary.unstable else "ok"


def probe_accelerator(
    accelerator: Accelerator,
    catalog: pd.DataFrame,
    plan: ProbePlan,
    run_id: str,
    progress: Progress | None = None,
) -> pd.DataFrame:
    """Every probe of ``plan`` on one device, as validated measurements rows."""
    device = jax.devices()[accelerator.device_index]
    specs = _specs(catalog, accelerator.accelerator_id)
    software = software_versions()
    rows: list[dict[str, Any]] = []

    def record(
        probe: str,
        dtype: str,
        unit: str,
        working_set: int,
        summary: Summary | None,
        spec: float | None,
        status: str,
        detail: str,
    ) -> None:
        best = summary.best if summary else None
        rows.append(
            {
                "run_id": run_id,
                "measured_at": dt.datetime.now(dt.UTC),
                "host": accelerator.host,
                "device_index": accelerator.device_index,
                "platform": accelerator.platform,
                "device_kind": accelerator.device_kind,
                "accelerator_id": accelerator.accelerator_id,
                "probe": probe,
                "dtype": dtype,
                "working_set_bytes": working_set,
                "repetitions": summary.repetitions if summary else 0,
                "best": best,
                "median": summary.median if summary else None,
                "p10": summary.p10 if summary else None,
                "p90": summary.p90 if summary else None,
                "cv": summary.cv if summary else None,
                "unit": unit,
                "spec": spec,
                "efficiency": best / spec if best is not None and spec else None,
                "status": status,
                "detail": detail,
                "software": software,
            }
        )

    bandwidth_spec = specs.get("mem_bandwidth_bytes_per_s")
    for kernel in plan.bandwidth_kernels:
        for dtype in plan.bandwidth_dtypes:
            if progress:
                progress(f"{accelerator.device_kind} #{accelerator.device_index}: {kernel} {dtype}")
            reason = unsupported_reason(dtype)
            if reason:
                record(kernel, dtype, "bytes_per_s", 0, None, bandwidth_spec, "waived", reason)
                continue
            elements = bandwidth_elements(plan, kernel, dtype, device)
            itemsize = np.dtype(jax.numpy.dtype(dtype)).itemsize
            working_set = BANDWIDTH_KERNELS[kernel].arrays * elements * itemsize
            for _ in range(_SHRINK_TRIES):
                try:
                    bw = bandwidth.measure_bandwidth(
                        kernel, device, dtype, elements, plan.repetitions, plan.warmup
                    )
                except Exception as exc:
                    if _is_out_of_memory(exc) and elements > 1024:
                        elements //= 2
                        working_set //= 2
                        continue
                    record(
                        kernel,
                        dtype,
                        "bytes_per_s",
                        working_set,
                        None,
                        bandwidth_spec,
                        "waived",
                        _reason(exc),
                    )
                    break
                tol = bandwidth.tolerance(dtype)
                status = _status(bw.summary, bw.max_relative_error, tol)
                record(
                    kernel,
                    dtype,
                    "bytes_per_s",
                    bw.working_set_bytes,
                    bw.summary,
                    bandwidth_spec,
                    status,
                    f"{BANDWIDTH_KERNELS[kernel].formula}; n={elements}; max relative error "
                    f"{bw.max_relative_error:.2e} (tolerance {tol:.1e})",
                )
                break
            else:
                record(
                    kernel,
                    dtype,
                    "bytes_per_s",
                    working_set,
                    None,
                    bandwidth_spec,
                    "waived",
                    "out of memory even after shrinking the arrays",
                )

    for dtype in plan.matmul_dtypes:
        precision = DTYPE_PRECISION.get(dtype)
        spec = specs.get(peak_column(precision)) if precision else None
        for n in plan.matmul_sizes:
            if progress:
                progress(
                    f"{accelerator.device_kind} #{accelerator.device_index}: matmul {dtype} n={n}"
                )
            reason = (
                unsupported_reason(dtype)
                if dtype in matmul.TOLERANCE
                else (
                    f"no matmul validation tolerance for {dtype!r}; "
                    f"valid: {', '.join(matmul.TOLERANCE)}"
                )
            )
            if reason:
                record("matmul", dtype, "flops_per_s", 0, None, spec, "waived", reason)
                continue
            working_set = 3 * n * n * np.dtype(jax.numpy.dtype(dtype)).itemsize
            try:
                mm = matmul.measure_matmul(device, dtype, n, plan.repetitions, plan.warmup)
            except Exception as exc:
                record(
                    "matmul",
                    dtype,
                    "flops_per_s",
                    working_set,
                    None,
                    spec,
                    "waived",
                    f"n={n}: {_reason(exc)}",
                )
                continue
            tol = matmul.TOLERANCE[dtype]
            record(
                "matmul",
                dtype,
                "flops_per_s",
                mm.working_set_bytes,
                mm.summary,
                spec,
                _status(mm.summary, mm.relative_error, tol),
                f"n={n}; relative error {mm.relative_error:.2e} (tolerance {tol:.0e})",
            )
    return validate_frame(pd.DataFrame(rows), MEASUREMENTS, f"probe results on {accelerator.host}")

"""Run a plan of probes on a host's accelerators and turn each outcome into a measurements row.

A plan becomes a list of steps (one probe each) before anything runs, so a caller can show
progress against the total. A probe that cannot run (a dtype the device lacks, memory it cannot
get even after shrinking) becomes a ``waived`` row with the reason; a result that fails
validation becomes ``failed``. Neither stops the other probes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import jax
import pandas as pd

from hardware_profiles.parquet import validate_frame
from hardware_profiles.schema import (
    GB,
    MEASUREMENTS,
    Accelerator,
    GiB,
    MiB,
    peak_column,
)
from tasks.analysis.supply.calibration import DTYPE_PRECISION
from tasks.discovery import free_memory_bytes, last_level_cache_bytes
from tasks.probes import bandwidth, matmul, transfer
from tasks.probes.kernels import BANDWIDTH_KERNELS, TRANSFER_KERNELS
from tasks.probes.software import software_versions
from tasks.probes.targets import (
    ALL_DEVICES,
    Row,
    Rows,
    Step,
    Target,
    all_devices_target,
    failure_reason,
    is_out_of_memory,
    single_target,
    status_of,
)
from tasks.probes.timing import drift
from tasks.probes.workload_ceilings import GEMM_WEIGHT_BYTES, TRIAD_BYTES

Progress = Callable[[str], None]
_SHRINK_TRIES = 3
# An HBM device streams 1 GiB (4x the largest GPU cache) in about 0.3 ms, where one call's
# dispatch and sync cost tens of microseconds: 5-10 % of the figure. At 4 GiB it is about 1 %
# (still capped at ``max_free_fraction`` of the free memory).
ACCELERATOR_MIN_WORKING_SET_BYTES = 4 * GiB


@dataclass(frozen=True)
class ProbePlan:
    """Which probes to run, how big and how often."""

    bandwidth_kernels: tuple[str, ...] = tuple(BANDWIDTH_KERNELS)
    bandwidth_dtypes: tuple[str, ...] = ("float32", "bfloat16")
    matmul_dtypes: tuple[str, ...] = (
        "float32",
        "tfloat32",
        "bfloat16",
        "float16",
        "float8_e4m3fn",
        "int8",
    )
    matmul_sizes: tuple[int, ...] = (1024, 2048, 4096, 8192)
    repetitions: int = 20
    warmup: int = 2
    # Stop repeating a probe once its timed calls took this long (never before 3 calls).
    budget_s: float = 2.0
    # Bandwidth working set: at least this many times the last-level cache, and this floor.
    cache_multiple: int = 4
    min_working_set_bytes: int = 256 * MiB
    # Never use more than this fraction of the device's free memory.
    max_free_fraction: float = 0.4
    transfers: bool = True
    # Where the host has several devices: the same probes over all of them at once.
    all_devices: bool = True
    # Seconds to repeat the triad and a GEMM for, reporting drift (0: no sustained run).
    sustained_s: float = 0.0
    # A workload case's own ceilings, timed in turns with it (workload_ceilings): the triad's
    # bytes and each GEMM's weights at most. They sit in memory beside the case's weights.
    turn_triad_bytes: int = TRIAD_BYTES
    turn_gemm_weight_bytes: int = GEMM_WEIGHT_BYTES

    @classmethod
    def quick(cls) -> ProbePlan:
        """Small and fast, for tests and demos: still 4x the last-level cache."""
        return cls(
            bandwidth_kernels=("copy", "triad"),
            matmul_dtypes=("float32", "bfloat16"),
            matmul_sizes=(256, 512),
            repetitions=5,
            warmup=1,
            budget_s=0.5,
            min_working_set_bytes=4 * MiB,
        )

    @classmethod
    def for_platform(
        cls, platform: str, quick: bool = False, sustained_s: float = 0.0
    ) -> ProbePlan:
        """The default plan, fitted to the platform: float64 where JAX's 64-bit mode is on; a
        CPU gets a smaller GEMM sweep (an 8192 GEMM takes minutes on a few cores, and a CPU's
        GEMM peak is reached well before it); an accelerator streams at least
        ``ACCELERATOR_MIN_WORKING_SET_BYTES`` per bandwidth call."""
        plan = cls.quick() if quick else cls()
        if unsupported_reason("float64") is None:
            plan = dataclasses.replace(plan, bandwidth_dtypes=(*plan.bandwidth_dtypes, "float64"))
        if platform == "cpu" and not quick:
            plan = dataclasses.replace(plan, matmul_sizes=(512, 1024), budget_s=1.0)
        elif not quick:
            plan = dataclasses.replace(
                plan, min_working_set_bytes=ACCELERATOR_MIN_WORKING_SET_BYTES
            )
        return dataclasses.replace(plan, sustained_s=sustained_s)

    def __post_init__(self) -> None:
        unknown = [k for k in self.bandwidth_kernels if k not in BANDWIDTH_KERNELS]
        if unknown:
            raise ValueError(
                f"unknown bandwidth kernel(s) {unknown}; valid: {', '.join(BANDWIDTH_KERNELS)}"
            )
        if self.repetitions < 1:
            raise ValueError("repetitions must be >= 1")
        if self.sustained_s < 0:
            raise ValueError("sustained_s must be >= 0")


def bandwidth_elements(
    plan: ProbePlan, kernel: str, dtype: str, device: Any, devices: int = 1
) -> int:
    """Elements (over all ``devices``) so each device's share of the kernel's working set is
    out of its cache and fits in its memory; a multiple of 1024 per device."""
    arrays = BANDWIDTH_KERNELS[kernel].arrays
    itemsize = jax.numpy.dtype(dtype).itemsize
    target = max(
        plan.cache_multiple * last_level_cache_bytes(device.platform), plan.min_working_set_bytes
    )
    free = free_memory_bytes(device)
    if free is not None:
        # CPU "devices" all share the host's memory.
        share = devices if device.platform == "cpu" else 1
        target = min(target, int(free * plan.max_free_fraction) // share)
    per_device = target // (arrays * itemsize)
    return max(1024, per_device - per_device % 1024) * devices


def matmul_memory_cap(plan: ProbePlan, device: Any) -> int | None:
    free = free_memory_bytes(device)
    return int(free * plan.max_free_fraction) if free is not None else None


def largest_fitting_size(plan: ProbePlan, dtype: str, device: Any) -> int:
    """The plan's largest GEMM size whose operands, product and validation fit the memory
    cap (the smallest size where none does: its row then says why it was waived)."""
    cap = matmul_memory_cap(plan, device)
    fitting = [
        n for n in plan.matmul_sizes if cap is None or 2 * matmul.working_set_bytes(dtype, n) <= cap
    ]
    return max(fitting or [min(plan.matmul_sizes)])


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


def _bandwidth_step(rows: Rows, plan: ProbePlan, kernel: str, dtype: str) -> tuple[Row, ...]:
    t = rows.target
    spec = t.specs.get("mem_bandwidth_bytes_per_s")
    reason = unsupported_reason(dtype)
    if reason:
        return (rows.row(kernel, dtype, "bytes_per_s", 0, None, spec, "waived", reason),)
    count = len(t.devices)
    elements = bandwidth_elements(plan, kernel, dtype, t.first, count)
    itemsize = jax.numpy.dtype(dtype).itemsize
    for _ in range(_SHRINK_TRIES):
        working_set = BANDWIDTH_KERNELS[kernel].arrays * elements * itemsize
        try:
            bw = bandwidth.measure_bandwidth(
                kernel, t.devices, dtype, elements, plan.repetitions, plan.warmup, plan.budget_s
            )
        except Exception as exc:
            if is_out_of_memory(exc) and elements > 1024 * count:
                elements = max(1024, elements // count // 2 // 1024 * 1024) * count
                continue
            return (
                rows.row(
                    kernel,
                    dtype,
                    "bytes_per_s",
                    working_set,
                    None,
                    spec,
                    "waived",
                    failure_reason(exc),
                ),
            )
        tol = bandwidth.tolerance(dtype)
        status = status_of(bw.summary, bw.max_relative_error, tol)
        detail = (
            f"{BANDWIDTH_KERNELS[kernel].formula}; n={elements}; max relative error "
            f"{bw.max_relative_error:.2e} (tolerance {tol:.1e})"
        )
        return (
            rows.row(
                kernel, dtype, "bytes_per_s", bw.working_set_bytes, bw.summary, spec, status, detail
            ),
        )
    return (
        rows.row(
            kernel,
            dtype,
            "bytes_per_s",
            BANDWIDTH_KERNELS[kernel].arrays * elements * itemsize,
            None,
            spec,
            "waived",
            "out of memory even after shrinking the arrays",
        ),
    )


def _matmul_spec(target: Target, dtype: str) -> float | None:
    precision = DTYPE_PRECISION.get(dtype)
    return target.specs.get(peak_column(precision)) if precision else None


def _matmul_step(rows: Rows, plan: ProbePlan, dtype: str, n: int) -> tuple[Row, ...]:
    t = rows.target
    spec = _matmul_spec(t, dtype)
    reason = (
        unsupported_reason(matmul.storage_dtype(dtype))
        if dtype in matmul.TOLERANCE
        else f"no matmul validation tolerance for {dtype!r}; valid: {', '.join(matmul.TOLERANCE)}"
    )
    precision = DTYPE_PRECISION.get(dtype)
    if not reason and t.accelerator_id and precision and spec is None:
        # XLA would emulate the dtype in wider units: a figure for hardware that is not there.
        reason = f"the catalog lists no {precision} peak for {t.accelerator_id}: no {dtype} units"
    if reason:
        return (rows.row("matmul", dtype, "flops_per_s", 0, None, spec, "waived", reason),)
    working_set = matmul.working_set_bytes(dtype, n)
    cap = matmul_memory_cap(plan, t.first)
    if cap is not None and working_set * 2 > cap:
        reason = (
            f"n={n} needs about {2 * working_set / GB:.2f} GB with validation; the cap is "
            f"{cap / GB:.2f} GB ({plan.max_free_fraction:.0%} of free memory)"
        )
        return (rows.row("matmul", dtype, "flops_per_s", 0, None, spec, "waived", reason),)
    try:
        mm = matmul.measure_matmul(
            t.devices, dtype, n, plan.repetitions, plan.warmup, budget_s=plan.budget_s
        )
    except Exception as exc:
        detail = f"n={n}: {failure_reason(exc)}"
        return (
            rows.row("matmul", dtype, "flops_per_s", working_set, None, spec, "waived", detail),
        )
    tol = matmul.TOLERANCE[dtype]
    status = status_of(mm.summary, mm.relative_error, tol)
    detail = f"n={n}; relative error {mm.relative_error:.2e} (tolerance {tol:.0e})"
    if len(t.devices) > 1:
        detail += f"; A split by rows over {len(t.devices)} devices, B replicated"
    return (
        rows.row(
            "matmul", dtype, "flops_per_s", mm.working_set_bytes, mm.summary, spec, status, detail
        ),
    )


def _transfer_step(rows: Rows, plan: ProbePlan, name: str) -> tuple[Row, ...]:
    t = rows.target
    dtype = "float32"
    count = len(t.devices)
    elements = bandwidth_elements(plan, "copy", dtype, t.first, count) // count
    try:
        if name == "host-to-device":
            result = transfer.host_to_device(t.first, dtype, elements, plan.repetitions)
        elif name == "device-to-host":
            result = transfer.device_to_host(t.first, dtype, elements, plan.repetitions)
        else:
            result = transfer.device_to_device(t.devices, dtype, elements, plan.repetitions)
    except Exception as exc:
        return (rows.row(name, dtype, "bytes_per_s", 0, None, None, "waived", failure_reason(exc)),)
    tol = bandwidth.tolerance(dtype)
    status = status_of(result.summary, result.max_relative_error, tol)
    detail = (
        f"{TRANSFER_KERNELS[name].formula}; n={elements} per device; max relative error "
        f"{result.max_relative_error:.2e} (tolerance {tol:.1e})"
    )
    return (
        rows.row(
            name,
            dtype,
            "bytes_per_s",
            result.working_set_bytes,
            result.summary,
            None,
            status,
            detail,
        ),
    )


def _sustained_step(rows: Rows, plan: ProbePlan) -> tuple[Row, ...]:
    """The triad and the plan's first GEMM, each repeated for ``plan.sustained_s``; the
    detail reports the drift from the first tenth of the run to the last."""
    t = rows.target
    out: list[Row] = []
    dtype = "float32"
    elements = bandwidth_elements(plan, "triad", dtype, t.first, len(t.devices))
    bw = bandwidth.sustain_bandwidth("triad", t.devices, dtype, elements, plan.sustained_s)
    tol = bandwidth.tolerance(dtype)
    out.append(
        rows.row(
            "triad-sustained",
            dtype,
            "bytes_per_s",
            bw.working_set_bytes,
            bw.summary,
            t.specs.get("mem_bandwidth_bytes_per_s"),
            status_of(bw.summary, bw.max_relative_error, tol),
            f"{plan.sustained_s:g} s; drift {drift(bw.seconds):+.1%} (last tenth vs first); "
            f"n={elements}; max relative error {bw.max_relative_error:.2e}",
        )
    )
    mm_dtype = plan.matmul_dtypes[0] if plan.matmul_dtypes else "float32"
    n = largest_fitting_size(plan, mm_dtype, t.first)
    mm = matmul.sustain_matmul(t.devices, mm_dtype, n, plan.sustained_s)
    out.append(
        rows.row(
            "matmul-sustained",
            mm_dtype,
            "flops_per_s",
            mm.working_set_bytes,
            mm.summary,
            _matmul_spec(t, mm_dtype),
            status_of(mm.summary, mm.relative_error, matmul.TOLERANCE[mm_dtype]),
            f"{plan.sustained_s:g} s; drift {drift(mm.seconds):+.1%} (last tenth vs first); "
            f"n={n}; relative error {mm.relative_error:.2e}",
        )
    )
    return tuple(out)


def device_steps(target: Target, plan: ProbePlan, run_id: str) -> list[Step]:
    """The plan's probes on one device, or (index -1) split across all devices at once."""
    rows = Rows(target, run_id, software_versions())
    together = target.device_index == ALL_DEVICES
    steps: list[Step] = []

    def add(label: str, measure: Callable[[], tuple[Row, ...]]) -> None:
        steps.append(Step(f"{target.label}: {label}", lambda: rows.observed(measure)))

    # Together, one dtype is enough: the question is how the devices scale, not each dtype.
    bw_dtypes = plan.bandwidth_dtypes[:1] if together else plan.bandwidth_dtypes
    for kernel in plan.bandwidth_kernels:
        for dtype in bw_dtypes:
            add(f"{kernel} {dtype}", partial(_bandwidth_step, rows, plan, kernel, dtype))
    mm_dtypes = plan.matmul_dtypes[:1] if together else plan.matmul_dtypes
    sizes = plan.matmul_sizes
    if together and mm_dtypes:
        # One size, the largest that fits, rounded so the rows split evenly over the devices.
        n = largest_fitting_size(plan, mm_dtypes[0], target.first)
        sizes = (n - n % len(target.devices),)
    for dtype in mm_dtypes:
        for n in sizes:
            add(f"matmul {dtype} n={n}", partial(_matmul_step, rows, plan, dtype, n))
    # A CPU's device memory is host memory: JAX aliases host arrays, there is no link.
    if together:
        transfers: tuple[str, ...] = ("device-to-device",)
    else:
        transfers = () if target.platform == "cpu" else ("host-to-device", "device-to-host")
    if plan.transfers:
        for name in transfers:
            add(name, partial(_transfer_step, rows, plan, name))
    if plan.sustained_s > 0 and not together:
        add(f"sustained {plan.sustained_s:g} s", partial(_sustained_step, rows, plan))
    return steps


def host_steps(
    accelerators: Sequence[Accelerator], catalog: pd.DataFrame, plan: ProbePlan, run_id: str
) -> list[Step]:
    """Every probe of ``plan`` on every device, then over all devices at once where there
    are several (sharded bandwidth and GEMM, and the device-to-device ring)."""
    steps = [
        step
        for accelerator in accelerators
        for step in device_steps(single_target(accelerator, catalog), plan, run_id)
    ]
    if plan.all_devices and len(accelerators) > 1:
        steps += device_steps(all_devices_target(accelerators, catalog), plan, run_id)
    return steps


def run_steps(steps: Sequence[Step], source: str, progress: Progress | None = None) -> pd.DataFrame:
    rows: list[Row] = []
    for step in steps:
        if progress:
            progress(step.label)
        rows += step.run()
    return validate_frame(pd.DataFrame(rows), MEASUREMENTS, source)


def probe_accelerator(
    accelerator: Accelerator,
    catalog: pd.DataFrame,
    plan: ProbePlan,
    run_id: str,
    progress: Progress | None = None,
) -> pd.DataFrame:
    """Every probe of ``plan`` on one device, as validated measurements rows."""
    steps = device_steps(single_target(accelerator, catalog), plan, run_id)
    return run_steps(steps, f"probe results on {accelerator.host}", progress)


def probe_all_devices(
    accelerators: Sequence[Accelerator],
    catalog: pd.DataFrame,
    plan: ProbePlan,
    run_id: str,
    progress: Progress | None = None,
) -> pd.DataFrame:
    """The plan's probes over all of a host's devices at once (device_index -1)."""
    steps = device_steps(all_devices_target(accelerators, catalog), plan, run_id)
    return run_steps(steps, f"all-devices probe results on {accelerators[0].host}", progress)

"""What an exporter's series can and cannot say about one workload: AMD's profiler bytes turned
into a bandwidth utilization, and the telemetry that is reported and left out (issue #24, item
6; :mod:`tasks.analysis.supply.production` says why each is left out)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
import pandas as pd

# amd-smi's vram_max_bandwidth is in GB/s; above this it is no bandwidth (the exporter passes
# amd-smi's UINT64_MAX "not supported" sentinel through on some boards).
MAX_PLAUSIBLE_GB_PER_S: Final = 1e6
KIB: Final = 1024  # rocprofiler's FETCH_SIZE and WRITE_SIZE: bytes / 1024


def amd_bandwidth_utilization(
    kib_per_window: np.ndarray, window_s: float, max_gb_per_s: np.ndarray
) -> np.ndarray:
    """Achieved over maximum bandwidth from AMD's device-metrics-exporter:
    ``gpu_prof_fetch_size + gpu_prof_write_size`` are the KiB (rocprofiler's derived counters
    divide bytes by 1024) read from and written to video memory during one profiler sampling
    window (``SamplingInterval``, 1000 µs by default), and ``gpu_vram_max_bandwidth`` is
    amd-smi's maximum VRAM bandwidth in GB/s (10^9 B/s). The exporter's metric list
    (docs/configuration/metricslist.md of ROCm/device-metrics-exporter) gives both units.
    NaN where the maximum is no bandwidth: 0 (a secondary partition) or the sentinel.
    2.5e6 KiB in 1 ms on a 5,300 GB/s MI300X: 2.56e12 B/s / 5.3e12 B/s = 0.483."""
    peak = np.asarray(max_gb_per_s, dtype=float)
    valid = (peak > 0) & (peak < MAX_PLAUSIBLE_GB_PER_S)
    achieved = np.asarray(kib_per_window, dtype=float) * KIB / window_s
    return np.where(valid, achieved / np.where(valid, peak * 1e9, 1.0), np.nan)


def series_table(gpus: pd.DataFrame) -> pd.DataFrame:
    """One row per GPU series (uuid, namespace, pod, host, device_kind): the labels, without
    the samples, so attribution looks at hundreds of rows, not a window's millions."""
    keys = ["uuid", "namespace", "pod", "host", "device_kind", "mig_instance"]
    table = gpus.groupby(keys, sort=False, dropna=False).size().reset_index()[keys]
    return table.astype(object).where(table.notna(), "")


def shared_gpus(gpus: pd.DataFrame) -> dict[str, list[str]]:
    """UUID -> the pods it served, for every GPU more than one pod used in the window
    (dcgm-exporter writes one series per pod on a time-sliced or MPS-shared GPU)."""
    series = series_table(gpus)
    series = series[(series["pod"] != "") & (series["mig_instance"] == "")]
    pods: dict[str, set[str]] = {}
    for uuid, namespace, pod in zip(
        series["uuid"], series["namespace"], series["pod"], strict=True
    ):
        pods.setdefault(str(uuid), set()).add(f"{namespace}/{pod}")
    return {u: sorted(p) for u, p in pods.items() if len(p) > 1}


def missing_profiling(gpus: pd.DataFrame) -> pd.Series:
    """Samples whose profiling field reads 0 while the GPU is busy: not collected, not idle."""
    util = gpus["gpu_util"].to_numpy(dtype=float)
    return pd.Series(
        (gpus["bandwidth_utilization"].to_numpy(dtype=float) == 0) & (util > 0), index=gpus.index
    )


@dataclass(frozen=True)
class Gap:
    """A stretch of the window where a series that existed before and after has no sample."""

    series: str
    start_s: float
    end_s: float

    def describe(self) -> str:
        start = pd.Timestamp(self.start_s, unit="s", tz="UTC")
        hours = (self.end_s - self.start_s) / 3600
        return f"scrape gap in {self.series}: {start:%Y-%m-%d %H:%M} UTC, {hours:.1f} h, not filled"


def scrape_gaps(times_s: np.ndarray, step_s: float, series: str) -> list[Gap]:
    """Runs of missing steps between a series' first and last sample (a range query returns no
    point at a step with no sample within its look-back): each reported, none filled. A step of
    300 s with samples at 0, 300, 1500 has a gap from 300 to 1500."""
    times = np.sort(np.asarray(times_s, dtype=float))
    jumps = np.flatnonzero(np.diff(times) > 1.5 * step_s)
    return [Gap(series, float(times[i]), float(times[i + 1])) for i in jumps]

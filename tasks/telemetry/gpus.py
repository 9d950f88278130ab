"""The accelerators' bandwidth utilization, from whichever exporter answers.

- **Bandwidth utilization** (dcgm-exporter): ``DCGM_FI_PROF_DRAM_ACTIVE`` (ratio of cycles the
  memory interface is busy moving data, 0 to 1), which DCGM 4.6 renamed
  ``DCGM_FI_PROF_DRAM_UTIL_RATIO``; labels ``UUID``, ``gpu``, ``modelName``, ``Hostname`` (or
  ``hostname``), and ``pod``/``namespace`` where the exporter maps GPUs to pods (or
  ``exported_pod``/``exported_namespace`` where Prometheus renamed them on scrape);
  ``GPU_I_ID`` marks a MIG instance.
  ``DCGM_FI_DEV_GPU_UTIL`` (percent of time a kernel ran) only tells a missing profiling field
  from an idle one. ``DCGM_FI_DEV_MEM_COPY_UTIL`` is time busy, not bandwidth: never read.
- **Bandwidth utilization** (AMD device-metrics-exporter, labels ``gpu_id``, ``serial_number``
  (or ``gpu_uuid`` where enabled), ``card_model``, ``hostname``, ``pod``/``namespace``,
  ``gpu_partition_id`` and ``gpu_compute_partition_type``): ``gpu_prof_fetch_size`` +
  ``gpu_prof_write_size``, the KiB its profiler saw read from and written to video memory in
  one sampling window (``SamplingInterval`` in its config, 1000 µs by default), over
  ``gpu_vram_max_bandwidth`` (GB/s), where the profiler fields are enabled
  (``ProfilerMetrics``; units from the exporter's docs/configuration/metricslist.md and
  configmap.md, and amd-smi's ``amdsmi_vram_info_t``); else ``gpu_umc_activity`` (memory
  controller busy, 0 to 100), a weaker signal, marked so. A GPU in a CPX/DPX/QPX compute
  partition is a slice, reported like a MIG instance.
- **Bandwidth utilization** (GKE's TPU device plugin, scraped from its ``/metrics``):
  ``memory_bandwidth_utilization`` (percent of the chip's HBM bandwidth), labels
  ``accelerator_id`` (one chip), ``model`` (``tpu-v6e-slice``, ``tpu-v5-lite-podslice``...),
  ``make`` (``cloud-tpu``), ``tpu_topology``, ``pod``/``namespace``/``container``.
"""

from __future__ import annotations

from typing import Any, Final

import numpy as np
import pandas as pd

from tasks.analysis.supply.production import GPU_COLUMNS
from tasks.analysis.supply.telemetry_checks import amd_bandwidth_utilization
from tasks.prometheus import Series
from tasks.telemetry.reader import Reader, long_table

DCGM_BANDWIDTH: Final = (
    ("DCGM_FI_PROF_DRAM_ACTIVE", "dcgm-exporter, DCGM before 4.6 (DRAM_ACTIVE)"),
    ("DCGM_FI_PROF_DRAM_UTIL_RATIO", "dcgm-exporter, DCGM 4.6+ (DRAM_UTIL_RATIO)"),
)
DCGM_GPU_UTIL: Final = "DCGM_FI_DEV_GPU_UTIL"
AMD_FETCH: Final = "gpu_prof_fetch_size"
AMD_WRITE: Final = "gpu_prof_write_size"
AMD_MAX_BANDWIDTH: Final = "gpu_vram_max_bandwidth"
AMD_UMC_ACTIVITY: Final = "gpu_umc_activity"
AMD_GFX_ACTIVITY: Final = "gpu_gfx_activity"  # percent of time the graphics engine is busy
_AMD_CARD: Final = "hostname, gpu_id, serial_number"
AMD_BYTES: Final = (
    "AMD device-metrics-exporter, profiler fields "
    "(gpu_prof_fetch_size + gpu_prof_write_size over gpu_vram_max_bandwidth)"
)
AMD_UMC: Final = (
    "AMD device-metrics-exporter, gpu_umc_activity only "
    "(memory controller busy time: a weaker signal)"
)
TPU_BANDWIDTH: Final = (
    "memory_bandwidth_utilization",
    "GKE TPU device plugin (memory_bandwidth_utilization)",
)
TPU_QUERY: Final = f'{TPU_BANDWIDTH[0]}{{make=~".*tpu.*"}}'
# The label each bandwidth source names the accelerator model by, as a report says it.
ACCELERATOR_LABEL: Final = {
    **{version: "DCGM modelName" for _, version in DCGM_BANDWIDTH},
    AMD_BYTES: "AMD card_model",
    AMD_UMC: "AMD card_model",
    TPU_BANDWIDTH[1]: "TPU model",
}
_GPU_LABELS: Final = (
    "uuid", "gpu", "host", "device_kind", "namespace", "pod", "bandwidth_source", "mig_instance",
)  # fmt: skip


def _label(labels: dict[str, str], *names: str) -> str:
    return next((labels[n] for n in names if labels.get(n)), "")


def _reindexed(series: Series | None, times: np.ndarray) -> np.ndarray:
    if series is None:
        return np.full(times.size, np.nan)
    return pd.Series(series.values, index=series.times_s).reindex(times).to_numpy(dtype=float)


def _dcgm_parts(
    version: str, answered: list[Series], busy_at_zero: list[Series]
) -> list[dict[str, Any]]:
    util = {
        (b.labels.get("UUID", ""), _label(b.labels, "pod", "exported_pod")): b for b in busy_at_zero
    }
    parts = []
    for s in answered:
        labels = s.labels
        pod = _label(labels, "pod", "exported_pod")
        parts.append(
            {
                "uuid": labels.get("UUID", ""),
                "gpu": labels.get("gpu", ""),
                "host": _label(labels, "Hostname", "hostname"),
                "device_kind": labels.get("modelName", ""),
                "namespace": _label(labels, "namespace", "exported_namespace"),
                "pod": pod,
                "time_s": s.times_s,
                "bandwidth_utilization": s.values,
                "gpu_util": _reindexed(util.get((labels.get("UUID", ""), pod)), s.times_s),
                "bandwidth_source": version,
                "mig_instance": labels.get("GPU_I_ID", ""),
                "weaker_signal": False,
            }
        )
    return parts


def _amd_card(labels: dict[str, str]) -> tuple[str, str, str]:
    """One AMD GPU (or partition) as every metric of the exporter labels it."""
    return labels.get("hostname", ""), labels.get("gpu_id", ""), labels.get("serial_number", "")


def _amd_part(
    s: Series, utilization: np.ndarray, source: str, busy: np.ndarray | float, *, weaker: bool
) -> dict[str, Any]:
    labels = s.labels
    host, gpu, serial = _amd_card(labels)
    partition_type = labels.get("gpu_compute_partition_type", "").lower()
    partitioned = partition_type not in ("", "spx")
    partition = labels.get("gpu_partition_id", "")
    uuid = labels.get("gpu_uuid") or serial or f"{host}/gpu{gpu}"
    return {
        "uuid": f"{uuid}:{partition}" if partitioned else uuid,
        "gpu": gpu,
        "host": host,
        "device_kind": labels.get("card_model", ""),
        "namespace": labels.get("namespace", ""),
        "pod": labels.get("pod", ""),
        "time_s": s.times_s,
        "bandwidth_utilization": utilization,
        "gpu_util": busy,
        "bandwidth_source": source,
        "mig_instance": f"{partition} ({partition_type.upper()} partition)" if partitioned else "",
        "weaker_signal": weaker,
    }


def _amd_parts(
    moved: list[Series],
    peaks: list[Series],
    umc: list[Series],
    busy_at_zero: list[Series],
    window_s: float,
) -> tuple[list[dict[str, Any]], list[str]]:
    """Bytes moved over the card's maximum where the profiler fields and a maximum answer;
    the memory controller's busy time, marked weaker, for the cards they leave out. The
    graphics engine's activity, read only where the profiler counted no byte, tells a field
    not collected (on Radeon boards it always reads 0) from an idle memory."""
    peak = {_amd_card(p.labels): p for p in peaks}
    busy = {_amd_card(b.labels): b for b in busy_at_zero}
    parts: list[dict[str, Any]] = []
    covered: set[tuple[str, str, str]] = set()
    for s in moved:
        utilization = amd_bandwidth_utilization(
            s.values, window_s, _reindexed(peak.get(_amd_card(s.labels)), s.times_s)
        )
        if np.isfinite(utilization).any():
            covered.add(_amd_card(s.labels))
            gfx = _reindexed(busy.get(_amd_card(s.labels)), s.times_s)
            parts.append(_amd_part(s, utilization, AMD_BYTES, gfx, weaker=False))
    weaker = [s for s in umc if _amd_card(s.labels) not in covered]
    parts += [_amd_part(s, s.values / 100, AMD_UMC, np.nan, weaker=True) for s in weaker]
    return parts, [v for v, used in ((AMD_BYTES, covered), (AMD_UMC, weaker)) if used]


def _tpu_parts(answered: list[Series]) -> list[dict[str, Any]]:
    parts = []
    for s in answered:
        labels = s.labels
        chip = labels.get("accelerator_id", "")
        parts.append(
            {
                "uuid": chip,
                "gpu": chip.rsplit("-", 1)[-1],
                "host": _label(labels, "node", "instance").rsplit(":", 1)[0],
                # "tpu-v6e-slice" -> "tpu v6e slice", which the catalog's "TPU v6e" matches
                "device_kind": labels.get("model", "").replace("-", " "),
                "namespace": labels.get("namespace", ""),
                "pod": labels.get("pod", ""),
                "time_s": s.times_s,
                "bandwidth_utilization": s.values / 100,
                "gpu_util": np.nan,
                "bandwidth_source": TPU_BANDWIDTH[1],
                "mig_instance": "",
                "weaker_signal": False,
            }
        )
    return parts


def read_gpus(reader: Reader) -> tuple[pd.DataFrame, list[str]]:
    """One row per accelerator series and sample: its bandwidth utilization (achieved over
    peak, 0 to 1) from whichever exporter answered, with its identity and the pod it served.
    DCGM's GPU utilization is read only where the profiling field reads 0 (the one place it
    matters: busy there means missing, not idle), which spares a fleet's window a second full
    series per GPU. All queries are asked at once."""
    dcgm = [
        q
        for name, _ in DCGM_BANDWIDTH
        for q in (name, f"{DCGM_GPU_UTIL} > 0 and on (UUID) ({name} == 0)")
    ]
    moved = f"{AMD_FETCH} + {AMD_WRITE}"
    amd = [
        moved,
        AMD_MAX_BANDWIDTH,
        AMD_UMC_ACTIVITY,
        f"{AMD_GFX_ACTIVITY} > 0 and on ({_AMD_CARD}) ({moved} == 0)",
    ]
    answers = reader.get_all([*dcgm, *amd, TPU_QUERY])
    parts: list[dict[str, Any]] = []
    versions: list[str] = []
    for i, (_, version) in enumerate(DCGM_BANDWIDTH):
        answered, busy_at_zero = answers[2 * i], answers[2 * i + 1]
        if answered:
            versions.append(version)
        parts += _dcgm_parts(version, answered, busy_at_zero)
    moved_kib, peaks, umc, busy_at_zero, tpu = answers[len(dcgm) :]
    amd_parts, amd_versions = _amd_parts(moved_kib, peaks, umc, busy_at_zero, reader.amd_window_s)
    parts += amd_parts + _tpu_parts(tpu)
    versions += amd_versions + ([TPU_BANDWIDTH[1]] if tpu else [])
    return long_table(parts, GPU_COLUMNS, _GPU_LABELS), versions

"""What accelerators this host has, as JAX sees them, matched to the catalog; and the state of
the host while it is measured (load, CPU quota, hypervisor, NVIDIA telemetry), because a figure
taken on a busy or throttled host must say so."""

from __future__ import annotations

import contextlib
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import pandas as pd

from hardware_profiles.catalog import match_device_kind
from hardware_profiles.schema import Accelerator, MiB
from tasks.nvml import NvmlGpu, session

# Used for sizing when a device does not report its last-level cache: larger than any current
# GPU's L2 or AMD's Infinity Cache (256 MiB), so 4x of it is safely out of cache.
FALLBACK_LAST_LEVEL_CACHE_BYTES = 256 * MiB
_CPU_CACHE_DIR = Path("/sys/devices/system/cpu/cpu0/cache")
_CPUINFO = Path("/proc/cpuinfo")
_CGROUP = Path("/sys/fs/cgroup")


def _parse_size(text: str) -> int:
    text = text.strip().upper()
    factor = {"K": 2**10, "M": 2**20, "G": 2**30}.get(text[-1:], 1)
    return int(text.rstrip("KMG")) * factor


def cpu_last_level_cache_bytes(cache_dir: Path = _CPU_CACHE_DIR) -> int | None:
    """The largest cache sysfs reports for CPU 0 (its last level), or None."""
    sizes = []
    for index in sorted(cache_dir.glob("index*")):
        try:
            sizes.append(_parse_size((index / "size").read_text()))
        except (OSError, ValueError):
            continue
    return max(sizes) if sizes else None


def last_level_cache_bytes(platform: str) -> int:
    if platform == "cpu":
        return cpu_last_level_cache_bytes() or FALLBACK_LAST_LEVEL_CACHE_BYTES
    return FALLBACK_LAST_LEVEL_CACHE_BYTES


def host_memory_bytes(meminfo: Path = Path("/proc/meminfo"), key: str = "MemTotal") -> int | None:
    try:
        for line in meminfo.read_text().splitlines():
            if line.startswith(f"{key}:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def device_memory_bytes(device: jax.Device) -> int | None:
    """Total memory of ``device``: the allocator's limit on GPUs/TPUs, host RAM on CPUs."""
    if device.platform == "cpu":
        return host_memory_bytes()
    stats = device.memory_stats() or {}
    limit = stats.get("bytes_limit")
    if limit:
        return int(limit)
    if device.platform == "gpu":
        return nvml_memory_bytes(device)
    return None


def free_memory_bytes(device: jax.Device) -> int | None:
    if device.platform == "cpu":
        return host_memory_bytes(key="MemAvailable")
    stats = device.memory_stats() or {}
    if "bytes_limit" not in stats:
        return None
    return int(stats["bytes_limit"]) - int(stats.get("bytes_in_use", 0))


def discover(catalog: pd.DataFrame) -> list[Accelerator]:
    """One record per JAX device on this host; unknown devices are kept, with a note."""
    host = socket.gethostname()
    found = []
    for index, device in enumerate(jax.devices()):
        kind = str(device.device_kind)
        accelerator_id = match_device_kind(catalog, kind)
        note = "" if accelerator_id else f"no catalog entry matches {kind!r}: measured, no spec"
        found.append(
            Accelerator(
                host=host,
                device_index=index,
                platform=device.platform,
                device_kind=kind,
                memory_bytes=device_memory_bytes(device),
                accelerator_id=accelerator_id,
                note=note,
            )
        )
    return found


def cpu_model(cpuinfo: Path = _CPUINFO) -> str | None:
    """The CPU's marketing name (the first ``model name`` in /proc/cpuinfo), or None."""
    try:
        for line in cpuinfo.read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and value.strip():
                return value.strip()
    except OSError:
        return None
    return None


def hypervisor_present(cpuinfo: Path = _CPUINFO) -> bool | None:
    """Whether the CPU reports running under a hypervisor (the ``hypervisor`` flag): a VM's
    neighbours share its memory bandwidth. None when /proc/cpuinfo cannot be read."""
    try:
        text = cpuinfo.read_text()
    except OSError:
        return None
    return any(
        line.split(":", 1)[0].strip() == "flags" and "hypervisor" in line.split(":", 1)[1].split()
        for line in text.splitlines()
        if ":" in line
    )


def cgroup_cpu_quota(root: Path = _CGROUP) -> float | None:
    """CPUs this process may use by its cgroup's CFS quota (cgroup v2 ``cpu.max`` or v1
    ``cpu.cfs_quota_us``/``cpu.cfs_period_us``), or None when unlimited or unknown."""
    candidates = [root / "cpu.max", root / "cpu" / "cpu.max"]
    for path in candidates:
        with contextlib.suppress(OSError, ValueError):
            quota, period = path.read_text().split()[:2]
            return None if quota == "max" else int(quota) / int(period)
    for folder in (root / "cpu", root / "cpu,cpuacct", root):
        with contextlib.suppress(OSError, ValueError):
            quota_us = int((folder / "cpu.cfs_quota_us").read_text())
            period_us = int((folder / "cpu.cfs_period_us").read_text())
            return None if quota_us < 0 else quota_us / period_us
    return None


def load_average() -> tuple[float, float, float] | None:
    with contextlib.suppress(OSError, AttributeError):
        return os.getloadavg()
    return None


@dataclass(frozen=True)
class HostState:
    """The host's state when a probe ran: what a reader needs to trust or discount it."""

    load_average: tuple[float, float, float] | None
    cpu_quota: float | None
    hypervisor: bool | None
    cpu_model: str | None
    last_level_cache_bytes: int | None

    def describe(self) -> str:
        load = (
            "load " + "/".join(f"{x:.2f}" for x in self.load_average)
            if self.load_average
            else "load unknown"
        )
        quota = f"cgroup CPU quota {self.cpu_quota:g}" if self.cpu_quota else "no cgroup CPU quota"
        hyper = {True: "hypervisor present", False: "bare metal", None: "hypervisor unknown"}
        parts = [load, quota, hyper[self.hypervisor], f"{os.cpu_count()} CPUs"]
        if self.cpu_model:
            parts.append(f"CPU {self.cpu_model}")
        if self.last_level_cache_bytes:
            parts.append(f"LLC {self.last_level_cache_bytes / MiB:g} MiB")
        return ", ".join(parts)


def host_state() -> HostState:
    return HostState(
        load_average=load_average(),
        cpu_quota=cgroup_cpu_quota(),
        hypervisor=hypervisor_present(),
        cpu_model=cpu_model(),
        last_level_cache_bytes=cpu_last_level_cache_bytes(),
    )


def nvml_reading(device: Any) -> str | None:
    """Name, clocks, temperature and power of JAX GPU ``device`` now, in one line (from NVML,
    matched by PCI bus id: see ``tasks.nvml``); None where NVML is unavailable. Read before and
    after each probe: a clock that fell or a power draw at its cap during the probe explains a
    low figure."""
    nvml = session()
    return None if nvml is None else nvml.reading(device)


def nvml_driver_version() -> str | None:
    nvml = session()
    return None if nvml is None else nvml.driver_version()


def nvml_memory_bytes(device: Any) -> int | None:
    """Total memory of JAX GPU ``device`` by NVML, for when JAX's allocator does not say."""
    nvml = session()
    gpu = None if nvml is None else nvml.gpu(device)
    return None if gpu is None else gpu.memory_bytes


def nvml_gpu(device: Any) -> NvmlGpu | None:
    """Everything NVML says of JAX GPU ``device`` (model, memory, clocks, power limit, ECC)."""
    nvml = session()
    return None if nvml is None else nvml.gpu(device)

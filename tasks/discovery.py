"""What accelerators this host has, as JAX sees them, matched to the catalog."""

from __future__ import annotations

import socket
from pathlib import Path

import jax
import pandas as pd

from hardware_profiles.catalog import match_device_kind
from hardware_profiles.schema import Accelerator, MiB

# Used for sizing when a device does not report its last-level cache: larger than any current
# GPU's L2 or AMD's Infinity Cache (256 MiB), so 4x of it is safely out of cache.
FALLBACK_LAST_LEVEL_CACHE_BYTES = 256 * MiB
_CPU_CACHE_DIR = Path("/sys/devices/system/cpu/cpu0/cache")


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
    return int(limit) if limit else None


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

"""Which software a measurement ran on: JAX, jaxlib, the CUDA/ROCm/TPU plugin that drove the
device, the backend's own platform version and the NVIDIA driver.

memwall runs on whatever JAX a host already has (a GPU image's CUDA build, say), from the
pinned version up to the newest, so a figure is only comparable with another when both say
which stack produced it: a new XLA can move a GEMM by tens of per cent.
"""

from __future__ import annotations

import functools
import re
from importlib import metadata
from typing import Final

import jax
import jaxlib

from tasks.discovery import nvml_driver_version

# The distributions that put a device behind JAX: jax-cuda12-plugin, jax-cuda12-pjrt,
# jax-cuda13-plugin, jax-rocm7-plugin, libtpu, ...
_PLUGIN: Final = re.compile(r"^(jax[-_.](cuda|rocm)\d*[-_.](plugin|pjrt)|libtpu([-_.]nightly)?)$")


def is_plugin(distribution: str) -> bool:
    """Whether a distribution of this name puts a device behind JAX."""
    return _PLUGIN.match(distribution.lower()) is not None


@functools.cache
def plugins() -> tuple[tuple[str, str], ...]:
    """(name, version) of every JAX device plugin installed, sorted by name."""
    found = {
        str(d.metadata["Name"]).lower().replace("_", "-"): d.version
        for d in metadata.distributions()
        if d.metadata["Name"] and is_plugin(str(d.metadata["Name"]))
    }
    return tuple(sorted(found.items()))


def platform_version() -> str:
    """The backend's own version string (``cuda 12080``, ``rocm 6.3``...; ``cpu`` on a CPU)."""
    try:
        return str(jax.devices()[0].client.platform_version)
    except (RuntimeError, AttributeError):
        return "unknown"


def software_versions() -> str:
    """One line for a measurement's ``software`` column: jax, jaxlib, the plugin(s) or their
    absence, the platform version and the NVIDIA driver where NVML answers."""
    jaxlib_version = getattr(jaxlib, "__version__", "unknown")
    parts = [f"jax {jax.__version__}", f"jaxlib {jaxlib_version}"]
    found = plugins()
    parts += [f"{name} {version}" for name, version in found] or ["no CUDA/ROCm/TPU plugin"]
    parts.append(f"platform {platform_version()}")
    driver = nvml_driver_version()
    if driver:
        parts.append(f"NVIDIA driver {driver}")
    return "; ".join(parts)

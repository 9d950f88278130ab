"""Every measurement says which JAX stack produced it: jax, jaxlib, the device plugin (or that
there is none) and the backend's platform version."""

from __future__ import annotations

from importlib import metadata

import jax
import pytest

from hardware_profiles.catalog import builtin_catalog
from tasks.discovery import discover
from tasks.probes import software
from tasks.probes.runner import ProbePlan, probe_accelerator


@pytest.mark.parametrize(
    ("name", "plugin"),
    [
        ("jax-cuda12-plugin", True),
        ("jax_cuda12_pjrt", True),
        ("jax-cuda13-plugin", True),
        ("jax-rocm7-plugin", True),
        ("libtpu", True),
        ("jax", False),
        ("jaxlib", False),
        ("jax-cuda12-plugin-extras", False),
    ],
)
def test_which_distributions_are_device_plugins(name: str, plugin: bool) -> None:
    assert software.is_plugin(name) is plugin


def test_the_software_line_names_this_stack() -> None:
    line = software.software_versions()
    assert line.startswith(f"jax {jax.__version__}; jaxlib {metadata.version('jaxlib')}; ")
    installed = software.plugins()
    if installed:
        assert all(f"{name} {version}" in line for name, version in installed)
    else:
        assert "no CUDA/ROCm/TPU plugin" in line
    assert f"platform {jax.devices()[0].client.platform_version}" in line


def test_every_measurement_row_carries_it() -> None:
    catalog = builtin_catalog()
    plan = ProbePlan(
        bandwidth_kernels=("copy",),
        bandwidth_dtypes=("float32",),
        matmul_dtypes=(),
        repetitions=2,
        warmup=1,
        min_working_set_bytes=0,
        cache_multiple=1,
        transfers=False,
    )
    rows = probe_accelerator(discover(catalog)[0], catalog, plan, "run-1")
    assert set(rows["software"]) == {software.software_versions()}

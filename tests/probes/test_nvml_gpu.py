"""On a GPU: NVML answers for the very GPUs JAX measures, matched by PCI bus id, and the
tfloat32 GEMM runs on the TF32 units it names. Skipped where JAX sees no GPU."""

from __future__ import annotations

import jax
import pytest

from hardware_profiles.catalog import builtin_catalog, match_device_kind
from tasks.discovery import nvml_gpu
from tasks.nvml import session
from tasks.probes import matmul


@pytest.mark.gpu
def test_each_jax_gpu_has_its_own_nvml_reading() -> None:
    gpus = [d for d in jax.devices() if d.platform == "gpu"]
    if session() is None:
        pytest.skip("no NVML here (nvidia-ml-py missing, or not an NVIDIA driver)")
    catalog = builtin_catalog()
    found = [nvml_gpu(d) for d in gpus]
    assert all(g is not None for g in found)
    readings = [g for g in found if g is not None]
    # Distinct GPUs, each the model JAX names (the same catalog row by either name).
    assert len({g.pci_bus_id for g in readings}) == len(readings)
    for device, gpu in zip(gpus, readings, strict=True):
        assert match_device_kind(catalog, gpu.name) == match_device_kind(
            catalog, device.device_kind
        )
        assert gpu.matched_by.startswith("PCI bus id"), gpu.matched_by
        assert gpu.memory_bytes and gpu.memory_bytes > 0


@pytest.mark.gpu
@pytest.mark.slow
@pytest.mark.parametrize("dtype", ["tfloat32", "bfloat16", "float8_e4m3fn"])
def test_tensor_core_gemms_validate_on_the_first_gpu(dtype: str) -> None:
    gpu = next(d for d in jax.devices() if d.platform == "gpu")
    result = matmul.measure_matmul(gpu, dtype, 4096, repetitions=3, warmup=1)
    assert result.relative_error < matmul.TOLERANCE[dtype]
    assert "cublas" in matmul.kernel(gpu, dtype, 1024) or "triton" in matmul.kernel(
        gpu, dtype, 1024
    )

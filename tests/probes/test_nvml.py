"""NVML's readings come from the GPU JAX measures: a host of four GPUs with two left visible.

Only the edge of the world is faked: NVML (a ``pynvml`` module answering for four GPUs, as the
driver would), the CUDA driver (a small C library answering ``cuDeviceGetPCIBusId``, built here
with the system's C compiler) and JAX's GPU devices (what a CUDA build of JAX hands out: a
platform and a CUDA ordinal). Everything between is memwall's own code.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import types
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tasks import discovery, nvml


@dataclass(frozen=True)
class Gpu:
    name: str
    uuid: str
    bus: int  # the PCI bus number; NVML numbers the GPUs in PCI order
    sm_mhz: int
    memory_bytes: int
    power_limit_mw: int
    ecc: int


HOST = [
    Gpu(
        "NVIDIA A100-SXM4-80GB",
        "GPU-aaaaaaaa-0000-0000-0000-000000000000",
        0x01,
        1410,
        80,
        400_000,
        1,
    ),
    Gpu(
        "NVIDIA A100-SXM4-40GB",
        "GPU-bbbbbbbb-0000-0000-0000-000000000000",
        0x41,
        1095,
        40,
        300_000,
        0,
    ),
    Gpu(
        "NVIDIA H100 80GB HBM3",
        "GPU-cccccccc-0000-0000-0000-000000000000",
        0x81,
        1980,
        81,
        700_000,
        1,
    ),
    Gpu("NVIDIA H200", "GPU-dddddddd-0000-0000-0000-000000000000", 0xC1, 1755, 141, 690_000, 1),
]


def _bus_number(text: str) -> int:
    """NVML accepts domain:bus:device.function and bus:device.function, in hex."""
    parts = text.rsplit(".", 1)[0].split(":")
    return int(parts[-2], 16)


class FakeNvml(types.ModuleType):
    """``pynvml`` as a driver of four GPUs answers it; counts its inits and shutdowns."""

    NVML_CLOCK_SM = 1
    NVML_CLOCK_MEM = 2
    NVML_TEMPERATURE_GPU = 0

    def __init__(self) -> None:
        super().__init__("pynvml")
        self.inits = 0
        self.shutdowns = 0
        self.asked_by_index: list[int] = []

    def nvmlInit(self) -> None:
        self.inits += 1

    def nvmlShutdown(self) -> None:
        self.shutdowns += 1

    def nvmlSystemGetDriverVersion(self) -> str:
        return "580.159.04"

    def nvmlDeviceGetCount(self) -> int:
        return len(HOST)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> Gpu:
        self.asked_by_index.append(index)
        return HOST[index]

    def nvmlDeviceGetHandleByUUID(self, uuid: str) -> Gpu:
        found = [g for g in HOST if g.uuid == uuid]
        if not found:
            raise RuntimeError("NVML_ERROR_NOT_FOUND")
        return found[0]

    def nvmlDeviceGetHandleByPciBusId_v2(self, bus_id: str) -> Gpu:
        found = [g for g in HOST if g.bus == _bus_number(bus_id)]
        if not found:
            raise RuntimeError("NVML_ERROR_NOT_FOUND")
        return found[0]

    def nvmlDeviceGetIndex(self, gpu: Gpu) -> int:
        return HOST.index(gpu)

    def nvmlDeviceGetName(self, gpu: Gpu) -> str:
        return gpu.name

    def nvmlDeviceGetUUID(self, gpu: Gpu) -> str:
        return gpu.uuid

    def nvmlDeviceGetPciInfo(self, gpu: Gpu) -> types.SimpleNamespace:
        return types.SimpleNamespace(busId=f"00000000:{gpu.bus:02X}:00.0".encode())

    def nvmlDeviceGetMemoryInfo(self, gpu: Gpu) -> types.SimpleNamespace:
        return types.SimpleNamespace(total=gpu.memory_bytes * 10**9)

    def nvmlDeviceGetClockInfo(self, gpu: Gpu, clock: int) -> int:
        return gpu.sm_mhz if clock == self.NVML_CLOCK_SM else 2619

    def nvmlDeviceGetMaxClockInfo(self, gpu: Gpu, clock: int) -> int:
        return 1980 if clock == self.NVML_CLOCK_SM else 2619

    def nvmlDeviceGetTemperature(self, gpu: Gpu, sensor: int) -> int:
        return 40 + HOST.index(gpu)

    def nvmlDeviceGetPowerUsage(self, gpu: Gpu) -> int:
        return 100_000 * (HOST.index(gpu) + 1)

    def nvmlDeviceGetEnforcedPowerLimit(self, gpu: Gpu) -> int:
        return gpu.power_limit_mw

    def nvmlDeviceGetEccMode(self, gpu: Gpu) -> tuple[int, int]:
        return gpu.ecc, gpu.ecc


def jax_gpu(ordinal: int) -> types.SimpleNamespace:
    """A JAX CUDA device as memwall sees it: its platform and CUDA ordinal."""
    return types.SimpleNamespace(platform="gpu", local_hardware_id=ordinal)


@pytest.fixture
def driver(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeNvml]:
    """Four GPUs behind NVML; no CUDA driver (this machine has none) unless a test adds one."""
    fake = FakeNvml()
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    monkeypatch.setattr(nvml, "LIBCUDA", "libcuda-absent-on-purpose.so.1")
    monkeypatch.delenv("CUDA_DEVICE_ORDER", raising=False)
    nvml.shutdown()
    yield fake
    nvml.shutdown()


def test_two_visible_by_index_read_nvml_gpus_two_and_three(
    driver: FakeNvml, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,3")
    monkeypatch.setenv("CUDA_DEVICE_ORDER", "PCI_BUS_ID")
    first, second = nvml.session().gpu(jax_gpu(0)), nvml.session().gpu(jax_gpu(1))  # type: ignore[union-attr]
    assert first is not None and second is not None
    assert (first.index, first.name, first.memory_bytes) == (2, "NVIDIA H100 80GB HBM3", 81e9)
    assert (second.index, second.name, second.power_limit_w) == (3, "NVIDIA H200", 690.0)
    assert first.pci_bus_id == "00000000:81:00.0" and first.ecc_enabled is True
    assert "CUDA_VISIBLE_DEVICES entry 0" in first.matched_by
    # The readings taken around every probe, and the memory discovery falls back on.
    assert discovery.nvml_reading(jax_gpu(0)) == (
        "NVIDIA H100 80GB HBM3 SM 1980 MHz, memory 2619 MHz, 42 C, 300 W"
    )
    assert discovery.nvml_memory_bytes(jax_gpu(1)) == 141 * 10**9
    assert 0 not in driver.asked_by_index and 1 not in driver.asked_by_index


def test_two_visible_by_uuid_or_its_prefix(
    driver: FakeNvml, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", f"{HOST[3].uuid},GPU-bbbb")
    first, second = discovery.nvml_gpu(jax_gpu(0)), discovery.nvml_gpu(jax_gpu(1))
    assert first is not None and first.name == "NVIDIA H200"
    assert second is not None and second.name == "NVIDIA A100-SXM4-40GB"
    assert second.ecc_enabled is False and "UUID GPU-bbbb" in second.matched_by
    # An ordinal past the visible list is no GPU at all, not NVML's GPU of that number.
    assert discovery.nvml_gpu(jax_gpu(2)) is None


def test_index_order_without_pci_order_says_what_it_assumed(
    driver: FakeNvml, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1,3")
    gpu = discovery.nvml_gpu(jax_gpu(1))
    assert gpu is not None and gpu.index == 3
    assert "taking CUDA's order for PCI order" in gpu.matched_by


def test_nvml_is_initialised_once_per_run_and_shut_down(
    driver: FakeNvml, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,3")
    for _ in range(5):
        discovery.nvml_reading(jax_gpu(0))
        discovery.nvml_reading(jax_gpu(1))
    assert discovery.nvml_driver_version() == "580.159.04"
    assert (driver.inits, driver.shutdowns) == (1, 0)
    nvml.shutdown()
    assert (driver.inits, driver.shutdowns) == (1, 1)
    nvml.shutdown()  # a second shutdown has nothing left to release
    assert driver.shutdowns == 1


_FAKE_LIBCUDA = r"""
/* The CUDA driver of a host whose CUDA order is not PCI order: ordinal 0 is the GPU on bus
   0xC1, ordinal 1 the one on 0x41 (what CUDA_DEVICE_ORDER=FASTEST_FIRST can give). */
#include <stdio.h>
int cuInit(unsigned int flags) { return 0; }
int cuDeviceGet(int *device, int ordinal) {
    if (ordinal < 0 || ordinal > 1) return 101; /* CUDA_ERROR_INVALID_DEVICE */
    *device = ordinal;
    return 0;
}
int cuDeviceGetPCIBusId(char *bus_id, int length, int device) {
    snprintf(bus_id, length, "0000:%02X:00.0", device == 0 ? 0xC1 : 0x41);
    return 0;
}
"""


def test_the_cuda_driver_s_bus_id_wins(
    driver: FakeNvml, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        pytest.skip("no C compiler to build the stand-in CUDA driver")
    source = tmp_path / "libcuda.c"
    source.write_text(_FAKE_LIBCUDA)
    library = tmp_path / "libcuda.so.1"
    subprocess.run([compiler, "-shared", "-fPIC", "-o", library, source], check=True)
    monkeypatch.setattr(nvml, "LIBCUDA", str(library))
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert nvml.cuda_pci_bus_id(0) == "00000000:C1:00.0"
    assert nvml.cuda_pci_bus_id(7) is None
    first, second = discovery.nvml_gpu(jax_gpu(0)), discovery.nvml_gpu(jax_gpu(1))
    assert first is not None and first.name == "NVIDIA H200"
    assert first.matched_by == "PCI bus id 00000000:C1:00.0 (from the CUDA driver)"
    assert second is not None and second.name == "NVIDIA A100-SXM4-40GB"
    assert driver.asked_by_index == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0000:41:00.0", "00000000:41:00.0"),
        ("00000000:c1:00.0", "00000000:C1:00.0"),
        ("41:00.1", "00000000:41:00.1"),
        ("not a bus id", None),
        ("1:2:3:4.0", None),
    ],
)
def test_bus_ids_are_written_as_nvml_writes_them(text: str, expected: str | None) -> None:
    assert nvml.normalize_bus_id(text) == expected

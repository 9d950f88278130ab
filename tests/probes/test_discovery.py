"""Discovery's readings of the host: sysfs/procfs files in a temporary folder stand in for
the machine's, and a fake NVML module for a driver this machine does not have."""

from __future__ import annotations

import sys
import types
from collections.abc import Iterator
from pathlib import Path

import pytest

from tasks import discovery, nvml

CPUINFO = """processor\t: 0
model name\t: AMD EPYC 7763 64-Core Processor
flags\t\t: fpu vme avx2 fma hypervisor lahf_lm

processor\t: 1
model name\t: AMD EPYC 7763 64-Core Processor
flags\t\t: fpu vme avx2 fma hypervisor lahf_lm
"""


def test_cpu_model_and_hypervisor_flag(tmp_path: Path) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(CPUINFO)
    assert discovery.cpu_model(cpuinfo) == "AMD EPYC 7763 64-Core Processor"
    assert discovery.hypervisor_present(cpuinfo) is True
    cpuinfo.write_text(CPUINFO.replace(" hypervisor", ""))
    assert discovery.hypervisor_present(cpuinfo) is False
    assert discovery.hypervisor_present(tmp_path / "absent") is None
    assert discovery.cpu_model(tmp_path / "absent") is None


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({"cpu.max": "200000 100000\n"}, 2.0),
        ({"cpu.max": "max 100000\n"}, None),
        ({"cpu/cpu.cfs_quota_us": "150000\n", "cpu/cpu.cfs_period_us": "100000\n"}, 1.5),
        ({"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"}, None),
        ({}, None),
    ],
)
def test_cgroup_cpu_quota(tmp_path: Path, files: dict[str, str], expected: float | None) -> None:
    for name, content in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(content)
    assert discovery.cgroup_cpu_quota(tmp_path) == expected


def test_last_level_cache_is_the_largest_sysfs_cache(tmp_path: Path) -> None:
    for index, size in enumerate(["32K", "512K", "32768K"]):
        (tmp_path / f"index{index}").mkdir()
        (tmp_path / f"index{index}" / "size").write_text(f"{size}\n")
    assert discovery.cpu_last_level_cache_bytes(tmp_path) == 32 * 2**20


def test_host_state_describes_what_it_found() -> None:
    state = discovery.HostState(
        load_average=(1.5, 1.0, 0.5),
        cpu_quota=2.0,
        hypervisor=True,
        cpu_model="AMD EPYC",
        last_level_cache_bytes=8 * 2**20,
    )
    text = state.describe()
    for part in ("load 1.50/1.00/0.50", "cgroup CPU quota 2", "hypervisor present", "LLC 8 MiB"):
        assert part in text
    blank = discovery.HostState(None, None, None, None, None).describe()
    assert "load unknown" in blank and "no cgroup CPU quota" in blank


def _fake_nvml(monkeypatch: pytest.MonkeyPatch, *, fail_on: str | None = None) -> None:
    nvml = types.ModuleType("pynvml")

    def answer(name: str, value: object) -> object:
        def call(*_: object) -> object:
            if name == fail_on:
                raise RuntimeError("NVML error")
            return value

        return call

    nvml.NVML_CLOCK_SM = 1  # type: ignore[attr-defined]
    nvml.NVML_CLOCK_MEM = 2  # type: ignore[attr-defined]
    nvml.NVML_TEMPERATURE_GPU = 0  # type: ignore[attr-defined]
    nvml.nvmlInit = answer("init", None)  # type: ignore[attr-defined]
    nvml.nvmlDeviceGetHandleByIndex = answer("handle", object())  # type: ignore[attr-defined]
    nvml.nvmlDeviceGetName = answer("name", b"NVIDIA H100 80GB HBM3")  # type: ignore[attr-defined]
    nvml.nvmlDeviceGetClockInfo = answer("clock", 1980)  # type: ignore[attr-defined]
    nvml.nvmlDeviceGetTemperature = answer("temp", 41)  # type: ignore[attr-defined]
    nvml.nvmlDeviceGetPowerUsage = answer("power", 123_400)  # type: ignore[attr-defined]
    nvml.nvmlSystemGetDriverVersion = answer("driver", "550.54.15")  # type: ignore[attr-defined]
    memory = types.SimpleNamespace(total=80 * 10**9)
    nvml.nvmlDeviceGetMemoryInfo = answer("memory", memory)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "pynvml", nvml)


# JAX's first GPU, as NVML is asked about it (a GPU device is the edge of this machine's world).
GPU0 = types.SimpleNamespace(platform="gpu", local_hardware_id=0)


@pytest.fixture(autouse=True)
def _fresh_nvml() -> Iterator[None]:
    """Each test initialises NVML (or finds it absent) for itself."""
    nvml.shutdown()
    yield
    nvml.shutdown()


def test_nvml_reading_when_the_driver_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    _fake_nvml(monkeypatch)
    reading = discovery.nvml_reading(GPU0)
    assert reading == "NVIDIA H100 80GB HBM3 SM 1980 MHz, memory 1980 MHz, 41 C, 123 W"
    assert discovery.nvml_driver_version() == "550.54.15"
    assert discovery.nvml_memory_bytes(GPU0) == 80 * 10**9


def test_nvml_absent_or_failing_is_not_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.setitem(sys.modules, "pynvml", None)  # import fails: not installed
    assert discovery.nvml_reading(GPU0) is None
    assert discovery.nvml_driver_version() is None
    assert discovery.nvml_memory_bytes(GPU0) is None
    nvml.shutdown()
    _fake_nvml(monkeypatch, fail_on="temp")
    assert discovery.nvml_reading(GPU0) == "NVML unreadable (RuntimeError)"

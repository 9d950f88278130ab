"""NVML, the NVIDIA driver's own view of a GPU (its model, memory, clocks, power limit, ECC),
asked about the GPU JAX is measuring and no other.

JAX numbers the GPUs it sees by CUDA ordinal: the GPUs ``CUDA_VISIBLE_DEVICES`` leaves, in
CUDA's order. NVML numbers every GPU on the host in PCI order. With ``CUDA_VISIBLE_DEVICES=2,3``
JAX's GPU 0 is NVML's GPU 2, so asking NVML for "GPU 0" reads another GPU's clocks and power.
A JAX device is therefore matched to its NVML handle by PCI bus id (from JAX where it says, else
from the CUDA driver the process already loaded), else by the ``CUDA_VISIBLE_DEVICES`` entry at
its ordinal (a UUID, or an index into NVML's order), and each reading says how it was matched.

NVML is initialised once per process, on first use, and shut down at exit (``shutdown``): a
probe reads it before and after every step, and each ``nvmlInit`` takes a reference the driver
keeps until its ``nvmlShutdown``.
"""

from __future__ import annotations

import atexit
import ctypes
import importlib
import os
from dataclasses import dataclass
from typing import Any, Final

# The CUDA driver's library; JAX's CUDA plugin has loaded it already where a GPU is in use.
LIBCUDA: Final = "libcuda.so.1"
_BUS_ID_BYTES: Final = 64


def normalize_bus_id(text: str) -> str | None:
    """A PCI bus id as NVML writes it (``00000000:41:00.0``), from the CUDA driver's
    ``0000:41:00.0``, NVML's own or a bare ``41:00.0``; None where it is not one."""
    text = text.strip().lower()
    head, _, function = text.rpartition(".")
    parts = head.split(":")
    if len(parts) == 2:
        parts.insert(0, "0")
    try:
        domain, bus, slot, fn = (int(p, 16) for p in (*parts, function))
    except ValueError:
        return None
    if len(parts) != 3:
        return None
    return f"{domain:08x}:{bus:02x}:{slot:02x}.{fn:x}".upper()


def cuda_pci_bus_id(ordinal: int, library: str | None = None) -> str | None:
    """The PCI bus id of CUDA device ``ordinal`` as this process's CUDA driver numbers it
    (honouring ``CUDA_VISIBLE_DEVICES`` and ``CUDA_DEVICE_ORDER`` as JAX does), or None where
    no CUDA driver answers."""
    try:
        cuda = ctypes.CDLL(library or LIBCUDA)
        if cuda.cuInit(0) != 0:
            return None
        device = ctypes.c_int()
        if cuda.cuDeviceGet(ctypes.byref(device), ctypes.c_int(ordinal)) != 0:
            return None
        buffer = ctypes.create_string_buffer(_BUS_ID_BYTES)
        if cuda.cuDeviceGetPCIBusId(buffer, ctypes.c_int(_BUS_ID_BYTES), device) != 0:
            return None
    except (OSError, AttributeError):
        return None
    return normalize_bus_id(buffer.value.decode(errors="replace"))


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


@dataclass(frozen=True)
class NvmlGpu:
    """What NVML says of one GPU: identity, memory, clocks now and at most, power limit, ECC.
    A figure NVML would not give is None (a GeForce has no ECC, a VM may hide the power)."""

    index: int
    name: str
    uuid: str | None
    pci_bus_id: str | None
    memory_bytes: int | None
    sm_clock_mhz: int | None
    memory_clock_mhz: int | None
    max_sm_clock_mhz: int | None
    max_memory_clock_mhz: int | None
    power_limit_w: float | None
    ecc_enabled: bool | None
    matched_by: str


class Nvml:
    """One initialised NVML (the ``pynvml`` module of ``nvidia-ml-py``)."""

    def __init__(self, module: Any) -> None:
        self.module = module
        # A device's match, once made: readings are taken before and after every probe.
        self._matched: dict[int, tuple[Any, str] | None] = {}

    def _ask(self, name: str, *args: Any) -> Any:
        """NVML's answer, or None where this GPU or driver does not support the question."""
        try:
            return getattr(self.module, name)(*args)
        except Exception:
            return None

    def count(self) -> int:
        return int(self._ask("nvmlDeviceGetCount") or 0)

    def driver_version(self) -> str | None:
        version = self._ask("nvmlSystemGetDriverVersion")
        return None if version is None else _text(version)

    def _by_bus_id(self, bus_id: str) -> Any:
        for name in ("nvmlDeviceGetHandleByPciBusId_v2", "nvmlDeviceGetHandleByPciBusId"):
            handle = self._ask(name, bus_id)
            if handle is not None:
                return handle
        return None

    def _by_uuid(self, uuid: str) -> Any:
        """CUDA accepts a UUID's unique prefix in ``CUDA_VISIBLE_DEVICES``; NVML wants it whole."""
        handle = self._ask("nvmlDeviceGetHandleByUUID", uuid)
        if handle is not None:
            return handle
        for index in range(self.count()):
            candidate = self._ask("nvmlDeviceGetHandleByIndex", index)
            full = self._ask("nvmlDeviceGetUUID", candidate) if candidate is not None else None
            if full is not None and _text(full).startswith(uuid):
                return candidate
        return None

    def handle(self, device: Any) -> tuple[Any, str] | None:
        """The NVML handle of JAX GPU ``device`` and how it was matched, or None."""
        ordinal = int(getattr(device, "local_hardware_id", None) or 0)
        if ordinal not in self._matched:
            self._matched[ordinal] = self._match(device, ordinal)
        return self._matched[ordinal]

    def _match(self, device: Any, ordinal: int) -> tuple[Any, str] | None:
        for bus_id, where in (
            (getattr(device, "pci_bus_id", None), "JAX"),
            (cuda_pci_bus_id(ordinal), "the CUDA driver"),
        ):
            found = normalize_bus_id(str(bus_id)) if bus_id else None
            handle = self._by_bus_id(found) if found else None
            if handle is not None:
                return handle, f"PCI bus id {found} (from {where})"
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        if visible is not None:
            entries = [e.strip() for e in visible.split(",") if e.strip()]
            if ordinal >= len(entries):
                return None
            entry = entries[ordinal]
            if not entry.lstrip("-").isdigit():
                handle = self._by_uuid(entry)
                return None if handle is None else (handle, f"UUID {entry} (CUDA_VISIBLE_DEVICES)")
            index, how = int(entry), f"index {entry} (CUDA_VISIBLE_DEVICES entry {ordinal}"
        else:
            index, how = ordinal, f"index {ordinal} (CUDA ordinal"
        order = os.environ.get("CUDA_DEVICE_ORDER", "FASTEST_FIRST")
        caveat = "" if order == "PCI_BUS_ID" else ", taking CUDA's order for PCI order"
        handle = self._ask("nvmlDeviceGetHandleByIndex", index)
        return None if handle is None else (handle, f"{how}{caveat})")

    def gpu(self, device: Any) -> NvmlGpu | None:
        """Everything NVML says of JAX GPU ``device``, or None where it cannot be matched."""
        found = self.handle(device)
        if found is None:
            return None
        handle, matched_by = found
        m = self.module
        memory = self._ask("nvmlDeviceGetMemoryInfo", handle)
        pci = self._ask("nvmlDeviceGetPciInfo", handle)
        limit_mw = self._ask("nvmlDeviceGetEnforcedPowerLimit", handle)
        ecc = self._ask("nvmlDeviceGetEccMode", handle)
        index = self._ask("nvmlDeviceGetIndex", handle)
        uuid = self._ask("nvmlDeviceGetUUID", handle)
        return NvmlGpu(
            index=-1 if index is None else int(index),
            name=_text(self._ask("nvmlDeviceGetName", handle) or "unknown"),
            uuid=None if uuid is None else _text(uuid),
            pci_bus_id=normalize_bus_id(_text(pci.busId)) if pci is not None else None,
            memory_bytes=None if memory is None else int(memory.total),
            sm_clock_mhz=self._ask("nvmlDeviceGetClockInfo", handle, m.NVML_CLOCK_SM),
            memory_clock_mhz=self._ask("nvmlDeviceGetClockInfo", handle, m.NVML_CLOCK_MEM),
            max_sm_clock_mhz=self._ask("nvmlDeviceGetMaxClockInfo", handle, m.NVML_CLOCK_SM),
            max_memory_clock_mhz=self._ask("nvmlDeviceGetMaxClockInfo", handle, m.NVML_CLOCK_MEM),
            power_limit_w=None if limit_mw is None else limit_mw / 1000,
            ecc_enabled=None if ecc is None else bool(ecc[0]),
            matched_by=matched_by,
        )

    def reading(self, device: Any) -> str | None:
        """Name, clocks, temperature and power of JAX GPU ``device`` now, in one line."""
        found = self.handle(device)
        if found is None:
            return None
        handle, _ = found
        m = self.module
        try:
            name = _text(m.nvmlDeviceGetName(handle))
            sm = m.nvmlDeviceGetClockInfo(handle, m.NVML_CLOCK_SM)
            mem = m.nvmlDeviceGetClockInfo(handle, m.NVML_CLOCK_MEM)
            temp = m.nvmlDeviceGetTemperature(handle, m.NVML_TEMPERATURE_GPU)
            power_w = m.nvmlDeviceGetPowerUsage(handle) / 1000
        except Exception as exc:
            return f"NVML unreadable ({type(exc).__name__})"
        return f"{name} SM {sm} MHz, memory {mem} MHz, {temp} C, {power_w:.0f} W"


_state: dict[str, Any] = {"session": None, "tried": False}


def session() -> Nvml | None:
    """This process's NVML, initialised on first use (once), or None where ``nvidia-ml-py`` is
    not installed or no NVIDIA driver answers."""
    if not _state["tried"]:
        _state["tried"] = True
        try:
            module = importlib.import_module("pynvml")
            module.nvmlInit()
        except Exception:
            return None
        _state["session"] = Nvml(module)
        atexit.register(shutdown)
    session_: Nvml | None = _state["session"]
    return session_


def shutdown() -> None:
    """Release NVML (its ``nvmlShutdown``); the next ``session()`` initialises it afresh."""
    opened: Nvml | None = _state["session"]
    _state.update(session=None, tried=False)
    if opened is not None:
        atexit.unregister(shutdown)
        try:
            opened.module.nvmlShutdown()
        except Exception:
            return

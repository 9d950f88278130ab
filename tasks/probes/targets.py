"""What a probe runs on and how its outcome becomes a measurements row: the target (one device,
or all of a host's devices at once) with its catalog spec figures, and the row maker that adds
the host's state and telemetry to every row. Shared by the STREAM-like probes
(``tasks.probes.runner``) and the workload-shaped ones (``tasks.probes.workload_probe``).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import jax
import pandas as pd

from hardware_profiles.schema import PEAK_PRECISIONS, Accelerator, peak_column
from tasks.discovery import host_state, nvml_reading
from tasks.probes.statistics import Summary

Row = dict[str, Any]
ALL_DEVICES = -1


def _specs(catalog: pd.DataFrame, accelerator_id: str | None) -> dict[str, float]:
    """The catalog's numeric spec figures for one model (none for an unknown device)."""
    rows = catalog[catalog["accelerator_id"] == accelerator_id]
    if accelerator_id is None or rows.empty:
        return {}
    row = rows.iloc[0]
    return {
        name: float(row[name])
        for name in ("mem_bandwidth_bytes_per_s", *(peak_column(p) for p in PEAK_PRECISIONS))
        if pd.notna(row[name])
    }


def is_out_of_memory(exc: BaseException) -> bool:
    """Whether ``exc`` is the device (or host) running out of memory: a probe then shrinks."""
    text = str(exc).lower()
    return "resource_exhausted" in text or "out of memory" in text or isinstance(exc, MemoryError)


def failure_reason(exc: BaseException) -> str:
    """The exception's type and first line, short enough for a row's detail."""
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {first}"[:300]


def status_of(summary: Summary | None, error: float, tolerance: float) -> str:
    """``failed`` when the result is wrong, whatever its speed; else ok or unstable."""
    if summary is None:
        return "waived"
    if not math.isfinite(error) or error > tolerance:
        return "failed"
    return "unstable" if summary.unstable else "ok"


@dataclass(frozen=True)
class Target:
    """What a row is about: one device, or all of a host's devices at once (index -1)."""

    host: str
    device_index: int
    platform: str
    device_kind: str
    accelerator_id: str | None
    devices: tuple[Any, ...]
    # Spec figures scaled to the devices measured together.
    specs: dict[str, float]

    @property
    def first(self) -> Any:
        return self.devices[0]

    @property
    def label(self) -> str:
        where = "all devices" if self.device_index == ALL_DEVICES else f"#{self.device_index}"
        return f"{self.device_kind} {where}"

    def telemetry(self) -> str | None:
        """NVML's reading of the device(s) now, where NVML knows them."""
        if self.platform != "gpu":
            return None
        readings = [nvml_reading(d) for d in self.devices]
        found = [r for r in readings if r]
        return "; ".join(found) if found else None


def single_target(accelerator: Accelerator, catalog: pd.DataFrame) -> Target:
    return Target(
        host=accelerator.host,
        device_index=accelerator.device_index,
        platform=accelerator.platform,
        device_kind=accelerator.device_kind,
        accelerator_id=accelerator.accelerator_id,
        devices=(jax.devices()[accelerator.device_index],),
        specs=_specs(catalog, accelerator.accelerator_id),
    )


def all_devices_target(accelerators: Sequence[Accelerator], catalog: pd.DataFrame) -> Target:
    """All devices as one: a spec (sum of the devices') only where every device is the same
    catalog model."""
    ids = {a.accelerator_id for a in accelerators}
    kinds = sorted({a.device_kind for a in accelerators})
    same_model = len(ids) == 1 and None not in ids
    accelerator_id = accelerators[0].accelerator_id if same_model else None
    count = len(accelerators)
    specs = _specs(catalog, accelerator_id)
    return Target(
        host=accelerators[0].host,
        device_index=ALL_DEVICES,
        platform=accelerators[0].platform,
        device_kind=" + ".join(kinds) if len(kinds) > 1 else kinds[0],
        accelerator_id=accelerator_id,
        devices=tuple(jax.devices()[a.device_index] for a in accelerators),
        specs={name: value * count for name, value in specs.items()},
    )


@dataclass(frozen=True)
class Step:
    """One probe, not yet run: its label (for progress) and what produces its rows."""

    label: str
    run: Callable[[], list[Row]]


class Rows:
    """Makes measurement rows for one target, with the host's state and telemetry in detail."""

    def __init__(self, target: Target, run_id: str, software: str) -> None:
        self.target = target
        self.run_id = run_id
        self.software = software

    def row(
        self,
        probe: str,
        dtype: str,
        unit: str,
        working_set: int,
        summary: Summary | None,
        spec: float | None,
        status: str,
        detail: str,
    ) -> Row:
        best = summary.best if summary else None
        t = self.target
        return {
            "run_id": self.run_id,
            "measured_at": dt.datetime.now(dt.UTC),
            "host": t.host,
            "device_index": t.device_index,
            "platform": t.platform,
            "device_kind": t.device_kind,
            "accelerator_id": t.accelerator_id,
            "probe": probe,
            "dtype": dtype,
            "working_set_bytes": working_set,
            "repetitions": summary.repetitions if summary else 0,
            "best": best,
            "median": summary.median if summary else None,
            "p10": summary.p10 if summary else None,
            "p90": summary.p90 if summary else None,
            "cv": summary.cv if summary else None,
            "unit": unit,
            "spec": spec,
            "efficiency": best / spec if best is not None and spec else None,
            "status": status,
            "detail": detail,
            "software": self.software,
        }

    def observed(self, measure: Callable[[], tuple[Row, ...]]) -> list[Row]:
        """Run ``measure`` and add to its rows' detail the host's state and, on NVIDIA GPUs,
        the telemetry read before and after it."""
        before = self.target.telemetry()
        rows = list(measure())
        after = self.target.telemetry()
        context = [f"host: {host_state().describe()}"]
        if before or after:
            context.append(f"NVML before: {before}; after: {after}")
        for row in rows:
            row["detail"] = " | ".join([row["detail"], *context])
        return rows

"""Bandwidth across links: host to device, device to host, and device to device.

Host<->device copies go to and from ordinary (pageable) host memory, as a framework's input
pipeline and checkpointing do. Device to device is a collective: every device sends its array
to the next one in a ring (``ppermute``), so every link carries one array at once. Each result
is checked against the values that were sent.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import PartitionSpec

from tasks.probes.kernels import TRANSFER_KERNELS, TransferKernel
from tasks.probes.placement import AXIS, mesh, shardings
from tasks.probes.statistics import Summary, summarize
from tasks.probes.timing import Timed, time_calls

VALUE: Final = 0.625


@dataclass(frozen=True)
class TransferResult:
    kernel: TransferKernel
    dtype: str
    elements: int
    devices: int
    summary: Summary
    max_relative_error: float

    @property
    def working_set_bytes(self) -> int:
        return self.elements * self.devices * jnp.dtype(self.dtype).itemsize


def _error(got: Any, want: Any) -> float:
    got64 = np.asarray(got, dtype=np.float64)
    want64 = np.asarray(want, dtype=np.float64)
    return float(np.max(np.abs(got64 - want64)) / np.max(np.abs(want64)))


def _summarize(
    name: str, dtype: str, elements: int, devices: int, timed: Timed, error: float
) -> TransferResult:
    kernel = TRANSFER_KERNELS[name]
    work = kernel.bytes_moved(elements, jnp.dtype(dtype).itemsize, devices)
    return TransferResult(kernel, dtype, elements, devices, summarize(work, timed.seconds), error)


def host_to_device(
    device: jax.Device, dtype: str, elements: int, repetitions: int, warmup: int = 2
) -> TransferResult:
    """Copy a host array to ``device`` ``repetitions`` times; check the last copy."""
    host = np.full(elements, VALUE, dtype=jnp.dtype(dtype))

    def call() -> Any:
        return jax.device_put(host, device, may_alias=False).block_until_ready()

    timed = time_calls(call, warmup=warmup, repetitions=repetitions)
    return _summarize("host-to-device", dtype, elements, 1, timed, _error(timed.last, host))


def device_to_host(
    device: jax.Device, dtype: str, elements: int, repetitions: int, warmup: int = 2
) -> TransferResult:
    """Copy a device array to the host ``repetitions`` times; check the last copy.

    JAX caches an array's host copy, so each call reads a fresh device array, made (untimed)
    by a device-side copy just before it.
    """
    source = jax.device_put(np.full(elements, VALUE, dtype=jnp.dtype(dtype)), device)
    duplicate = jax.jit(jnp.copy).lower(source).compile()
    state: dict[str, Any] = {}

    def prepare() -> None:
        state["fresh"] = duplicate(source).block_until_ready()

    def call() -> Any:
        return np.asarray(state.pop("fresh"))

    timed = time_calls(call, warmup=warmup, repetitions=repetitions, prepare=prepare)
    return _summarize("device-to-host", dtype, elements, 1, timed, _error(timed.last, VALUE))


def ring_values(devices: int, elements: int, shifts: int) -> np.ndarray:
    """Each device's value after ``shifts`` ring steps, starting from device i holding i + 1:
    device i then holds what device i - shifts started with."""
    start = np.arange(1, devices + 1, dtype=np.float64)
    return np.repeat(np.roll(start, shifts), elements)


def device_to_device(
    devices: Sequence[jax.Device], dtype: str, elements: int, repetitions: int, warmup: int = 2
) -> TransferResult:
    """Every device sends ``elements`` to the next in a ring, ``repetitions`` times; check
    that each array went round the ring the number of steps it should."""
    count = len(devices)
    if count < 2:
        raise ValueError("device-to-device needs at least two devices")
    ring = mesh(devices)
    split, _ = shardings(devices)
    perm = [(i, (i + 1) % count) for i in range(count)]

    def shift(x: Any) -> Any:
        return jax.lax.ppermute(x, AXIS, perm)  # type: ignore[no-untyped-call]

    spec = PartitionSpec(AXIS)  # type: ignore[no-untyped-call]
    step = jax.jit(
        jax.shard_map(shift, mesh=ring, in_specs=spec, out_specs=spec),
        donate_argnums=(0,),
        keep_unused=True,
    )
    start = jax.device_put(ring_values(count, elements, 0).astype(jnp.dtype(dtype)), split)
    compiled = step.lower(start).compile()
    state = {"x": start}

    def call() -> Any:
        state["x"] = compiled(state["x"]).block_until_ready()
        return state["x"]

    timed = time_calls(call, warmup=warmup, repetitions=repetitions)
    shifts = warmup + len(timed.seconds)
    error = _error(timed.last, ring_values(count, elements, shifts))
    return _summarize("device-to-device", dtype, elements, count, timed, error)

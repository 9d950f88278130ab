"""Where a probe's arrays live: one device, or split across several (the all-devices probes)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeAlias

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec, SingleDeviceSharding

# One device, or several to split the arrays across.
Devices: TypeAlias = "jax.Device | Sequence[jax.Device]"
AXIS = "devices"


def as_list(devices: Devices) -> list[jax.Device]:
    return [devices] if isinstance(devices, jax.Device) else list(devices)


def mesh(devices: Devices) -> Mesh:
    return Mesh(np.array(as_list(devices)), (AXIS,))


def shardings(devices: Devices) -> tuple[jax.sharding.Sharding, jax.sharding.Sharding]:
    """(split along the first axis, replicated): on one device both are that device."""
    found = as_list(devices)
    if len(found) == 1:
        single = SingleDeviceSharding(found[0])
        return single, single
    m = mesh(found)
    split = PartitionSpec(AXIS)  # type: ignore[no-untyped-call]
    return NamedSharding(m, split), NamedSharding(m, PartitionSpec())  # type: ignore[no-untyped-call]

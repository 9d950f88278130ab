"""What a layout's collectives cost on an accelerator's scale-up link: each call moves its bytes
over the link and pays a fixed latency, whatever its size.

    time = Σ over collectives  calls · (latency + link bytes per call / link bandwidth)

The bandwidth is the catalog's ``interconnect_bandwidth_bytes_per_s`` (per device, per
direction). The latency per call is a figure per link kind, the kind following the vendor's
scale-up fabric; each carries its source. At decode's message sizes (kilobytes to a few
megabytes) the latency, not the bytes, is most of a collective's time: 2 all-reduces per layer
of an 80-layer model at tp=8 are 160 calls, about 1.3 ms a step at 8 us each.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import pandas as pd

from tasks.analysis.workload.layout_figures import LayoutFigures


@dataclass(frozen=True)
class LinkKind:
    name: str
    latency_s: float
    source: str


NVLINK: Final = LinkKind(
    "NVLink/NVSwitch",
    8e-6,
    "8 us per call: NCCL all_reduce_perf on HGX 8 x H100 with CUDA graphs gives about 6 us at "
    "2 GPUs, rising with the GPU count (NVIDIA/nccl issue 1259); 10 us for a 32-byte "
    "all-reduce on A100 SXM (NVIDIA/nccl issue 583)",
)
XGMI: Final = LinkKind(
    "xGMI (Infinity Fabric)",
    10e-6,
    "10 us per call: assumed, NVLink's 8 us figure widened for RCCL over a direct mesh; no "
    "published per-call RCCL figure was read",
)
ICI: Final = LinkKind(
    "ICI",
    10e-6,
    "10 us per call: assumed (no published per-call figure read); XLA fuses collectives, so "
    "fewer calls are made than counted",
)
ETHERNET: Final = LinkKind(
    "on-chip RoCE",
    15e-6,
    "15 us per call: assumed for RDMA over Ethernet between Gaudi cards (no published per-call "
    "figure read)",
)
NEURONLINK: Final = LinkKind(
    "NeuronLink", 10e-6, "10 us per call: assumed (no published per-call figure read)"
)
LINK_KINDS: Final = (NVLINK, XGMI, ICI, ETHERNET, NEURONLINK)
_BY_VENDOR: Final = {
    "NVIDIA": NVLINK,
    "AMD": XGMI,
    "Google": ICI,
    "Intel": ETHERNET,
    "AWS": NEURONLINK,
}


@dataclass(frozen=True)
class Link:
    """An accelerator's scale-up link: bandwidth per direction and latency per call."""

    bytes_per_s: float
    kind: LinkKind


def link_latency_s(accelerator: Mapping[str, Any]) -> float:
    """The latency per call of a catalog row's link; 0 where the catalog has no interconnect
    bandwidth for it (its communication is then not counted at all)."""
    link = scale_up_link(accelerator)
    return 0.0 if link is None else link.kind.latency_s


def scale_up_link(accelerator: Mapping[str, Any]) -> Link | None:
    """The link of a catalog row (a mapping of its columns), or None where the catalog has no
    interconnect bandwidth for it (the device is then reached over PCIe alone). A vendor not
    listed is given NVLink's latency."""
    value = accelerator.get("interconnect_bandwidth_bytes_per_s")
    if value is None or pd.isna(value):
        return None
    kind = _BY_VENDOR.get(str(accelerator.get("vendor", "")), NVLINK)
    return Link(float(value), kind)


@dataclass(frozen=True)
class CollectiveTime:
    """A step's collectives: seconds over the link, seconds of fixed latency, calls."""

    bytes_s: float
    latency_s: float
    calls: int

    @property
    def seconds(self) -> float:
        return self.bytes_s + self.latency_s


NO_COLLECTIVES: Final = CollectiveTime(0.0, 0.0, 0)


def collective_time(figures: LayoutFigures, link: Link) -> CollectiveTime:
    """The module docstring's sum for one step's collectives."""
    calls = sum(c.calls for c in figures.collectives)
    moved = sum(c.calls * c.link_bytes() for c in figures.collectives)
    return CollectiveTime(moved / link.bytes_per_s, calls * link.kind.latency_s, calls)

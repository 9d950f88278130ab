"""The links a training run's collectives cross, and what each collective costs on them.

A device has two links: the scale-up one (NVLink, xGMI, ICI within a pod) to the devices of its
scale-up domain (8 in an HGX/DGX node, 72 in a GB200 NVL72 rack), and the scale-out one
(InfiniBand, RoCE, EFA) per device to everything beyond. Ranks are laid out tensor parallel
innermost, then context, then data parallel, then pipeline (Megatron-LM's order), so a group's
members sit ``stride`` devices apart (the product of the degrees inside it) and
``domain // stride`` of them share a scale-up domain; the collectives below split their
traffic between the two links accordingly.

Ring collectives over n ranks (Thakur et al. 2005, "Optimization of Collective Communication
Operations in MPICH"; NCCL's ring algorithms): an all-gather or a reduce-scatter of an
N-byte buffer moves ``(n−1)/n · N`` through each device's link, an all-reduce twice that, an
all-to-all ``(n−1)/n`` of the bytes each rank sends. Latency per call is not counted.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from hardware_profiles.errors import MemwallError


class NetworkError(MemwallError):
    """A network figure a training prediction needs and nobody stated."""


@dataclass(frozen=True)
class Network:
    """Per device, per direction, bytes/s; and the devices one scale-up domain holds."""

    scale_up_bytes_per_s: float
    scale_out_bytes_per_s: float
    domain_devices: int
    source: str

    def link(self, span: int) -> float:
        """The link a group spanning ``span`` consecutive devices is limited by."""
        return (
            self.scale_up_bytes_per_s if span <= self.domain_devices else self.scale_out_bytes_per_s
        )


def gather_s(buffer_bytes: float, ranks: int, stride: int, network: Network) -> float:
    """A ring all-gather or reduce-scatter of ``buffer_bytes`` (the whole, gathered buffer)
    over ``ranks`` ranks ``stride`` devices apart, hierarchically: the k members of the group
    inside one scale-up domain exchange ``(k−1)/k`` of it over the scale-up link, and the
    ``r/k`` domains exchange ``(r/k−1)/(r/k)`` of it over the scale-out links, each of the k
    members' links carrying ``1/k`` of that (NCCL's rings and trees over rail-optimized
    fabrics). One member per domain (a stride at least the domain) is the flat ring."""
    if ranks <= 1:
        return 0.0
    k = max(1, min(ranks, network.domain_devices // stride))
    if k >= ranks:
        return (ranks - 1) / ranks * buffer_bytes / network.scale_up_bytes_per_s
    domains = ranks / k
    intra = (k - 1) / k * buffer_bytes / network.scale_up_bytes_per_s
    inter = (domains - 1) / domains * buffer_bytes / k / network.scale_out_bytes_per_s
    return intra + inter


def allreduce_s(buffer_bytes: float, ranks: int, stride: int, network: Network) -> float:
    """A ring all-reduce: a reduce-scatter and an all-gather."""
    return 2.0 * gather_s(buffer_bytes, ranks, stride, network)


def all_to_all_s(sent_bytes: float, ranks: int, stride: int, network: Network) -> float:
    """An all-to-all in which each rank sends ``sent_bytes`` spread evenly over the ``ranks``:
    ``(k−1)/r`` of it stays in its scale-up domain, ``(r−k)/r`` leaves it."""
    if ranks <= 1:
        return 0.0
    k = max(1, min(ranks, network.domain_devices // stride))
    return sent_bytes * (
        (k - 1) / ranks / network.scale_up_bytes_per_s
        + (ranks - k) / ranks / network.scale_out_bytes_per_s
    )


def network_for(
    accelerator: Mapping[str, Any],
    scale_out: pd.DataFrame,
    override_bytes_per_s: float | None = None,
) -> Network:
    """The network of ``accelerator`` (a catalog row): its scale-up link from the catalog and
    its scale-out link and domain from the ``scale_out`` table (or ``override_bytes_per_s``,
    a fleet's own figure, with a domain of 8). Without a scale-up link in the catalog the
    scale-out link carries everything, and the source says so."""
    name = str(accelerator["accelerator_id"])
    rows = scale_out.loc[scale_out["accelerator_id"] == name]
    if override_bytes_per_s is None and rows.empty:
        known = ", ".join(sorted(scale_out["accelerator_id"]))
        raise NetworkError(
            f"no scale-out network figure for {name}: the table has {known}; state your "
            "fleet's own (--scale-out-gb-s, or a scale-out CSV)"
        )
    if override_bytes_per_s is not None:
        out, domain = (
            override_bytes_per_s,
            8 if rows.empty else int(rows.iloc[0]["scale_up_domain_devices"]),
        )
        source = f"scale-out {out / 1e9:g} GB/s per device as stated by the user"
    else:
        row = rows.iloc[0]
        out, domain = float(row["scale_out_bytes_per_s"]), int(row["scale_up_domain_devices"])
        source = f"scale-out {out / 1e9:g} GB/s per device ({row['fabric']}): {row['source_url']}"
    up = accelerator.get("interconnect_bandwidth_bytes_per_s")
    if up is None or up != up:
        return Network(out, out, 1, f"{source}; no scale-up link in the catalog: all on it")
    return Network(float(up), out, domain, f"{source}; scale-up from the catalog, domain {domain}")

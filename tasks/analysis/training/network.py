"""The links a training run's collectives cross, and what each collective costs on them.

A device has two links: the scale-up one (NVLink, xGMI, ICI within a pod) to the devices of its
scale-up domain (8 in an HGX/DGX node, 72 in a GB200 NVL72 rack), and the scale-out one
(InfiniBand, RoCE, EFA) per device to everything beyond. Ranks are laid out tensor parallel
innermost, then context, then data parallel, then pipeline (Megatron-LM's order): a group
stays on the scale-up link when the span of devices it covers, its size times the stride of
the dimensions inside it, fits the domain; otherwise its slowest hop is the scale-out link.

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
from tasks.analysis.training.layout import Layout


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


def spans(layout: Layout) -> dict[str, int]:
    """Devices each parallel group spans, in Megatron's rank order (tp, cp, dp, pp);
    expert parallelism takes its ranks from the data- and context-parallel group."""
    t, c, d = layout.tp, layout.cp, layout.dp
    return {
        "tp": t,
        "cp": t * c,
        "ep": t * layout.ep,
        "dp": t * c * d,
        "pp": layout.devices,
    }


def gather_s(buffer_bytes: float, ranks: int, link_bytes_per_s: float) -> float:
    """A ring all-gather or reduce-scatter of ``buffer_bytes`` (the whole, gathered buffer)."""
    if ranks <= 1:
        return 0.0
    return (ranks - 1) / ranks * buffer_bytes / link_bytes_per_s


def allreduce_s(buffer_bytes: float, ranks: int, link_bytes_per_s: float) -> float:
    """A ring all-reduce: a reduce-scatter and an all-gather."""
    return 2.0 * gather_s(buffer_bytes, ranks, link_bytes_per_s)


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

"""Fleet health: each device against its peers, the devices of the same model in the same run.

A vendor's diagnostics pass a GPU running at a third of its speed, because they test that it
works, not how fast. memwall measures every device each week, so it can say which are slow
against their peers: a device figure (triad bandwidth, a matmul dtype) more than
:data:`DEFAULT_STRAGGLER_FRACTION` below the median of its model's devices in the same run is a
``straggler``. The median, so one slow device cannot drag the bar down to itself; the same
run, so every peer was measured with the same software, plan and week. A model needs at least
:data:`MIN_PEERS` devices in the run for a verdict. Drift against a device's own history is
``degraded`` (tasks.history); the two together separate "this device got slower" from "this
device was always slower than its siblings".

Pure pandas: per-figure rows in, the same rows with the verdict out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import pandas as pd

DEFAULT_STRAGGLER_FRACTION: Final = 0.05
MIN_PEERS: Final = 2
DEVICE_KEYS: Final = ("host", "device_index", "device_kind")


def peer_verdicts(rows: pd.DataFrame, fraction: float = DEFAULT_STRAGGLER_FRACTION) -> pd.DataFrame:
    """``rows`` (one per device, figure and run, with ``value``) with ``model_median``,
    ``peers``, ``vs_model`` and ``straggler`` added.

    ``model_median`` is the median of the figure over the devices of the same ``device_kind``
    in the same ``run_id``; ``vs_model`` the device's value against it (-0.12 is 12 % below).
    """
    if not 0 < fraction < 1:
        raise ValueError(f"the straggler threshold must be a fraction in (0, 1), got {fraction:g}")
    if rows.empty:
        return rows.assign(model_median=[], peers=[], vs_model=[], straggler=[])
    # All of a host's devices at once (device_index -1) is no device's peer.
    single = pd.to_numeric(rows["device_index"]).ge(0)
    peers = rows.assign(value=rows["value"].where(single)).groupby(
        ["run_id", "device_kind", "figure"], dropna=False
    )["value"]
    median = peers.transform("median")
    count = peers.transform("count")
    enough = count.ge(MIN_PEERS) & single
    vs_model = (rows["value"] / median - 1.0).where(enough)
    return rows.assign(
        model_median=median.where(enough),
        peers=count,
        vs_model=vs_model,
        straggler=vs_model.lt(-fraction),
    )


@dataclass(frozen=True)
class Straggler:
    host: str
    device_index: int
    device_kind: str
    figure: str
    vs_model: float

    @property
    def label(self) -> str:
        return f"{self.host} {self.device_kind} #{self.device_index}"


@dataclass(frozen=True)
class Health:
    """One run's answer to "is my fleet good?"."""

    devices: int
    judged: int  # devices with at least MIN_PEERS of their model in the run
    stragglers: list[Straggler]  # the worst figure of each straggling device, worst first
    fraction: float

    @property
    def headline(self) -> str:
        threshold = f"{100 * self.fraction:g} %"
        if self.judged == 0:
            return (
                f"No device had a peer of its model in this run ({self.devices} device(s)); a "
                "straggler verdict needs at least 2 devices of a model."
            )
        within = self.judged - len(self.stragglers)
        text = f"{within} of {self.judged} devices within {threshold} of their model's median"
        if not self.stragglers:
            return text + "; no stragglers."
        names = ", ".join(
            f"{s.label} ({s.figure} {100 * s.vs_model:+.1f} %)" for s in self.stragglers
        )
        return f"{text}; {len(self.stragglers)} straggler(s): {names}."


def health(rows: pd.DataFrame, run_id: str, fraction: float = DEFAULT_STRAGGLER_FRACTION) -> Health:
    """The health of run ``run_id`` from rows with peer verdicts (:func:`peer_verdicts`)."""
    now = rows[rows["run_id"] == run_id]
    keys = list(DEVICE_KEYS)
    devices = now.drop_duplicates(keys)
    judged = now[now["vs_model"].notna()].drop_duplicates(keys)
    slow = now[now["straggler"].astype(bool)].sort_values("vs_model", kind="stable")
    worst = slow.drop_duplicates(keys)
    stragglers = [
        Straggler(
            str(r["host"]),
            int(str(r["device_index"])),
            str(r["device_kind"]),
            str(r["figure"]),
            float(r["vs_model"]),
        )
        for _, r in worst.iterrows()
    ]
    return Health(len(devices), len(judged), stragglers, fraction)

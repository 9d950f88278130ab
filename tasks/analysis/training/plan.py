"""A small layout search: every layout of N devices an engine could run a model on, timed,
the ones that fit memory kept, fastest first.

The candidates are the Megatron-style grids ``dp·tp·pp·cp = N`` with tensor parallelism
inside the scale-up domain and dividing the heads, pipeline degrees that divide the layers
(or, as Llama 3 ran 126 layers over 16 stages, powers of two with uneven stages), context
parallelism up to 16, expert parallelism over the MoE experts, one or two virtual stages, ZeRO
1 or 3, selective or full recomputation and micro-batches of 1, 2 or 4 sequences, each kept
only where :func:`check_run` accepts it. Each is timed by :func:`step_time`; the search is a
loop over a few thousand closed-form evaluations, not an optimizer.

``nearest`` answers a capacity wall: the fitting layouts closest to the one asked for, by how
many powers of two each degree moved (plus one per changed knob), then by step time.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import product
from typing import Final

from hardware_profiles.errors import MemwallError
from tasks.analysis.supply.efficiency import Efficiency
from tasks.analysis.training.layout import Layout, LayoutError, TrainingRun, check_run
from tasks.analysis.training.network import Network
from tasks.analysis.training.step_time import Device, StepTime, step_time
from tasks.analysis.workload.architecture import Architecture

_CP: Final = (1, 2, 4, 8, 16)
_VP: Final = (1, 2)
_ZERO: Final = (1, 3)
_RECOMPUTE: Final = ("selective", "full")
_MICRO: Final = (1, 2, 4)


@dataclass(frozen=True)
class Planned:
    run: TrainingRun
    result: StepTime


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def _powers_of_two(limit: int) -> list[int]:
    return [2**k for k in range(int(math.log2(limit)) + 1)]


def candidates(
    arch: Architecture, devices: int, global_batch: int, sequence: int, domain: int, compute: str
) -> Iterator[TrainingRun]:
    """Every run of the search space that :func:`check_run` accepts."""
    tps = [t for t in _divisors(devices) if t <= domain]
    pps = sorted(set(_divisors(arch.layers)) | set(_powers_of_two(arch.layers)))
    eps = [e for e in _divisors(arch.experts) if e <= devices] if arch.is_moe else [1]
    for tp, pp, cp in product(tps, pps, _CP):
        rest = tp * pp * cp
        if devices % rest:
            continue
        dp = devices // rest
        for ep, vp, zero, recompute, micro in product(eps, _VP, _ZERO, _RECOMPUTE, _MICRO):
            if (vp > 1 and pp == 1) or (dp * cp == 1 and zero == 3):
                continue
            run = TrainingRun(
                Layout(dp=dp, tp=tp, pp=pp, cp=cp, ep=ep, vp=vp),
                global_batch=global_batch,
                sequence=sequence,
                micro_batch=micro,
                zero=zero,
                recompute=recompute,
                compute=compute,
                uneven_stages=arch.layers % (pp * vp) != 0,
            )
            try:
                check_run(arch, run, devices)
            except LayoutError:
                continue
            yield run


def plan(
    arch: Architecture,
    devices: int,
    global_batch: int,
    sequence: int,
    device: Device,
    network: Network,
    matmul: Efficiency,
    bandwidth: Efficiency,
    compute: str = "bf16",
) -> list[Planned]:
    """Every candidate that fits, fastest first."""
    found = [
        Planned(run, result)
        for run in candidates(
            arch, devices, global_batch, sequence, network.domain_devices, compute
        )
        if (result := step_time(arch, run, device, network, matmul, bandwidth)).fits
    ]
    if not found:
        raise PlanError(
            f"no layout of {devices} x {device.name} fits {arch.name} with a global batch of "
            f"{global_batch} x {sequence} tokens (tried tp up to {network.domain_devices}, pp "
            "dividing the layers, cp up to 16, ZeRO 1 and 3, selective and full recompute): "
            "use more devices, or devices with more memory"
        )
    return sorted(found, key=lambda p: p.result.step_time_s)


class PlanError(MemwallError):
    """No layout of the devices asked for fits the model."""


def distance(a: TrainingRun, b: TrainingRun) -> float:
    """Powers of two each degree moved, plus one per changed knob."""
    x, y = a.layout, b.layout
    pairs = ((x.dp, y.dp), (x.tp, y.tp), (x.pp, y.pp), (x.cp, y.cp), (x.ep, y.ep), (x.vp, y.vp))
    moved = sum(abs(math.log2(p / q)) for p, q in pairs)
    knobs = (a.zero != b.zero) + (a.recompute != b.recompute) + (a.micro_batch != b.micro_batch)
    return moved + knobs


def nearest(asked: TrainingRun, fitting: list[Planned], count: int = 3) -> list[Planned]:
    """The ``count`` fitting layouts closest to ``asked``, then fastest."""
    same = [p for p in fitting if p.run.compute == asked.compute]
    return sorted(same, key=lambda p: (distance(p.run, asked), p.result.step_time_s))[:count]

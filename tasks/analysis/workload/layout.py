"""A replica as a serving layout: how one model's step is split over its devices.

A layout has four degrees (each 1 when unused):

- ``tp``: tensor parallel. Attention heads (and, where nothing else splits them, every matmul)
  are split ``tp`` ways; an all-reduce follows the attention block and one the FFN block.
- ``dp_attention``: attention data parallel. Each of ``dp_attention`` groups of ``tp`` devices
  runs attention for its own sequences and holds their KV cache alone, as MLA models are served
  (SGLang ``--enable-dp-attention``): the latent cache is not split by heads, so tensor
  parallelism would copy it on every device.
- ``ep``: expert parallel. Each device of the stage holds ``experts / ep`` whole experts;
  tokens are dispatched to their experts' devices and combined back by two all-to-alls per
  MoE layer. Engines set it to the whole stage (vLLM ``--enable-expert-parallel`` makes EP =
  TP x DP, SGLang ``--ep-size`` = ``--tp-size``), so ``ep`` is 1 or ``tp · dp_attention``.
- ``pp``: pipeline parallel, ``layers / pp`` consecutive layers per stage. A token passes every
  stage in turn, so a step's time is that of all layers on one stage's devices: ``pp`` buys
  memory, not speed (the microbatches that fill the pipeline are other steps).

Devices = ``tp · dp_attention · pp``; a stage is ``tp · dp_attention`` devices.

What each device of a layout holds, reads and moves per step is
:mod:`tasks.analysis.workload.layout_figures`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any, Final

import pandas as pd

from hardware_profiles.layouts import layout_degrees
from tasks.analysis.workload.architecture import (
    Architecture,
    WorkloadModelError,
)

SERVING_PHASES: Final = ("decode", "prefill")  # the phases a serving layout lays out


class LayoutError(WorkloadModelError):
    """A layout that cannot split the model over its devices."""


@dataclass(frozen=True)
class Layout:
    tp: int = 1
    dp_attention: int = 1
    ep: int = 1
    pp: int = 1

    @property
    def devices(self) -> int:
        return self.tp * self.dp_attention * self.pp

    @property
    def stage(self) -> int:
        """Devices of one pipeline stage."""
        return self.tp * self.dp_attention

    def __str__(self) -> str:
        parts = [
            f"{f.name}={getattr(self, f.name)}" for f in fields(self) if getattr(self, f.name) > 1
        ]
        return ",".join(parts) or "tp=1"


def parse_layout(text: str) -> Layout:
    """``"dp_attention=8,ep=8"`` as a :class:`Layout`; unnamed degrees are 1."""
    try:
        return Layout(**layout_degrees(text))
    except ValueError as exc:
        raise LayoutError(str(exc)) from None


def stated_layout(row: Mapping[str, Any]) -> Layout | None:
    """The serving layout a decode or prefill row states (None: it states none, or is of
    another phase, whose ``layout`` is a training layout)."""
    text = row.get("layout")
    if row.get("phase") not in SERVING_PHASES or text is None or pd.isna(text):
        return None
    return parse_layout(str(text))


def problems(arch: Architecture, layout: Layout) -> list[str]:
    """Why ``layout`` cannot split ``arch`` (empty when it can)."""
    out = []
    if arch.heads % layout.tp:
        out.append(f"tp={layout.tp} does not divide its {arch.heads} query heads")
    kv = arch.kv_heads
    if not arch.is_mla and kv % layout.tp and layout.tp % kv:
        out.append(f"tp={layout.tp} neither divides nor is a multiple of its {kv} KV heads")
    if layout.ep > 1:
        if not arch.is_moe:
            out.append(f"ep={layout.ep} on a dense model")
        elif arch.experts % layout.ep:
            out.append(f"ep={layout.ep} does not divide its {arch.experts} experts")
        if layout.ep != layout.stage:
            out.append(
                f"ep={layout.ep} is not the stage's {layout.stage} devices (tp x dp_attention)"
            )
    # Matmuls split over the whole stage: dense FFNs, shared experts, experts without ep.
    stage = layout.stage
    widths = {"FFN": arch.ffn if (not arch.is_moe or arch.dense_layers) else 0}
    if arch.is_moe:
        widths["shared-expert"] = arch.shared_ffn
        widths["expert"] = arch.expert_ffn if layout.ep == 1 else 0
    for what, width in widths.items():
        if width and width % stage:
            out.append(f"its {what} width {width} does not split over {stage} devices")
    if arch.layers % layout.pp:
        out.append(f"pp={layout.pp} does not divide its {arch.layers} layers")
    return out


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def valid_layouts(arch: Architecture, devices: int) -> list[Layout]:
    """Every layout of ``devices`` devices that splits ``arch``: fewest pipeline stages first,
    then the widest tensor parallelism, then without expert parallelism."""
    found = []
    for pp in _divisors(devices):
        for tp in _divisors(devices // pp):
            dp = devices // pp // tp
            for ep in sorted({1, tp * dp}):
                layout = Layout(tp=tp, dp_attention=dp, ep=ep, pp=pp)
                if not problems(arch, layout):
                    found.append(layout)
    return sorted(found, key=lambda x: (x.pp, -x.tp, x.ep))


def check_layout(arch: Architecture, layout: Layout, devices: int | None = None) -> Layout:
    """``layout`` if it splits ``arch`` (over ``devices``, where given); else a
    :class:`LayoutError` in one line listing the layouts that would."""
    wrong = problems(arch, layout)
    n = layout.devices if devices is None else devices
    if devices is not None and layout.devices != devices:
        spans = f"{layout.devices} device{'s' if layout.devices > 1 else ''}"
        wrong.insert(0, f"it spans {spans}, not {devices}")
    if not wrong:
        return layout
    valid = " | ".join(map(str, valid_layouts(arch, n)))
    if not valid:
        counts = [d for d in range(1, arch.heads + 1) if not problems(arch, Layout(tp=d))]
        valid = f"none; tensor-parallel device counts: {', '.join(map(str, counts))}"
    raise LayoutError(
        f"{arch.name} cannot be served as {layout} on {n} devices: {'; '.join(wrong)}; valid "
        f"layouts for {n} devices: {valid}"
    )


def engine_layout(arch: Architecture, devices: int) -> tuple[Layout, str]:
    """The layout an engine launches ``arch`` with on ``devices`` devices when told nothing
    else, and why. Every engine's documented launch for one node is tensor parallel over all
    of it (vLLM ``--tensor-parallel-size``, SGLang ``--tp``, TensorRT-LLM ``--tp_size``), MLA
    MoE models included (DeepSeek-V3/R1 are launched ``--tp 8``); attention data parallel and
    expert parallel are opt-ins for throughput. Where ``tp = devices`` cannot split the model,
    the largest tensor-parallel degree that can, with pipeline stages for the rest."""
    whole = Layout(tp=devices)
    if not problems(arch, whole):
        return whole, (
            f"tensor parallel over all {devices} devices, as vLLM, SGLang and TensorRT-LLM "
            "launch a model on one node by default"
            + (" (experts split tensor parallel; --layout dp_attention=N,ep=N for expert "
               "parallel)" if arch.is_moe else "")
        )  # fmt: skip
    for tp in sorted(_divisors(devices), reverse=True):
        layout = Layout(tp=tp, pp=devices // tp)
        if not problems(arch, layout):
            return layout, (
                f"tp={devices} cannot split {arch.name} ({problems(arch, whole)[0]}): the "
                f"largest tensor-parallel degree that can, with {layout.pp} pipeline stages"
            )
    return check_layout(arch, whole), ""  # raises, listing what is valid

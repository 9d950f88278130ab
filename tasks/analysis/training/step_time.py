"""Time of one training step, by part, and the model FLOPs utilization it implies.

**FLOPs.** Per token, forward and backward are ``6·P_act`` for the weight matmuls (Kaplan et
al. 2020, "Scaling Laws for Neural Language Models", section 2.1; LM head included) plus
``3 · 2·a·(d_qk + d_v)·s`` for attention's two matmuls over the s keys each query sees
(``12·L·H·Q·T`` in PaLM's accounting: Chowdhery et al. 2022, arXiv 2204.02311, appendix B, not
halved for causality: the convention published MFUs use). These are the **model FLOPs** of
MFU. Recomputation adds forward work the model does not count: the attention core's forward
(``selective``) or the whole forward, ``2·P_act`` plus attention (``full``).

**Compute.** Each device does ``1/N`` of it: the weight matmuls at the compute precision's
dense peak, attention at the bf16 peak (FlashAttention runs in 16-bit), both times the GEMM
efficiency (measured or fitted on published runs: :mod:`tasks.analysis.training.backtest`).
Each weight GEMM also pays its operands' bytes at the HBM bandwidth (in the matmul part), and
the memory-bound element-wise kernels between the GEMMs (norms, residual adds, the activation,
the loss) pay theirs (in the HBM part), both serial with the math: per token they grow with h
where the FLOPs grow with h², which is why small models reach less of the peak at one fitted
efficiency (:mod:`tasks.analysis.training.kernels`, with the Megatron-LM README's measurement).
A micro-batch also moves bytes through HBM: its layers' weights three times (forward, and the
backward's two matmuls), its gradients once, its stored activations written and read; where
that takes longer than the matmuls the HBM bandwidth binds (rare in training: a micro-batch of
thousands of tokens reuses each weight thousands of times).

**Communication** (costs in :mod:`tasks.analysis.training.network`), per device per step:

- tensor parallel (with sequence parallel): per layer and micro-batch two all-gather +
  reduce-scatter pairs forward and two backward (two more recomputing a full forward), each
  of the micro-batch's activations ``s/cp·b·h·2`` bytes: an all-reduce's volume each
  (Korthikanti et al. 2022, section 4.2.2); where the run overlaps them with the GEMMs
  (``tp_comm_overlap``: Megatron-LM's ``--tp-comm-overlap``, Transformer Engine's userbuffers
  splitting each collective into chunks pipelined with the GEMM it feeds or drains; PyTorch's
  async TP) only what exceeds the micro-batch's weight GEMMs shows;
- context parallel: per layer and micro-batch the keys and values all-gathered forward and
  their gradients reduce-scattered backward, hidden behind the attention they feed (ring
  attention: Liu et al. 2023, arXiv 2310.01889) except for what exceeds it;
- expert parallel: per MoE layer and micro-batch a dispatch and a combine all-to-all
  forward and backward of each token's top-k copies (Lepikhin et al. 2020, GShard);
- pipeline: per micro-batch and virtual stage the activations sent forward and their
  gradients back, ``s/cp·b·h·2/t`` bytes each (Megatron's scatter/gather over t links),
  hidden behind the micro-batch's compute under the interleaved schedule (Megatron-Core's
  ``overlap_p2p_comm``; Llama 3, arXiv 2407.21783, section 3.3.2: "asynchronous
  point-to-point communication in PP") except for what exceeds it;
- data parallel over ``g = dp·cp`` ranks: the gradients reduce-scattered and the weights
  all-gathered once per step (ZeRO-3 per micro-batch), each behind the compute it can hide
  behind (:mod:`tasks.analysis.training.data_parallel`).

**Pipeline bubble**: with p stages, v virtual stages each and m micro-batches, 1F1B idles
``(p−1)/(v·m)`` of the ideal time (Narayanan et al. 2021, arXiv 2104.04473, section 2.2).
With uneven stages (126 layers over 16) the fullest stage sets the pace: the matmul time is
scaled by its layers over ``L/p``.

**Optimizer step**: the sharded master weights and moments read and written, gradients read
and weights written, at the HBM bandwidth.

    micro  = max(matmul, HBM) + element-wise + tensor(exposed) + expert + context(exposed)
             + pipeline p2p(exposed)
    step   = m·micro·(1 + (p−1)/(v·m)) + data parallel(exposed) + optimizer
    MFU    = model FLOPs / (step · N · dense bf16 peak)     (fp8 runs too: MFU's convention)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from hardware_profiles.errors import MemwallError
from tasks.analysis.supply.efficiency import Efficiency
from tasks.analysis.training.data_parallel import data_parallel_s
from tasks.analysis.training.kernels import kernel_bytes
from tasks.analysis.training.layout import RECOMPUTE_POLICIES, TrainingRun, stage_layers
from tasks.analysis.training.memory import (
    Memory,
    counted_parameters,
    layer_activation_bytes,
    memory_per_device,
    parameter_split,
)
from tasks.analysis.training.network import Network, all_to_all_s, allreduce_s, gather_s
from tasks.analysis.training.recipe import OPTIMIZERS
from tasks.analysis.workload.architecture import Architecture
from tasks.analysis.workload.workload_model import DEFAULT_USABLE_MEMORY_FRACTION

PARTS: Final = (
    "matmul",
    "recompute",
    "hbm",
    "tensor_parallel",
    "context_parallel",
    "expert_parallel",
    "pipeline_p2p",
    "pipeline_bubble",
    "data_parallel",
    "optimizer",
)
WALLS: Final = ("capacity", "network", "bandwidth", "compute")
_B16: Final = 2.0  # bytes of an activation on the wire
_MFU_PEAK: Final = "bf16"


class TrainingError(MemwallError):
    """A training step asked of hardware that cannot run it as described."""


@dataclass(frozen=True)
class Device:
    """The figures of one accelerator model a training step needs (SI units)."""

    name: str
    memory_bytes: float
    hbm_bytes_per_s: float
    peak_flops_per_s: float  # dense, at the matmuls' precision
    attention_flops_per_s: float  # dense bf16: attention and MFU's denominator


def device_from_catalog(row: Mapping[str, Any], compute: str) -> Device:
    """The catalog row's figures; a compute precision without a dense peak is refused."""

    def number(key: str) -> float | None:
        value = row.get(key)
        return None if value is None or value != value else float(value)

    name = str(row["accelerator_id"])
    peak = number(f"peak_flops_per_s_{compute}")
    bf16 = number(f"peak_flops_per_s_{_MFU_PEAK}")
    if peak is None or bf16 is None:
        have = [
            p
            for p in ("fp32", "tf32", "bf16", "fp16", "fp8")
            if number(f"peak_flops_per_s_{p}") is not None
        ]
        raise TrainingError(
            f"{name} has no dense {compute if peak is None else _MFU_PEAK} peak to train at; "
            f"it has {', '.join(have) or 'none'}"
        )
    return Device(
        name=name,
        memory_bytes=float(row["memory_bytes"]),
        hbm_bytes_per_s=float(row["mem_bandwidth_bytes_per_s"]),
        peak_flops_per_s=peak,
        attention_flops_per_s=bf16,
    )


@dataclass(frozen=True)
class Flops:
    """FLOPs of one optimizer step over all devices."""

    matmul: float  # weight matmuls, forward + backward
    attention: float  # attention's two matmuls, forward + backward
    recompute_matmul: float
    recompute_attention: float

    @property
    def model(self) -> float:
        return self.matmul + self.attention


def step_flops(arch: Architecture, run: TrainingRun) -> Flops:
    """Model FLOPs of a step and what recomputation adds (see the module docstring)."""
    tokens = float(run.global_batch_tokens)
    active = counted_parameters(arch).active_per_token
    keys = arch.cached_tokens(run.sequence)  # Σ over layers of the keys a query sees
    attention_forward = 2.0 * arch.heads * (arch.qk_dim + arch.v_dim) * keys * tokens
    matmul_forward = 2.0 * active * tokens
    policy = RECOMPUTE_POLICIES[run.recompute]
    return Flops(
        matmul=3.0 * matmul_forward,
        attention=3.0 * attention_forward,
        recompute_matmul=policy.matmul * matmul_forward,
        recompute_attention=policy.attention * attention_forward,
    )


def bubble_fraction(run: TrainingRun) -> float:
    """1F1B's idle share of the ideal pipeline time: ``(p−1)/(v·m)`` (Narayanan et al.
    2021, section 2.2.2)."""
    lay = run.layout
    return (lay.pp - 1) / (lay.vp * run.micro_batches)


@dataclass(frozen=True)
class StepTime:
    """One step's time by part (seconds, summing to ``step_time_s``), its throughput, MFU,
    memory per device and the wall it is closest to."""

    parts: Mapping[str, float]
    memory: Memory
    usable_memory_bytes: float
    model_flops: float
    devices: int
    tokens: int
    mfu_peak_flops_per_s: float
    communication_s: float  # every collective's time, hidden or not
    compute_s: float  # matmul + recompute over the step
    hbm_s: float  # HBM traffic time over the step
    matmul_efficiency: Efficiency
    bandwidth_efficiency: Efficiency
    network_source: str

    @property
    def step_time_s(self) -> float:
        return sum(self.parts.values())

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.step_time_s

    @property
    def mfu(self) -> float:
        return self.model_flops / (self.step_time_s * self.devices * self.mfu_peak_flops_per_s)

    @property
    def fits(self) -> bool:
        return self.memory.total <= self.usable_memory_bytes

    def pressures(self) -> dict[str, float]:
        """How near each wall is, 1 being at it: memory over usable memory, every
        collective's time over the compute time (communication that could not all hide
        even if overlapped perfectly), HBM time over matmul time."""
        return {
            "capacity": self.memory.total / self.usable_memory_bytes,
            "network": self.communication_s / self.compute_s,
            "bandwidth": self.hbm_s / self.compute_s,
        }

    @property
    def wall(self) -> str:
        """The wall that binds: capacity where the layout does not fit, else the network or
        HBM bandwidth where their time exceeds the compute's, else compute."""
        pressure = self.pressures()
        if pressure["capacity"] > 1:
            return "capacity"
        name, value = max(
            ((k, pressure[k]) for k in ("network", "bandwidth")), key=lambda kv: kv[1]
        )
        return name if value >= 1 else "compute"

    @property
    def nearest_other_wall(self) -> tuple[str, float]:
        """The wall other than the binding one with the highest pressure, and that pressure."""
        rest = {k: v for k, v in self.pressures().items() if k != self.wall}
        name = max(rest, key=lambda k: rest[k])
        return name, rest[name]

    def as_json(self) -> dict[str, Any]:
        nearest, pressure = self.nearest_other_wall
        return {
            "step_time_s": self.step_time_s,
            "mfu": self.mfu,
            "tokens_per_s": self.tokens_per_s,
            "tokens_per_s_per_device": self.tokens_per_s / self.devices,
            "devices": self.devices,
            "model_flops_per_step": self.model_flops,
            "time_by_part_s": dict(self.parts),
            "memory_per_device": self.memory.as_json(),
            "usable_memory_bytes": self.usable_memory_bytes,
            "fits": self.fits,
            "wall": self.wall,
            "pressures": self.pressures(),
            "nearest_other_wall": nearest,
            "nearest_other_wall_pressure": pressure,
            "matmul_efficiency": self.matmul_efficiency.value,
            "matmul_efficiency_source": self.matmul_efficiency.source,
            "matmul_efficiency_spread": self.matmul_efficiency.spread,
            "bandwidth_efficiency": self.bandwidth_efficiency.value,
            "bandwidth_efficiency_source": self.bandwidth_efficiency.source,
            "network_source": self.network_source,
        }


def step_time(
    arch: Architecture,
    run: TrainingRun,
    device: Device,
    network: Network,
    matmul: Efficiency,
    bandwidth: Efficiency,
) -> StepTime:
    """Time by part of one step of ``run`` (see the module docstring)."""
    lay = run.layout
    n = lay.devices
    m = run.micro_batches
    recipe = OPTIMIZERS[run.optimizer]
    flops = step_flops(arch, run)
    matmul_rate = device.peak_flops_per_s * matmul.value
    attention_rate = device.attention_flops_per_s * matmul.value
    matmul_s = (flops.matmul / matmul_rate + flops.attention / attention_rate) / n
    recompute_s = (
        flops.recompute_matmul / matmul_rate + flops.recompute_attention / attention_rate
    ) / n

    # HBM traffic of one micro-batch on the first stage.
    split = parameter_split(arch, run)
    layers_here = stage_layers(arch, run)
    imbalance = layers_here / (arch.layers / lay.pp)  # the fullest stage sets the pace
    weights_local = split.total * recipe.weight_bytes
    activations_mb = layer_activation_bytes(arch, run) * layers_here
    hbm_mb = (3 * weights_local + split.total * recipe.gradient_bytes + 2 * activations_mb) / (
        device.hbm_bytes_per_s * bandwidth.value
    )
    matmul_s *= imbalance
    recompute_s *= imbalance
    weight_flops = flops.matmul + flops.recompute_matmul
    # The GEMMs' operands and the element-wise kernels (kernels.py), the fullest stage's share.
    hbm_rate = device.hbm_bytes_per_s * bandwidth.value
    kernels = kernel_bytes(arch, run)
    share = layers_here / arch.layers
    policy = RECOMPUTE_POLICIES[run.recompute]
    gemm_io_mb = kernels.gemm_forward * share / hbm_rate
    matmul_s += m * 3 * gemm_io_mb
    recompute_s += m * gemm_io_mb * policy.matmul
    elementwise_mb = (
        kernels.elementwise_forward * (1 + policy.whole_layers)
        + kernels.elementwise_backward
        + kernels.loss_forward
        + kernels.loss_backward
    ) * (share / hbm_rate)
    compute_mb = (matmul_s + recompute_s) / m
    gemm_passes = 3 + policy.matmul
    weight_gemm_mb = weight_flops / matmul_rate / n * imbalance / m + gemm_passes * gemm_io_mb
    hbm_excess_mb = max(0.0, hbm_mb - compute_mb)

    tokens_mb = run.sequence / lay.cp * run.micro_batch
    act_bytes = tokens_mb * arch.hidden * _B16
    passes = 4 + 2 * policy.whole_layers
    tp_mb_total = layers_here * passes / 2 * allreduce_s(act_bytes, lay.tp, 1, network)
    # Overlapped (Megatron's --tp-comm-overlap, torchtitan's async TP): each all-gather and
    # reduce-scatter split into chunks pipelined with the GEMM it feeds or drains, so only
    # what exceeds the micro-batch's weight GEMMs shows.
    tp_mb = max(0.0, tp_mb_total - weight_gemm_mb) if run.tp_comm_overlap else tp_mb_total
    kv_width = (
        arch.kv_heads * (arch.qk_dim + arch.v_dim)
        if not arch.is_mla
        else (arch.kv_lora_rank + arch.qk_rope_dim)
    )
    kv_bytes = run.sequence * run.micro_batch * kv_width * _B16 / max(lay.tp, 1)
    cp_mb_total = layers_here * 3 * gather_s(kv_bytes, lay.cp, lay.tp, network)
    attention_mb = (flops.attention + flops.recompute_attention) / attention_rate / n / m
    cp_mb = max(0.0, cp_mb_total - attention_mb)
    moe_here = arch.moe_layers / lay.pp
    a2a_bytes = tokens_mb / lay.tp * arch.experts_per_token * arch.hidden * _B16
    ep_passes = 4 + 2 * policy.whole_layers
    ep_mb = moe_here * ep_passes * all_to_all_s(a2a_bytes, lay.ep, lay.tp, network)
    pp_mb_total = 2 * lay.vp * act_bytes / lay.tp / network.link(n) if lay.pp > 1 else 0.0
    # The interleaved schedule sends and receives while it computes (Megatron-Core's
    # overlap_p2p_comm; Llama 3's asynchronous point-to-point): only what exceeds the
    # micro-batch's compute shows. 1F1B's blocking sends show whole.
    pp_mb = max(0.0, pp_mb_total - compute_mb) if lay.vp > 1 else pp_mb_total
    micro = compute_mb + hbm_excess_mb + elementwise_mb + tp_mb + cp_mb + ep_mb + pp_mb
    bubble = micro * m * bubble_fraction(run)

    dp_total, dp_exposed = data_parallel_s(arch, run, network, compute_mb)

    memory = memory_per_device(arch, run)
    optimizer_bytes = memory.gradients + 2 * memory.optimizer_state + memory.weights
    optimizer_s = optimizer_bytes / (device.hbm_bytes_per_s * bandwidth.value)
    compute_total = matmul_s + recompute_s
    parts = {
        "matmul": matmul_s,
        "recompute": recompute_s,
        "hbm": m * (hbm_excess_mb + elementwise_mb),
        "tensor_parallel": m * tp_mb,
        "context_parallel": m * cp_mb,
        "expert_parallel": m * ep_mb,
        "pipeline_p2p": m * pp_mb,
        "pipeline_bubble": bubble,
        "data_parallel": dp_exposed,
        "optimizer": optimizer_s,
    }
    communication = m * (tp_mb_total + cp_mb_total + ep_mb + pp_mb_total) + dp_total
    return StepTime(
        parts=parts,
        memory=memory,
        usable_memory_bytes=device.memory_bytes * DEFAULT_USABLE_MEMORY_FRACTION,
        model_flops=flops.model,
        devices=n,
        tokens=run.global_batch_tokens,
        mfu_peak_flops_per_s=device.attention_flops_per_s,
        communication_s=communication,
        compute_s=compute_total,
        hbm_s=m * (hbm_mb + elementwise_mb),
        matmul_efficiency=matmul,
        bandwidth_efficiency=bandwidth,
        network_source=network.source,
    )

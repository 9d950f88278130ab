"""HBM bytes a training step's kernels move beyond their FLOPs: the weight GEMMs' operands and
the memory-bound element-wise kernels between the GEMMs. Both grow with the hidden size h per
token, the GEMMs' FLOPs with h², so small models spend a larger share of their step on them.

**Why.** NVIDIA's Megatron-LM README (commit f2e5db402c, "Training Speed and Scalability")
measured MFU rising "from 41% for the smallest model considered to 47-48% for the largest
models; this is because larger GEMMs have higher arithmetic intensity and are consequently more
efficient to execute". One GEMM efficiency per software stack applied to FLOPs alone prices a
1.7B model's GEMMs like a 462B model's. A max-roofline cannot see it: the smallest per-device
GEMM of the published runs (the 1.7B model's output projection, 4096 × 2048 × 2048) does about
820 FLOPs per byte, above an H100's ridge of about 295. memwall prices each GEMM as its FLOPs at
the fitted efficiency **plus** its operands' bytes at the HBM bandwidth, the time of a kernel
that does not overlap its memory traffic with its math: its efficiency is then
``e·I / (I + e·P/B)`` at arithmetic intensity I, rising with I as the README says, with no
parameter beyond the fitted e and the catalog's peak P and bandwidth B.

**GEMM operands**, per micro-batch of ``M = s·b/cp`` tokens (sequence parallelism gathers the
sequence before each column-parallel GEMM: Korthikanti et al. 2022, arXiv 2205.05198, section
4.2.2): each weight matrix K × N, split ``N/t`` (column-parallel: QKV, up, gate) or ``K/t``
(row-parallel: the output projection and the down projection: Shoeybi et al. 2019, arXiv
1909.08053, section 3), moves ``b·(M·K + K·N) + 2·M·N`` bytes: inputs at the matmul precision's
b bytes, the output at 16 bits. The backward's two GEMMs (input gradient, weight gradient) move
the same three matrices, so a step moves three times the forward's bytes (four with full
recompute). Routed experts: ``E/ep`` experts a device, each fed ``M·ep·k/E`` tokens. The LM head
is a column-parallel GEMM over the vocabulary.

**Element-wise kernels** (Narayanan et al. 2021, arXiv 2104.04473, section 4.2: "element-wise
operations" are memory-bound; Megatron fuses bias + GeLU and bias + dropout + add, which still
stream their tensors through HBM once), in 16-bit elements per token of one layer, all split
by t (sequence parallelism splits the norms and residual adds, tensor parallelism the FFN):

    forward:  2 norms × (h in + h out) + 2 residual adds × (2h in + h out) + activation
              (f in + f out; gated: 2f in + f out)                     = 10h + 2f (gated 3f)
    backward: 2 norms × (x, dy in + dx out) + 2 residual adds × 3h + activation
              (x, dy in + dx out: 3f; gated 2f + f in + 2f out: 5f)    = 12h + 3f (gated 5f)

MoE layers have ``k·f_expert + f_shared`` for f. The model's output adds a final norm (2h
forward, 3h backward) and the cross-entropy over the ``V/t`` logits of each token, in fp32 as
Megatron-LM's ``vocab_parallel_cross_entropy`` computes it (``megatron/core/tensor_parallel/
cross_entropy.py`` at the README's commit, one kernel per line): per logit, forward the upcast
(2 B read, 4 written), the maximum (4 read), the shift (4 + 4), the exponential (4 + 4), the
sum (4 read) and the normalisation (4 + 4), 38 B; backward the gradient's scaling (4 + 4) and
the cast back to 16 bits (4 + 2), 14 B. PyTorch's ``cross_entropy`` on upcast logits
(torchtitan) moves somewhat less; the count is kept one for all stacks. The attention core
(FlashAttention) is not counted: its traffic hides behind its FLOPs as a GEMM's would. Full
recompute runs the forward's kernels again (the loss is not recomputed).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Final

from tasks.analysis.training.layout import TrainingRun
from tasks.analysis.workload.architecture import (
    Architecture,
    Matmul,
    attention_matmuls,
    dense_ffn_matmuls,
    moe_matmuls,
)
from tasks.analysis.workload.workload_model import bytes_per_element

_OUT_BYTES: Final = 2.0  # a GEMM's output and the element-wise kernels' tensors: 16-bit
_ROW_PARALLEL: Final = ("o", "down", "expert_down", "shared_down")
LOSS_FORWARD_BYTES: Final = 38.0  # per logit: the module docstring's fp32 cross-entropy
LOSS_BACKWARD_BYTES: Final = 14.0


@dataclass(frozen=True)
class KernelBytes:
    """HBM bytes per device of one micro-batch through all of the model's layers and its
    output (a pipeline stage does its layers' share)."""

    gemm_forward: float  # the weight GEMMs' operands, forward pass (backward: twice this)
    elementwise_forward: float  # the layers' and the final norm's (recompute runs it again)
    elementwise_backward: float
    loss_forward: float
    loss_backward: float


def gemm_bytes(matmul: Matmul, tokens: float, tp: int, in_bytes: float) -> float:
    """Bytes one per-device GEMM moves: ``b·(M·K + K·N) + 2·M·N``, the weight split by t."""
    k, n = float(matmul.in_features), float(matmul.out_features)
    if matmul.name in _ROW_PARALLEL:
        k /= tp
    else:
        n /= tp
    return in_bytes * (tokens * k + k * n) + _OUT_BYTES * tokens * n


def _layer_gemm_bytes(
    matmuls: list[Matmul], tokens: float, tp: int, in_bytes: float, experts_here: float
) -> float:
    total = 0.0
    for op in matmuls:
        if op.name.startswith("expert_"):
            # each of the device's experts gets its share of the tokens of the ep ranks
            total += experts_here * gemm_bytes(op, tokens * op.count / experts_here, tp, in_bytes)
        else:
            total += gemm_bytes(op, tokens, tp, in_bytes)
    return total


def elementwise_elements(width: float, hidden: float, gated: bool) -> tuple[float, float]:
    """16-bit elements per token of one layer's element-wise kernels, forward and backward,
    before the split by t (the module docstring's count)."""
    forward = 10 * hidden + (3 if gated else 2) * width
    backward = 12 * hidden + (5 if gated else 3) * width
    return forward, backward


@lru_cache(maxsize=4096)
def kernel_bytes(arch: Architecture, run: TrainingRun) -> KernelBytes:
    """The module docstring's bytes for one micro-batch of ``run`` on one device, all layers."""
    lay = run.layout
    tp = lay.tp
    tokens = run.sequence / lay.cp * run.micro_batch
    in_bytes = min(bytes_per_element(run.compute), _OUT_BYTES)
    attention = _layer_gemm_bytes(attention_matmuls(arch), tokens, tp, in_bytes, 1.0)
    dense = _layer_gemm_bytes(dense_ffn_matmuls(arch), tokens, tp, in_bytes, 1.0)
    dense_layers = arch.dense_layers if arch.is_moe else arch.layers
    gemm = arch.layers * attention + dense_layers * dense
    width = float(arch.ffn) * dense_layers
    if arch.is_moe:
        experts_here = arch.experts / lay.ep
        routed = moe_matmuls(arch, float(arch.experts_per_token))  # top-k copies a token
        moe = _layer_gemm_bytes(routed, tokens, tp, in_bytes, experts_here)
        gemm += arch.moe_layers * moe
        width += arch.moe_layers * (arch.experts_per_token * arch.expert_ffn + arch.shared_ffn)
    head = Matmul("lm_head", arch.hidden, arch.vocab)
    gemm += gemm_bytes(head, tokens, tp, in_bytes)
    # the count is linear in h and f: all layers at once, their FFN widths summed
    forward, backward = elementwise_elements(width, arch.hidden * arch.layers, arch.gated_ffn)
    forward += 2 * arch.hidden
    backward += 3 * arch.hidden
    scale = tokens * _OUT_BYTES / tp
    logits = tokens * arch.vocab / tp
    return KernelBytes(
        gemm_forward=gemm,
        elementwise_forward=forward * scale,
        elementwise_backward=backward * scale,
        loss_forward=logits * LOSS_FORWARD_BYTES,
        loss_backward=logits * LOSS_BACKWARD_BYTES,
    )

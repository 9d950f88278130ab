"""Optimizer recipes: the bytes each parameter costs in weights, gradients and optimizer state.

Mixed-precision Adam (Rajbhandari et al. 2020, "ZeRO: Memory Optimizations Toward Training
Trillion Parameter Models", arXiv 1910.02054, section 3.1) keeps fp16/bf16 weights (2 bytes)
and gradients (2 bytes), and an fp32 copy of the weights with Adam's two fp32 moments (4 + 4 + 4
= 12 bytes): 16 bytes per parameter. Megatron-LM accumulates and reduces gradients in fp32 by
default (``--accumulate-allreduce-grads-in-fp32``): 4-byte gradients, 18 bytes per parameter.
Pure fp32 training keeps 4-byte weights and gradients and needs no master copy: 4 + 4 + 8 = 16.

FP8 matmuls change none of these: the weights are cast to FP8 for the matmul, the master copy
and the moments stay where the recipe keeps them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final


@dataclass(frozen=True)
class Recipe:
    name: str
    weight_bytes: float  # per parameter, the copy the matmuls read
    gradient_bytes: float  # per parameter, also what data parallelism reduces
    optimizer_bytes: float  # per parameter: master weights and moments
    source: str

    @property
    def bytes_per_parameter(self) -> float:
        return self.weight_bytes + self.gradient_bytes + self.optimizer_bytes


_ZERO: Final = "Rajbhandari et al. 2020 (ZeRO, arXiv 1910.02054), section 3.1"
OPTIMIZERS: Final[dict[str, Recipe]] = {
    r.name: r
    for r in (
        Recipe(
            "adam", 2.0, 2.0, 12.0, f"{_ZERO}: bf16 weights and gradients, fp32 master + 2 moments"
        ),
        Recipe(
            "adam-fp32-grads",
            2.0,
            4.0,
            12.0,
            f"{_ZERO}, with Megatron-LM's fp32 gradient accumulation",
        ),
        Recipe("adam-fp32", 4.0, 4.0, 8.0, f"{_ZERO}: fp32 weights and gradients, 2 moments"),
    )
}

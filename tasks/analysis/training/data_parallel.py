"""Data parallelism's collectives in a training step, and how much of them the step waits for.

Data parallel over ``g = dp·cp`` ranks: the gradients reduce-scattered and the weights
all-gathered (ZeRO 1-2; an all-reduce of the gradients at ZeRO 0, the same volume), once per
step. The reduce-scatter overlaps the last micro-batch's backward (Megatron-LM's
``--overlap-grad-reduce``); at ZeRO 1-2 the all-gather cannot (it gathers the weights the
optimizer step has just updated) and overlaps the next step's first forward instead
(``--overlap-param-gather``, "overlap param all-gather with forward compute"), so each has
its own window; ZeRO 0's all-reduce all falls in the last backward. ZeRO-3 (FSDP) gathers
the weights forward and backward and reduce-scatters gradients every micro-batch,
prefetched behind all of the compute (Rajbhandari et al. 2020, section 7; Zhao et al.
2023, "PyTorch FSDP").
"""

from __future__ import annotations

from dataclasses import dataclass

from tasks.analysis.training.layout import TrainingRun
from tasks.analysis.training.memory import parameter_split
from tasks.analysis.training.network import Network, gather_s
from tasks.analysis.training.recipe import OPTIMIZERS
from tasks.analysis.workload.architecture import Architecture


@dataclass(frozen=True)
class DataParallelTraffic:
    """Data parallelism's collectives per step over ``ranks``: gradient reduce-scatters and
    weight all-gathers of the device's local buffers."""

    gradient_buffer_bytes: float
    gradient_passes: int
    weight_buffer_bytes: float
    weight_passes: int
    ranks: int

    @property
    def reduce_scatter_bytes(self) -> float:
        """Bytes through a device's link, flat ring: ``(g−1)/g`` of each buffer."""
        share = (self.ranks - 1) / self.ranks
        return self.gradient_passes * share * self.gradient_buffer_bytes

    @property
    def all_gather_bytes(self) -> float:
        share = (self.ranks - 1) / self.ranks
        return self.weight_passes * share * self.weight_buffer_bytes

    @property
    def total_bytes(self) -> float:
        return self.reduce_scatter_bytes + self.all_gather_bytes

    def all_gather_s(self, stride: int, network: Network) -> float:
        return self.weight_passes * gather_s(self.weight_buffer_bytes, self.ranks, stride, network)

    def seconds(self, stride: int, network: Network) -> float:
        return self.gradient_passes * gather_s(
            self.gradient_buffer_bytes, self.ranks, stride, network
        ) + self.all_gather_s(stride, network)


def data_parallel_traffic(arch: Architecture, run: TrainingRun) -> DataParallelTraffic:
    """Gradients reduce-scattered and weights all-gathered over ``g = dp·cp`` ranks: once per
    step at ZeRO 1-2 (ZeRO 0's all-reduce of the gradients is a reduce-scatter and an
    all-gather of the same gradient bytes), and at ZeRO 3 per micro-batch, the weights gathered
    twice (forward and backward)."""
    lay = run.layout
    recipe = OPTIMIZERS[run.optimizer]
    local = parameter_split(arch, run).total
    g = lay.dp * lay.cp
    grads, weights = local * recipe.gradient_bytes, local * recipe.weight_bytes
    if run.zero >= 3:
        m = run.micro_batches
        return DataParallelTraffic(grads, m, weights, 2 * m, g)
    if run.zero >= 1:
        return DataParallelTraffic(grads, 1, weights, 1, g)
    return DataParallelTraffic(grads, 1, grads, 1, g)


def data_parallel_s(
    arch: Architecture, run: TrainingRun, network: Network, compute_mb_s: float
) -> tuple[float, float]:
    """Seconds of the step's data-parallel collectives, all of them and those not hidden
    behind the compute (``compute_mb_s``: one micro-batch's) the module docstring says each
    overlaps."""
    lay = run.layout
    traffic = data_parallel_traffic(arch, run)
    stride = lay.tp * lay.cp
    total = traffic.seconds(stride, network)
    if run.zero >= 3:  # prefetched behind all of the compute
        return total, max(0.0, total - run.micro_batches * compute_mb_s)
    if run.zero >= 1:  # gradients behind the last backward, weights the next first forward
        gather = traffic.all_gather_s(stride, network)
        exposed = max(0.0, total - gather - compute_mb_s * 2 / 3) + max(
            0.0, gather - compute_mb_s / 3
        )
        return total, exposed
    return total, max(0.0, total - compute_mb_s * 2 / 3)  # the all-reduce behind the last backward

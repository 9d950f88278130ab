"""The ceilings a workload case's prediction divides by: the triad's bandwidth and the GEMM
rates at the case's own shapes, measured in turns with the case itself.

``tasks.analysis.supply.validation.step_parts`` splits a step into parts (the layers' matmuls, the
touched experts, the LM head, attention), each running its FLOPs at one GEMM shape: the rows it
multiplies (the batch in decode, the prompt in prefill, an expert's share of the tokens) by its
widest weight matrix. A few-row matmul reaches neither the triad's bandwidth nor the square
GEMM's FLOP rate (on a 2-core CPU: one row streams the weights at about half the triad's speed,
16 rows compute at half the square GEMM's rate), so each shape is timed here, on the device: the
same dtype, storage precision and dequantization (``workload.dense``), weights far larger than
any cache (as the step streams them), compiled ahead of time, warmed up, each call to
``block_until_ready``.

The triad (the run's bandwidth ceiling kernel, ``bandwidth.kernel_call``), the shapes and the
case are timed in turns (``time_in_turns``: one call of each, then one step, repeated), not one
after the other: on a shared host the load moves a run by up to 2x within seconds, and taking
turns puts the same load under the ceilings and the step they predict. The step and the GEMM
rates are their median calls: a GEMM at a part's shape stands for how fast that part runs, as
the step's median for how fast the step runs. The triad is a ceiling (the most the memory gives
under this load), so its best call: on a loaded 2-core host the two-thread triad's median fell
below what a one-row GEMM streamed in the same turns (14 against 18 GB/s), which no ceiling may.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from functools import partial
from typing import Any, Final, TypeVar

import jax
import jax.numpy as jnp

from hardware_profiles.schema import MiB
from tasks.analysis.supply.validation import Gemm
from tasks.probes import workload, workload_weights
from tasks.probes.bandwidth import kernel_call
from tasks.probes.kernels import BANDWIDTH_KERNELS
from tasks.probes.timing import Clock

K = TypeVar("K")


# A GEMM's weights are cut to this many bytes (fewer output columns): still 16x the largest
# last-level cache here, so the matmul streams them as the step does, and a model's LM head
# (DeepSeek-V3's: 3.7 GB in float32) does not need a second copy beside the case's own.
GEMM_WEIGHT_BYTES: Final = 512 * MiB
TRIAD: Final = "triad"
# The triad's arrays: 4x the largest last-level cache any CPU here has (32 MiB), as the run's
# own triad; the case streams weights far larger than any cache.
TRIAD_BYTES: Final = 256 * MiB


def triad_call(device: Any, moved_bytes: int = TRIAD_BYTES) -> tuple[Callable[[], Any], float]:
    """One ready float32 triad call over ``moved_bytes`` on ``device``, and the bytes it moves."""
    kernel = BANDWIDTH_KERNELS[TRIAD]
    per_element = (kernel.arrays_read + kernel.arrays_written) * 4
    elements = moved_bytes // per_element
    return kernel_call(TRIAD, device, "float32", elements), float(elements * per_element)


def gemm_calls(
    s: workload_weights.Shape,
    gemms: Iterable[Gemm],
    device: Any,
    weight_bytes: int = GEMM_WEIGHT_BYTES,
) -> dict[Gemm, tuple[Callable[[], Any], float]]:
    """One compiled, ready call of ``workload.dense`` per distinct ``(rows, in, out)`` shape on
    ``device``, in ``s``'s precisions (at most ``weight_bytes`` of weights: ``out`` cut to
    fit) and the FLOPs it does; each call returns when its product is done."""
    calls: dict[Gemm, tuple[Callable[[], Any], float]] = {}
    per_weight = jnp.dtype(workload_weights.PRECISION_DTYPES[s.weights]).itemsize
    for rows, k, n in dict.fromkeys(gemms):
        columns = max(1, min(n, weight_bytes // (k * per_weight)))
        with jax.default_device(device):
            w = workload_weights.weight(jax.random.PRNGKey(2), k, columns, s)
            x = jnp.full((rows, k), 0.5, s.compute_dtype)
        compiled = jax.jit(partial(workload.dense, s)).lower(w, x).compile()
        call = partial(lambda c, w, x: c(w, x).block_until_ready(), compiled, w, x)
        calls[(rows, k, n)] = call, 2.0 * rows * k * columns
    return calls


def time_in_turns(
    calls: Mapping[K, Callable[[], Any]],
    last: Callable[[], Any],
    *,
    warmup: int,
    repetitions: int,
    budget_s: float,
    min_repetitions: int = 3,
    clock: Clock = time.perf_counter,
) -> tuple[dict[K, list[float]], list[float], Any]:
    """Each of ``calls`` once, then ``last`` once, ``warmup`` rounds untimed and up to
    ``repetitions`` rounds timed (never fewer than ``min_repetitions``; no more once ``last``'s
    timed calls took ``budget_s``): seconds per call of each, and what ``last`` last returned."""
    seconds: dict[K, list[float]] = {key: [] for key in calls}
    steps: list[float] = []
    result: Any = None
    for round_ in range(warmup + repetitions):
        timed = round_ >= warmup
        for key, call in calls.items():
            start = clock()
            call()
            if timed:
                seconds[key].append(clock() - start)
        start = clock()
        result = last()
        if timed:
            steps.append(clock() - start)
            if len(steps) >= min_repetitions and sum(steps) >= budget_s:
                break
    return seconds, steps, result

"""The GEMM rates a workload case's prediction divides by, measured at the case's own shapes.

``tasks.analysis.validation.step_parts`` splits a step into parts (the layers' matmuls, the
touched experts, the LM head, attention), each running its FLOPs at one GEMM shape: the rows it
multiplies (the batch in decode, the prompt in prefill, an expert's share of the tokens) by its
widest weight matrix. A few-row matmul reaches neither the triad's bandwidth nor the square
GEMM's FLOP rate (on a 2-core CPU: one row streams the weights at about half the triad's speed,
16 rows compute at half the square GEMM's rate), so each shape is timed here, on the device,
just before the case itself: the same dtype, storage precision and dequantization
(``workload.dense``), weights far larger than any cache (as the step streams them), the same
timing discipline (compiled ahead of time, warmed up, each call to ``block_until_ready``). The
rate is the FLOPs over the median call, as the case's measured step is its median call.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp

from tasks.analysis.validation import Gemm
from tasks.probes import workload, workload_weights
from tasks.probes.runner import ProbePlan
from tasks.probes.timing import time_calls


def gemm_flops_per_s(
    s: workload_weights.Shape, gemms: Iterable[Gemm], device: Any, plan: ProbePlan
) -> dict[Gemm, float]:
    """FLOP/s of ``workload.dense`` at each ``(rows, in, out)`` shape on ``device`` (median of
    the timed calls), in ``s``'s precisions."""
    rates: dict[Gemm, float] = {}
    for rows, k, n in dict.fromkeys(gemms):
        with jax.default_device(device):
            w = workload_weights.weight(jax.random.PRNGKey(2), k, n, s)
            x = jnp.full((rows, k), 0.5, s.compute_dtype)
        call = jax.jit(partial(workload.dense, s)).lower(w, x).compile()
        timed = time_calls(
            lambda c=call, w=w, x=x: c(w, x).block_until_ready(),
            warmup=plan.warmup,
            repetitions=plan.repetitions,
            budget_s=plan.budget_s,
        )
        rates[(rows, k, n)] = 2.0 * rows * k * n / statistics.median(timed.seconds)
        del w, x
    return rates

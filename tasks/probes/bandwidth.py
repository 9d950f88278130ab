"""STREAM-style memory bandwidth probes, compiled by JAX for one device.

Method (after STREAM and BabelStream): arrays filled with known constants, the kernel compiled
ahead of time, warmed up, each repetition timed to ``block_until_ready``; the overwritten array
is donated (``donate_argnums`` with ``keep_unused=True``) so each call writes into the buffer
the previous call produced instead of page-faulting a fresh one; the scalar is a runtime
argument so XLA cannot fold it. The result is then checked against the value derived by hand.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

import jax
import jax.numpy as jnp
import numpy as np

from tasks.probes.kernels import BANDWIDTH_KERNELS, BandwidthKernel
from tasks.probes.statistics import Summary, summarize

SCALAR: Final = 0.4


@dataclass(frozen=True)
class _Body:
    """How one declared kernel runs: the donated output, the inputs, and the answer."""

    output: str | None  # array overwritten (donated), or None for a reduction
    inputs: tuple[str, ...]
    fn: Callable[..., Any]
    expected: Callable[[dict[str, float], float, int], float]


_BODIES: Final[dict[str, _Body]] = {
    "copy": _Body("c", ("a",), lambda a, s: jnp.copy(a), lambda v, s, n: v["a"]),
    "scale": _Body("b", ("c",), lambda c, s: s * c, lambda v, s, n: s * v["c"]),
    "add": _Body("c", ("a", "b"), lambda a, b, s: a + b, lambda v, s, n: v["a"] + v["b"]),
    "triad": _Body("a", ("b", "c"), lambda b, c, s: b + s * c, lambda v, s, n: v["b"] + s * v["c"]),
    "read": _Body(
        None,
        ("a", "b"),
        lambda a, b, s: jnp.sum(a * b, dtype=jnp.float32),
        lambda v, s, n: n * v["a"] * v["b"],
    ),
}
# Start values per kernel chosen so every output differs from its start value: a no-op or a
# wrong kernel cannot pass validation.
_VALUES: Final = {"a": 0.5, "b": 0.25, "c": 0.75}


@dataclass(frozen=True)
class BandwidthResult:
    kernel: BandwidthKernel
    dtype: str
    elements: int
    summary: Summary
    max_relative_error: float

    @property
    def working_set_bytes(self) -> int:
        return self.kernel.arrays * self.elements * np.dtype(self.dtype).itemsize


def tolerance(dtype: str) -> float:
    """Relative error a correct kernel stays within: a few ulps of the element type, and a
    float32 accumulation's rounding for the reduction."""
    return float(16 * np.finfo(jnp.dtype(dtype)).eps) + 1e-4


def _rounded(value: float, dtype: str) -> float:
    return float(np.asarray(value, dtype=jnp.dtype(dtype)).astype(np.float64))


def expected_value(kernel: str, dtype: str, elements: int) -> float:
    """The value every output element must hold, derived from the start values by hand."""
    values = {k: _rounded(v, dtype) for k, v in _VALUES.items()}
    return _BODIES[kernel].expected(values, _rounded(SCALAR, dtype), elements)


def relative_error(kernel: str, dtype: str, elements: int, result: Any) -> float:
    """Largest relative deviation of ``result`` from the hand-derived value."""
    expected = expected_value(kernel, dtype, elements)
    got = jnp.asarray(result).astype(jnp.float32)
    worst = float(jnp.max(jnp.abs(got - expected)))
    return worst / abs(expected)


def measure_bandwidth(
    kernel_name: str,
    device: jax.Device,
    dtype: str,
    elements: int,
    repetitions: int,
    warmup: int = 2,
) -> BandwidthResult:
    """Time ``kernel_name`` over arrays of ``elements`` on ``device``; validate its output."""
    kernel = BANDWIDTH_KERNELS[kernel_name]
    body = _BODIES[kernel_name]
    jdtype = jnp.dtype(dtype)
    arrays = {
        name: jax.device_put(np.full(elements, _VALUES[name], dtype=jdtype), device)
        for name in {*body.inputs, *([body.output] if body.output else [])}
    }
    scalar = jax.device_put(np.asarray(SCALAR, dtype=jdtype), device)
    inputs = [arrays[name] for name in body.inputs]
    if body.output is None:
        compiled = jax.jit(body.fn).lower(*inputs, scalar).compile()

        def call() -> Any:
            return compiled(*inputs, scalar)
    else:
        # The overwritten array goes first and is donated: its buffer becomes the output.
        jitted = jax.jit(lambda out, *args: body.fn(*args), donate_argnums=(0,), keep_unused=True)
        compiled = jitted.lower(arrays[body.output], *inputs, scalar).compile()
        state = {"out": arrays.pop(body.output)}

        def call() -> Any:
            state["out"] = compiled(state["out"], *inputs, scalar)
            return state["out"]

    seconds: list[float] = []
    result: Any = None
    for i in range(warmup + repetitions):
        start = time.perf_counter()
        result = call()
        result.block_until_ready()
        elapsed = time.perf_counter() - start
        if i >= warmup:
            seconds.append(elapsed)
    summary = summarize(kernel.bytes_moved(elements, jdtype.itemsize), seconds)
    error = relative_error(kernel_name, dtype, elements, result)
    return BandwidthResult(kernel, dtype, elements, summary, error)

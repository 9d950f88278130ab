"""STREAM-style memory bandwidth probes, compiled by JAX for one device or split across all.

Method (after STREAM and BabelStream): arrays filled with known constants, the kernel compiled
ahead of time, warmed up, each repetition timed to ``block_until_ready``; the overwritten array
is donated (``donate_argnums`` with ``keep_unused=True``) so each call writes into the buffer
the previous call produced instead of page-faulting a fresh one; the scalar is a runtime
argument so XLA cannot fold it. The result is then checked against the value derived by hand.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

import jax
import jax.numpy as jnp
import numpy as np

from tasks.probes.kernels import BANDWIDTH_KERNELS, BandwidthKernel
from tasks.probes.placement import Devices, as_list, shardings
from tasks.probes.statistics import Summary, summarize
from tasks.probes.timing import time_calls, time_for

SCALAR: Final = 0.4


def accumulator(dtype: str) -> Any:
    """The type a reduction accumulates in: float32 for narrow types, float64 stays float64."""
    return jnp.promote_types(jnp.dtype(dtype), jnp.float32)


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
        lambda a, b, s: jnp.sum(a * b, dtype=accumulator(str(a.dtype))),
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
    seconds: list[float]

    @property
    def working_set_bytes(self) -> int:
        return self.kernel.arrays * self.elements * jnp.dtype(self.dtype).itemsize


def tolerance(dtype: str) -> float:
    """Relative error a correct kernel stays within: a few ulps of the element type, and a
    float32 accumulation's rounding for the reduction."""
    eps = jnp.finfo(jnp.dtype(dtype)).eps  # type: ignore[no-untyped-call]
    return float(16 * eps) + 1e-4


def _rounded(value: float, dtype: str) -> float:
    return float(np.asarray(value, dtype=jnp.dtype(dtype)).astype(np.float64))


def expected_value(kernel: str, dtype: str, elements: int) -> float:
    """The value every output element must hold, derived from the start values by hand."""
    values = {k: _rounded(v, dtype) for k, v in _VALUES.items()}
    return _BODIES[kernel].expected(values, _rounded(SCALAR, dtype), elements)


def relative_error(kernel: str, dtype: str, elements: int, result: Any) -> float:
    """Largest relative deviation of ``result`` from the hand-derived value."""
    expected = expected_value(kernel, dtype, elements)
    got = jnp.asarray(result).astype(accumulator(dtype))
    worst = float(jnp.max(jnp.abs(got - expected)))
    return worst / abs(expected)


def kernel_call(kernel_name: str, devices: Devices, dtype: str, elements: int) -> Callable[[], Any]:
    """Place the arrays, compile the kernel ahead of time, and return one blocking call.

    With several devices the arrays are split evenly across them (``elements`` must divide by
    their number) and each device streams its own part.
    """
    body = _BODIES[kernel_name]
    jdtype = jnp.dtype(dtype)
    split, replicated = shardings(devices)
    if elements % len(as_list(devices)):
        raise ValueError(f"{elements} elements do not split over {len(as_list(devices))} devices")

    def filled(value: float) -> Any:
        return jax.jit(lambda: jnp.full((elements,), value, jdtype), out_shardings=split)()

    names = {*body.inputs, *([body.output] if body.output else [])}
    arrays = {name: filled(_VALUES[name]) for name in names}
    scalar = jax.device_put(np.asarray(SCALAR, dtype=jdtype), replicated)
    inputs = [arrays[name] for name in body.inputs]
    if body.output is None:
        reduce = jax.jit(body.fn, out_shardings=replicated).lower(*inputs, scalar).compile()

        def call_reduction() -> Any:
            return reduce(*inputs, scalar).block_until_ready()

        return call_reduction
    # The overwritten array goes first and is donated: its buffer becomes the output.
    jitted = jax.jit(
        lambda out, *args: body.fn(*args),
        donate_argnums=(0,),
        keep_unused=True,
        out_shardings=split,
    )
    compiled = jitted.lower(arrays[body.output], *inputs, scalar).compile()
    state = {"out": arrays.pop(body.output)}

    def call() -> Any:
        state["out"] = compiled(state["out"], *inputs, scalar).block_until_ready()
        return state["out"]

    return call


def measure_bandwidth(
    kernel_name: str,
    devices: Devices,
    dtype: str,
    elements: int,
    repetitions: int,
    warmup: int = 2,
    budget_s: float | None = None,
) -> BandwidthResult:
    """Time ``kernel_name`` over arrays of ``elements`` on ``devices``; validate its output."""
    kernel = BANDWIDTH_KERNELS[kernel_name]
    call = kernel_call(kernel_name, devices, dtype, elements)
    timed = time_calls(call, warmup=warmup, repetitions=repetitions, budget_s=budget_s)
    return _result(kernel, dtype, elements, timed.seconds, timed.last)


def sustain_bandwidth(
    kernel_name: str, devices: Devices, dtype: str, elements: int, seconds: float
) -> BandwidthResult:
    """Repeat ``kernel_name`` for ``seconds``: the timings show whether the device throttles."""
    kernel = BANDWIDTH_KERNELS[kernel_name]
    timed = time_for(kernel_call(kernel_name, devices, dtype, elements), seconds=seconds)
    return _result(kernel, dtype, elements, timed.seconds, timed.last)


def _result(
    kernel: BandwidthKernel, dtype: str, elements: int, seconds: list[float], last: Any
) -> BandwidthResult:
    summary = summarize(kernel.bytes_moved(elements, jnp.dtype(dtype).itemsize), seconds)
    error = relative_error(kernel.name, dtype, elements, last)
    return BandwidthResult(kernel, dtype, elements, summary, error, seconds)

"""The ceilings a case is predicted from, timed in turns with it: the order of the calls, the
budget, and a GEMM at a part's shape run as the step runs its matmuls."""

from __future__ import annotations

import math
from collections.abc import Callable

import jax
import pytest

from hardware_profiles.schema import MiB
from tasks.analysis.workload.workload_model import Architecture
from tasks.probes.workload_ceilings import (
    GEMM_WEIGHT_BYTES,
    TRIAD_BYTES,
    gemm_calls,
    time_in_turns,
    triad_call,
)
from tasks.probes.workload_weights import Shape


class FakeClock:
    """The edge of the world: each call advances time by what the calls say they took."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_each_round_calls_every_ceiling_then_the_step_and_warmup_is_untimed() -> None:
    clock, order = FakeClock(), list[str]()

    def taking(name: str, seconds: float) -> Callable[[], str]:
        def call() -> str:
            order.append(name)
            clock.now += seconds
            return name

        return call

    calls: dict[object, Callable[[], str]] = {
        "triad": taking("triad", 0.01),
        (16, 4, 8): taking("gemm", 0.1),
    }
    seconds, steps, last = time_in_turns(
        calls, taking("step", 0.5), warmup=1, repetitions=10, budget_s=1.2, clock=clock
    )
    # Warm-up round, then timed rounds until the step's 0.5 s calls pass 1.2 s: three of them.
    assert order == ["triad", "gemm", "step"] * 4
    assert steps == pytest.approx([0.5] * 3) and last == "step"
    assert seconds["triad"] == pytest.approx([0.01] * 3)
    assert seconds[(16, 4, 8)] == pytest.approx([0.1] * 3)


def test_never_fewer_than_the_minimum_rounds_nor_more_than_asked() -> None:
    clock = FakeClock()

    def slow() -> None:
        clock.now += 10.0

    _, steps, _ = time_in_turns({}, slow, warmup=0, repetitions=5, budget_s=1.0, clock=clock)
    assert len(steps) == 3
    _, steps, _ = time_in_turns({}, slow, warmup=0, repetitions=2, budget_s=1.0, clock=clock)
    assert len(steps) == 2


TINY = Architecture(
    name="tiny",
    layers=1,
    hidden=32,
    heads=2,
    kv_heads=1,
    head_dim=16,
    ffn=64,
    vocab=64,
    max_context=64,
)


def test_gemm_calls_one_per_distinct_shape_in_the_steps_precision() -> None:
    s = Shape(TINY, "decode", 2, 16, "int8", "fp32", "fp32")
    calls = gemm_calls(s, [(2, 32, 128), (2, 32, 128), (1, 32, 64)], jax.devices()[0])
    assert list(calls) == [(2, 32, 128), (1, 32, 64)]
    call, flops = calls[(2, 32, 128)]
    assert flops == 2 * 2 * 32 * 128
    product = call()
    # int8 weights dequantized to float32, as the step's matmuls run: a [rows, out] product.
    assert product.shape == (2, 128) and str(product.dtype) == "float32"
    assert bool(jax.numpy.isfinite(product).all())


def test_a_gemm_larger_than_the_cap_is_timed_on_fewer_columns() -> None:
    s = Shape(TINY, "decode", 1, 16, "fp32", "fp32", "fp32")
    # 8192 x 32768 float32 weights are 1 GiB; cut to 512 MiB: 16384 columns.
    call, flops = gemm_calls(s, [(1, 8192, 32768)], jax.devices()[0])[(1, 8192, 32768)]
    assert call().shape == (1, GEMM_WEIGHT_BYTES // (8192 * 4)) == (1, 16384)
    assert flops == 2 * 1 * 8192 * 16384  # the rate is over the FLOPs of the columns timed


def test_the_triad_moves_its_three_arrays() -> None:
    call, moved = triad_call(jax.devices()[0])
    assert moved <= TRIAD_BYTES and moved == pytest.approx(TRIAD_BYTES, rel=1e-6)
    assert math.isfinite(float(call()[0]))


def test_a_smaller_cap_cuts_the_gemm_and_the_triad_to_it() -> None:
    """The small case's ceilings (``ceiling_plan(small=True)``): 128 MiB of 8192-row float32
    weights are 128 Mi / (8192 x 4) = 4096 columns; a 128 MiB triad moves 128 MiB."""
    s = Shape(TINY, "decode", 1, 16, "fp32", "fp32", "fp32")
    call, _ = gemm_calls(s, [(1, 8192, 32768)], jax.devices()[0], 128 * MiB)[(1, 8192, 32768)]
    assert call().shape == (1, 4096)
    _, moved = triad_call(jax.devices()[0], 128 * MiB)
    assert moved == pytest.approx(128 * MiB, rel=1e-6)

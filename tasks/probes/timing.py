"""Timing repeated calls the way STREAM does: warm up first, time each call to completion.

Each call must return only when its work is done (``block_until_ready`` or a host copy), so
the wall time around it is the kernel's time and nothing queued behind it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

Clock = Callable[[], float]


@dataclass(frozen=True)
class Timed:
    """Seconds per timed call, and what the last call returned (for validation)."""

    seconds: list[float]
    last: Any


def time_calls(
    call: Callable[[], Any],
    *,
    warmup: int,
    repetitions: int,
    budget_s: float | None = None,
    min_repetitions: int = 3,
    prepare: Callable[[], None] | None = None,
    clock: Clock = time.perf_counter,
) -> Timed:
    """Run ``call`` ``warmup`` times untimed, then time up to ``repetitions`` calls.

    With ``budget_s`` the repetitions stop once the timed calls have used the budget, but never
    before ``min_repetitions``: a large GEMM on a slow CPU would otherwise take minutes for no
    better a figure. ``prepare`` runs untimed before every call (a fresh source buffer).
    """
    last: Any = None
    for _ in range(warmup):
        if prepare:
            prepare()
        last = call()
    seconds: list[float] = []
    while len(seconds) < repetitions:
        if prepare:
            prepare()
        start = clock()
        last = call()
        seconds.append(clock() - start)
        if budget_s is not None and len(seconds) >= min_repetitions and sum(seconds) >= budget_s:
            break
    return Timed(seconds, last)


def time_for(
    call: Callable[[], Any], *, seconds: float, warmup: int = 1, clock: Clock = time.perf_counter
) -> Timed:
    """Repeat ``call`` for at least ``seconds`` of wall time (a sustained run), at least 10
    times so that its first and last tenths each hold a call."""
    last: Any = None
    for _ in range(warmup):
        last = call()
    times: list[float] = []
    began = clock()
    while clock() - began < seconds or len(times) < 10:
        start = clock()
        last = call()
        times.append(clock() - start)
    return Timed(times, last)


def drift(seconds: list[float]) -> float:
    """Relative change in throughput from the first tenth of a sustained run to the last:
    -0.1 means the last tenth ran 10 % slower (throttling)."""
    if len(seconds) < 10:
        raise ValueError("a drift needs at least 10 timed calls")
    tenth = len(seconds) // 10
    first = float(np.median(seconds[:tenth]))
    last = float(np.median(seconds[-tenth:]))
    return first / last - 1.0

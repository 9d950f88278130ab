"""Summaries of repeated timings, and the rule that calls a measurement unstable."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

UNSTABLE_CV = 0.05
UNSTABLE_BEST_OVER_MEDIAN = 1.1


@dataclass(frozen=True)
class Summary:
    """Throughput statistics over repetitions (higher is better)."""

    best: float
    median: float
    p10: float
    p90: float
    cv: float
    repetitions: int

    @property
    def unstable(self) -> bool:
        return self.cv > UNSTABLE_CV or self.best / self.median > UNSTABLE_BEST_OVER_MEDIAN


def summarize(work: float, seconds: Sequence[float]) -> Summary:
    """Throughput ``work / seconds`` per repetition: best (max), median, p10, p90, and the
    coefficient of variation of the times (population standard deviation over mean)."""
    times = np.asarray(seconds, dtype=float)
    if times.size == 0:
        raise ValueError("no timings to summarize")
    if (times <= 0).any():
        raise ValueError("timings must be positive")
    rates = work / times
    return Summary(
        best=float(rates.max()),
        median=float(np.median(rates)),
        p10=float(np.percentile(rates, 10)),
        p90=float(np.percentile(rates, 90)),
        cv=float(times.std() / times.mean()),
        repetitions=int(times.size),
    )

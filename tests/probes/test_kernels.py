"""The kernel table's byte and FLOP accounting, and the statistics rules (pure)."""

from __future__ import annotations

import pytest

from tasks.probes.kernels import BANDWIDTH_KERNELS, MATMUL
from tasks.probes.statistics import summarize


@pytest.mark.parametrize(
    ("name", "bytes_per_element_fp32", "flops_per_element"),
    [("copy", 8, 0), ("scale", 8, 1), ("add", 12, 1), ("triad", 12, 2), ("read", 8, 2)],
)
def test_stream_byte_counting(
    name: str, bytes_per_element_fp32: int, flops_per_element: int
) -> None:
    kernel = BANDWIDTH_KERNELS[name]
    assert kernel.bytes_moved(1000, 4) == 1000 * bytes_per_element_fp32
    assert kernel.flops(1000) == 1000 * flops_per_element


def test_matmul_accounting() -> None:
    assert MATMUL.flops(1024) == 2 * 1024**3
    # int8 in, int32 out: A and B read once (1 byte), C written once (4 bytes).
    assert MATMUL.bytes_moved(1024, 1, 4) == 2 * 1024 * 1024 + 4 * 1024 * 1024


def test_summary_of_known_samples() -> None:
    # 100 bytes in 1, 2, 2, 4 seconds: rates 100, 50, 50, 25.
    s = summarize(100.0, [1.0, 2.0, 2.0, 4.0])
    assert s.best == 100.0
    assert s.median == 50.0
    assert s.repetitions == 4
    # times mean 2.25, population std sqrt(((1.25)^2 + 2*(0.25)^2 + 1.75^2) / 4) = 1.0897
    assert s.cv == pytest.approx(1.0897247 / 2.25, rel=1e-6)
    assert s.unstable


def test_steady_samples_are_stable() -> None:
    s = summarize(1.0, [1.0, 1.01, 0.99, 1.0, 1.0])
    assert not s.unstable


def test_best_far_above_median_is_unstable_even_with_low_cv() -> None:
    # One fast outlier among many: CV stays under 5 %, but best/median = 1.25 > 1.1.
    times = [1.0] * 99 + [0.8]
    s = summarize(1.0, times)
    assert s.cv < 0.05
    assert s.unstable

"""The kernel table's byte and FLOP accounting, the statistics rules and the timing loop
(pure; the clock is faked)."""

from __future__ import annotations

import pytest

from tasks.probes.kernels import BANDWIDTH_KERNELS, MATMUL, TRANSFER_KERNELS
from tasks.probes.statistics import summarize
from tasks.probes.timing import drift, time_calls


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


@pytest.mark.parametrize("name", ["host-to-device", "device-to-host"])
def test_transfers_count_each_byte_once_as_it_crosses_the_link(name: str) -> None:
    assert TRANSFER_KERNELS[name].bytes_moved(1000, 4) == 4000


def test_device_ring_counts_every_devices_array() -> None:
    # Four devices each send 1000 bfloat16 elements to the next.
    assert TRANSFER_KERNELS["device-to-device"].bytes_moved(1000, 2, devices=4) == 8000


class FakeClock:
    """Each call advances by the next of ``durations``: a timed call lasts one duration."""

    def __init__(self, durations: list[float]) -> None:
        self.now = 0.0
        self.durations = iter(durations)
        self.started = False

    def __call__(self) -> float:
        if self.started:
            self.now += next(self.durations)
        self.started = not self.started
        return self.now


def test_time_calls_stops_at_the_budget_but_not_before_the_minimum() -> None:
    calls: list[int] = []

    def call() -> int:
        calls.append(1)
        return len(calls)

    timed = time_calls(
        call, warmup=2, repetitions=50, budget_s=1.0, min_repetitions=3, clock=FakeClock([0.6] * 9)
    )
    # 1.2 s after two calls is over the budget, but three calls are the minimum.
    assert timed.seconds == pytest.approx([0.6, 0.6, 0.6])
    assert timed.last == 5  # two warm-up calls ran untimed first


def test_time_calls_without_budget_runs_every_repetition() -> None:
    timed = time_calls(lambda: None, warmup=0, repetitions=7, clock=FakeClock([1.0] * 7))
    assert timed.seconds == [1.0] * 7


def test_drift_compares_the_last_tenth_with_the_first() -> None:
    # 20 calls: the first two take 1 s, the last two 1.25 s: throughput fell by 20 %.
    seconds = [1.0, 1.0] + [1.1] * 16 + [1.25, 1.25]
    assert drift(seconds) == pytest.approx(-0.2)
    assert drift([1.0] * 10) == 0.0
    with pytest.raises(ValueError, match="at least 10"):
        drift([1.0] * 9)

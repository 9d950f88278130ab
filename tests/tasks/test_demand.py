"""Demand fitted on hourly rates, and what happens when Prometheus is not there."""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hardware_profiles.errors import MemwallError
from tasks.analysis.demand import DAY_S, PEAK_DAYS, DemandError, fit_demand
from tasks.analysis.workload.examples import example_workloads
from tasks.demand import demand_or_file, sync_demand
from tasks.history import read_demand, record_demand
from tasks.prometheus import PrometheusUnreachable, engine_query, query_range
from tests.integration.conftest import free_port

END = dt.datetime(2026, 11, 1, tzinfo=dt.UTC).timestamp()


def hourly(
    days: int, growth: float, rate_now: float, swing: float = 0.3
) -> tuple[np.ndarray, np.ndarray]:
    times = END - 3600 * np.arange(days * 24)[::-1]
    years = (times - END) / (365.25 * DAY_S)
    diurnal = 1 + swing * np.sin(2 * np.pi * (times % DAY_S) / DAY_S)
    return times, rate_now * (1 + growth) ** years * diurnal


def test_growth_and_peak_demand_are_recovered() -> None:
    times, rates = hourly(60, growth=1.5, rate_now=400.0)
    noisy = rates * (1 + 0.05 * np.random.default_rng(1).standard_normal(rates.size))
    fit = fit_demand(times, noisy, END, "w")
    assert fit.growth_per_year == pytest.approx(1.5, rel=0.05)
    assert 0 < fit.growth_sigma < 0.1
    # The busiest hour of each day, averaged over the last week: above the daily mean.
    day = np.floor((END - times) / DAY_S)
    peaks = [rates[day == d].max() for d in range(PEAK_DAYS)]
    assert fit.units_per_s == pytest.approx(float(np.mean(peaks)), rel=0.05)
    assert fit.units_per_s > rates[-24:].mean()


def test_the_growth_fit_is_least_squares_on_the_log_of_the_daily_means() -> None:
    """scipy's linregress against the fit worked by hand: equal up to floating-point rounding
    (relative 1e-12; the two sum in different orders)."""
    times, rates = hourly(60, growth=0.8, rate_now=50.0)
    noisy = rates * (1 + 0.1 * np.random.default_rng(2).standard_normal(rates.size))
    fit = fit_demand(times, noisy, END, "w")
    day = np.floor((END - times) / DAY_S)
    days = np.unique(day)  # 60 whole days: every one enters the fit
    x = np.array([times[day == d].mean() for d in days]) / (365.25 * DAY_S)
    y = np.log([noisy[day == d].mean() for d in days])
    x = x - x.mean()
    slope = float((x * (y - y.mean())).sum() / (x * x).sum())
    residuals = y - y.mean() - slope * x
    se = math.sqrt(float((residuals**2).sum()) / (days.size - 2) / float((x * x).sum()))
    assert fit.days_fitted == days.size
    assert fit.growth_per_year == pytest.approx(math.exp(slope) - 1, rel=1e-12)
    assert fit.growth_sigma == pytest.approx(math.exp(slope) * se, rel=1e-12)


def test_a_flat_series_has_no_growth_and_a_shrinking_one_negative_growth() -> None:
    times, rates = hourly(30, growth=0.0, rate_now=10.0, swing=0.0)
    assert fit_demand(times, rates, END, "w").growth_per_year == pytest.approx(0, abs=1e-9)
    times, rates = hourly(30, growth=-0.5, rate_now=10.0)
    assert fit_demand(times, rates, END, "w").growth_per_year == pytest.approx(-0.5, rel=0.02)


@pytest.mark.parametrize(
    ("bad", "says"), [(-3.0, "negative"), (math.nan, "NaN"), (math.inf, "infinite")]
)
def test_a_bad_rate_is_refused_naming_the_series(bad: float, says: str) -> None:
    times, rates = hourly(30, growth=0.5, rate_now=10.0)
    rates[100] = bad
    with pytest.raises(DemandError, match=f"workload 'w'.* returned a {says} rate .*refused"):
        fit_demand(times, rates, END, "workload 'w'")


def test_no_traffic_or_too_few_days_is_refused() -> None:
    times, rates = hourly(30, growth=0.5, rate_now=10.0)
    with pytest.raises(DemandError, match="no demand in the last 7 days"):
        fit_demand(times, rates * 0, END, "w")
    times, rates = hourly(3, growth=0.5, rate_now=10.0)
    with pytest.raises(DemandError, match="growth fit needs at least 7"):
        fit_demand(times, rates, END, "w")
    with pytest.raises(DemandError, match="no samples"):
        fit_demand(np.array([]), np.array([]), END, "w")


def test_engine_queries_name_the_engines_counters() -> None:
    assert engine_query("vllm", "decode", "m") == (
        'sum(rate(vllm:generation_tokens_total{model_name="m"}[5m]))'
    )
    assert "sglang:prompt_tokens_total" in engine_query("sglang", "prefill", "m")
    assert "tgi_request_generated_tokens_sum" in engine_query("tgi", "decode", "job")
    # TensorRT-LLM's counters as tensorrt_llm/metrics/collector.py names them, by model_name.
    assert engine_query("trtllm", "decode", "m") == (
        'sum(rate(trtllm_generation_tokens_total{model_name="m"}[5m]))'
    )
    assert engine_query("trtllm", "prefill", "m") == (
        'sum(rate(trtllm_prompt_tokens_total{model_name="m"}[5m]))'
    )
    with pytest.raises(
        MemwallError, match="unknown engine 'triton'; valid: vllm, sglang, trtllm, tgi"
    ):
        engine_query("triton", "decode", "m")
    with pytest.raises(MemwallError, match="not 'training'"):
        engine_query("vllm", "training", "m")


def _with_query() -> pd.DataFrame:
    frame = example_workloads()
    frame["demand_query"] = None
    frame.loc[0, "demand_query"] = engine_query("vllm", "decode", "m")
    return frame


def test_an_unreachable_prometheus_is_one_line_and_the_audit_keeps_the_file() -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    with pytest.raises(PrometheusUnreachable, match=f"^Prometheus at {url} unreachable"):
        query_range(url, "up", END - 3600, END, timeout_s=5)
    frame = _with_query()
    workloads, provenance, warning = demand_or_file(frame, url, "w.parquet")
    assert warning is not None and "\n" not in warning
    assert "unreachable" in warning and "using the demand written in w.parquet" in warning
    assert workloads is frame
    assert set(provenance["source"]) == {"file"}
    assert "unreachable" in str(provenance["detail"].iloc[0])
    with pytest.raises(PrometheusUnreachable):
        sync_demand(frame, url, "w.parquet")


def test_a_url_that_is_not_http_is_refused() -> None:
    with pytest.raises(MemwallError, match="must start with http"):
        query_range("prometheus:9090", "up", END - 3600, END)


def test_without_prometheus_every_row_is_the_files() -> None:
    frame = example_workloads()
    workloads, provenance, warning = demand_or_file(frame, None, "examples")
    assert warning is None and workloads is frame
    assert list(provenance["workload_id"]) == list(frame["workload_id"])
    assert (provenance["demand_units_per_s"] == frame["demand_units_per_s"]).all()
    assert set(provenance["detail"]) == {"as written in examples"}


def test_demand_history_round_trips(tmp_path: Path) -> None:
    frame = example_workloads()
    _, provenance, _ = demand_or_file(frame, None, "examples")
    at = dt.datetime(2026, 11, 2, tzinfo=dt.UTC)
    record_demand(str(tmp_path), "run-1", provenance, at)
    record_demand(
        str(tmp_path), "run-2", provenance.assign(demand_units_per_s=2.0), at + dt.timedelta(days=7)
    )
    rows = read_demand(str(tmp_path))
    assert list(rows["run_id"].unique()) == ["run-1", "run-2"]
    assert (rows[rows["run_id"] == "run-2"]["demand_units_per_s"] == 2.0).all()
    assert (tmp_path / "demand" / "run-1.parquet").is_file()

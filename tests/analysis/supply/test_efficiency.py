"""Efficiency per phase: workload probes (this run, else the history's latest), else a
fitted default (vendor, else all vendors), else STREAM; each with its source; and the
projection uses each workload's phase."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from hardware_profiles.parquet import validate_frame
from hardware_profiles.schema import MEASUREMENTS
from tasks.analysis.projection.projector import project
from tasks.analysis.supply.calibrated import efficiencies_for, efficiency_sources
from tasks.analysis.supply.calibration import calibrate
from tasks.analysis.supply.efficiency import Efficiency, FittedDefaults
from tests.analysis.projection.test_projector import BASE, START, _catalog, _roadmap, _scenario_s

FIT = FittedDefaults(
    {
        ("decode", None): Efficiency(0.6, "fitted on 9 published runs (decode, all vendors)", 0.1),
        ("prefill", "Acme"): Efficiency(0.5, "fitted on 4 published runs (prefill, Acme)", 0.2),
    },
    0.3,
)


def _row(
    model: str,
    probe: str,
    efficiency: float,
    when: dt.datetime,
    run_id: str,
    host: str = "h1",
    cv: float = 0.02,
) -> dict[str, object]:
    decode = probe == "workload-decode"
    return {
        "run_id": run_id,
        "measured_at": when,
        "host": host,
        "device_index": 0,
        "platform": "gpu",
        "device_kind": model.upper(),
        "accelerator_id": model,
        "probe": probe,
        "dtype": "bfloat16",
        "working_set_bytes": 10**9,
        "repetitions": 10,
        "best": 1.0,
        "median": 1.0,
        "p10": 1.0,
        "p90": 1.0,
        "cv": cv,
        "unit": "bytes_per_s" if decode else "flops_per_s",
        "spec": 1.0,
        "efficiency": efficiency,
        "status": "ok",
        "detail": "",
        "software": "",
    }


def _frame(rows: list[dict[str, object]]) -> pd.DataFrame:
    return validate_frame(pd.DataFrame(rows), MEASUREMENTS, "test measurements")


NOW = dt.datetime(2026, 11, 29, 1, 0, tzinfo=dt.UTC)


def test_each_phase_takes_the_best_source_available() -> None:
    here = _frame([_row("x1", "workload-decode", 0.55, NOW, "now")])
    history = _frame(
        [
            _row("x1", "workload-decode", 0.40, NOW - dt.timedelta(days=7), "old"),
            _row("x2", "workload-decode", 0.50, NOW - dt.timedelta(days=14), "older", "h2"),
            _row("x2", "workload-decode", 0.52, NOW - dt.timedelta(days=7), "old", "h2"),
        ]
    )
    calibrated = calibrate(_catalog(), here, fitted=FIT, history=history)
    x1_bw, x1_f = efficiencies_for(calibrated, "x1", "decode", "bf16")
    assert (x1_bw.value, x1_bw.source) == (0.55, "measured here (workload probe, 2026-11-29)")
    assert x1_bw.spread == pytest.approx(0.02)
    x2_bw, _ = efficiencies_for(calibrated, "x2", "decode", "bf16")
    assert (x2_bw.value, x2_bw.source) == (
        0.52,
        "measured on h2 (workload probe, 2026-11-22, history)",
    )
    # Decode's compute ceiling is not fitted: STREAM's default, with STREAM's spread.
    assert (x1_f.value, x1_f.source, x1_f.spread) == (0.70, "default", 0.3)
    prefill_bw, prefill_f = efficiencies_for(calibrated, "x1", "prefill", "bf16")
    assert (prefill_bw.value, prefill_bw.source) == (0.85, "default")
    assert (prefill_f.value, prefill_f.source) == (
        0.5,
        FIT.efficiencies[("prefill", "Acme")].source,
    )
    training_bw, _ = efficiencies_for(calibrated, "x1", "training", "bf16")
    assert training_bw.value == 0.85


def test_without_published_runs_the_source_says_the_spread_is_unknown() -> None:
    bandwidth, _ = efficiencies_for(calibrate(_catalog()), "x1", "decode", "bf16")
    assert (bandwidth.value, bandwidth.spread) == (0.85, 0.0)
    assert bandwidth.source == "default; spread unknown: no published runs"


def test_the_method_table_lists_every_model_and_phase() -> None:
    table = efficiency_sources(calibrate(_catalog(), fitted=FIT), ["x1", "x2", "gone"], "bf16")
    assert list(table["phase"]) == ["decode", "prefill", "training"] * 2
    assert set(table["accelerator_id"]) == {"x1", "x2"}


def test_the_projection_uses_each_workloads_phase_efficiency() -> None:
    # Decode workloads a and b are memory-bound: supply and headroom scale with decode's
    # bandwidth efficiency, 0.6 instead of 0.85. Training workload c is compute-bound and
    # keeps the STREAM figures: its headroom does not move.
    workloads, roadmap = _scenario_s(), _roadmap(BASE)
    plain = project(workloads, roadmap, calibrate(_catalog()), START, 12).outcome.headroom
    fitted = project(workloads, roadmap, calibrate(_catalog(), fitted=FIT), START, 12)
    ratio = fitted.outcome.headroom / plain
    assert ratio[:2] == pytest.approx(np.full((2, 12), 0.6 / 0.85))
    assert ratio[2] == pytest.approx(np.ones(12))


def test_an_unusable_probe_row_does_not_count() -> None:
    failed = {**_row("x1", "workload-decode", 0.3, NOW, "now"), "status": "failed"}
    calibrated = calibrate(_catalog(), _frame([failed]), fitted=FIT)
    bandwidth, _ = efficiencies_for(calibrated, "x1", "decode", "bf16")
    assert bandwidth.value == 0.6

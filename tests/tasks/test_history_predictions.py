"""The history keeps each audit's predictions; an audit predicts at the shape production served;
a history from before predictions were kept still reads, with nothing to compare yet."""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

import pandas as pd
import pytest

from hardware_profiles.catalog import builtin_catalog
from tasks.analysis.supply.backtest import load_backtest
from tasks.analysis.supply.calibration import calibrate
from tasks.analysis.supply.efficiency import Efficiency
from tasks.analysis.supply.production import ROW_COLUMNS, served_models
from tasks.analysis.supply.selfcheck import Z90, accuracy, supply_spread_on
from tasks.history import check_history, read_predictions, record_predictions, record_run
from tasks.observe import audit_predictions, predictor
from tests.tasks.test_history import T0, measurements, ranking

WORKLOADS = pd.DataFrame(
    {
        "workload_id": ["chat"],
        "phase": ["decode"],
        "precision": ["bf16"],
        "model_preset": ["llama-3.1-8b"],
        "demand_query": ['sum(rate(vllm:generation_tokens_total{model_name="llama-8b"}[5m]))'],
    }
)


def observed(workload: str | None = "chat", model: str = "llama-8b") -> dict[str, object]:
    """One `memwall observe` row: 8 H100s serving 4 replicas of 2, batch 12, context 3,000."""
    row: dict[str, object] = dict.fromkeys(ROW_COLUMNS)
    row |= {
        "workload_id": workload,
        "model_name": model,
        "accelerator_id": "nvidia-h100-sxm",
        "gpus": 8,
        "replica_gpus": 2.0,
        "batch": 12.0,
        "context": 3000.0,
        "measured_step_s": 0.011,
        "window": "7 days to 2026-11-02 06:00 UTC",
    }
    return row


def test_an_audit_predicts_each_served_workload_at_the_served_shape() -> None:
    """The step memwall's predictor gives for 2 devices at batch 12 and context 3,000; 4
    replicas at that step serve 12 · 4 / step tokens/s. Production measured 0.5 on the H100s
    with a log spread of 0.08: the band is step · exp(∓z · 0.08). A model no workload serves,
    or a row whose window read no served shape, is not predicted."""
    catalog = builtin_catalog()
    production = {("nvidia-h100-sxm", "decode"): Efficiency(0.5, "measured in production", 0.08)}
    calibrated = calibrate(
        catalog, None, fitted=load_backtest(catalog).fitted, production=production
    )
    unread = {**observed(), "batch": None, "context": None, "measured_step_s": None}
    rows = pd.DataFrame(
        [observed(), observed(None, "unknown-model"), unread], columns=list(ROW_COLUMNS)
    )

    got = audit_predictions(rows, WORKLOADS, catalog, calibrated)

    expected = predictor(catalog, calibrated)(
        served_models(WORKLOADS)["llama-8b"], "nvidia-h100-sxm", 2, 12.0, 3000.0
    )
    assert expected is not None
    step, source = expected
    assert len(got) == 1
    r = got.iloc[0]
    assert (r["workload_id"], r["replica_gpus"], r["measured_step_s"]) == ("chat", 2, 0.011)
    assert r["predicted_step_s"] == pytest.approx(step)
    assert r["predicted_tokens_per_s"] == pytest.approx(12 * 4 / step)
    assert r["step_p10_s"] == pytest.approx(step * math.exp(-Z90 * 0.08))
    assert r["step_p90_s"] == pytest.approx(step * math.exp(Z90 * 0.08))
    assert r["efficiency_source"] == source
    assert source == "bandwidth efficiency measured in production"


def test_a_fitted_default_takes_its_classs_leave_one_source_out_spread() -> None:
    """Without production, decode on the H100 runs at the default fitted on published runs:
    the band's spread is the backtest's leave-one-source-out spread of dense models, the
    projection's own (tasks.analysis.projection.uncertainty), not the fit's residuals."""
    catalog = builtin_catalog()
    backtest = load_backtest(catalog)
    calibrated = calibrate(catalog, None, fitted=backtest.fitted)
    spread = supply_spread_on(calibrated)(served_models(WORKLOADS)["llama-8b"], "nvidia-h100-sxm")
    assert spread == pytest.approx(backtest.fitted.class_spread["dense"])
    h100 = calibrated[calibrated["accelerator_id"] == "nvidia-h100-sxm"]
    assert spread != pytest.approx(h100["bandwidth_spread_decode"].astype(float).iloc[0])


def test_predictions_round_trip_and_an_old_history_has_none(tmp_path: Path) -> None:
    history = str(tmp_path / "history")
    record_run(history, "r0", measurements("r0", T0, 3.0e12), ranking(), T0)
    assert read_predictions(history).empty  # a history from before predictions were kept
    assert accuracy(read_predictions(history)).headline() == (
        "no predictions recorded yet: nothing to compare"
    )

    rows = pd.DataFrame(
        {
            "workload_id": ["chat"],
            "model_name": ["llama-8b"],
            "accelerator_id": ["nvidia-h100-sxm"],
            "gpus": [8],
            "replica_gpus": [2],
            "batch": [12.0],
            "context_tokens": [3000.0],
            "measured_step_s": [None],
            "window": ["7 days to 2026-11-02 06:00 UTC"],
            "predicted_step_s": [0.010],
            "predicted_tokens_per_s": [4800.0],
            "step_p10_s": [0.009],
            "step_p90_s": [0.011],
            "supply_spread": [0.08],
            "efficiency_source": ["bandwidth efficiency measured in production"],
        }
    )
    record_predictions(history, "r1", rows, T0 + dt.timedelta(days=7))
    assert record_predictions(history, "r2", rows.iloc[0:0], T0) is None  # nothing served

    back = read_predictions(history)
    assert list(back["run_id"]) == ["r1"]
    assert back["measured_step_s"].isna().all()
    assert back["predicted_tokens_per_s"].iloc[0] == 4800.0
    assert check_history(history) == []

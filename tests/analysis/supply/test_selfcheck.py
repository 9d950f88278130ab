"""memwall's self-check by hand: recorded predictions against what the next audits measured."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
import pytest

from hardware_profiles.schema import PREDICTION_HISTORY
from tasks.analysis.supply.selfcheck import Z90, accuracy, step_band

T0 = dt.datetime(2026, 11, 2, 6, 0, tzinfo=dt.UTC)
WEEK = dt.timedelta(days=7)


def row(
    run_id: str,
    at: dt.datetime,
    workload: str,
    predicted_ms: float | None,
    measured_ms: float | None,
    spread: float | None = 0.1,
    batch: float = 8.0,
) -> dict[str, object]:
    """One recorded prediction row, as tasks.history keeps it."""
    step = None if predicted_ms is None else predicted_ms / 1e3
    low, high = step_band(step, spread)
    return {
        "run_id": run_id,
        "recorded_at": at,
        "workload_id": workload,
        "model_name": f"{workload}-model",
        "accelerator_id": "h100-sxm",
        "gpus": 8,
        "replica_gpus": 1,
        "batch": batch,
        "context_tokens": 2048.0,
        "measured_step_s": None if measured_ms is None else measured_ms / 1e3,
        "window": f"7 days to {at:%Y-%m-%d %H:%M} UTC",
        "predicted_step_s": step,
        "predicted_tokens_per_s": None if step is None else batch * 8 / step,
        "step_p10_s": low,
        "step_p90_s": high,
        "supply_spread": spread,
        "efficiency_source": "bandwidth efficiency measured in production",
    }


def frame(rows: Sequence[Mapping[Any, Any]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=PREDICTION_HISTORY.columns)


def two_audits() -> pd.DataFrame:
    return frame(
        [
            row("r1", T0, "chat", 20.0, 19.0),
            row("r1", T0, "code", 10.0, 10.2),
            row("r2", T0 + WEEK, "chat", 24.0, 25.0, batch=10.0),
            row("r2", T0 + WEEK, "code", 9.6, 9.5),
        ]
    )


def test_the_band_is_the_supply_spread_on_the_step() -> None:
    """20 ms at a supply log spread of 0.1: 20·exp(∓1.2816·0.1) = 17.594 to 22.735 ms."""
    low, high = step_band(0.020, 0.1)
    assert pytest.approx(1.2815516) == Z90
    assert low == pytest.approx(0.017594, abs=1e-6)
    assert high == pytest.approx(0.022735, abs=1e-6)
    assert step_band(0.020, None) == (None, None)


def test_the_error_of_two_recorded_audits_by_hand() -> None:
    """Audit r1 predicted chat at 20 ms (band 17.59-22.73 ms) and code at 10 ms (8.80-11.37);
    audit r2 measured chat at 25 ms and code at 9.5 ms over the week after.

    chat: 25 / 20 - 1 = +25 %, above 22.73 ms: past its band, flagged.
    code: 9.5 / 10 - 1 = -5 %, inside its band.
    overall: (25 + 5) / 2 = 15 % mean absolute error over 2 checks of 2 runs.
    r1's own measurements (19, 10.2 ms: the window before r1) check nothing; r2's predictions
    have no later measurement yet. The batch served moved from 8 to 10 for chat: +25 %."""
    checked = accuracy(two_audits())

    assert checked.runs == 2
    assert checked.overall_mean_abs_error == pytest.approx(0.15)
    checks = checked.checks.set_index("workload_id")
    assert list(checks["run_id"]) == ["r1", "r1"]
    assert list(checks["checked_by"]) == ["r2", "r2"]
    assert checks.loc["chat", "error"] == pytest.approx(0.25)
    assert checks.loc["code", "error"] == pytest.approx(-0.05)
    assert checks.loc["chat", "batch_change"] == pytest.approx(0.25)
    assert not checks.loc["chat", "in_band"]
    assert checks.loc["code", "in_band"]
    per = checked.workloads.set_index("workload_id")
    assert per.loc["chat", "mean_abs_error"] == pytest.approx(0.25)
    assert per.loc["code", "bias"] == pytest.approx(-0.05)
    assert checked.flagged == ["chat"]
    assert checked.headline() == (
        "memwall's step error on this fleet: 15.0 % mean absolute over 2 check(s) of the last "
        "2 run(s); past its P10-P90 band: chat"
    )


def test_a_third_audit_averages_the_checks_and_clears_the_flag() -> None:
    """r3 measures chat at 24 ms, what r2 predicted: error 0, inside its band. chat's mean
    absolute error over its two checks is (25 + 0) / 2 = 12.5 %, bias +12.5 %, and the
    latest check is inside the band: no longer flagged. Over the last 2 runs only (r2, r3),
    r1's prediction is left out: chat's one check is r2 -> r3, error 0."""
    rows = frame([*two_audits().to_dict("records"), row("r3", T0 + 2 * WEEK, "chat", 23.0, 24.0)])
    checked = accuracy(rows)

    chat = checked.workloads.set_index("workload_id").loc["chat"]
    assert (chat["checks"], chat["mean_abs_error"]) == (2, pytest.approx(0.125))
    assert chat["bias"] == pytest.approx(0.125)
    assert (chat["last_error"], chat["flagged"]) == (pytest.approx(0.0), False)
    assert checked.flagged == []

    recent = accuracy(rows, last_runs=2)
    assert recent.runs == 2
    assert list(recent.checks["run_id"]) == ["r2"]
    assert recent.checks["error"].iloc[0] == pytest.approx(0.0)


def test_a_workload_not_served_since_stays_unchecked_and_a_missing_band_never_flags() -> None:
    """chat is not measured by r2 but is by r3: r1's prediction (20 ms) is checked by r3's
    30 ms (+50 %), with no band recorded (no spread): not flagged. code, measured by no later
    run, stays unchecked."""
    rows = frame(
        [
            row("r1", T0, "chat", 20.0, None, spread=None),
            row("r1", T0, "code", 10.0, 10.0),
            row("r2", T0 + WEEK, "other", 5.0, 5.0),
            row("r3", T0 + 2 * WEEK, "chat", None, 30.0, spread=None),
        ]
    )
    checked = accuracy(rows)
    assert list(checked.checks["workload_id"]) == ["chat"]
    assert checked.checks["checked_by"].iloc[0] == "r3"
    assert checked.checks["error"].iloc[0] == pytest.approx(0.5)
    assert checked.flagged == []
    assert math.isclose(checked.overall_mean_abs_error or 0.0, 0.5)


def test_nothing_recorded_or_nothing_measured_since_says_so() -> None:
    nothing = accuracy(frame([]))
    assert (nothing.runs, nothing.overall_mean_abs_error) == (0, None)
    assert nothing.headline() == "no predictions recorded yet: nothing to compare"
    one = accuracy(frame([row("r1", T0, "chat", 20.0, 19.0)]))
    assert one.checks.empty
    assert one.headline().startswith("1 run(s) recorded predictions, none measured since")

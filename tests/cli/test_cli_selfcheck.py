"""`memwall history --accuracy`: memwall's own error on this fleet, from a history the code
wrote, as JSON and as a table; an old history says there is nothing to compare yet."""

from __future__ import annotations

import json
from pathlib import Path

from tasks.history import record_predictions, record_run
from tests.analysis.supply.test_selfcheck import T0, WEEK, frame, row
from tests.cli.test_cli import memwall
from tests.tasks.test_history import measurements, ranking


def test_history_accuracy_prints_the_error_per_workload_and_flags_the_drift(
    tmp_path: Path,
) -> None:
    """Two audits, written by the code: r1 predicted chat at 20 ms and code at 10 ms; r2
    measured 25 ms (+25 %, past the band 17.59-22.73 ms) and 9.5 ms (-5 %): 15 % overall."""
    history = tmp_path / "history"
    audits = [("r1", T0, [("chat", 20.0, 19.0), ("code", 10.0, 10.2)])]
    audits.append(("r2", T0 + WEEK, [("chat", 24.0, 25.0), ("code", 9.6, 9.5)]))
    for run_id, at, predicted in audits:
        record_run(str(history), run_id, measurements(run_id, at, 3.0e12), ranking(), at)
        rows = frame([row(run_id, at, w, p, m) for w, p, m in predicted])
        record_predictions(str(history), run_id, rows.drop(columns=["run_id", "recorded_at"]), at)

    result = memwall(["history", "--history", str(history), "--accuracy", "--json"], None, tmp_path)

    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["runs"] == 2
    assert abs(out["overall_mean_abs_error"] - 0.15) < 1e-9
    assert out["flagged"] == ["chat"]
    per = {w["workload_id"]: w for w in out["workloads"]}
    assert abs(per["chat"]["last_error"] - 0.25) < 1e-9
    assert abs(per["code"]["last_error"] + 0.05) < 1e-9
    assert [(c["run_id"], c["checked_by"]) for c in out["checks"]] == [("r1", "r2")] * 2

    table = memwall(["history", "--history", str(history), "--accuracy"], None, tmp_path)
    assert table.returncode == 0, table.stderr
    assert "15.0 % mean absolute over 2 check(s)" in table.stdout
    assert "past its P10-P90 band" in table.stdout
    assert "+25.0 %" in table.stdout and "-5.0 %" in table.stdout
    assert "flagged: chat" in table.stderr


def test_history_accuracy_of_a_history_without_predictions_says_so(tmp_path: Path) -> None:
    history = tmp_path / "history"
    record_run(str(history), "r0", measurements("r0", T0, 3.0e12), ranking(), T0)
    result = memwall(["history", "--history", str(history), "--accuracy"], None, tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "no predictions recorded yet: nothing to compare"
    args = ["history", "--history", str(history), "--accuracy", "--json"]
    as_json = memwall(args, None, tmp_path)
    assert json.loads(as_json.stdout)["overall_mean_abs_error"] is None

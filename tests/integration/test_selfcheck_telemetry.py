"""memwall checks itself against a real Prometheus: two weekly audits, recorded, then compared.

The telemetry is ``test_observe_telemetry``'s 14 days (three served models, planted bandwidth
efficiencies per workload: on the H100s chat-70b 0.55 on 2 GPUs and agent-8b 0.40 on 1; on
the H200s agent-8b 0.45 and mixtral 0.35, 1 GPU each). The first audit observes days 14 to 7
before the end, calibrates on them and predicts each served workload; the second observes the
last 7 days, which check those predictions.

memwall calibrates production efficiency per accelerator model, not per workload: the GPU-
weighted median of the rows on that model. On the H100s that is chat-70b's 0.55 (2 GPUs
against 1), so agent-8b's step there is predicted as if at 0.55 and measured at 0.40: an error
of 0.55 / 0.40 - 1 = +37.5 %. On the H200s the median of (0.35, 0.45) at equal weights is the
lower, 0.35 (the weighted median's first value reaching half the weight): agent-8b is measured
at 0.45 where predicted at 0.35, 0.35 / 0.45 - 1 = -22.2 %, and mixtral lands on its own
figure, about 0 %. Both agent-8b rows are past their bands (the spread between the two
workloads' efficiencies, about ±20 % at P10-P90); mixtral is not.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import REPO, backfilled_prometheus, memwall
from tests.integration.test_observe_telemetry import DAYS, _workloads, openmetrics

pytestmark = pytest.mark.integration

_missing = [tool for tool in ("prometheus", "promtool") if shutil.which(tool) is None]
if _missing:
    pytest.skip(
        f"{' and '.join(_missing)} not installed (Debian package prometheus): the self-check "
        "cannot be tested against a real Prometheus",
        allow_module_level=True,
    )

WEEK = dt.timedelta(days=7)


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dt.datetime]]:
    root = tmp_path_factory.mktemp("selfcheck")
    end_s = float(int(dt.datetime.now(dt.UTC).timestamp()) // 3600 * 3600)
    with backfilled_prometheus(root, openmetrics(end_s)) as url:
        yield url, dt.datetime.fromtimestamp(end_s, dt.UTC)


def _audit(url: str, workloads: Path, end: dt.datetime, history: str, run_id: str) -> None:
    """What a weekly audit does for the self-check: observe the last week, calibrate with it,
    predict each served workload, record."""
    from tasks.analysis.supply.backtest import load_backtest
    from tasks.analysis.supply.calibration import calibrate
    from tasks.history import record_predictions
    from tasks.observe import audit_predictions, observe
    from tasks.profiles import load_profiles

    profiles = load_profiles(workloads)
    seen, _ = observe({"": url}, profiles.workloads, profiles.catalog, days=7, end=end)
    calibrated = calibrate(
        profiles.catalog,
        fitted=load_backtest(profiles.catalog).fitted,
        production=seen.production_efficiencies(),
    )
    rows = audit_predictions(seen.rows, profiles.workloads, profiles.catalog, calibrated)
    record_predictions(history, run_id, rows, end)


def test_two_weekly_audits_check_memwall_on_its_own_fleet(
    prometheus: tuple[str, dt.datetime], tmp_path: Path
) -> None:
    from reports.build import write_pdf
    from reports.content import AuditReport
    from reports.selfcheck import selfcheck_section
    from tasks.analysis.supply.selfcheck import accuracy
    from tasks.history import read_predictions
    from tests.pdf import pdf_text

    assert DAYS >= 14  # two whole weeks
    url, end = prometheus
    workloads = _workloads(tmp_path)
    history = str(tmp_path / "history")
    _audit(url, workloads, end - WEEK, history, "week-1")
    _audit(url, workloads, end, history, "week-2")

    checked = accuracy(read_predictions(history))
    errors = {
        (r["workload_id"], r["accelerator_id"]): float(r["error"])
        for r in checked.checks.to_dict("records")
    }
    for key, error in sorted(errors.items()):
        print(f"\n{key[0]} on {key[1]}: memwall's step error {100 * error:+.1f} %")
    for r in checked.checks.to_dict("records"):
        print(
            f"{r['workload_id']} on {r['accelerator_id']}: P10-P90 {1e3 * r['step_p10_s']:.2f}-"
            f"{1e3 * r['step_p90_s']:.2f} ms, measured {1e3 * r['measured_step_s']:.2f} ms"
        )
    assert set(checked.checks["checked_by"]) == {"week-2"}
    assert len(errors) == 4
    assert abs(errors[("agent-8b-decode", "nvidia-h100-sxm")] - (0.55 / 0.40 - 1)) <= 0.04
    assert abs(errors[("agent-8b-decode", "nvidia-h200-sxm")] - (0.35 / 0.45 - 1)) <= 0.04
    assert abs(errors[("mixtral-decode", "nvidia-h200-sxm")]) <= 0.05
    assert "agent-8b-decode" in checked.flagged
    assert "mixtral-decode" not in checked.flagged

    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)}
    done = memwall(["history", "--history", history, "--accuracy", "--json"], env, tmp_path)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["overall_mean_abs_error"] == pytest.approx(checked.overall_mean_abs_error)
    assert "agent-8b-decode" in out["flagged"]

    # The PDF's self-check section, as the audit appends it, read back.
    from tasks.analysis.findings import gather
    from tasks.analysis.projection.projector import project
    from tasks.analysis.ranking.ranking import rank
    from tasks.analysis.supply.calibration import calibrate
    from tasks.profiles import load_profiles

    profiles = load_profiles(workloads)
    calibrated = calibrate(profiles.catalog)
    projection = project(profiles.workloads, profiles.roadmap, calibrated, dt.date(2026, 11, 1), 18)
    report = AuditReport(
        run_id="week-2",
        generated_at=end,
        host="test-host",
        findings=gather(
            projection, rank(projection), calibrated, profiles.catalog, profiles.roadmap
        ),
        calibration_defaults={"bandwidth": 0.85, "flops": 0.70},
        sources={"Workloads": str(workloads)},
    )
    pdf = write_pdf(report, tmp_path / "audit.pdf", back=selfcheck_section(checked))
    text = " ".join(pdf_text(pdf).split())
    assert "Self-check: memwall's error on this fleet" in text
    assert "past its P10-P90 band: " in text and "agent-8b-decode" in text
    assert "agent-8b-decode on nvidia-h100-sxm: run week-1 predicted" in text


@pytest.mark.slow
def test_each_audit_records_its_predictions_and_the_next_one_checks_them(
    prometheus: tuple[str, dt.datetime], prefect_api_url: str, tmp_path: Path
) -> None:
    """The audit flow end to end, twice on one history: the first records a prediction per
    served workload and model (4) and says nothing was measured since; the second checks
    those 4 against its own window, in its PDF and in the history."""
    from flows.audit import audit
    from tasks.history import read_predictions
    from tests.pdf import pdf_text

    url, _ = prometheus
    workloads = str(_workloads(tmp_path))
    history = str(tmp_path / "history")

    def one_audit() -> str:
        outcome = audit(
            workloads=workloads,
            out_dir=str(tmp_path / "out"),
            quick=True,
            today=dt.date(2026, 11, 1),
            prometheus=url,
            history=history,
        )
        return " ".join(pdf_text(outcome.pdf_path).split())

    first = one_audit()
    assert "Self-check: memwall's error on this fleet" in first
    assert "1 run(s) recorded predictions, none measured since" in first
    recorded = read_predictions(history)
    assert len(recorded) == 4 and recorded["predicted_step_s"].gt(0).all()
    assert recorded["efficiency_source"].str.contains("measured in production").all()

    second = one_audit()
    assert "mean absolute over 4 check(s) of the last 2 run(s)" in second
    assert read_predictions(history)["run_id"].nunique() == 2

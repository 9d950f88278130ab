"""The PDF's self-check section, as the audit appends it after the drift, read back."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from hardware_profiles.catalog import builtin_catalog
from hardware_profiles.examples import example_roadmap
from reports.build import write_pdf
from reports.content import AuditReport
from reports.selfcheck import selfcheck_section
from tasks.analysis.findings import gather
from tasks.analysis.projection.projector import project
from tasks.analysis.ranking.ranking import rank
from tasks.analysis.supply.calibration import calibrate
from tasks.analysis.supply.selfcheck import accuracy
from tasks.analysis.workload.examples import example_workloads
from tests.analysis.supply.test_selfcheck import frame, two_audits
from tests.pdf import pdf_text


def _report() -> AuditReport:
    catalog, roadmap = builtin_catalog(), example_roadmap()
    calibrated = calibrate(catalog)
    projection = project(example_workloads(), roadmap, calibrated, dt.date(2026, 11, 1), 18)
    return AuditReport(
        run_id="r2",
        generated_at=dt.datetime(2026, 11, 9, 6, 0, tzinfo=dt.UTC),
        host="test-host",
        findings=gather(projection, rank(projection), calibrated, catalog, roadmap),
        calibration_defaults={"bandwidth": 0.85, "flops": 0.70},
        sources={"Workloads": "examples"},
    )


def test_the_pdf_states_memwalls_error_and_the_workload_past_its_band(tmp_path: Path) -> None:
    """The two audits of tests.analysis.supply.test_selfcheck: chat predicted at 20 ms
    (P10-P90 17.59-22.73 ms), measured at 25 ms, +25 %; code -5 %; 15 % overall."""
    report = _report()
    pdf = write_pdf(report, tmp_path / "audit.pdf", back=selfcheck_section(accuracy(two_audits())))
    text = " ".join(pdf_text(pdf).split())
    assert "Self-check: memwall's error on this fleet" in text
    assert "15.0 % mean absolute over 2 check(s) of the last 2 run(s)" in text
    assert (
        "chat on h100-sxm: run r1 predicted 20.00 ms (P10-P90 17.59-22.73 ms, bandwidth "
        "efficiency measured in production); run r2 measured 25.00 ms"
    ) in text
    assert "+25.0 %" in text and "past its band" in text
    assert "code on h100-sxm: run r1" not in text  # within its band: in the table only

    nothing = write_pdf(report, tmp_path / "none.pdf", back=selfcheck_section(accuracy(frame([]))))
    assert "no predictions recorded yet: nothing to compare" in pdf_text(nothing)

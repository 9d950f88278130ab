"""The PDF's training page and the training job in the ranking: a training workload with a
layout gets its layout, memory by term, step time by part, MFU, first wall with its month and
band, and mitigations with the months each buys and its stated risk and cost; the same wall
and month stand in the ranking table and the walls over the horizon. An audit without one gets
no page.

The job: the built-in example's Llama 3.1 8B continued pre-training on the training pool's 512
H100s at dp=64,tp=8, 4M tokens (1,024 sequences of 4,096) per step, one step every s seconds.
Its demand is set to D0 = 1/(1.5·s) steps/s doubling yearly: H(t) = 1.5/2^(t/12), so
H(7) = 1.5/1.4983 = 1.0011 and H(8) = 1.5/1.5874 = 0.945: its wall month is month 8, 2027-07
from a 2026-11 start (the pool holds its 512 H100s from then on).
"""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

from hardware_profiles.catalog import builtin_catalog
from hardware_profiles.examples import example_roadmap
from hardware_profiles.scale_out import read_scale_out
from reports.build import write_pdf
from reports.content import AuditReport
from tasks.analysis.findings import gather
from tasks.analysis.projection.projector import project
from tasks.analysis.ranking.ranking import rank
from tasks.analysis.supply.calibration import calibrate
from tasks.analysis.training.audit import TrainingFindings, training_findings
from tasks.analysis.training.backtest import builtin_fit
from tasks.analysis.workload.examples import example_workloads
from tests.pdf import pdf_text
from tests.reports.test_report import _report as _report_without_catalog

TITLE = "Training: layout, memory, step time and walls"
START = dt.date(2026, 11, 1)
JOB = "pretrain-8b"


def _with_layout() -> pd.DataFrame:
    workloads = example_workloads()
    row = workloads["workload_id"] == JOB
    given: dict[str, object] = {
        "layout": "dp=64,tp=8",
        "global_batch_tokens": 4 * 2**20,
        "micro_batch": 1,
        "recompute": "selective",
        "zero_stage": 1,
        "optimizer": "adam",
    }
    for column, value in given.items():
        workloads[column] = pd.Series([value if r else None for r in row], dtype=object)
    catalog = builtin_catalog()
    found = training_findings(
        workloads, catalog, {"training": ("nvidia-h100-sxm", 512)}, read_scale_out(),
        builtin_fit(catalog, read_scale_out()),
    )  # fmt: skip
    step = float(found.summary["step_time_s"].iloc[0])
    workloads.loc[row, "demand_units_per_s"] = 1 / (1.5 * step)
    workloads.loc[row, "demand_growth_per_year"] = 1.0
    return workloads


def _report(workloads: pd.DataFrame) -> AuditReport:
    catalog = builtin_catalog()
    roadmap = example_roadmap()
    calibrated = calibrate(catalog)
    projection = project(workloads, roadmap, calibrated, START, 18)
    ranked = rank(projection, catalog=catalog)
    return AuditReport(
        run_id="run-1",
        generated_at=dt.datetime(2026, 11, 23, 12, 0, tzinfo=dt.UTC),
        host="test-host",
        findings=gather(projection, ranked, calibrated, catalog, roadmap),
        calibration_defaults={"bandwidth": 0.85, "flops": 0.70},
        sources={"Workloads": "examples"},
    )


def _pdftotext(path: Path) -> str:
    return subprocess.run(
        ["pdftotext", "-layout", str(path), "-"], check=True, capture_output=True, text=True
    ).stdout


@pytest.mark.skipif(shutil.which("pdftotext") is None, reason="needs poppler's pdftotext")
def test_the_job_has_its_page_its_ranking_row_and_its_timeline_row(tmp_path: Path) -> None:
    report = _report(_with_layout())
    training = report.findings.training
    assert training is not None and training.skipped == []
    (summary,) = training.summary.to_dict("records")
    assert (summary["workload_id"], summary["accelerator_id"]) == (JOB, "nvidia-h100-sxm")
    assert (summary["devices"], summary["wall_index"]) == (512, 8)
    ranking = report.findings.ranking.set_index("workload_id")
    assert ranking.loc[JOB, "wall_month"] == dt.date(2027, 7, 1)
    text = _pdftotext(write_pdf(report, tmp_path / "audit.pdf"))
    flat = " ".join(text.split())
    # The training page: layout, memory, time by part, MFU, the wall with its month and band.
    page = flat[flat.index(TITLE) :]
    assert "layout dp=64,tp=8" in page and "Memory per device" in page
    assert "Time by part: matmul" in page and "MFU" in page
    assert "First wall: compute 2027-07 (likely" in page
    # Each mitigation: months bought, accuracy risk and cost.
    fp8 = page[page.index("fp8 matmuls") :]
    assert "convergence risk" in fp8 and "parity runs" in fp8
    assert "2x scale-out" in page and "NICs and switches" in page
    # The ranking table's row and the walls over the horizon name the same wall and month.
    ranked = next(line for line in text.splitlines() if "Continued" in line and "%" in line)
    assert "training" in ranked and "compute" in ranked
    assert "2027-07" in text[text.index("Continued") :]
    timeline = flat[flat.index("Walls over the horizon") :]
    assert "net network" in timeline and "Continued pre-training" in timeline
    walls = flat[flat.index("Which workloads hit which wall") :]
    assert "Compute wall (compute-bound, demand not met)" in walls
    assert "Continued pre-training (Llama 3.1 8B, 128 x 4k tokens per step) from 2027-07" in walls


def test_no_training_page_without_a_layout(tmp_path: Path) -> None:
    report = _report_without_catalog(example_workloads())
    assert report.findings.training is None
    assert TITLE not in pdf_text(write_pdf(report, tmp_path / "audit.pdf"))


def test_jobs_not_laid_out_get_the_page_with_the_reason(tmp_path: Path) -> None:
    """Where no training workload could be laid out (its pool too small in its first month,
    a model memwall has no preset for), the page says why, with no job and no mitigation."""
    report = _report_without_catalog(example_workloads())
    notes = TrainingFindings(pd.DataFrame(), pd.DataFrame(), ["pretrain-8b: why not"])
    report = replace(report, findings=replace(report.findings, training=notes))
    text = pdf_text(write_pdf(report, tmp_path / "audit.pdf"))
    assert TITLE in text and "Not laid out: pretrain-8b: why not" in text

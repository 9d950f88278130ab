"""The PDF's training page: a training workload with a layout gets its layout, memory by term,
step time by part, MFU, first wall and mitigations; an audit without one gets no page."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from reports.build import write_pdf
from tasks.analysis.workload.examples import example_workloads
from tests.pdf import pdf_text
from tests.reports.test_report import _report

TITLE = "Training: layout, memory, step time and walls"


def _with_layout() -> pd.DataFrame:
    workloads = example_workloads()
    row = workloads["workload_id"] == "pretrain-8b"
    # The training pool holds 512 H100s: dp=64 x tp=8, 4M tokens = 1,024 sequences of 4,096.
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
    return workloads


def test_a_training_workload_with_a_layout_gets_its_page(tmp_path: Path) -> None:
    report = _report(_with_layout())
    training = report.findings.training
    assert training is not None and training.skipped == []
    (summary,) = training.summary.to_dict("records")
    assert (summary["workload_id"], summary["accelerator_id"]) == ("pretrain-8b", "nvidia-h100-sxm")
    assert summary["devices"] == 512
    text = " ".join(pdf_text(write_pdf(report, tmp_path / "audit.pdf")).split())
    assert TITLE in text
    assert "layout dp=64,tp=8" in text and "Memory per device" in text and "First wall:" in text
    assert "fp8 matmuls" in text and "convergence risk" in text


def test_no_training_page_without_a_layout(tmp_path: Path) -> None:
    report = _report(example_workloads())
    assert report.findings.training is None
    assert TITLE not in pdf_text(write_pdf(report, tmp_path / "audit.pdf"))

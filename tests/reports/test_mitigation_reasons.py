"""The PDF's mitigations say which precision a workload could move to on its hardware, and
why not where it cannot."""

from __future__ import annotations

from pathlib import Path

from reports.build import write_pdf
from tasks.analysis.workload.examples import example_workloads
from tests.pdf import pdf_text
from tests.reports.test_report import _report


def test_each_precision_mitigation_is_shown_with_its_reason(tmp_path: Path) -> None:
    report = _report(example_workloads())
    text = pdf_text(write_pdf(report, tmp_path / "audit.pdf"))
    for label in ("int8 weights (weight-only)", "int4 weights (weight-only)", "fp8 KV cache"):
        assert label in text
    assert "fp8 compute" in text and "fp4 compute (NVFP4, fp8 KV)" in text
    # The edge pool still holds A100s, which have no fp8 units.
    assert "n/a: nvidia-a100-80gb-sxm: no fp8 units" in text
    assert "training: an inference change" in text

"""The precision page and the status sentence of the audit PDF, read back with pdftotext."""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from hardware_profiles.catalog import builtin_catalog
from hardware_profiles.examples import example_roadmap
from hardware_profiles.provenance import models_in_window
from reports.build import write_pdf
from reports.precision import ridge_table
from tasks.analysis.workload.examples import example_workloads
from tests.reports.test_report import _report

START = dt.date(2026, 11, 1)
needs_pdftotext = pytest.mark.skipif(
    shutil.which("pdftotext") is None, reason="needs poppler's pdftotext"
)


def pdftotext(path: Path) -> str:
    """The PDF's text as poppler's pdftotext reads it, whitespace folded."""
    out = subprocess.run(["pdftotext", str(path), "-"], capture_output=True, text=True, check=True)
    return " ".join(out.stdout.split())


def test_ridge_per_precision_by_hand() -> None:
    models = models_in_window(example_roadmap(), builtin_catalog(), START, 18)
    table = ridge_table(models)
    rows: dict[str, dict[str, Any]] = table.set_index("accelerator_id").to_dict("index")  # type: ignore[assignment]
    # B300: 2,250 TFLOP/s bf16, 4,500 fp8, 13,125 fp4 dense over 8 TB/s.
    b300 = rows["nvidia-b300"]
    assert (b300["ridge_bf16"], b300["ridge_fp8"]) == pytest.approx((281.25, 562.5))
    assert b300["ridge_fp4"] == pytest.approx(13_125 / 8)
    # Rubin: bf16 4,000 / 22 = 182 falls below H100's 989.5 / 3.35 = 295 while fp4 rises.
    rubin, h100 = rows["nvidia-rubin"], rows["nvidia-h100-sxm"]
    assert rubin["ridge_bf16"] == pytest.approx(4000 / 22)
    assert h100["ridge_bf16"] == pytest.approx(989.5 / 3.35)
    assert rubin["ridge_bf16"] < h100["ridge_bf16"] and rubin["ridge_fp8"] > h100["ridge_fp8"]
    # No fp8/fp4 units on the A100: no ridge there, not a zero.
    assert pd.isna(rows["nvidia-a100-80gb-sxm"]["ridge_fp8"])
    assert rubin["when"] == dt.date(2026, 7, 1)  # its release date
    assert list(table["when"]) == sorted(table["when"])


@needs_pdftotext
def test_the_audit_pdf_has_the_ridge_table_and_names_preliminary_hardware(tmp_path: Path) -> None:
    text = pdftotext(write_pdf(_report(example_workloads()), tmp_path / "a.pdf"))
    assert "Ridge points by precision" in text
    header = "model status released in fleet bandwidth bf16 ridge fp8 ridge fp4 ridge"
    assert header in text
    table = text[text.index(header) :]
    assert "nvidia-b300 shipping 2026-01 2027-02 8 TB/s 281 562 1,641" in table
    assert "nvidia-rubin preliminary 2026-07 2027-09 22 TB/s 182 758 1,578" in table
    assert "nvidia-a100-80gb-sxm shipping 2020-01 2026-11 2.04 TB/s 153 – –" in table
    assert "ridge point (FLOP/byte, dense spec)" in table  # the chart
    assert (
        "This projection uses hardware that is not shipping: Rubin (VR200, per GPU in Vera Rubin "
        "NVL72) (nvidia-rubin: preliminary, from 2027-09 in inference)."
    ) in text


@needs_pdftotext
def test_no_status_sentence_when_the_fleet_is_all_shipping(tmp_path: Path) -> None:
    report = _report(example_workloads())
    hardware = report.findings.hardware
    shipping = hardware[hardware["status"] == "shipping"]
    findings = report.findings.__class__(**{**report.findings.__dict__, "hardware": shipping})
    path = write_pdf(
        report.__class__(**{**report.__dict__, "findings": findings}), tmp_path / "b.pdf"
    )
    text = pdftotext(path)
    assert "not shipping" not in text
    assert "nvidia-rubin" not in text.split("Ridge points by precision")[1].split("Ranking")[0]


@needs_pdftotext
def test_the_audit_pdf_says_which_precision_each_workload_needs_per_model(tmp_path: Path) -> None:
    report = _report(example_workloads())
    needs = report.findings.precision_needs
    assert not needs.empty  # the example's coding agent starves on its edge pool
    text = pdftotext(write_pdf(report, tmp_path / "n.pdf"))
    assert "Precision each workload needs, by model" in text
    # Each computed row is in the table: when the pool holds the model, as is, what it needs.
    for r in needs.to_dict("records"):
        assert r["accelerator_id"] in text
        as_is = "holds" if r["starve_month"] is None else f"starves {r['starve_month']:%Y-%m}"
        assert as_is in text
    # A hand-built table: a preliminary model arriving later, a change that leaves a compute
    # shortfall (844 MB = 0.84375e9 bytes), and a model without the units.
    first = report.findings.ranking["workload_id"].iloc[0]
    hand = pd.DataFrame(
        [
            {
                "workload_id": first,
                "accelerator_id": "nvidia-rubin",
                "first_month": dt.date(2027, 9, 1),
                "starve_month": dt.date(2028, 1, 1),
                "need": "compute:fp4",
                "label": "fp4 compute (NVFP4, fp8 KV)",
                "bytes_per_unit": 0.84375e9,
                "compute_short": True,
                "unavailable": "",
            },
            {
                "workload_id": first,
                "accelerator_id": "nvidia-a100-80gb-sxm",
                "first_month": START,
                "starve_month": START,
                "need": "none",
                "label": "none suffices",
                "bytes_per_unit": float("nan"),
                "compute_short": False,
                "unavailable": "no fp8 units",
            },
        ]
    )
    findings = report.findings.__class__(**{**report.findings.__dict__, "precision_needs": hand})
    path = write_pdf(
        report.__class__(**{**report.__dict__, "findings": findings}), tmp_path / "h.pdf"
    )
    text = pdftotext(path)
    assert "nvidia-rubin (preliminary)" in text
    assert "2027-09 starves 2028-01 fp4 compute (NVFP4, fp8 KV), then compute-short 844 MB" in text
    assert "nvidia-a100-80gb-sxm starves 2026-11 none suffices (no fp8 units) –" in text

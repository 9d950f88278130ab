"""The audit PDF read back as a reader would: text, fonts, metadata, page 1 rendered."""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from pypdf import PdfReader

from hardware_profiles.catalog import builtin_catalog
from hardware_profiles.examples import example_roadmap
from reports.build import write_pdf
from reports.content import AuditReport
from reports.story import headline
from tasks.analysis.findings import gather
from tasks.analysis.projection.projector import project
from tasks.analysis.ranking.ranking import rank
from tasks.analysis.supply.calibration import calibrate
from tasks.analysis.workload.examples import example_workloads
from tests.pdf import pdf_text

START = dt.date(2026, 11, 1)
NASTY = '<b>x</b> & "y"'


def _report(workloads: pd.DataFrame) -> AuditReport:
    catalog = builtin_catalog()
    roadmap = example_roadmap()
    calibrated = calibrate(catalog)
    projection = project(workloads, roadmap, calibrated, START, 18)
    ranked = rank(projection)
    return AuditReport(
        run_id="run-1",
        generated_at=dt.datetime(2026, 11, 23, 12, 0, tzinfo=dt.UTC),
        host="test-host",
        findings=gather(projection, ranked, calibrated, catalog, roadmap),
        calibration_defaults={"bandwidth": 0.85, "flops": 0.70},
        sources={"Workloads": "examples"},
    )


def _many(n: int) -> pd.DataFrame:
    """n copies of the examples, spread in demand so they rank apart."""
    base = example_workloads()
    frames = []
    for k in range(n // len(base) + 1):
        copy = base.copy()
        copy["workload_id"] = copy["workload_id"] + f"-{k}"
        copy["name"] = copy["name"] + f" #{k}"
        copy["demand_units_per_s"] = copy["demand_units_per_s"] * (1 + k / n)
        frames.append(copy)
    return pd.concat(frames, ignore_index=True).head(n)


def test_pdf_has_the_headline_every_top_workload_and_escaped_names(tmp_path: Path) -> None:
    workloads = example_workloads()
    workloads.loc[0, "name"] = NASTY
    report = _report(workloads)
    path = write_pdf(report, tmp_path / "audit.pdf")
    text = pdf_text(path)
    assert " ".join(headline(report.findings).split()) in text
    assert text.count(NASTY) >= 2  # the summary table and its own page, printed literally
    for name in report.findings.ranking["name"]:
        assert " ".join(str(name).split()) in text
    for section in ("Executive summary", "Measured vs spec", "Roofline", "Headroom", "Ranking"):
        assert section in text
    assert "Assumptions and method" in text and "page 3" in text
    reader = PdfReader(str(path))
    assert reader.metadata is not None
    assert reader.metadata.title == "memwall audit of test-host"
    assert reader.metadata.author == "memwall"


def test_every_font_is_embedded(tmp_path: Path) -> None:
    path = write_pdf(_report(example_workloads()), tmp_path / "audit.pdf")
    reader = PdfReader(str(path))
    for page in reader.pages:
        resources: Any = page["/Resources"]
        fonts = resources.get_object().get("/Font", {})
        for ref in fonts.values():
            font = ref.get_object()
            descendant = font.get("/DescendantFonts")
            descriptor = (descendant[0].get_object() if descendant else font).get("/FontDescriptor")
            assert descriptor is not None, f"{font['/BaseFont']} is not embedded"
            assert {"/FontFile", "/FontFile2", "/FontFile3"} & set(descriptor.get_object())


@pytest.mark.skipif(shutil.which("pdftoppm") is None, reason="needs poppler's pdftoppm")
def test_page_one_renders_and_is_not_blank(tmp_path: Path) -> None:
    path = write_pdf(_report(example_workloads()), tmp_path / "audit.pdf")
    subprocess.run(
        ["pdftoppm", "-r", "30", "-gray", "-f", "1", "-l", "1", str(path), str(tmp_path / "p")],
        check=True,
    )
    (image,) = tmp_path.glob("p*.pgm")
    pixels = image.read_bytes().split(b"\n", 3)[3]  # P5, size, max value, then the raster
    dark = sum(1 for value in pixels if value < 128)
    assert dark > 0.005 * len(pixels)


def test_thousands_of_workloads_top_n_in_the_summary_the_rest_in_the_appendix(
    tmp_path: Path,
) -> None:
    report = _report(_many(300))
    path = write_pdf(report, tmp_path / "audit.pdf")
    text = pdf_text(path)
    assert "Appendix: workloads 11 to 300" in text
    last = report.findings.ranking.iloc[-1]
    assert f"300 {str(last['name'])[:12]}" in text
    assert len(PdfReader(str(path)).pages) > 10

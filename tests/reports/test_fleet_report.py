"""The fleet section of the PDF, rendered on its own and read back with a PDF library."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
from pypdf import PdfReader
from reportlab.lib.pagesizes import A4
from reportlab.platypus import SimpleDocTemplate

from reports.fleet import ANSWERED, FAILED, SKIPPED, HostResult, fleet_headline, fleet_section
from tasks.history import trend
from tests.tasks.test_history import T0, measurements

HOSTS = [
    HostResult("gpu-01", ANSWERED, "", 8),
    HostResult("gpu-02", FAILED, "Failed: RuntimeError: Unable to initialize backend 'cuda'"),
    HostResult("gpu-03", SKIPPED, "no worker has ever polled its queue"),
]


def render(tmp_path: Path, trend_rows: pd.DataFrame, run_id: str) -> list[str]:
    path = tmp_path / "fleet.pdf"
    SimpleDocTemplate(str(path), pagesize=A4).build(
        fleet_section("memwall fleet audit of gpus", HOSTS, trend_rows, run_id)
    )
    return [" ".join((p.extract_text() or "").split()) for p in PdfReader(str(path)).pages]


def test_headline_names_the_hosts_left_out() -> None:
    assert fleet_headline(HOSTS[:1]) == "All 1 hosts answered."
    assert fleet_headline(HOSTS).startswith(
        "1 of 3 hosts answered; this report leaves out gpu-02 (failed), gpu-03 (skipped)"
    )


def test_first_page_marks_failed_skipped_and_degraded(tmp_path: Path) -> None:
    history = pd.concat(
        [
            measurements(f"r{i}", T0 + dt.timedelta(days=7 * i), v, host="gpu-01")
            for i, v in enumerate([3.0e12, 3.0e12, 3.1e12, 2.4e12])
        ],
        ignore_index=True,
    )
    pages = render(tmp_path, trend(history), "r3")
    first = pages[0]
    assert "gpu-02 failed" in first and "Unable to initialize backend" in first
    assert "gpu-03 skipped" in first
    assert "Degraded: gpu-01 NVIDIA H100 80GB HBM3 #0 triad float32" in first
    assert "3 TB/s, 3 TB/s, 3.1 TB/s, 2.4 TB/s" in first
    assert "degraded (-20.0 %)" in first


def test_a_steady_fleet_says_no_device_drifted(tmp_path: Path) -> None:
    history = measurements("r0", T0, 3.0e12, host="gpu-01")
    first = render(tmp_path, trend(history), "r0")[0]
    assert "No device measured more than 10 % below" in first
    assert "too few runs" in first


def test_first_page_gives_the_fleet_health_and_names_the_straggler(tmp_path: Path) -> None:
    fleet = pd.concat(
        [
            measurements("r0", T0, triad, host=host)
            for host, triad in (("gpu-01", 3.0e12), ("gpu-02", 3.1e12), ("gpu-03", 2.5e12))
        ],
        ignore_index=True,
    )
    first = render(tmp_path, trend(fleet), "r0")[0]
    assert "Fleet health" in first
    assert "2 of 3 devices within 5 % of their model's median; 1 straggler(s): gpu-03" in first
    assert "straggler (-16.7 % vs its model)" in first

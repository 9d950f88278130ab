"""The PDF's production page and the efficiency order it feeds, read back with pdftotext."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import pandas as pd

from hardware_profiles.catalog import builtin_catalog
from hardware_profiles.examples import example_roadmap
from reports.build import write_pdf
from reports.content import AuditReport
from tasks.analysis.findings import gather
from tasks.analysis.projection.projector import project
from tasks.analysis.ranking.ranking import rank
from tasks.analysis.supply.calibrated import efficiencies_for, overhead_for
from tasks.analysis.supply.calibration import calibrate
from tasks.analysis.supply.production import ROW_COLUMNS, WEAKER, Observation
from tasks.analysis.workload.examples import example_workloads
from tests.pdf import pdf_text

START = dt.date(2026, 11, 1)
SOURCE = "measured in production, 7 days to 2026-11-30 00:00 UTC, 2 GPUs"
VERDICT = (
    "bandwidth-bound: 38 % of spec bandwidth, 45 % of what the probes reach (STREAM triad "
    "measured); the batch is 6 where 24 would fit (KV cache 25 % full)"
)
SHARED = "GPU GPU-a3 on host-a is shared by 2 pods (ns/p1, ns/p2): time-sliced or MPS"


def _observation() -> Observation:
    row = dict.fromkeys(ROW_COLUMNS)
    row.update(
        workload_id="agent-8b-decode",
        model_name="meta-llama/Llama-3.1-8B-Instruct",
        accelerator_id="nvidia-h100-sxm",
        gpus=2,
        batch=6.0,
        context=6400.0,
        measured_step_s=0.012,
        predicted_step_s=0.010,
        error=0.2,
        bandwidth_utilization=0.41,
        production_bandwidth_efficiency=0.38,
        production_bandwidth_spread=0.05,
        achieved_bandwidth_bytes_per_s=0.38 * 3.35e12,
        probe_ceiling_fraction=0.45,
        flops_utilization=0.02,
        kv_cache_usage=0.25,
        source=SOURCE,
        window="7 days to 2026-11-30 00:00 UTC",
        verdict=VERDICT,
        notes="",
        ttft_s=0.35,
        ttft_spread=0.12,
        bandwidth_signal=WEAKER,
    )
    return Observation(pd.DataFrame([row], columns=list(ROW_COLUMNS)), (SHARED,))


def test_production_comes_first_in_the_efficiency_order() -> None:
    seen = _observation()
    production = seen.production_efficiencies()
    calibrated = calibrate(builtin_catalog(), production=production)
    bandwidth, _ = efficiencies_for(calibrated, "nvidia-h100-sxm", "decode", "bf16")
    assert (bandwidth.value, bandwidth.source, bandwidth.spread) == (0.38, SOURCE, 0.05)
    assert overhead_for(calibrated, "nvidia-h100-sxm", "decode").seconds == 0.0
    # Other models and phases keep their own sources.
    other, _ = efficiencies_for(calibrated, "nvidia-h200-sxm", "decode", "bf16")
    assert "production" not in other.source


def test_the_pdf_has_a_production_page(tmp_path: Path) -> None:
    catalog, roadmap, workloads = builtin_catalog(), example_roadmap(), example_workloads()
    seen = _observation()
    calibrated = calibrate(catalog, production=seen.production_efficiencies())
    projection = project(workloads, roadmap, calibrated, START, 18)
    report = AuditReport(
        run_id="run-1",
        generated_at=dt.datetime(2026, 11, 30, 12, 0, tzinfo=dt.UTC),
        host="test-host",
        findings=gather(projection, rank(projection), calibrated, catalog, roadmap),
        calibration_defaults={"bandwidth": 0.85, "flops": 0.70},
        sources={"Workloads": "examples"},
        production=seen,
    )
    text = " ".join(pdf_text(write_pdf(report, tmp_path / "audit.pdf")).split())
    assert "Production efficiency: measured where it is served" in text
    assert f"agent-8b-decode on nvidia-h100-sxm: {VERDICT}" in text
    assert SHARED in text
    assert SOURCE in text  # the method page names the efficiency's source
    # The time to first token, ± its spread, and the busy-time reading starred as weaker.
    assert f"{VERDICT}; time to first token 350 ms ±12 %" in text and "41 %*" in text
    assert f"* measured {WEAKER}." in text
    without = dataclasses.replace(report, production=None)
    plain = pdf_text(write_pdf(without, tmp_path / "plain.pdf"))
    assert "Production efficiency" not in plain

"""The ``whatif`` flow (what the ad-hoc deployment runs), under the session's test harness."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from hardware_profiles.examples import example_scenarios
from hardware_profiles.parquet import write_table
from hardware_profiles.schema import ROADMAP
from tests.pdf import pdf_text


@pytest.mark.slow
def test_whatif_flow_compares_every_scenario_in_a_pdf(prefect_api_url: str, tmp_path: Path) -> None:
    from flows.whatif import whatif

    roadmap = write_table(example_scenarios(), tmp_path / "scenarios.parquet", ROADMAP)
    outcome = whatif(roadmap=str(roadmap), start=dt.date(2026, 11, 1), out_dir=str(tmp_path))
    assert [row["scenario"] for row in outcome.comparison] == ["baseline", "b200-q3", "h200-q2"]
    text = pdf_text(outcome.pdf_path)
    assert " ".join(outcome.headline.split()) in text
    for name in ("b200-q3", "h200-q2"):
        assert name in text

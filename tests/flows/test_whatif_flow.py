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
    rows = {row["scenario"]: row for row in outcome.comparison}
    assert list(rows) == ["baseline", "b300-edge", "rubin-inference"]
    # The demo's trade: 32 B300 for the edge pool rescue the coding agent; a second Rubin rack
    # for the inference pool costs more and rescues nothing.
    assert rows["baseline"]["starving"] == 1
    assert rows["b300-edge"]["rescued"] == ["agent-8b-decode"]
    assert int(str(rows["b300-edge"]["months_gained"])) > 0
    assert rows["b300-edge"]["extra_cost_usd"] == 32 * 50_000.0
    assert (
        rows["rubin-inference"]["rescued"] == [] and rows["rubin-inference"]["months_gained"] == 0
    )
    assert rows["rubin-inference"]["extra_cost_usd"] == 72 * 65_000.0
    text = pdf_text(outcome.pdf_path)
    assert " ".join(outcome.headline.split()) in text
    for name in ("b300-edge", "rubin-inference"):
        assert name in text
    # Every plan buys the preliminary Rubin rack (the base plan's), and the report says so.
    assert "Scenarios that buy hardware that is not shipping:" in text
    assert (
        "baseline, b300-edge, rubin-inference: Rubin (VR200, per GPU in Vera Rubin NVL72) "
        "(nvidia-rubin: preliminary, from 2027-09 in inference)."
    ) in text

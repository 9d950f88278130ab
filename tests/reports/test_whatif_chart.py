"""The what-if PDF's decision chart: months gained against extra cost, and workloads starving
per month, for any set of scenarios (one that rescues, one that does not, one of unknown cost)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest
from pypdf import PdfReader

from hardware_profiles.examples import example_roadmap
from hardware_profiles.parquet import write_table
from hardware_profiles.schema import ROADMAP
from reports.whatif_charts import money, nice_ticks, starving_by_month

START = dt.date(2026, 11, 1)


def test_starving_by_month_counts_workloads_starved_on_or_before_each_month() -> None:
    months = [dt.date(2027, m, 1) for m in (1, 2, 3, 4)]
    ranking = pd.DataFrame({"starve_month": [dt.date(2027, 2, 1), None, dt.date(2027, 4, 1)]})
    assert starving_by_month(months, ranking) == [0, 1, 1, 2]


def test_ticks_are_round_and_cover_the_range() -> None:
    assert nice_ticks(0, 8_192_000, 4) == [0, 2_500_000, 5_000_000, 7_500_000, 10_000_000]
    assert nice_ticks(0, 1, 4, whole=True) == [0, 1]
    assert nice_ticks(-3, 17, 4, whole=True) == [-5, 0, 5, 10, 15, 20]
    assert money(5_760_000) == "$5.76M" and money(-250_000) == "-$250k" and money(0) == "$0"


def _roadmap(tmp_path: Path) -> Path:
    base = example_roadmap().assign(scenario=None)
    h200 = "nvidia-h200-sxm"
    extra = pd.DataFrame(
        [  # pool, date, model, count, unit cost, note, scenario
            ("edge", dt.date(2027, 1, 1), h200, 64, 32_000.0, "64 H200", "rescue"),
            ("inference", dt.date(2027, 1, 1), h200, 512, 32_000.0, "512 H200", "elsewhere"),
            ("inference", dt.date(2027, 9, 1), "nvidia-b200", 64, None, "no price", "mystery"),
        ],
        columns=[*ROADMAP.columns],
    )
    frame = pd.concat([base, extra], ignore_index=True)
    return write_table(frame, tmp_path / "scenarios.parquet", ROADMAP)


@pytest.mark.slow
def test_the_whatif_pdf_shows_the_trade_on_its_first_page(tmp_path: Path) -> None:
    from flows.whatif import compare_scenarios

    outcome = compare_scenarios(
        None, str(_roadmap(tmp_path)), None, None, START, 18, 0.85, 0.70, str(tmp_path)
    )
    rows = {r["scenario"]: r for r in outcome.comparison}
    assert int(str(rows["rescue"]["months_gained"])) > 0  # the purchase that rescues
    assert rows["elsewhere"]["months_gained"] == 0  # the one that does not
    assert rows["mystery"]["extra_cost_usd"] is None
    first_page = " ".join((PdfReader(str(outcome.pdf_path)).pages[0].extract_text() or "").split())
    for expected in (
        "The trade",
        "months gained (summed over workloads)",
        "extra cost against the baseline",
        "workloads starving (of 5)",
        "unknown",
        f"rescue: +{rows['rescue']['months_gained']} mo, $2.05M",
        "elsewhere: +0 mo, $16.4M",
        "mystery: ",
        "cost unknown",
        "baseline (baseline): +0 mo, $0",
    ):
        assert expected in first_page, expected

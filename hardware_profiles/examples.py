"""The built-in example roadmap and what-if scenarios, so a first audit needs no input at all.

The roadmap is a plausible purchase plan: three pools running H100s today, H200s and B200s
arriving through 2027, older parts retired, list-like unit costs. The example workloads live
beside the workload model (``tasks.analysis.models.examples``).
"""

from __future__ import annotations

import datetime as dt
from typing import Final

import pandas as pd

from hardware_profiles.parquet import validate_frame
from hardware_profiles.schema import ROADMAP

SOURCE = "built-in example roadmap (hardware_profiles/examples.py)"


def _d(text: str) -> dt.date:
    return dt.date.fromisoformat(text)


_ROADMAP_COLUMNS: Final = (
    "pool",
    "effective_date",
    "accelerator_id",
    "count_delta",
    "unit_cost_usd",
    "note",
)

# Three pools. Unit costs are list-like per-GPU prices (server share included); retirements
# carry no cost.
EXAMPLE_ROADMAP: Final = (
    ("inference", _d("2025-03-01"), "nvidia-h100-sxm", 256, 30_000.0, "installed base"),
    ("inference", _d("2027-02-01"), "nvidia-h200-sxm", 128, 32_000.0, "H200 expansion"),
    ("inference", _d("2027-08-01"), "nvidia-b200", 128, 45_000.0, "B200 expansion"),
    ("inference", _d("2027-10-01"), "nvidia-h100-sxm", -128, None, "retire oldest H100s"),
    ("training", _d("2024-10-01"), "nvidia-h100-sxm", 512, 28_000.0, "installed base"),
    ("training", _d("2027-05-01"), "nvidia-b200", 256, 45_000.0, "B200 training cluster"),
    ("training", _d("2027-11-01"), "nvidia-h100-sxm", -256, None, "retire after B200 burn-in"),
    ("edge", _d("2023-06-01"), "nvidia-a100-80gb-sxm", 64, 15_000.0, "installed base"),
    ("edge", _d("2025-09-01"), "nvidia-l40s", 32, 8_500.0, "L40S expansion"),
    ("edge", _d("2027-03-01"), "nvidia-h200-sxm", 32, 32_000.0, "H200 refresh"),
    ("edge", _d("2027-06-01"), "nvidia-a100-80gb-sxm", -64, None, "retire A100s"),
)

# What-if: the same base plan, plus one of two purchases for the inference pool. Rows without
# a scenario belong to every scenario (see hardware_profiles.roadmaps).
EXAMPLE_SCENARIOS: Final = (
    ("h200-q2", "inference", _d("2027-04-01"), "nvidia-h200-sxm", 256, 32_000.0, "256 H200, Q2"),
    ("b200-q3", "inference", _d("2027-07-01"), "nvidia-b200", 128, 45_000.0, "128 B200, Q3"),
)


def example_roadmap() -> pd.DataFrame:
    frame = pd.DataFrame(list(EXAMPLE_ROADMAP), columns=list(_ROADMAP_COLUMNS))
    return validate_frame(frame, ROADMAP, SOURCE)


def example_scenarios() -> pd.DataFrame:
    """The example roadmap as shared rows plus two what-if purchases, told apart by scenario."""
    extra = pd.DataFrame(
        [row[1:] for row in EXAMPLE_SCENARIOS], columns=list(_ROADMAP_COLUMNS)
    ).assign(scenario=[row[0] for row in EXAMPLE_SCENARIOS])
    base = pd.DataFrame(list(EXAMPLE_ROADMAP), columns=list(_ROADMAP_COLUMNS))
    return validate_frame(pd.concat([base, extra], ignore_index=True), ROADMAP, SOURCE)

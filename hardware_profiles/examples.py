"""The built-in example roadmap and what-if scenarios, so a first audit needs no input at all.

The roadmap is a plausible purchase plan: three pools running H100s, A100s and L40S today,
B300s, H200s and a Vera Rubin rack arriving through 2027, older parts retired, list-like unit
costs. The example workloads live
beside the workload model (``tasks.analysis.workload.examples``).
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

# Three pools. Unit costs are list-like per-GPU prices (server share included) invented for the
# example: NVIDIA and AMD list prices are not public. Retirements carry no cost. Inside the
# default 18-month horizon (from 2026-11) the plan buys Blackwell Ultra (B300, shipping) and one
# Vera Rubin NVL72 rack (72 GPUs; its figures are preliminary in the catalog).
EXAMPLE_ROADMAP: Final = (
    ("inference", _d("2025-03-01"), "nvidia-h100-sxm", 256, 30_000.0, "installed base"),
    ("inference", _d("2027-02-01"), "nvidia-b300", 128, 50_000.0, "B300 expansion"),
    ("inference", _d("2027-09-01"), "nvidia-rubin", 72, 65_000.0, "first Vera Rubin NVL72"),
    ("inference", _d("2027-10-01"), "nvidia-h100-sxm", -128, None, "retire oldest H100s"),
    ("training", _d("2024-10-01"), "nvidia-h100-sxm", 512, 28_000.0, "installed base"),
    ("training", _d("2027-05-01"), "nvidia-b300", 256, 50_000.0, "B300 training cluster"),
    ("training", _d("2027-11-01"), "nvidia-h100-sxm", -256, None, "retire after B300 burn-in"),
    ("edge", _d("2023-06-01"), "nvidia-a100-80gb-sxm", 64, 15_000.0, "installed base"),
    ("edge", _d("2025-09-01"), "nvidia-l40s", 32, 8_500.0, "L40S expansion"),
    ("edge", _d("2027-03-01"), "nvidia-h200-sxm", 32, 32_000.0, "H200 refresh"),
    ("edge", _d("2027-06-01"), "nvidia-a100-80gb-sxm", -64, None, "retire A100s"),
)

# What-if: the same base plan, plus one purchase each. Rows without a scenario belong to every
# scenario (see hardware_profiles.roadmaps). The demo's trade: B300s for the edge pool, where
# the coding agent starves, against a second Rubin rack for the inference pool, which does not
# starve: the bigger cheque buys no months.
EXAMPLE_SCENARIOS: Final = (
    ("b300-edge", "edge", _d("2027-04-01"), "nvidia-b300", 32, 50_000.0, "32 B300 for edge, Q2"),
    (
        "rubin-inference",
        "inference",
        _d("2027-09-01"),
        "nvidia-rubin",
        72,
        65_000.0,
        "second Vera Rubin NVL72 for inference, Q3",
    ),
)


def example_roadmap() -> pd.DataFrame:
    frame = pd.DataFrame(list(EXAMPLE_ROADMAP), columns=list(_ROADMAP_COLUMNS))
    return validate_frame(frame, ROADMAP, SOURCE)


def example_scenarios() -> pd.DataFrame:
    """The example roadmap as shared rows plus the what-if purchases, told apart by scenario."""
    extra = pd.DataFrame(
        [row[1:] for row in EXAMPLE_SCENARIOS], columns=list(_ROADMAP_COLUMNS)
    ).assign(scenario=[row[0] for row in EXAMPLE_SCENARIOS])
    base = pd.DataFrame(list(EXAMPLE_ROADMAP), columns=list(_ROADMAP_COLUMNS))
    return validate_frame(pd.concat([base, extra], ignore_index=True), ROADMAP, SOURCE)

"""Built-in example workloads and roadmaps, so a first audit needs no input at all.

The workloads' FLOPs, bytes and memory come from the workload model
(``tasks.analysis.workload_model``) applied to model presets, exactly as
``memwall workloads add --preset ...`` would compute them; only the demand, its growth, the
owners and pools are invented. The roadmap is a plausible purchase plan: three pools running
H100s today, H200s and B200s arriving through 2027, older parts retired, list-like unit costs.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Final

import pandas as pd

from hardware_profiles.parquet import validate_frame
from hardware_profiles.presets import preset
from hardware_profiles.schema import ROADMAP, WORKLOADS
from tasks.analysis.workload_model import estimate

SOURCE = "built-in examples (hardware_profiles/examples.py)"


@dataclass(frozen=True)
class ExampleWorkload:
    workload_id: str
    name: str
    owner: str
    pool: str
    preset: str
    phase: str
    batch: int
    context: int
    demand_units_per_s: float
    demand_growth_per_year: float
    weights: str = "bf16"
    kv: str = "bf16"


EXAMPLES: Final = (
    ExampleWorkload(
        "chat-70b-decode",
        "Chat assistant (Llama 3.1 70B decode, batch 32, 4k context)",
        "inference-team",
        "inference",
        "llama-3.1-70b",
        "decode",
        batch=32,
        context=4096,
        demand_units_per_s=50_000.0,
        demand_growth_per_year=1.0,
    ),
    ExampleWorkload(
        "agent-8b-decode",
        "Coding agent (Llama 3.1 8B decode, batch 1, 8k context)",
        "devtools",
        "edge",
        "llama-3.1-8b",
        "decode",
        batch=1,
        context=8192,
        demand_units_per_s=6_000.0,
        demand_growth_per_year=1.5,
    ),
    ExampleWorkload(
        "mixtral-decode",
        "Support bot (Mixtral 8x7B decode, batch 8, 4k context)",
        "support-ml",
        "inference",
        "mixtral-8x7b",
        "decode",
        batch=8,
        context=4096,
        demand_units_per_s=16_000.0,
        demand_growth_per_year=0.8,
    ),
    ExampleWorkload(
        "rag-8b-prefill",
        "RAG prompt ingestion (Llama 3.1 8B prefill, 4 x 4k prompts)",
        "search",
        "inference",
        "llama-3.1-8b",
        "prefill",
        batch=4,
        context=4096,
        demand_units_per_s=800_000.0,
        demand_growth_per_year=0.6,
    ),
    ExampleWorkload(
        "pretrain-8b",
        "Continued pre-training (Llama 3.1 8B, 128 x 4k tokens per step)",
        "research",
        "training",
        "llama-3.1-8b",
        "training",
        batch=128,
        context=4096,
        demand_units_per_s=10.0,
        demand_growth_per_year=0.5,
    ),
)


def example_workloads() -> pd.DataFrame:
    rows = []
    for w in EXAMPLES:
        e = estimate(
            preset(w.preset),
            phase=w.phase,
            batch=w.batch,
            context=w.context,
            weights=w.weights,
            kv=w.kv,
        )
        rows.append(
            {
                "workload_id": w.workload_id,
                "name": w.name,
                "owner": w.owner,
                "pool": w.pool,
                **e.workload_columns(),
                "demand_units_per_s": w.demand_units_per_s,
                "demand_growth_per_year": w.demand_growth_per_year,
            }
        )
    return validate_frame(pd.DataFrame(rows), WORKLOADS, SOURCE)


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

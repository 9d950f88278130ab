"""Built-in example workloads, so a first audit needs no input at all.

Their FLOPs, bytes and memory come from the workload model applied to model presets, exactly as
``memwall workloads add --preset ...`` would compute them; only the demand, its growth, the
owners and pools are invented.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import pandas as pd

from hardware_profiles.parquet import validate_frame
from hardware_profiles.schema import WORKLOADS
from tasks.analysis.workload.presets import preset
from tasks.analysis.workload.workload_model import estimate

SOURCE = "built-in example workloads (tasks/analysis/workload/examples.py)"


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
        demand_units_per_s=30_000.0,
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
        demand_units_per_s=3_000.0,
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
        demand_units_per_s=9_600.0,
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
        demand_units_per_s=480_000.0,
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

"""A workload's engine picks the routed-expert share its supply is projected at, worked by hand.

Fit (hand-built, as ``published_fit`` would hand it on): decode bandwidth efficiency 0.8 on
every vendor; the MLA-MoE routed-expert share r fitted per engine generation, 0.22 on engines
before 2025-07 and 0.51 on those from it (0.34 over both). Fleet: 8 devices "x1" of 1e12 B/s
spec, so 0.8e12 B/s usable each.

Two DeepSeek-V3 decode workloads, batch 1, context 1024, bf16, identical but for their engine:
none (a current engine) and ``SGLang 0.4.3`` (released 2025-02: an early one). Each step reads
73,363,564,800 B, of which a share s = 0.557079 are routed-expert weights (``expert_shares``,
pinned in ``test_expert_share_projection``); AI 1.2356 FLOP/B, far under the ridge:
memory-bound. Each has half the pool (``pool_share`` 0.5) and asks 10 tokens/s.

- current, r = 0.51: the bytes take 1 + (1/0.51 − 1)·s = 1.535233 times as long as dense;
  supply 0.5·8·0.8e12 / (73,363,564,800·1.535233) = 28.412 tokens/s, headroom 2.8412;
- early, r = 0.22: 1 + (1/0.22 − 1)·s = 2.975098 times; supply 14.661 tokens/s, headroom
  1.4661: 2.975098 / 1.535233 = 1.93788 times less than the current engine's.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from hardware_profiles.parquet import validate_frame
from hardware_profiles.schema import CATALOG, ROADMAP, WORKLOADS
from tasks.analysis.projection.projector import project
from tasks.analysis.ranking.ranking import rank
from tasks.analysis.supply.calibration import calibrate
from tasks.analysis.supply.efficiency import Efficiency, FittedDefaults
from tasks.analysis.supply.engine_generation import CURRENT, EARLY
from tasks.analysis.workload.presets import estimate_workload

START = dt.date(2027, 1, 1)
FITTED = FittedDefaults(
    efficiencies={("decode", None): Efficiency(0.8, "decode fit", 0.1)},
    expert_matmuls={"MLA-MoE": Efficiency(0.34, "MLA-MoE over both generations", 0.3)},
    generation_experts={
        ("MLA-MoE", EARLY): Efficiency(0.22, "MLA-MoE early fit", 0.2),
        ("MLA-MoE", CURRENT): Efficiency(0.51, "MLA-MoE current fit", 0.2),
    },
)


def _catalog() -> pd.DataFrame:
    row = {
        "accelerator_id": "x1", "vendor": "Acme", "name": "X1", "device_kind_patterns": [],
        "memory_bytes": 10**11, "mem_bandwidth_bytes_per_s": 1e12,
        "peak_flops_per_s_fp32": None, "peak_flops_per_s_tf32": None,
        "peak_flops_per_s_bf16": 100e12, "peak_flops_per_s_fp16": None,
        "peak_flops_per_s_fp8": 200e12, "peak_flops_per_s_int8": None,
        "release_date": None, "list_price_usd": None, "source": "test",
    }  # fmt: skip
    return validate_frame(pd.DataFrame([row]), CATALOG, "test catalog")


def _workloads() -> pd.DataFrame:
    shape = {"model_preset": "deepseek-v3", "phase": "decode", "batch": 1,
             "context_tokens": 1024, "precision": "bf16"}  # fmt: skip
    estimated = estimate_workload(shape)
    assert estimated is not None
    common = {
        **estimated.workload_columns(), "owner": "o", "pool": "p",
        "demand_units_per_s": 10.0, "demand_growth_per_year": 0.0, "pool_share": 0.5,
    }  # fmt: skip
    rows = [
        {**common, "workload_id": "current", "name": "current", "engine": None},
        {**common, "workload_id": "early", "name": "early", "engine": "SGLang 0.4.3"},
    ]
    return validate_frame(pd.DataFrame(rows), WORKLOADS, "test workloads")


def _roadmap() -> pd.DataFrame:
    frame = pd.DataFrame(
        [{"pool": "p", "effective_date": dt.date(2026, 1, 1), "accelerator_id": "x1",
          "count_delta": 8, "unit_cost_usd": None}]
    )  # fmt: skip
    return validate_frame(frame, ROADMAP, "test roadmap")


def test_a_workload_on_an_early_engine_is_projected_at_that_generations_expert_share() -> None:
    projection = project(_workloads(), _roadmap(), calibrate(_catalog(), fitted=FITTED), START, 3)
    headroom = projection.outcome.headroom[:, 0]
    assert projection.outcome.memory_bound[:, 0].all()
    assert headroom.tolist() == pytest.approx([2.8412, 1.4661], rel=1e-4)
    assert headroom[0] / headroom[1] == pytest.approx(2.975098 / 1.535233, rel=1e-6)
    ranking = rank(projection, with_mitigations=False).ranking.set_index("workload_id")
    fitted = FITTED.generation_experts
    assert ranking.loc["current", "expert_share"] == fitted[("MLA-MoE", CURRENT)].value
    assert ranking.loc["early", "expert_share"] == fitted[("MLA-MoE", EARLY)].value
    assert ranking.loc["early", "engine_generation"] == EARLY
    assert ranking.loc["current", "engine_generation"] == CURRENT
    assert ranking.loc["early", "expert_share_source"] == (
        "MLA-MoE early fit; engine 'SGLang 0.4.3' released 2025-02"
    )
    assert ranking.loc["current", "expert_share_source"] == (
        "MLA-MoE current fit; no engine stated: a fleet planned today runs a current engine"
    )


def test_a_dense_workload_names_its_generation_but_no_expert_share() -> None:
    rows = _workloads().assign(model_preset="llama-3.1-8b")
    projection = project(rows, _roadmap(), calibrate(_catalog(), fitted=FITTED), START, 3)
    ranking = rank(projection, with_mitigations=False).ranking.set_index("workload_id")
    assert ranking["expert_share"].isna().all()
    assert ranking["expert_share_source"].isna().all()
    assert ranking.loc["early", "engine_generation"] == EARLY

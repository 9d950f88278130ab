"""``rank``'s figures under load, on the replica each workload is reported on.

Llama 3.1 8B decode at batch 8 (the concurrency), mean context 4,096, on the H100s of
``test_walls``: one device holds it (tp=1). With 2,000-token prompts and 200 output tokens,
8 · 2,000 / 200 = 80 prompt tokens ride on each decode step, so the time per output token
under load is the mixed step of :func:`~tasks.analysis.supply.mixed_step.mixed_step` with
the projection's calibrated efficiencies, and tokens/s = 8 / it.
"""

from __future__ import annotations

import pandas as pd
import pytest

from hardware_profiles.catalog import builtin_catalog
from hardware_profiles.parquet import validate_frame
from hardware_profiles.schema import WORKLOADS
from reports.walls import replica_facts
from tasks.analysis.projection.projector import project
from tasks.analysis.ranking.ranking import rank, records
from tasks.analysis.supply.calibrated import efficiencies_for, experts_for, overhead_for
from tasks.analysis.supply.calibration import calibrate
from tasks.analysis.supply.efficiency import Efficiency, FittedDefaults
from tasks.analysis.supply.engine_generation import CURRENT, EARLY
from tasks.analysis.supply.mixed_step import mixed_step
from tasks.analysis.supply.predict import predict
from tasks.analysis.workload.presets import preset
from tasks.analysis.workload.workload_model import estimate
from tests.analysis.projection.test_projector import _roadmap
from tests.analysis.walls.test_walls import START, _served, _walls

H100 = "nvidia-h100-sxm"


def test_a_decode_workload_stating_its_request_shape_gets_its_step_under_load() -> None:
    loaded = _served("llama-3.1-8b", 8, 4096, "h100", prompt_tokens=2000, output_tokens=200)
    alone = _served("llama-3.1-8b", 16, 4096, "h100")
    ranking = _walls([loaded, alone])
    row = ranking.loc["llama-3.1-8b-b8"]
    assert row["devices_per_replica"] == 1 and row["replica_layout"] == "tp=1"
    arch = preset("llama-3.1-8b")
    est = estimate(arch, phase="decode", batch=8, context=4096)
    calibrated = calibrate(builtin_catalog())
    catalog = builtin_catalog().set_index("accelerator_id", drop=False)
    accelerator = {str(k): v for k, v in catalog.loc[H100].items()}
    step = predict(
        arch, est, accelerator, *efficiencies_for(calibrated, H100, "decode", "bf16"), 1,
        overhead_for(calibrated, H100, "decode"),
    )  # fmt: skip
    prefill = efficiencies_for(calibrated, H100, "prefill", "bf16")[1]
    expected = mixed_step(arch, step, est, accelerator, prefill, 2000, 200)
    assert expected.prefill_tokens_per_step == 80
    assert row["tpot_under_load_s"] == pytest.approx(expected.step_time_s)
    assert row["tpot_under_load_s"] > step.step_time_s
    assert row["output_tokens_per_s_under_load"] == pytest.approx(8 / expected.step_time_s)
    # A row without a request shape has none.
    other = ranking.loc["llama-3.1-8b-b16"]
    assert other[["tpot_under_load_s", "replica_layout"]].isna().all()


def test_the_workload_page_states_the_step_under_load_and_its_layout() -> None:
    ranking = _walls(
        [_served("llama-3.1-8b", 8, 4096, "h100", prompt_tokens=2000, output_tokens=200)]
    )
    row = next(records(ranking.reset_index()))
    facts = replica_facts(row)
    assert facts[-1][0] == "Under load" and facts[-1][2:] == ["Layout", "tp=1"]
    assert f"{row.tpot_under_load_s * 1e3:.3g} ms per output token" in facts[-1][1]


def test_a_moe_workload_under_load_runs_its_experts_at_its_engines_generation_share() -> None:
    """Mixtral-8x7B decode at batch 8, 4,096 tokens of context, 2,000-token prompts and 200
    output tokens, once on a current engine (none stated) and once on vLLM 0.7.3 (released
    2025-02: an early one). With a fit whose MoE routed-expert share is 0.3 on early engines
    and 0.6 on current ones, each step under load is the mixed step of the step predicted at
    its own generation's share: the early one is the longer."""
    fitted = FittedDefaults(
        efficiencies={("decode", None): Efficiency(0.8, "decode fit", 0.1)},
        expert_matmuls={"MoE": Efficiency(0.45, "MoE over both generations", 0.3)},
        generation_experts={
            ("MoE", EARLY): Efficiency(0.3, "MoE early fit", 0.2),
            ("MoE", CURRENT): Efficiency(0.6, "MoE current fit", 0.2),
        },
    )
    shape = {"prompt_tokens": 2000, "output_tokens": 200}
    rows = [
        {**_served("mixtral-8x7b", 8, 4096, "h100", **shape), "workload_id": "current"},
        {**_served("mixtral-8x7b", 8, 4096, "h100", engine="vLLM 0.7.3", **shape),
         "workload_id": "early"},
    ]  # fmt: skip
    catalog = builtin_catalog()
    calibrated = calibrate(catalog, fitted=fitted)
    projection = project(
        validate_frame(pd.DataFrame(rows), WORKLOADS, "w"),
        _roadmap([("h100", "2026-01-01", H100, 64)]),
        calibrated,
        START,
        12,
    )
    ranking = rank(projection, with_mitigations=False, catalog=catalog).ranking
    ranking = ranking.set_index("workload_id")
    arch = preset("mixtral-8x7b")
    est = estimate(arch, phase="decode", batch=8, context=4096)
    accelerator = {str(k): v for k, v in catalog.set_index("accelerator_id").loc[H100].items()}
    accelerator["accelerator_id"] = H100
    prefill = efficiencies_for(calibrated, H100, "prefill", "bf16")[1]
    devices = ranking["devices_per_replica"].astype(int)
    for wid, generation, r in (("current", CURRENT, 0.6), ("early", EARLY, 0.3)):
        experts = experts_for(calibrated, H100, "decode", "MoE", generation)
        assert experts.value == r
        step = predict(
            arch, est, accelerator, *efficiencies_for(calibrated, H100, "decode", "bf16"),
            int(devices[wid]), overhead_for(calibrated, H100, "decode"),
            experts=experts,
        )  # fmt: skip
        expected = mixed_step(arch, step, est, accelerator, prefill, 2000, 200)
        assert ranking.at[wid, "tpot_under_load_s"] == pytest.approx(expected.step_time_s)
    tpot = ranking["tpot_under_load_s"].astype(float)
    assert tpot["early"] > tpot["current"]

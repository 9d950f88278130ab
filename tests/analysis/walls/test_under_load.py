"""``rank``'s figures under load, on the replica each workload is reported on.

Llama 3.1 8B decode at batch 8 (the concurrency), mean context 4,096, on the H100s of
``test_walls``: one device holds it (tp=1). With 2,000-token prompts and 200 output tokens,
8 · 2,000 / 200 = 80 prompt tokens ride on each decode step, so the time per output token
under load is the mixed step of :func:`~tasks.analysis.supply.mixed_step.mixed_step` with
the projection's calibrated efficiencies, and tokens/s = 8 / it.
"""

from __future__ import annotations

import pytest

from hardware_profiles.catalog import builtin_catalog
from reports.walls import replica_facts
from tasks.analysis.ranking.ranking import records
from tasks.analysis.supply.calibration import calibrate
from tasks.analysis.supply.efficiency import efficiencies_for, overhead_for
from tasks.analysis.supply.mixed_step import mixed_step
from tasks.analysis.supply.predict import predict
from tasks.analysis.workload.presets import preset
from tasks.analysis.workload.workload_model import estimate
from tests.analysis.walls.test_walls import _served, _walls

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

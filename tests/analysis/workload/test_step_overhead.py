"""The fitted step overhead as the projection, the replicas and the efficiency table charge it.

Catalog x1 (``tests.analysis.projection.test_projector``): 1e12 B/s, 100e12 bf16 FLOP/s. Fitted
decode bandwidth efficiency 0.5 (usable 5e11 B/s) and a decode overhead of 100 us per layer.

Workload w, made from the llama-2-7b preset (32 layers), decode at batch 4: 1.4e10 FLOPs and
3.5e9 bytes per token, so memory-bound (AI 4 · 5e11 = 2e12 < 7e13 FLOP/s) at
3.5e9 / 5e11 = 7 ms per token on one device. Each step of 4 tokens pays 32 · 100 us = 3.2 ms,
0.8 ms per token: 7.8 ms per token, 1 / 7.8e-3 = 128.2 tokens/s per device instead of 142.9.
Its FLOP/s: 1.4e10 / 7.8e-3 = 1.7949e12. At batch x2 each token pays 0.4 ms: 1.4e10 / 7.4e-3.
"""

from __future__ import annotations

import pandas as pd
import pytest

from hardware_profiles.parquet import validate_frame
from hardware_profiles.schema import WORKLOADS
from tasks.analysis.projection.projector import project
from tasks.analysis.supply.calibrated import efficiency_sources, overhead_for
from tasks.analysis.supply.calibration import calibrate
from tasks.analysis.supply.efficiency import Efficiency, FittedDefaults, Overhead
from tasks.analysis.workload.figures import Figures
from tasks.analysis.workload.step_overhead import overheads_per_unit
from tasks.analysis.workload.variants import batch_figures
from tests.analysis.projection.test_projector import BASE, START, _catalog, _roadmap, _workload
from tests.analysis.supply.test_efficiency import NOW, _frame, _row

FIT = FittedDefaults(
    {("decode", None): Efficiency(0.5, "fitted on 9 published runs (decode, all vendors)", 0.1)},
    0.3,
    overheads={"decode": Overhead(100e-6, "fitted on 9 published runs (decode, all vendors)")},
)


def _workloads(**overrides: object) -> pd.DataFrame:
    row = _workload(
        "w", 1.4e10, 1.0, 1.0, 1.0, bytes_per_unit=3.5e9, model_preset="llama-2-7b", batch=4,
        context_tokens=4096, **overrides,
    )  # fmt: skip
    return validate_frame(pd.DataFrame([row]), WORKLOADS, "test workloads")


def test_a_unit_pays_layers_over_batch_overheads_and_hand_typed_rows_none() -> None:
    hand_typed = _workload("h", 10.0, 0.5, 1.0, 1.0)
    prefill = _workload(
        "p", 10.0, 0.5, 1.0, 1.0, phase="prefill", model_preset="llama-2-7b", batch=2,
        context_tokens=1000,
    )  # fmt: skip
    rows = pd.concat(
        [_workloads(), validate_frame(pd.DataFrame([hand_typed, prefill]), WORKLOADS, "w")]
    )
    # Decode: 32 layers over 4 tokens a step; prefill: 32 layers over 2 x 1,000 prompt tokens.
    assert overheads_per_unit(rows) == pytest.approx([32 / 4, 0.0, 32 / 2000])


def test_a_row_that_says_its_layers_pays_them_whatever_its_model_is_called() -> None:
    # An imported config.json's name is no preset: its own layers count. A stated count wins
    # over the preset's; a row in requests (not the model's tokens) cannot be split per layer.
    imported = _workload("i", 10.0, 0.3, 1.0, 1.0, model_preset="my-model", batch=8, layers=24)
    restated = _workload("r", 10.0, 0.3, 1.0, 1.0, model_preset="llama-2-7b", batch=4, layers=16)
    per_request = _workload("q", 10.0, 0.3, 1.0, 1.0, unit="request", batch=4, layers=16)
    rows = validate_frame(pd.DataFrame([imported, restated, per_request]), WORKLOADS, "w")
    assert overheads_per_unit(rows) == pytest.approx([24 / 8, 16 / 4, 0.0])
    assert overheads_per_unit(rows.drop(columns="model_preset")) == pytest.approx([3, 4, 0])


def test_the_projection_charges_each_token_its_share_of_the_step_overhead() -> None:
    calibrated = calibrate(_catalog(), fitted=FIT)
    projection = project(_workloads(), _roadmap(BASE), calibrated, START, 12)
    attainable = projection.outcome.attainable_flops_per_s[0, 0]
    assert attainable == pytest.approx(1.4e10 / 7.8e-3, rel=1e-6)
    without = project(_workloads(), _roadmap(BASE), calibrate(_catalog(), fitted=FittedDefaults(
        FIT.efficiencies, 0.3)), START, 12)  # fmt: skip
    assert without.outcome.attainable_flops_per_s[0, 0] == pytest.approx(1.4e10 / 7e-3)


def test_a_larger_batch_spreads_the_overhead_over_more_tokens() -> None:
    workloads = _workloads()
    doubled, applicable = batch_figures(Figures.of(workloads), workloads, 2)
    assert applicable[0]
    assert doubled.overheads_per_unit[0] == pytest.approx(32 / 8)


def test_the_overhead_goes_with_the_fitted_efficiency_not_a_measured_one() -> None:
    here = _frame([_row("x1", "workload-decode", 0.55, NOW, "now")])
    calibrated = calibrate(_catalog(), here, fitted=FIT)
    measured = overhead_for(calibrated, "x1", "decode")
    assert (measured.seconds, measured.source) == (0.0, "none: held in the measured efficiency")
    fitted = overhead_for(calibrated, "x2", "decode")
    assert fitted == FIT.overheads["decode"]
    assert overhead_for(calibrated, "x2", "training").seconds == 0
    table = efficiency_sources(calibrated, ["x2"], "bf16")
    overheads = dict(zip(table["phase"], table["step_overhead_s"], strict=True))
    assert overheads == {"decode": 100e-6, "prefill": 0.0, "training": 0.0}
    assert list(table["step_overhead_per"]) == ["layer", "layer", ""]

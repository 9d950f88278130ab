"""Workload probe rows: the measurements contract, a dtype the device lacks, a model larger than
the free memory (faked: the edge of the world), strict JSON records."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from hardware_profiles.catalog import builtin_catalog
from hardware_profiles.parquet import validate_frame
from hardware_profiles.schema import MEASUREMENTS, MiB
from tasks.analysis.supply.validation import HostCeilings, cut, step_cost
from tasks.analysis.workload.workload_model import Architecture
from tasks.discovery import discover, last_level_cache_bytes
from tasks.probes import workload_weights
from tasks.probes.runner import ProbePlan
from tasks.probes.targets import Rows, single_target
from tasks.probes.validation import cases, ceiling_plan, record
from tasks.probes.workload_probe import Case, CaseResult, layers_that_fit, measure_case

ARCH = Architecture(
    name="tiny-deep",
    layers=6,
    hidden=64,
    heads=4,
    kv_heads=2,
    head_dim=16,
    ffn=128,
    vocab=256,
    max_context=512,
)
PLAN = ProbePlan(repetitions=3, warmup=1, budget_s=0.2)
CEILINGS = HostCeilings(bandwidth_bytes_per_s=1e10, flops_per_s=1e11)


def _rows() -> Rows:
    catalog = builtin_catalog()
    return Rows(single_target(discover(catalog)[0], catalog), "run-1", "test")


def _fields(result: CaseResult) -> dict[str, str]:
    first = str(result.row["detail"]).split(" | ")[0]
    return dict(part.split("=", 1) for part in first.split("; "))


def _case(**changes: object) -> Case:
    base = {
        "name": "tiny decode",
        "arch": ARCH,
        "phase": "decode",
        "batch": 2,
        "context": 64,
        "weights": "fp32",
        "kv": "fp32",
        "compute": "fp32",
    }
    return Case(**{**base, **changes})  # type: ignore[arg-type]


def test_a_decode_row_keeps_the_contract() -> None:
    result = measure_case(_case(), _rows(), PLAN, CEILINGS)
    row = result.row
    validate_frame(pd.DataFrame([row]), MEASUREMENTS, "workload row")
    assert (row["probe"], row["dtype"], row["unit"]) == (
        "workload-decode",
        "float32",
        "bytes_per_s",
    )
    assert row["status"] in ("ok", "unstable")
    model = step_cost(
        ARCH, phase="decode", batch=2, context=64, weights="fp32", kv="fp32", compute="fp32"
    )
    assert result.model == model and result.layers_run == ARCH.layers
    assert row["median"] * result.measured_step_s == pytest.approx(model.bytes)
    assert row["best"] >= row["median"] and row["spec"] is None and row["efficiency"] is None
    fields = _fields(result)
    for key in (
        "case",
        "preset",
        "batch",
        "context",
        "layers",
        "predicted_step_s",
        "measured_step_s",
        "model_bytes",
        "xla_bytes",
        "model_flops",
        "xla_flops",
    ):
        assert key in fields
    assert fields["layers"] == "6 of 6"
    # The prediction: per part, the longer of its bytes at the triad's bandwidth and its FLOPs at
    # the GEMM rate at its shape (rows x widest matrix), both timed here in turns with the step
    # (not the run's 10 GB/s), the parts added up.
    parts = _case().parts(ARCH.layers)
    assert result.prediction is not None
    bandwidth = result.prediction.bandwidth_bytes_per_s
    assert bandwidth > 0 and bandwidth != 1e10
    rates = {t.gemm: t.flops_per_s for t in result.prediction.parts}
    # Batch 2; the layers' widest matrix is the gated FFN's 64 x 2·128, the head 64 x 256: one
    # shape, timed once; attention runs at the run's square GEMM rate (100 GFLOP/s).
    assert set(rates) == {(2, 64, 256), None} and rates[None] == 1e11
    assert rates[(2, 64, 256)] > 0
    predicted = sum(max(p.bytes / bandwidth, p.flops / rates[p.gemm]) for p in parts)
    assert float(fields["predicted_step_s"]) == pytest.approx(predicted, rel=1e-5)
    assert result.predicted_step_s == pytest.approx(predicted)
    assert float(fields["predicted_lm_head_s"]) > 0
    # The record: the parts add up to the prediction; the single roofline on the run's ceilings
    # (10 GB/s, 100 GFLOP/s) is kept beside it for comparison.
    r = json.loads(json.dumps(record(result), allow_nan=False))
    assert [p["part"] for p in r["predicted_parts"]] == ["matmuls", "lm_head", "attention"]
    assert sum(p["step_s"] for p in r["predicted_parts"]) == pytest.approx(r["predicted_step_s"])
    assert r["predicted_parts"][0]["gemm_rows"] == 2
    assert r["roofline_step_s"] == pytest.approx(max(model.bytes / 1e10, model.flops / 1e11))
    assert r["bandwidth_bytes_per_s"] == pytest.approx(bandwidth)
    assert result.xla_flops == pytest.approx(model.flops, rel=0.10)


def test_a_prefill_row_is_a_flop_rate() -> None:
    result = measure_case(_case(phase="prefill", batch=1, context=32), _rows(), PLAN, None)
    assert (result.row["probe"], result.row["unit"]) == ("workload-prefill", "flops_per_s")
    assert result.row["median"] * result.measured_step_s == pytest.approx(result.model.flops)
    assert math.isnan(result.predicted_step_s)  # no ceilings, no prediction


def test_a_storage_type_the_device_lacks_is_waived_with_the_reason() -> None:
    def no_int8(dtype: str, device: object) -> str | None:
        return "int8: this device has no int8 storage" if dtype == "int8" else None

    result = measure_case(_case(weights="int8"), _rows(), PLAN, CEILINGS, supports=no_int8)
    assert result.row["status"] == "waived"
    assert "no int8 storage" in str(result.row["detail"])
    assert result.row["best"] is None and math.isnan(result.measured_step_s)
    validate_frame(pd.DataFrame([result.row]), MEASUREMENTS, "waived row")
    fp8 = measure_case(_case(compute="fp8"), _rows(), PLAN, CEILINGS)
    assert fp8.row["status"] == "waived" and "not built" in str(fp8.row["detail"])


def test_a_model_larger_than_free_memory_runs_fewer_layers_and_says_so() -> None:
    full = _case().shape(ARCH.layers)
    per_layer = workload_weights.layer_bytes(full, 0)
    free = int((workload_weights.fixed_bytes(full) + 2.5 * per_layer) / PLAN.max_free_fraction)
    assert layers_that_fit(_case(), free, PLAN.max_free_fraction) == 2
    result = measure_case(_case(), _rows(), PLAN, CEILINGS, free_bytes=lambda device: free)
    assert result.layers_run == 2 and result.row["status"] in ("ok", "unstable")
    assert "ran 2 of 6 layers (memory limit)" in str(result.row["detail"])
    assert result.model == step_cost(
        cut(ARCH, 2), phase="decode", batch=2, context=64, weights="fp32", kv="fp32", compute="fp32"
    )
    assert result.full_model_step_s == pytest.approx(
        result.measured_step_s * result.full_model.bytes / result.model.bytes
    )
    # Not even one layer fits: waived, with the sizes, before anything is allocated.
    assert layers_that_fit(_case(), 1, PLAN.max_free_fraction) == 0
    none = measure_case(_case(), _rows(), PLAN, CEILINGS, free_bytes=lambda device: 1000)
    assert none.row["status"] == "waived" and "one layer and the head need" in none.reason


def test_records_are_strict_json_with_null_for_what_did_not_run() -> None:
    result = measure_case(_case(compute="fp8"), _rows(), PLAN, None)
    text = json.dumps([record(result)], allow_nan=False)
    loaded = json.loads(text)[0]
    for key in (
        "case",
        "phase",
        "batch",
        "context",
        "predicted_step_s",
        "measured_step_s",
        "ratio",
        "model_bytes",
        "xla_bytes",
        "model_flops",
        "xla_flops",
    ):
        assert key in loaded
    assert loaded["measured_step_s"] is None and loaded["ratio"] is None
    assert loaded["predicted_parts"] == [] and loaded["predicted_memory_s"] is None
    assert loaded["status"] == "waived" and "not built" in loaded["reason"]


def test_the_built_in_set_covers_dense_decode_at_two_batches_moe_and_prefill() -> None:
    quick = cases(None, "cpu", quick=True)
    dense = [c for c in quick if not c.arch.is_moe and c.phase == "decode"]
    assert len({c.batch for c in dense}) >= 2 and 1 in {c.batch for c in dense}
    assert any(c.arch.is_moe and c.phase == "decode" for c in quick)
    assert any(c.phase == "prefill" for c in quick)
    assert {c.compute for c in quick} == {"fp32"}  # XLA's CPU backend emulates bf16 matmuls
    assert {c.compute for c in cases(None, "gpu", quick=True)} == {"bf16"}


def test_the_small_case_times_its_ceilings_on_less_memory_but_still_off_cache() -> None:
    """A quick audit's one case keeps its in-turn triad and GEMMs at 4x the last-level cache
    (at least 128 MiB), below the full validation's 256 and 512 MiB, and fewer turns."""
    full, small = ceiling_plan("cpu", True, ["fp32"]), ceiling_plan("cpu", True, ["fp32"], True)
    floor = max(128 * MiB, 4 * last_level_cache_bytes("cpu"))
    assert small.turn_triad_bytes == small.turn_gemm_weight_bytes == floor
    assert (full.turn_triad_bytes, full.turn_gemm_weight_bytes) == (256 * MiB, 512 * MiB)
    assert small.repetitions < full.repetitions

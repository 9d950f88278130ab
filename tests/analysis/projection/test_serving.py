"""The batch a workload is served at: a latency target that caps it sets the supply, by hand.

Built-in catalog, default efficiencies: H100 usable bandwidth 0.85 x 3.35e12 = 2.8475e12 B/s,
bf16 0.7 x 989.5e12 = 692.65e12 FLOP/s, usable memory 0.9 x 81,559 MiB (the total the device
reports: 85.52e9 B) = 76.97e9 B. Pool "h100": 8 H100s.

The row (no model preset): decode at batch 32, bf16, F = 14e9 FLOP per token. Its weights split
as the batch mitigation splits them: W = 2 B x F / 2 = 14e9 B read once per step, so per token
14e9/32 = 0.4375e9; its KV cache 0.5e9 B per token: bytes per token 0.4375e9 + 0.5e9 = 0.9375e9.
Memory: 14e9 + 32 x 0.5e9 = 30e9 B, one H100 holds it (30e9 <= 76.97e9).

A 6.4 ms TPOT target on one H100: a step at batch b reads 14e9 + b x 0.5e9 B, so
b <= (6.4e-3 x 2.8475e12 - 14e9) / 0.5e9 = (18.224e9 - 14e9) / 0.5e9 = 8.448 -> 8 (compute:
b <= 6.4e-3 / (14e9 / 692.65e12) = 316.6; memory: (76.97e9 - 14e9) / 0.5e9 = 125.9). Batch 1:
14.5e9 / 2.8475e12 = 5.09 ms <= 6.4 ms, no latency wall. So max_batch = 8 < 32.

Served at batch 8: bytes per token 14e9/8 + 0.5e9 = 2.25e9 (AI 14e9/2.25e9 = 6.22, memory-bound:
ridge 692.65e12/2.8475e12 = 243). Supply, the pool's only workload (share 1): 8 x 2.8475e12 /
2.25e9 = 10,124.4 tokens/s against 8 x 2.8475e12 / 0.9375e9 = 24,298.7 at batch 32. Demand
12,000 tokens/s, no growth: headroom 10,124.4/12,000 = 0.8437 (starves now), not 2.0249.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pandas as pd
import pytest

from hardware_profiles.catalog import builtin_catalog
from hardware_profiles.parquet import validate_frame
from hardware_profiles.schema import WORKLOADS
from reports.walls import replica_facts
from tasks.analysis.projection.placement import place
from tasks.analysis.projection.projector import project
from tasks.analysis.projection.serving import serve
from tasks.analysis.ranking.ranking import rank, ranking_rows, records
from tasks.analysis.supply.calibration import calibrate
from tasks.analysis.workload.presets import preset
from tasks.analysis.workload.workload_model import estimate
from tests.analysis.projection import handmade
from tests.analysis.projection.test_projector import _roadmap

START = dt.date(2027, 1, 1)
BW = 0.85 * 3.35e12


def _row(**extra: object) -> dict[str, object]:
    return {
        "workload_id": "w",
        "name": "w",
        "owner": "o",
        "pool": "h100",
        "phase": "decode",
        "precision": "bf16",
        "unit": "token",
        "batch": 32,
        "context_tokens": 4096,
        "flops_per_unit": 14e9,
        "bytes_per_unit": 14e9 / 32 + 0.5e9,
        "memory_footprint_bytes": 14e9 + 32 * 0.5e9,
        "demand_units_per_s": 12_000.0,
        "demand_growth_per_year": 0.0,
        **extra,
    }


def _ranking(row: dict[str, object]) -> pd.DataFrame:
    catalog = builtin_catalog()
    workloads = validate_frame(pd.DataFrame([row]), WORKLOADS, "w")
    roadmap = _roadmap([("h100", "2026-01-01", "nvidia-h100-sxm", 8)])
    projection = project(workloads, roadmap, calibrate(catalog), START, 6, catalog=catalog)
    return rank(projection, with_mitigations=False, catalog=catalog).ranking


def _ranked(row: dict[str, object]) -> tuple[dict[str, Any], dict[str, object]]:
    """The ranking row and the ``rank --json`` row of a pool's only workload."""
    ranking = _ranking(row)
    return {str(k): v for k, v in ranking.iloc[0].items()}, ranking_rows(ranking)[0]


def test_a_tpot_target_that_caps_the_batch_from_32_to_8_sets_the_supply() -> None:
    r, row = _ranked(_row(tpot_slo_s=6.4e-3))
    assert r["max_batch"] == 8
    assert r["served_batch"] == 8
    assert row["served_batch"] == 8
    assert r["arithmetic_intensity_flops_per_byte"] == pytest.approx(14e9 / 2.25e9)
    assert r["headroom_now"] == pytest.approx(8 * BW / 2.25e9 / 12_000)  # 0.8437
    assert r["headroom_now"] == pytest.approx(0.84375, rel=1e-4)
    assert r["starve_month"] == START
    assert r["wall"] == "bandwidth"


def test_without_a_target_the_workload_is_served_at_its_own_batch() -> None:
    r, row = _ranked(_row())
    assert pd.isna(r["served_batch"])
    assert row["served_batch"] is None
    assert r["headroom_now"] == pytest.approx(8 * BW / 0.9375e9 / 12_000)  # 2.0249
    assert r["starve_month"] is None


def test_a_latency_wall_keeps_the_workload_figures() -> None:
    # 0.5 ms: batch 1 reads 14.5e9 B, 14.5e9/2.8475e12 = 5.09 ms on one H100 and 5.09/8 =
    # 0.637 ms split over the cap of 8 (no architecture: no communication term) > 0.5 ms.
    # max_batch 0: the figures stay the row's, headroom 8 x 2.8475e12/0.9375e9/12,000 = 2.0249.
    r, _ = _ranked(_row(tpot_slo_s=0.5e-3))
    assert r["wall"] == "latency"
    assert r["max_batch"] == 0
    assert pd.isna(r["served_batch"])
    assert r["headroom_now"] == pytest.approx(8 * BW / 0.9375e9 / 12_000)


def test_a_preset_row_is_re_derived_by_the_workload_model_at_the_served_batch() -> None:
    e32 = estimate(preset("llama-3.1-8b"), phase="decode", batch=32, context=4096)
    e8 = estimate(preset("llama-3.1-8b"), phase="decode", batch=8, context=4096)
    row = {
        **_row(),
        **e32.workload_columns(),
        "workload_id": "w",
        "pool": "h100",
        "demand_units_per_s": 12_000.0,
    }
    uncapped, _ = _ranked(row)
    # A target between the step times at batch 8 and 9 on one H100 (8B at 4k fits one).
    step = [(e.bytes_per_unit * b) / BW for e, b in ((e8, 8), (e32, 32))]
    e9 = estimate(preset("llama-3.1-8b"), phase="decode", batch=9, context=4096)
    slo = (step[0] + e9.bytes_per_unit * 9 / BW) / 2
    assert step[0] < slo < step[1]
    r, _ = _ranked({**row, "tpot_slo_s": slo})
    assert r["served_batch"] == 8
    assert r["arithmetic_intensity_flops_per_byte"] == pytest.approx(
        e8.flops_per_unit / e8.bytes_per_unit
    )
    assert r["headroom_now"] == pytest.approx(
        uncapped["headroom_now"] * e32.bytes_per_unit / e8.bytes_per_unit
    )


def test_the_workload_page_says_its_supply_is_evaluated_at_the_slo_batch() -> None:
    capped = replica_facts(next(records(_ranking(_row(tpot_slo_s=6.4e-3)))))
    assert capped[1][3] == "8 (supply evaluated at it: the SLO caps the batch)"
    latency_wall = replica_facts(next(records(_ranking(_row(tpot_slo_s=0.5e-3)))))
    assert latency_wall[1][3] == "0"


def test_serve_on_hand_built_records() -> None:
    """The module docstring's row and target, sized once on hand-built records: one h100 of
    the eight holds batch 32 (30e9 <= 0.9 x 80e9 = 72e9 B, the hand-built catalog's memory) and
    meets 6.4 ms at batch 1; the largest batch within the target is 8, so the row is served at 8
    and its bytes per token re-derived as 14e9/8 + 0.5e9 = 2.25e9; the step model keeps the
    row's own batch (the walls read it)."""
    workloads = pd.DataFrame([_row(tpot_slo_s=6.4e-3)])
    fleet = handmade.fleet([[8, 8, 8]], ["h100"])
    ceilings = handmade.ceilings()
    placement = place(workloads, fleet, ceilings)
    serving = serve(workloads, fleet, placement, ceilings, handmade.catalog())
    assert serving.devices.tolist() == [1]
    assert serving.replica_devices.tolist() == [1]
    assert serving.max_batch.tolist() == [8]
    assert serving.accelerator.tolist() == ["h100"]
    assert serving.served_batch.tolist() == [8]
    assert serving.step.batch.tolist() == [32]
    assert serving.workloads["batch"].tolist() == [8]
    assert serving.workloads["bytes_per_unit"].tolist() == pytest.approx([2.25e9])
    assert serving.workloads["memory_footprint_bytes"].tolist() == pytest.approx([18e9])
    assert serving.hardware.bandwidth_bytes_per_s.tolist() == [[BW]]


def test_a_pool_never_served_reports_no_replica() -> None:
    workloads = pd.DataFrame([_row()])
    fleet = handmade.fleet([[0, 0, 0]], ["h100"])
    ceilings = handmade.ceilings()
    serving = serve(
        workloads, fleet, place(workloads, fleet, ceilings), ceilings, handmade.catalog()
    )
    assert np.isnan(serving.devices).all()
    assert serving.replica_devices.tolist() == [1]
    assert serving.accelerator.tolist() == [None]
    assert np.isnan(serving.served_batch).all()


def _deepseek(**extra: object) -> dict[str, object]:
    """DeepSeek-V3 decode at batch 32 over 4,096 tokens, FP8 weights and cache, on a pool of
    8 H200s (143,771 MiB = 150.75e9 B each as the driver reports, 0.9 of it usable)."""
    e = estimate(
        preset("deepseek-v3"), phase="decode", batch=32, context=4096,
        weights="fp8", kv="fp8", activations="fp8",
    )  # fmt: skip
    return {
        **_row(),
        **e.workload_columns(),
        "workload_id": "w",
        "pool": "h200",
        "demand_units_per_s": 1_000.0,
        **extra,
    }


def _served(row: dict[str, object]) -> tuple[Any, pd.DataFrame]:
    catalog = builtin_catalog()
    workloads = validate_frame(pd.DataFrame([row]), WORKLOADS, "w")
    roadmap = _roadmap([("h200", "2026-01-01", "nvidia-h200-sxm", 8)])
    projection = project(workloads, roadmap, calibrate(catalog), START, 6, catalog=catalog)
    assert projection.serving is not None
    return projection.serving, workloads


def test_an_mla_row_without_a_layout_is_supplied_as_its_engine_layout_copies_the_cache() -> None:
    """An MLA latent is not split by heads: under the engine's tp=8 every device reads the
    whole cache of the batch. The row states no layout, so its replica is sized on its
    one-device figures with the latent held whole on each device: about 671e9 B of weights
    over 0.9 x 150.75e9 − 32·Mc (4.6e9 B of latents) = 5.1 devices, raised to 6 and then to
    8, the fewest an engine lays DeepSeek-V3 out on (its 128 heads do not split over 6 or 7),
    tp=8; its supply must then be that layout's,
    what the same row stating tp=8 gets: the busiest device's step bytes x 8 over the
    batch, each device reading all 32 x 4,096 tokens' latents where the one-device figures
    counted them once over the eight (so more bytes per token than the row's own)."""
    unstated, workloads = _served(_deepseek())
    stated, _ = _served(_deepseek(layout="tp=8"))
    assert unstated.devices.tolist() == [8]
    assert unstated.layout.tolist() == ["tp=8"]
    assert stated.layout.tolist() == ["tp=8"]
    own = float(workloads["bytes_per_unit"].iloc[0])
    supplied = float(unstated.workloads["bytes_per_unit"].iloc[0])
    # Within 0.01 %: the stated layout also copies a few small weights (norms) on every device.
    assert supplied == pytest.approx(float(stated.workloads["bytes_per_unit"].iloc[0]), rel=1e-4)
    e = estimate(
        preset("deepseek-v3"), phase="decode", batch=32, context=4096,
        weights="fp8", kv="fp8", activations="fp8",
    )  # fmt: skip
    kv_read = e.kv_bytes_per_token * 4096  # one sequence's latents, read once a step
    # Seven more copies of every sequence's cache per step, per token of the batch:
    assert supplied - own == pytest.approx(7 * kv_read, rel=0.05)
    assert np.isnan(unstated.step.fixed_devices).all()  # sized on its one-device figures

"""Capacity, latency and tensor-parallel communication, computed by hand.

Built-in catalog: H100 SXM 3.35 TB/s, 989.5 bf16 TFLOP/s, and 81,559 MiB as the device reports it
(81,559 x 2^20 = 85.52 GB, not the datasheet's "80GB" read as 80e9); L40S 0.864 TB/s and 46,068
MiB = 48.31 GB. Default efficiencies: usable H100 bandwidth 0.85 x 3.35e12 = 2.8475e12 B/s, bf16
0.7 x 989.5e12 = 692.65e12 FLOP/s. Usable memory: 0.9 x 85.52 GB = 76.97 GB per H100,
0.9 x 48.31 GB = 43.48 GB per L40S.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from hardware_profiles.catalog import builtin_catalog
from hardware_profiles.parquet import validate_frame
from hardware_profiles.schema import WORKLOADS, MiB
from tasks.analysis.projection.projector import project
from tasks.analysis.ranking.ranking import rank, ranking_rows
from tasks.analysis.supply.calibration import calibrate
from tasks.analysis.supply.replicas import Hardware, size_replicas, step_s
from tasks.analysis.workload.presets import preset
from tasks.analysis.workload.step_model import StepModel
from tasks.analysis.workload.workload_model import estimate
from tests.analysis.projection.test_projector import _roadmap

START = dt.date(2027, 1, 1)
H100_USABLE_BYTES = 0.9 * 81_559 * MiB  # 76.97 GB
L40S_USABLE_BYTES = 0.9 * 46_068 * MiB  # 43.48 GB


def _served(model: str, batch: int, context: int, pool: str, **extra: object) -> dict[str, object]:
    e = estimate(preset(model), phase="decode", batch=batch, context=context)
    return {
        "workload_id": f"{model}-b{batch}",
        "name": model,
        "owner": "o",
        "pool": pool,
        **e.workload_columns(),
        "demand_units_per_s": 10.0,
        "demand_growth_per_year": 0.0,
        **extra,
    }


def _walls(rows: list[dict[str, object]], catalog: pd.DataFrame | None = None) -> pd.DataFrame:
    catalog = builtin_catalog() if catalog is None else catalog
    roadmap = _roadmap(
        [("h100", "2026-01-01", "nvidia-h100-sxm", 64), ("l40s", "2026-01-01", "nvidia-l40s", 8)]
    )
    workloads = validate_frame(pd.DataFrame(rows), WORKLOADS, "w")
    projection = project(workloads, roadmap, calibrate(catalog), START, 12)
    ranked = rank(projection, with_mitigations=False, catalog=catalog)
    return ranked.ranking.set_index("workload_id")


def test_70b_at_batch_1_with_a_2_ms_tpot_on_h100s_is_a_latency_wall() -> None:
    # Llama 3.1 70B decode, batch 1, 4k context: footprint 142.45 GB -> ceil(142.45/76.97) = 2
    # H100s hold it. One step reads 140.37 GB: 140.37e9/2.8475e12 = 49.3 ms on one device
    # (compute 149.7 GFLOP/692.65e12 = 0.22 ms: memory-bound). Even split over the cap of 8:
    # 49.3/8 = 6.16 ms > 2 ms. No batch meets 2 ms, so no replica and max batch 0.
    e = estimate(preset("llama-3.1-70b"), phase="decode", batch=1, context=4096)
    assert math.ceil(e.memory_footprint_bytes / H100_USABLE_BYTES) == 2
    assert e.bytes_per_unit / 2.8475e12 / 8 == pytest.approx(6.16e-3, rel=1e-3)
    row = _walls([_served("llama-3.1-70b", 1, 4096, "h100", tpot_slo_s=0.002)]).iloc[0]
    assert row["wall"] == "latency" and row["wall_month"] == START
    assert pd.isna(row["devices_per_replica"]) and row["max_batch"] == 0


def test_405b_at_batch_64_and_128k_context_on_8_l40s_is_a_capacity_wall() -> None:
    # Llama 3.1 405B: weights 811.7 GB alone need ceil(811.7/43.48) = 19 L40S; with the KV cache
    # of 64 sequences of 131,072 tokens (516,096 B per token: 64 x 131072 x 516096 = 4.33 TB)
    # the footprint is 5.14 TB: ceil(5141/43.48) = 119 devices, over the cap of 8.
    e = estimate(preset("llama-3.1-405b"), phase="decode", batch=64, context=131072)
    assert e.kv_cache_bytes == pytest.approx(64 * 131072 * 516096)
    assert math.ceil(e.memory_footprint_bytes / L40S_USABLE_BYTES) == 119
    row = _walls([_served("llama-3.1-405b", 64, 131072, "l40s", tpot_slo_s=0.1)]).iloc[0]
    assert row["wall"] == "capacity" and row["wall_month"] == START
    assert pd.isna(row["devices_per_replica"])
    assert row["max_batch"] == 0  # 8 x 43.48 GB = 347.8 GB < 811.7 GB of weights


def test_a_small_model_with_a_loose_target_hits_no_wall() -> None:
    # Llama 3.1 8B decode, batch 8, 4k context, 50 ms TPOT on H100s: 20.36 GB fits one H100;
    # a step reads 19.35 GB: 19.35e9/2.8475e12 = 6.8 ms <= 50 ms. Demand 10 tokens/s: ample.
    one, eight = (
        estimate(preset("llama-3.1-8b"), phase="decode", batch=b, context=4096) for b in (1, 8)
    )
    assert eight.bytes_per_unit * 8 / 2.8475e12 == pytest.approx(6.8e-3, rel=1e-2)
    # Max batch: memory(b) = M0 + b·Ms through the footprints at b = 1 and 8; the SLO allows
    # (0.05·2.8475e12 − B0)/Bs with bytes(b) = B0 + b·Bs through the step bytes at 1 and 8.
    ms = (eight.memory_footprint_bytes - one.memory_footprint_bytes) / 7
    m0 = one.memory_footprint_bytes - ms
    bs = (eight.bytes_per_unit * 8 - one.bytes_per_unit) / 7
    b0 = one.bytes_per_unit - bs
    by_memory = math.floor((H100_USABLE_BYTES - m0) / ms)
    by_slo = math.floor((0.05 * 2.8475e12 - b0) / bs)
    # M0 = 16.06 GB, Ms = 0.5374 GB: (76.97 - 16.06)/0.5374 = 113.3 -> 113 sequences of 4k
    # tokens (104 when the H100 was read as 80e9 bytes).
    assert by_memory < by_slo and by_memory == 113
    row = _walls([_served("llama-3.1-8b", 8, 4096, "h100", tpot_slo_s=0.05)]).iloc[0]
    assert pd.isna(row["wall"]) and pd.isna(row["wall_month"])
    assert row["devices_per_replica"] == 1 and row["max_batch"] == by_memory
    assert row["replica_accelerator_id"] == "nvidia-h100-sxm"


def test_json_rows_carry_the_walls() -> None:
    ranking = _walls(
        [
            _served("llama-3.1-70b", 1, 4096, "h100", tpot_slo_s=0.002),
            _served("llama-3.1-8b", 8, 4096, "h100", tpot_slo_s=0.05),
        ]
    ).reset_index()
    rows = {r["workload_id"]: r for r in ranking_rows(ranking)}
    assert rows["llama-3.1-70b-b1"]["wall"] == "latency"
    assert rows["llama-3.1-70b-b1"]["wall_month"] == "2027-01"
    assert rows["llama-3.1-8b-b8"]["wall"] is None
    assert rows["llama-3.1-8b-b8"]["devices_per_replica"] == 1


def _by_hand(**overrides: float) -> tuple[StepModel, Hardware]:
    figures = {"b0": 0.0, "bs": 1e9, "fs": 0.0, "a": 1e7, "slo": np.nan, "cap": 8.0}
    figures.update(overrides)
    one = np.ones(1)
    model = StepModel(
        memory_fixed_bytes=one * 1e9,
        memory_per_sequence_bytes=one * 0.0,
        step_fixed_bytes=one * figures["b0"],
        step_bytes_per_sequence=one * figures["bs"],
        step_flops_per_sequence=one * figures["fs"],
        allreduce_bytes_per_sequence=one * figures["a"],
        batch=one,
        slo_s=one * figures["slo"],
        max_devices=one * figures["cap"],
        overhead_times=one * 0.0,
        collective_calls=one * figures.get("calls", 0.0),
        fixed_devices=one * np.nan,
        memory_copied_per_sequence_bytes=one * 0.0,
        step_copied_bytes_per_sequence=one * 0.0,
        counts_row=np.zeros(1, dtype=np.int64),
        count_table=np.array([[np.inf, *range(1, 9), np.inf]], dtype=float),
    )
    hw = Hardware(
        memory_bytes=np.array([1e12]),
        bandwidth_bytes_per_s=np.array([1e12]),
        flops_per_s=np.array([[1e15]]),
        interconnect_bytes_per_s=np.array([1e11]),
        overhead_s=np.array([[0.0]]),
        link_latency_s=np.array([figures.get("latency", 0.0)]),
    )
    return model, hw


def test_the_all_reduce_is_a_known_share_of_the_step() -> None:
    # 1 GB read per step on 4 devices of 1 TB/s: 1e9/(4·1e12) = 0.25 ms. Ring all-reduce of
    # 10 MB of activations per step over 100 GB/s links: 2·(4−1)/4 · 1e7/1e11 = 0.15 ms.
    # Step 0.40 ms, of which the all-reduce is 0.15/0.40 = 3/8.
    model, hw = _by_hand()
    total = step_s(model, hw, np.array([[4.0]]), 1.0)[0, 0]
    assert total == pytest.approx(0.4e-3)
    no_comm = step_s(model, hw, np.array([[1.0]]), 1.0)[0, 0] / 4
    assert (total - no_comm) / total == pytest.approx(3 / 8)


def test_the_fewest_devices_that_meet_the_target_and_a_comm_bound_latency_wall() -> None:
    # One device: 1 ms; K = 2·A/IC = 0.2 ms; step(n) = 0.2 + 0.8/n. A 0.45 ms target needs
    # 0.8/n <= 0.25: n >= 3.2 -> 4 (step(3) = 0.467 ms, step(4) = 0.4 ms).
    model, hw = _by_hand(slo=0.45e-3)
    replicas = size_replicas(model, hw)
    assert replicas.latency_devices[0, 0] == 4 and replicas.devices[0, 0] == 4
    # A target of 0.2 ms is below K: no number of devices meets it (latency wall), and
    # with a cap of 3, 0.45 ms is out of reach too.
    for overrides in ({"slo": 0.2e-3}, {"slo": 0.45e-3, "cap": 3.0}):
        model, hw = _by_hand(**overrides)
        replicas = size_replicas(model, hw)
        assert not replicas.latency_ok[0, 0] and np.isnan(replicas.devices[0, 0])


def test_the_step_overhead_is_paid_whatever_the_devices() -> None:
    # As above, plus 10 layers x 10 us of overhead: step(n) = 0.2 + 0.8/n + 0.1 ms. A 0.45 ms
    # target now needs 0.8/n <= 0.15: n >= 5.33 -> 6 (step(6) = 0.4333 ms); 0.3 ms is out of
    # reach (below K + o) whatever n.
    model, hw = _by_hand(slo=0.45e-3)
    model = replace(model, overhead_times=np.array([10.0]))
    hw = replace(hw, overhead_s=np.array([[10e-6]]))
    assert step_s(model, hw, np.array([[6.0]]), 1.0)[0, 0] == pytest.approx(0.4333e-3, rel=1e-3)
    assert size_replicas(model, hw).latency_devices[0, 0] == 6
    model = replace(model, slo_s=np.array([0.3e-3]))
    assert not size_replicas(model, hw).latency_ok[0, 0]


def test_each_all_reduce_call_pays_the_link_latency_on_more_than_one_device() -> None:
    """As above (step(n) = 0.2 + 0.8/n ms), plus 20 all-reduce calls a step at 5 us each:
    0.1 ms on any n > 1, none on one device. A 0.45 ms target now needs
    0.8/n <= 0.15: n >= 5.33 -> 6 (step(6) = 0.2 + 0.1333 + 0.1 = 0.4333 ms)."""
    model, hw = _by_hand(slo=0.45e-3, calls=20.0, latency=5e-6)
    assert step_s(model, hw, np.array([[1.0]]), 1.0)[0, 0] == pytest.approx(1e-3)
    assert step_s(model, hw, np.array([[6.0]]), 1.0)[0, 0] == pytest.approx(0.4333e-3, rel=1e-3)
    assert size_replicas(model, hw).latency_devices[0, 0] == 6


def test_a_copied_cache_is_held_and_read_whole_on_every_device() -> None:
    """The hand-built row (memory 1 GB fixed, 1 GB read per sequence a step, no compute,
    devices of 1 TB usable at 0.9 and 1 TB/s), plus a latent copied on every device: 100 GB
    held and 0.1 GB read per sequence (Mc, Bc), batch 8.
    Memory on n devices: 1e9/n + 8 x 100e9 = 800 GB + 1e9/n <= 900 GB: n_fit = 1 at batch 8;
    at batch 9, 900e9 + 1e9/n > 900e9 whatever n: no count holds it (capacity wall).
    Step at n = 4, b = 8: 8 x 1e9/(4 x 1e12) = 2 ms split, + 8 x 0.1e9/1e12 = 0.8 ms copied,
    + the ring all-reduce 2·3/4 · 8·1e7/1e11 = 1.2 ms: 4.0 ms.
    Max batch on 4 devices, by memory: (4 x 900e9 − 1e9)/(0 + 4 x 100e9) = 8.9975 -> 8."""
    model, hw = _by_hand()
    model = replace(
        model,
        batch=np.array([8.0]),
        memory_copied_per_sequence_bytes=np.array([100e9]),
        step_copied_bytes_per_sequence=np.array([0.1e9]),
    )
    assert size_replicas(model, hw).fit_devices[0, 0] == 1
    assert step_s(model, hw, np.array([[4.0]]), 8.0)[0, 0] == pytest.approx(4.0e-3)
    wide = replace(model, batch=np.array([9.0]))
    replicas = size_replicas(wide, hw)
    assert not replicas.fits[0, 0] and np.isnan(replicas.devices[0, 0])
    forced = replace(model, memory_fixed_bytes=np.array([3000e9]))  # 3 TB: n >= 3000/100 = 30
    assert size_replicas(forced, hw).fit_devices[0, 0] == np.inf  # above the cap of 8
    four = replace(model, memory_fixed_bytes=np.array([250e9]))  # 250/100: 2.5 -> 3 devices
    replicas = size_replicas(four, hw)
    assert replicas.devices[0, 0] == 3
    assert replicas.max_batch[0, 0] == np.floor((3 * 900e9 - 250e9) / (3 * 100e9))  # 8


def test_a_replica_is_sized_on_a_count_its_model_can_be_laid_out_on() -> None:
    """The hand-built row, 3.5 TB fixed: 3.5e12/0.9e12 = 3.9 -> 4 devices where any count
    will do; where the model's table lists only 1, 2 and 8 (as a 128-head model on counts up
    to 8 whose other widths refuse 4), 8."""
    model, hw = _by_hand()
    model = replace(model, memory_fixed_bytes=np.array([3.5e12]))
    assert size_replicas(model, hw).devices[0, 0] == 4
    table = np.array([[1.0, 1.0, 2.0, 8.0, 8.0, 8.0, 8.0, 8.0, 8.0, np.inf]])
    sparse = replace(model, count_table=table)
    assert sparse.laid_out(np.array([[3.0]]))[0, 0] == 8
    assert sparse.largest_laid_out(np.array([[7.0]]))[0, 0] == 2
    assert size_replicas(sparse, hw).devices[0, 0] == 8


def test_an_mla_model_that_overflows_its_tensor_parallel_replica_is_lifted_by_dp_attention() -> (
    None
):
    """DeepSeek-V3, FP8 weights and latents, decode at batch 512 over 4,096 tokens, on a pool
    of eight H200s (0.9 x 143,771 MiB = 135.7 GB usable each). Tensor parallel over the eight
    (the engine's default, the row states no layout), every device holds a 1/8 share of the
    weights and the whole batch's latents: 158.1 GB, over 135.7 GB, and no count up to the cap
    of 8 helps (the copied latents alone do not shrink): a capacity wall. Served
    dp_attention=8,ep=8, each attention group holds only its 64 sequences' latents: 103.3 GB
    per device, which fits; the remedy names that layout first."""
    catalog = builtin_catalog()
    e = estimate(
        preset("deepseek-v3"), phase="decode", batch=512, context=4096,
        weights="fp8", kv="fp8", activations="fp8",
    )  # fmt: skip
    row = {
        "workload_id": "dsv3", "name": "dsv3", "owner": "o", "pool": "h200",
        **e.workload_columns(), "demand_units_per_s": 10.0, "demand_growth_per_year": 0.0,
    }  # fmt: skip
    roadmap = _roadmap([("h200", "2026-01-01", "nvidia-h200-sxm", 8)])
    workloads = validate_frame(pd.DataFrame([row]), WORKLOADS, "w")
    projection = project(workloads, roadmap, calibrate(catalog), START, 12, catalog=catalog)
    ranked = rank(projection, with_mitigations=False, catalog=catalog).ranking
    walls = ranked.set_index("workload_id").loc["dsv3"]
    assert walls["wall"] == "capacity"
    assert str(walls["wall_remedy"]).startswith("served dp_attention=8,ep=8")
    stated = validate_frame(
        pd.DataFrame([{**row, "layout": "dp_attention=8,ep=8"}]), WORKLOADS, "w"
    )
    lifted = project(stated, roadmap, calibrate(catalog), START, 12, catalog=catalog)
    assert lifted.serving is not None and lifted.serving.devices.tolist() == [8]


def test_what_lifts_a_latency_or_capacity_wall() -> None:
    # Without interconnect figures (no communication term), 70B at 4 ms: bf16 on 8 H100s is
    # 140.37e9/(8 x 2.8475e12) = 6.16 ms, a latency wall. fp8 weights+KV halve the weights:
    # ~70.6e9/(8 x 2.8475e12) = 3.1 ms <= 4 ms. At bf16, a catalog model lifts it when its
    # usable bandwidth over 8 devices reads a step in 4 ms: 0.85 x BW >= 140.37e9/(8 x 4e-3),
    # BW >= 5.16 TB/s (MI300X's 5.3 does, H200's 4.8 does not), it has a bf16 peak and 8 of it
    # hold the 142.45 GB: the three slowest such models are listed.
    # 405B at 64 x 128k on L40S: even int4 (203 GB of weights + 1.08 TB of KV cache) is over
    # 8 x 43.48 GB = 347.8 GB, and at bf16 (5.14 TB) no catalog device holds it within 8: none
    # found.
    catalog = builtin_catalog().assign(interconnect_bandwidth_bytes_per_s=None)
    e = estimate(preset("llama-3.1-70b"), phase="decode", batch=1, context=4096)
    needed = e.bytes_per_unit / (8 * 0.85 * 4e-3)
    assert needed == pytest.approx(5.16e12, rel=1e-3)
    lifting = catalog[
        (catalog["mem_bandwidth_bytes_per_s"] >= needed)
        & catalog["peak_flops_per_s_bf16"].notna()
        & (8 * 0.9 * catalog["memory_bytes"] >= e.memory_footprint_bytes)
    ].sort_values("mem_bandwidth_bytes_per_s", kind="stable")
    assert "amd-mi300x" in set(lifting["accelerator_id"])
    assert "nvidia-h200-sxm" not in set(lifting["accelerator_id"])
    expected = ", ".join(lifting["accelerator_id"].head(3))
    ranking = _walls(
        [
            _served("llama-3.1-70b", 1, 4096, "h100", tpot_slo_s=0.004),
            _served("llama-3.1-405b", 64, 131072, "l40s", tpot_slo_s=0.1),
        ],
        catalog,
    )
    latency = ranking.loc["llama-3.1-70b-b1"]
    assert latency["wall"] == "latency"
    assert latency["wall_remedy"] == f"fp8 weights+KV; or on {expected}"
    capacity = ranking.loc["llama-3.1-405b-b64"]
    assert capacity["wall"] == "capacity" and capacity["wall_remedy"] == "none found"


def test_a_prefill_time_to_first_token_sizes_the_replica_or_is_a_latency_wall() -> None:
    # Llama 3.1 8B prefill of one 4,096-token prompt on H100s (no interconnect figure: no
    # communication): 4096 x 15.0 GFLOP/token / 692.65e12 = 88.9 ms of compute against
    # 12.6 ms of memory traffic: compute-bound. A 50 ms TTFT needs ceil(88.9/50) = 2 devices;
    # a 10 ms TTFT would need ceil(88.9/10) = 9 > 8: a latency wall.
    e = estimate(preset("llama-3.1-8b"), phase="prefill", batch=1, context=4096)
    one_device = e.flops_per_unit * 4096 / 692.65e12
    assert one_device == pytest.approx(88.9e-3, rel=1e-3)
    assert e.bytes_per_unit * 4096 / 2.8475e12 < one_device
    catalog = builtin_catalog().assign(interconnect_bandwidth_bytes_per_s=None)

    def prefill(ttft: float) -> dict[str, object]:
        return {
            "workload_id": f"rag-{ttft}",
            "name": "rag",
            "owner": "o",
            "pool": "h100",
            **e.workload_columns(),
            "demand_units_per_s": 10.0,
            "demand_growth_per_year": 0.0,
            "ttft_slo_s": ttft,
        }

    ranking = _walls([prefill(0.05), prefill(0.01)], catalog)
    assert math.ceil(one_device / 0.05) == 2
    assert ranking.loc["rag-0.05", "devices_per_replica"] == 2
    assert ranking["wall"].isna()["rag-0.05"]
    assert math.ceil(one_device / 0.01) == 9
    assert ranking.loc["rag-0.01", "wall"] == "latency"

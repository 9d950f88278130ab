"""Production efficiency: the arithmetic by hand, and the telemetry that must be set aside."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from hardware_profiles.catalog import builtin_catalog
from tasks.analysis.supply.production import (
    BYTES_MOVED,
    ENGINE_COLUMNS,
    GPU_COLUMNS,
    WEAKER,
    Observation,
    ServedModel,
    Window,
    bandwidth_efficiency,
    row_line,
    served_name,
    step_cost,
)
from tasks.analysis.supply.production_rows import observe_rows
from tasks.analysis.supply.telemetry_checks import (
    amd_bandwidth_utilization,
    missing_profiling,
    scrape_gaps,
    shared_gpus,
)
from tasks.analysis.workload.presets import preset
from tasks.analysis.workload.workload_model import estimate
from tasks.prometheus import engine_query

H100_BW = 3.35e12
LLAMA_8B = ServedModel("agent", "llama-3.1-8b", "bf16", "bf16", "bf16")


def test_efficiency_is_bytes_over_time_gpus_and_spec() -> None:
    """1.675 GB in 1 ms on one 3.35 TB/s H100 is 1.675 TB/s: 0.5 of spec. The same step on
    two devices in 1 ms is half that: 0.25."""
    assert bandwidth_efficiency(1.675e9, 1e-3, 1, H100_BW) == pytest.approx(0.5)
    assert bandwidth_efficiency(1.675e9, 1e-3, 2, H100_BW) == pytest.approx(0.25)


def test_amds_profiler_bytes_over_its_window_and_maximum_bandwidth() -> None:
    """2.5e6 KiB read and written in a 1 ms window is 2.5e6 × 1024 B / 1e-3 s = 2.56e12 B/s;
    over a 5,300 GB/s MI300X, 2.56e12 / 5.3e12 = 0.4830. A maximum of 0 (a secondary
    partition) or amd-smi's UINT64_MAX sentinel is no bandwidth: NaN, never a figure."""
    got = amd_bandwidth_utilization(
        np.array([2.5e6, 2.5e6, 2.5e6]), 1e-3, np.array([5300.0, 0.0, 2.0**64 - 1])
    )
    assert got[0] == pytest.approx(2.56e12 / 5.3e12)
    assert np.isnan(got[1:]).all()


def test_a_fractional_batch_interpolates_the_workload_model() -> None:
    """A mean batch of 2.5 costs halfway between the workload model's batch 2 and batch 3
    steps (each bytes_per_unit × batch, decode units being tokens)."""

    def replica(batch: int) -> float:
        e = estimate(preset("llama-3.1-8b"), phase="decode", batch=batch, context=4096)
        return e.bytes_per_unit * batch

    assert step_cost(LLAMA_8B, 2.5, 4096).bytes == pytest.approx((replica(2) + replica(3)) / 2)
    assert step_cost(LLAMA_8B, 3.0, 4096).bytes == pytest.approx(replica(3))


def test_a_scrape_gap_is_reported_not_filled() -> None:
    """Samples every 300 s at 0, 300, 600, then 1800, 2100: one gap, 600 s to 1800 s (0.3 h)."""
    gaps = scrape_gaps(np.array([0, 300, 600, 1800, 2100.0]), 300, "GPU u1")
    assert [(g.start_s, g.end_s) for g in gaps] == [(600.0, 1800.0)]
    assert gaps[0].describe() == "scrape gap in GPU u1: 1970-01-01 00:10 UTC, 0.3 h, not filled"
    assert scrape_gaps(np.arange(0, 3000, 300.0), 300, "GPU u1") == []


def _gpus(rows: list[tuple[str, str, float, float]], mig: str = "") -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "uuid": uuid,
                "gpu": "0",
                "host": "host-a",
                "device_kind": "NVIDIA H100 80GB HBM3",
                "namespace": "ns",
                "pod": pod,
                "time_s": 0.0,
                "bandwidth_utilization": dram,
                "gpu_util": util,
                "bandwidth_source": "dcgm",
                "mig_instance": mig,
            }
            for uuid, pod, dram, util in rows
        ],
        columns=list(GPU_COLUMNS),
    )


def test_a_gpu_several_pods_use_is_shared_and_zero_profiling_while_busy_is_missing() -> None:
    gpus = _gpus([("u1", "p1", 0.3, 50), ("u1", "p2", 0.0, 50), ("u2", "p3", 0.0, 0)])
    assert shared_gpus(gpus) == {"u1": ["ns/p1", "ns/p2"]}
    # 0 with the GPU busy: missing; 0 with the GPU idle: idle; 0.3: a reading.
    assert missing_profiling(gpus).tolist() == [False, True, False]


def test_served_name_is_the_queries_model_name_selector() -> None:
    query = engine_query("vllm", "decode", "meta-llama/Llama-3.1-8B-Instruct")
    assert served_name(query) == "meta-llama/Llama-3.1-8B-Instruct"
    assert served_name("sum(rate(tgi_request_generated_tokens_sum[5m]))") is None


def _planted(
    samples: int,
    batch: int = 4,
    context: int = 2048,
    kv_dtype: str = "auto",
    ttft_s: float | np.ndarray = np.nan,
) -> tuple[pd.DataFrame, float]:
    """One vLLM server on one H100 whose step takes the workload model's bytes at 0.5 of spec."""
    e = estimate(preset("llama-3.1-8b"), phase="decode", batch=batch, context=context)
    step_s = e.bytes_per_unit * batch / (H100_BW * 0.5)
    times = 300.0 * np.arange(samples)
    engine = pd.DataFrame(
        {
            "server": "vllm ns/p1",
            "model_name": "meta-llama/Llama-3.1-8B-Instruct",
            "namespace": "ns",
            "pod": "p1",
            "host": "",
            "engine": "vLLM 0.10+ names",
            "time_s": times,
            "batch": float(batch),
            "step_s": step_s,
            "context_tokens": float(context),
            "kv_cache_usage": 0.5,
            "engine_bytes_per_s_per_gpu": np.nan,
            "kv_cache_dtype": kv_dtype,
            "ttft_s": ttft_s,
        },
        columns=list(ENGINE_COLUMNS),
    )
    return engine, step_s


def _workloads() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "workload_id": ["agent"],
            "phase": ["decode"],
            "precision": ["bf16"],
            "model_preset": ["llama-3.1-8b"],
            "demand_query": [engine_query("vllm", "decode", "meta-llama/Llama-3.1-8B-Instruct")],
        }
    )


def test_observe_rows_by_hand() -> None:
    """Step time planted at 0.5 of spec → efficiency 0.5; DCGM reads 0.625 → memwall's bytes
    are 0.5 / 0.625 − 1 = −20 % of what DCGM saw; batch 4 with the KV cache half full → 8
    would fit."""
    engine, step_s = _planted(10)
    gpus = pd.concat([_gpus([("u1", "p1", 0.625, 80)]).assign(time_s=t) for t in engine.time_s])
    window = Window(3000.0, 1, 300.0)
    seen = observe_rows(engine, gpus, builtin_catalog(), _workloads(), window, min_samples=5)
    row = seen.rows.iloc[0].to_dict()
    assert row["workload_id"] == "agent" and row["accelerator_id"] == "nvidia-h100-sxm"
    assert row["production_bandwidth_efficiency"] == pytest.approx(0.5)
    assert row["achieved_bandwidth_bytes_per_s"] == pytest.approx(0.5 * H100_BW)
    assert row["byte_model_error"] == pytest.approx(-0.2)
    assert row["batch_that_fits"] == pytest.approx(8)
    assert row["production_bandwidth_spread"] == 0.0
    assert row["measured_step_s"] == pytest.approx(step_s)
    assert row["verdict"] == (
        "bandwidth-bound: 50 % of spec bandwidth; the batch is 4 where 8 would fit "
        "(KV cache 50 % full)"
    )
    assert row["source"] == "measured in production, 1 day to 1970-01-01 00:50 UTC, 1 GPUs"
    assert seen.findings == ()

    few = observe_rows(engine, gpus, builtin_catalog(), _workloads(), window, min_samples=20)
    assert pd.isna(few.rows.iloc[0]["production_bandwidth_efficiency"])
    assert "10 usable samples in the window, fewer than 20: does not calibrate" in str(
        few.rows.iloc[0]["notes"]
    )


def test_a_server_on_a_shared_gpu_reaches_no_row() -> None:
    engine, _ = _planted(10)
    gpus = pd.concat(
        [
            _gpus([("u1", "p1", 0.6, 80), ("u1", "p9", 0.6, 80)]).assign(time_s=t)
            for t in engine.time_s
        ]
    )
    seen = observe_rows(
        engine, gpus, builtin_catalog(), _workloads(), Window(3000.0, 1, 300.0), min_samples=5
    )
    assert seen.rows.empty
    assert seen.findings[0].startswith("GPU u1 on host-a is shared by 2 pods (ns/p1, ns/p9)")
    assert (
        seen.findings[-1]
        == "server vllm ns/p1 (meta-llama/Llama-3.1-8B-Instruct): its GPU is shared; left out"
    )


def test_production_efficiency_per_model_is_the_gpu_weighted_median() -> None:
    """Rows at 0.4 on 1 GPU and 0.6 on 3 GPUs: cumulative weights 1, 4; half of 4 is 2, first
    reached at the second row: 0.6 (the GPUs at 0.6 are the majority)."""
    rows = pd.DataFrame(
        {
            "accelerator_id": ["h", "h"],
            "gpus": [1, 3],
            "production_bandwidth_efficiency": [0.4, 0.6],
            "production_bandwidth_spread": [0.0, 0.0],
            "window": ["7 days to x", "7 days to x"],
        }
    )
    found = Observation(rows, ()).production_efficiencies()[("h", "decode")]
    assert found.value == 0.6
    assert found.spread == pytest.approx(np.std(np.log([0.4, 0.6])))
    assert found.source == "measured in production, 7 days to x, 4 GPUs"


def test_a_workloads_own_production_efficiency_is_its_own_row() -> None:
    """w on h in two pools (0.5 on 2 GPUs, 0.7 on 6) and v on h at 0.3: w's own figure on h
    is the row with more GPUs, 0.7, with that row's spread and source; v's is 0.3; a row that
    did not calibrate (NaN) gives w nothing on g."""
    rows = pd.DataFrame(
        {
            "workload_id": ["w", "w", "v", "w"],
            "accelerator_id": ["h", "h", "h", "g"],
            "gpus": [2, 6, 4, 1],
            "production_bandwidth_efficiency": [0.5, 0.7, 0.3, np.nan],
            "production_bandwidth_spread": [0.01, 0.02, 0.03, np.nan],
            "source": ["pool a", "pool b", "pool b", "pool b"],
        }
    )
    seen = Observation(rows, ())
    mine = seen.workload_efficiencies("w")
    assert list(mine) == [("h", "decode")]
    assert (mine["h", "decode"].value, mine["h", "decode"].spread) == (0.7, 0.02)
    assert mine["h", "decode"].source == "pool b"
    assert seen.workload_efficiencies("v")["h", "decode"].value == 0.3
    assert seen.workload_efficiencies("u") == {}


def test_a_mig_slice_is_reported_and_left_out() -> None:
    """Two pods on two MIG instances of one GPU are not a time-sliced GPU, but a slice's share
    of the spec bandwidth is unknown: each is one line, and no row."""
    engine, _ = _planted(10)
    gpus = pd.concat(
        [_gpus([("u1", "p1", 0.6, 80)], mig="1").assign(time_s=t) for t in engine.time_s]
        + [_gpus([("u1", "p2", 0.6, 80)], mig="2").assign(time_s=t) for t in engine.time_s]
    )
    seen = observe_rows(
        engine, gpus, builtin_catalog(), _workloads(), Window(3000.0, 1, 300.0), min_samples=5
    )
    assert seen.rows.empty
    assert seen.findings[:2] == (
        "GPU u1 on host-a, MIG instance 1 (ns/p1): a MIG slice's share of the spec bandwidth "
        "is not in the catalog; left out",
        "GPU u1 on host-a, MIG instance 2 (ns/p2): a MIG slice's share of the spec bandwidth "
        "is not in the catalog; left out",
    )
    assert not any("shared" in f for f in seen.findings)


def test_the_engines_kv_dtype_stands_where_the_row_says_otherwise() -> None:
    """The engine states an fp8 cache (vllm:cache_config_info) for a workload written with a
    bf16 one: a step reads half the KV bytes, so at the same step time the efficiency is
    bytes(fp8 KV) / bytes(bf16 KV) of the planted 0.5, and a note says so."""
    engine, _ = _planted(10, kv_dtype="fp8")
    gpus = pd.concat([_gpus([("u1", "p1", 0.5, 80)]).assign(time_s=t) for t in engine.time_s])
    seen = observe_rows(
        engine, gpus, builtin_catalog(), _workloads(), Window(3000.0, 1, 300.0), min_samples=5
    )
    row = seen.rows.iloc[0]

    def replica(kv: str) -> float:
        e = estimate(preset("llama-3.1-8b"), phase="decode", batch=4, context=2048, kv=kv)
        return e.bytes_per_unit * 4

    expected = 0.5 * replica("fp8") / replica("bf16")
    assert row["production_bandwidth_efficiency"] == pytest.approx(expected)
    assert "the engine caches the KV in fp8 where workload agent says bf16" in row["notes"]


def test_memory_controller_busy_time_is_shown_as_the_weaker_signal_and_never_compared() -> None:
    """An AMD GPU with only gpu_umc_activity (70 % busy): the row's bandwidth utilization is
    0.7, marked weaker in its signal and its source; the efficiency still comes from the
    engine's step (planted 0.5), and no byte-model error is drawn from a busy time."""
    engine, _ = _planted(10)
    gpus = pd.concat(
        [
            _gpus([("u1", "p1", 0.7, np.nan)]).assign(time_s=t, weaker_signal=True)
            for t in engine.time_s
        ]
    )
    seen = observe_rows(
        engine, gpus, builtin_catalog(), _workloads(), Window(3000.0, 1, 300.0), min_samples=5
    )
    row = seen.rows.iloc[0].to_dict()
    assert row["bandwidth_utilization"] == pytest.approx(0.7)
    assert row["bandwidth_signal"] == WEAKER
    assert row["production_bandwidth_efficiency"] == pytest.approx(0.5)
    assert row["byte_model_error"] is None
    assert row["source"].endswith(f"1 GPUs; bandwidth utilization {WEAKER}")
    assert "not compared with memwall's bytes" in row["notes"]
    # The efficiency an audit takes from this row names production, not the busy time.
    found = seen.production_efficiencies()[("nvidia-h100-sxm", "decode")]
    assert found.value == pytest.approx(0.5) and "weaker" not in found.source


def test_bytes_moved_stand_where_a_gpu_also_reports_busy_time() -> None:
    """The same GPU read both ways (0.625 from bytes moved, 0.9 busy): the bytes stand, and
    memwall's byte-model error is 0.5 / 0.625 − 1 = −20 %."""
    engine, _ = _planted(10)
    gpus = pd.concat(
        [_gpus([("u1", "p1", 0.625, 80)]).assign(time_s=t) for t in engine.time_s]
        + [
            _gpus([("u1", "p1", 0.9, 80)]).assign(time_s=t, weaker_signal=True)
            for t in engine.time_s
        ]
    )
    seen = observe_rows(
        engine, gpus, builtin_catalog(), _workloads(), Window(3000.0, 1, 300.0), min_samples=5
    )
    row = seen.rows.iloc[0].to_dict()
    assert row["bandwidth_signal"] == BYTES_MOVED
    assert row["bandwidth_utilization"] == pytest.approx(0.625)
    assert row["byte_model_error"] == pytest.approx(-0.2)


def test_time_to_first_token_is_the_windows_median_with_its_spread() -> None:
    """Per-sample TTFT means of 0.2 s and 0.3 s alternating (10 samples): median 0.25 s;
    spread std(ln) = |ln 0.3 − ln 0.2| / 2 = 0.2027."""
    ttft = np.tile([0.2, 0.3], 5)
    engine, _ = _planted(10, ttft_s=ttft)
    gpus = pd.concat([_gpus([("u1", "p1", 0.5, 80)]).assign(time_s=t) for t in engine.time_s])
    seen = observe_rows(
        engine, gpus, builtin_catalog(), _workloads(), Window(3000.0, 1, 300.0), min_samples=5
    )
    row = seen.rows.iloc[0]
    assert row["ttft_s"] == pytest.approx(0.25)
    assert row["ttft_spread"] == pytest.approx(abs(np.log(0.3 / 0.2)) / 2)


def test_a_rows_line_is_its_verdict_or_notes_then_its_ttft() -> None:
    """A frame's missing values are NaN, not None: a row that calibrates nothing says its
    notes, and a TTFT the engine did not export says nothing."""
    nan = float("nan")
    assert row_line("bandwidth-bound", "n", 0.35, 0.12) == (
        "bandwidth-bound; time to first token 350 ms ±12 %"
    )
    assert row_line(nan, "no batch exported", nan, nan) == "no batch exported"
    assert row_line(None, nan, 0.3, 0.0) == "time to first token 300 ms ±0 %"


def test_a_servers_busy_time_is_not_mixed_with_anothers_bytes() -> None:
    """Two servers of one model on one accelerator model: p1's GPU reports bytes moved
    (0.625), p2's only busy time (0.9). The row's measured bandwidth is the bytes' alone."""
    engine, _ = _planted(10)
    other = engine.assign(server="vllm ns/p2", pod="p2")
    gpus = pd.concat(
        [_gpus([("u1", "p1", 0.625, 80)]).assign(time_s=t) for t in engine.time_s]
        + [
            _gpus([("u2", "p2", 0.9, np.nan)]).assign(time_s=t, weaker_signal=True)
            for t in engine.time_s
        ]
    )
    seen = observe_rows(
        pd.concat([engine, other]),
        gpus,
        builtin_catalog(),
        _workloads(),
        Window(3000.0, 1, 300.0),
        min_samples=5,
    )
    row = seen.rows.iloc[0].to_dict()
    assert row["gpus"] == 2
    assert row["bandwidth_signal"] == BYTES_MOVED
    assert row["bandwidth_utilization"] == pytest.approx(0.625)

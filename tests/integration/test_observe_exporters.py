"""The exporters beyond dcgm-exporter, vLLM and SGLang, from a real Prometheus: AMD's
device-metrics-exporter, GKE's TPU device plugin and TensorRT-LLM, and every engine's time to
first token, backfilled with promtool and read back by ``memwall observe``.

``test_observe_telemetry`` plants the NVIDIA fleet; this module plants its own, under the
exporters' real names and labels, so the data those tests (and the self-check's and
discover's) were written against stays as it is:

- an AMD host with two MI300X serving Llama-3.1-70B on vLLM (tensor parallel 2), the profiler
  fields on: ``gpu_prof_fetch_size`` + ``gpu_prof_write_size`` are the KiB a 1 ms sampling
  window saw moved, planted at the efficiency times a byte-model factor of 1.05 of
  ``gpu_vram_max_bandwidth`` (5,300 GB/s); its ``gpu_umc_activity`` is exported too (and must
  not be read where the bytes are), and one card's profiler counts nothing for an hour while
  ``gpu_gfx_activity`` says it is busy (missing, not idle);
- an AMD host with one MI325X serving Llama-3.1-8B on SGLang with only ``gpu_umc_activity``
  (profiler off): the weaker signal;
- a TPU v6e chip serving Llama-3.1-8B on vLLM, ``memory_bandwidth_utilization`` in percent;
- two H200 serving Llama-3.1-70B on TensorRT-LLM (``trtllm_*``), requests finishing for two
  reasons, and one H200 serving Mixtral on TensorRT-LLM 1.1 (its five request metrics only).

Each step takes the workload model's bytes at the planted efficiency (±3 % noise per scrape);
each engine's TTFT histogram observes a planted mean (±2 %).
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hardware_profiles.catalog import builtin_catalog
from tasks.analysis.workload.presets import preset
from tasks.analysis.workload.workload_model import estimate
from tasks.prometheus import engine_query
from tests.integration.conftest import REPO, backfilled_prometheus, memwall
from tests.integration.test_observe_telemetry import _workloads

pytestmark = pytest.mark.integration

_missing = [tool for tool in ("prometheus", "promtool") if shutil.which(tool) is None]
if _missing:
    pytest.skip(
        f"{' and '.join(_missing)} not installed (Debian package prometheus): the exporters "
        "cannot be tested against a real Prometheus",
        allow_module_level=True,
    )

DAYS = 14
SCRAPE_S = 150
STEP_S = 300
DAY_S = 86400
KIB = 1024
AMD_WINDOW_S = 1e-3  # the exporter's default profiler SamplingInterval, 1000 µs
LLAMA_70B = "meta-llama/Llama-3.1-70B-Instruct"
MIXTRAL = "mistralai/Mixtral-8x7B-Instruct-v0.1"
LLAMA_8B = "meta-llama/Llama-3.1-8B-Instruct"


@dataclass(frozen=True)
class Served:
    workload_id: str
    model_name: str
    preset: str
    engine: str  # vllm, sglang, trtllm
    pod: str
    accelerator_id: str  # the catalog's
    chips: tuple[str, ...]
    efficiency: float
    batch: int
    prompt: float
    generated: float
    kv_usage: float
    ttft_s: float
    dram_factor: float = 1.0

    @property
    def context(self) -> float:
        return self.prompt + self.generated / 2


AMD_BYTES = Served(
    "chat-70b-decode", LLAMA_70B, "llama-3.1-70b", "vllm", "chat70b-mi300x-0", "amd-mi300x",
    ("0", "1"), 0.45, 16, 2000, 300, 0.5, 0.42, 1.05,
)  # fmt: skip
AMD_UMC = Served(
    "agent-8b-decode", LLAMA_8B, "llama-3.1-8b", "sglang", "agent8b-mi325x-0", "amd-mi325x",
    ("0",), 0.35, 8, 3000, 0, 0.4, 0.15,
)  # fmt: skip
TPU = Served(
    "agent-8b-decode", LLAMA_8B, "llama-3.1-8b", "vllm", "agent8b-v6e-0", "google-tpu-v6e",
    ("4804690994094478883-0",), 0.40, 12, 1500, 200, 0.3, 0.2,
)  # fmt: skip
TRTLLM = Served(
    "chat-70b-decode", LLAMA_70B, "llama-3.1-70b", "trtllm", "chat70b-trt-0", "nvidia-h200-sxm",
    ("GPU-t0", "GPU-t1"), 0.60, 32, 2500, 500, 0.7, 0.55,
)  # fmt: skip
# A TensorRT-LLM 1.1 server: only the five request metrics, no batch; its row shows the step
# and the TTFT, and calibrates nothing.
TRTLLM_11 = Served(
    "mixtral-decode", MIXTRAL, "mixtral-8x7b", "trtllm-1.1",
    "mixtral-trt-0", "nvidia-h200-sxm", ("GPU-t2",), 0.5, 8, 2000, 200, 0.5, 0.3,
)  # fmt: skip
SERVED = (AMD_BYTES, AMD_UMC, TPU, TRTLLM)
UMC_PERCENT = 58.0  # the MI325X's memory controller, busy
AMD_PEAK_GB_S = {"amd-mi300x": 5300.0, "amd-mi325x": 6000.0}
CARD_MODEL = {"amd-mi300x": "AMD Instinct MI300X", "amd-mi325x": "AMD Instinct MI325X"}


def _spec_bandwidth(accelerator_id: str) -> float:
    catalog = builtin_catalog()
    row = catalog[catalog["accelerator_id"] == accelerator_id]
    return float(row["mem_bandwidth_bytes_per_s"].iloc[0])


def _batch(served: Served, t: np.ndarray) -> np.ndarray:
    """Whole sequences, ±25 % over each day."""
    return np.maximum(1, np.round(served.batch * (1 + 0.25 * np.sin(2 * np.pi * t / DAY_S))))


def _step_bytes(served: Served, batch: int) -> float:
    e = estimate(preset(served.preset), phase="decode", batch=batch, context=int(served.context))
    return e.bytes_per_unit * batch


def _lines(name: str, labels: str, times: np.ndarray, values: np.ndarray) -> list[str]:
    return [f"{name}{{{labels}}} {v:.6g} {int(t)}" for t, v in zip(times, values, strict=True)]


def _engine(served: Served, t: np.ndarray, rng: np.random.Generator, n: int) -> list[str]:
    """The engine's series: the batch, the KV fill, the measured step, the context and the
    TTFT histogram, under its own names."""
    batch = _batch(served, t)
    bandwidth = len(served.chips) * _spec_bandwidth(served.accelerator_id) * served.efficiency
    seconds = {b: _step_bytes(served, int(b)) / bandwidth for b in np.unique(batch)}
    step = np.array([seconds[b] for b in batch]) * (1 + 0.03 * rng.standard_normal(t.size))
    tokens = batch * SCRAPE_S / step  # inter-token latencies observed per scrape
    requests = np.full(t.size, 0.5)  # requests finished per scrape
    ttft = served.ttft_s * (1 + 0.02 * rng.standard_normal(t.size))
    pod = f'namespace="serving",pod="{served.pod}",instance="10.0.1.{n}:8000"'
    labels = f'model_name="{served.model_name}",{pod}'
    out: list[str] = []
    if served.engine == "sglang":
        out += _lines("sglang:num_running_reqs", labels, t, batch)
        out += _lines("sglang:token_usage", labels, t, np.full(t.size, served.kv_usage))
        out += _lines("sglang:decode_sum_seq_lens", labels, t, batch * served.context)
        out += _lines("sglang:inter_token_latency_seconds_count", labels, t, np.cumsum(tokens))
        out += _lines("sglang:inter_token_latency_seconds_sum", labels, t, np.cumsum(tokens * step))
        ttft_name = "sglang:time_to_first_token_seconds"
    elif served.engine == "vllm":
        out += _lines("vllm:num_requests_running", labels, t, batch)
        out += _lines("vllm:kv_cache_usage_perc", labels, t, np.full(t.size, served.kv_usage))
        out += _lines("vllm:inter_token_latency_seconds_count", labels, t, np.cumsum(tokens))
        out += _lines("vllm:inter_token_latency_seconds_sum", labels, t, np.cumsum(tokens * step))
        for name, mean in (("prompt", served.prompt), ("generation", served.generated)):
            out += _lines(f"vllm:request_{name}_tokens_count", labels, t, np.cumsum(requests))
            out += _lines(f"vllm:request_{name}_tokens_sum", labels, t, np.cumsum(requests * mean))
        ttft_name = "vllm:time_to_first_token_seconds"
    elif served.engine == "trtllm-1.1":
        labels = f'{labels},engine_type="trtllm"'
        out += _lines("trtllm_time_per_output_token_seconds_count", labels, t, np.cumsum(requests))
        out += _lines(
            "trtllm_time_per_output_token_seconds_sum", labels, t, np.cumsum(requests * step)
        )
        finished = f'{labels},finished_reason="stop"'
        out += _lines("trtllm_request_success_total", finished, t, np.cumsum(requests))
        for name, mean_s in (("e2e_request_latency", 20.0), ("request_queue_time", 0.1)):
            out += _lines(f"trtllm_{name}_seconds_count", labels, t, np.cumsum(requests))
            out += _lines(f"trtllm_{name}_seconds_sum", labels, t, np.cumsum(requests * mean_s))
        ttft_name = "trtllm_time_to_first_token_seconds"
    else:  # TensorRT-LLM: its TPOT histogram observes each finished request's mean step
        trt = f'{labels},engine_type="trtllm"'
        out += _lines("trtllm_num_requests_running", trt, t, batch)
        out += _lines("trtllm_kv_cache_utilization", trt, t, np.full(t.size, served.kv_usage))
        out += _lines("trtllm_time_per_output_token_seconds_count", trt, t, np.cumsum(requests))
        out += _lines(
            "trtllm_time_per_output_token_seconds_sum", trt, t, np.cumsum(requests * step)
        )
        for reason, share in (("stop", 0.6), ("length", 0.4)):
            finished = f'{trt},finished_reason="{reason}"'
            out += _lines("trtllm_request_success_total", finished, t, np.cumsum(share * requests))
        out += _lines("trtllm_prompt_tokens_total", trt, t, np.cumsum(requests * served.prompt))
        out += _lines(
            "trtllm_generation_tokens_total", trt, t, np.cumsum(requests * served.generated)
        )
        labels = trt
        ttft_name = "trtllm_time_to_first_token_seconds"
    out += _lines(f"{ttft_name}_count", labels, t, np.cumsum(requests))
    out += _lines(f"{ttft_name}_sum", labels, t, np.cumsum(requests * ttft))
    return out


def _chips(served: Served, t: np.ndarray) -> list[str]:
    """The accelerators' series, as each exporter writes them."""
    measured = served.efficiency * served.dram_factor
    out: list[str] = []
    for i, chip in enumerate(served.chips):
        if served.accelerator_id.startswith("amd-"):
            labels = (
                f'gpu_id="{chip}",serial_number="SN-{served.pod}-{i}",'
                f'card_model="{CARD_MODEL[served.accelerator_id]}",hostname="amd-{served.pod}",'
                'gpu_partition_id="0",gpu_compute_partition_type="spx",'
                f'namespace="serving",pod="{served.pod}",container="server"'
            )
            peak = AMD_PEAK_GB_S[served.accelerator_id]
            out += _lines("gpu_vram_max_bandwidth", labels, t, np.full(t.size, peak))
            if served is AMD_UMC:
                out += _lines("gpu_umc_activity", labels, t, np.full(t.size, UMC_PERCENT))
                continue
            kib = np.full(t.size, measured * peak * 1e9 * AMD_WINDOW_S / KIB)
            if i == 1:  # an hour the profiler counted nothing while the card was busy
                kib[(t >= t[-1] - 3 * DAY_S) & (t < t[-1] - 3 * DAY_S + 3600)] = 0.0
            out += _lines("gpu_prof_fetch_size", labels, t, 0.8 * kib)
            out += _lines("gpu_prof_write_size", labels, t, 0.2 * kib)
            out += _lines("gpu_gfx_activity", labels, t, np.full(t.size, 95.0))
            out += _lines("gpu_umc_activity", labels, t, np.full(t.size, 97.0))  # not read
        elif served.accelerator_id.startswith("google-tpu"):
            labels = (
                f'accelerator_id="{chip}",container="server",make="cloud-tpu",'
                f'model="tpu-v6e-slice",namespace="serving",pod="{served.pod}",tpu_topology="1x1"'
            )
            percent = np.full(t.size, 100 * measured)
            out += _lines("memory_bandwidth_utilization", labels, t, percent)
        else:
            labels = (
                f'gpu="{i}",UUID="{chip}",modelName="NVIDIA H200",Hostname="host-t",'
                f'namespace="serving",pod="{served.pod}"'
            )
            dram = np.full(t.size, measured)
            out += _lines("DCGM_FI_PROF_DRAM_UTIL_RATIO", labels, t, dram)
            out += _lines("DCGM_FI_DEV_GPU_UTIL", labels, t, np.full(t.size, 90.0))
    return out


def openmetrics(end_s: float) -> str:
    rng = np.random.default_rng(2424)
    times = np.arange(end_s - DAYS * DAY_S, end_s + 1, SCRAPE_S)
    lines: list[str] = []
    for n, served in enumerate((*SERVED, TRTLLM_11)):
        lines += _engine(served, times, rng, n)
        lines += _chips(served, times)
    return "\n".join([*lines, "# EOF", ""])


@dataclass(frozen=True)
class Planted:
    url: str
    end: dt.datetime


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Planted]:
    root = tmp_path_factory.mktemp("exporters")
    end_s = float(int(dt.datetime.now(dt.UTC).timestamp()) // 3600 * 3600)
    with backfilled_prometheus(root, openmetrics(end_s)) as url:
        yield Planted(url, dt.datetime.fromtimestamp(end_s, dt.UTC))


def _expected_batch(served: Served, end_s: float) -> float:
    t = np.arange(end_s - DAYS * DAY_S, end_s + 1, STEP_S)
    return float(_batch(served, t).mean())


def test_amd_tpu_and_tensorrt_llm_rows_recover_what_was_planted(
    prometheus: Planted, tmp_path: Path
) -> None:
    from hardware_profiles.parquet import read_table
    from hardware_profiles.schema import WORKLOADS
    from tasks.analysis.supply.production import BYTES_MOVED, WEAKER
    from tasks.observe import observe
    from tasks.telemetry.gpus import AMD_BYTES as AMD_BYTES_NAMES
    from tasks.telemetry.gpus import AMD_UMC as AMD_UMC_NAMES

    workloads = read_table(_workloads(tmp_path), WORKLOADS)
    seen, names = observe(
        {"": prometheus.url}, workloads, builtin_catalog(), days=DAYS, end=prometheus.end
    )
    rows = {(r["workload_id"], r["accelerator_id"]): r for r in seen.rows.to_dict("records")}
    assert len(rows) == len(SERVED) + 1
    for served in SERVED:
        row = rows[(served.workload_id, served.accelerator_id)]
        efficiency = float(row["production_bandwidth_efficiency"])
        batch = _expected_batch(served, prometheus.end.timestamp())
        print(
            f"\n{served.workload_id} on {served.accelerator_id} ({served.engine}): efficiency "
            f"planted {served.efficiency:.3f}, recovered {efficiency:.4f}; measured "
            f"{row['bandwidth_utilization']:.4f} ({row['bandwidth_signal']}); TTFT planted "
            f"{served.ttft_s:.3f} s, recovered {row['ttft_s']:.4f} s ±{row['ttft_spread']:.3f}"
        )
        assert abs(efficiency / served.efficiency - 1) <= 0.03
        assert abs(row["batch"] / batch - 1) <= 0.05
        assert abs(row["context"] / served.context - 1) <= 0.05
        assert abs(row["kv_cache_usage"] - served.kv_usage) <= 0.01
        assert abs(row["ttft_s"] / served.ttft_s - 1) <= 0.05
        assert 0 < row["ttft_spread"] < 0.1
        assert row["gpus"] == len(served.chips)
        assert str(row["source"]).startswith(f"measured in production, {DAYS} days to")
        if served is AMD_UMC:
            # Busy time, shown and marked, never the bytes' measure nor compared with them.
            assert row["bandwidth_utilization"] == pytest.approx(UMC_PERCENT / 100)
            assert row["bandwidth_signal"] == WEAKER
            assert pd.isna(row["byte_model_error"])
            assert str(row["source"]).endswith(f"bandwidth utilization {WEAKER}")
            assert row["names_found"].endswith(AMD_UMC_NAMES)
        else:
            measured = served.efficiency * served.dram_factor
            assert abs(row["bandwidth_utilization"] / measured - 1) <= 0.01
            assert row["bandwidth_signal"] == BYTES_MOVED
            assert abs(row["byte_model_error"] - (1 / served.dram_factor - 1)) <= 0.03
    # The MI300X's busy time (97 %) was exported too, and left: its bytes stand.
    assert AMD_BYTES_NAMES in rows[("chat-70b-decode", "amd-mi300x")]["names_found"]
    assert AMD_UMC_NAMES not in rows[("chat-70b-decode", "amd-mi300x")]["names_found"]
    # TensorRT-LLM 1.1: the step and the TTFT, said to calibrate nothing without a batch.
    old = rows[(TRTLLM_11.workload_id, TRTLLM_11.accelerator_id)]
    assert pd.isna(old["production_bandwidth_efficiency"]) and pd.isna(old["batch"])
    assert old["measured_step_s"] > 0
    assert abs(old["ttft_s"] / TRTLLM_11.ttft_s - 1) <= 0.05
    assert "TensorRT-LLM 1.1 names (the five request metrics" in old["notes"]
    assert "export no batch: the step and TTFT are shown, no efficiency computed" in old["notes"]
    # The newer TensorRT-LLM server exports the five request metrics too: read once, by the
    # newer names.
    assert rows[(TRTLLM.workload_id, TRTLLM.accelerator_id)]["names_found"].startswith(
        "TensorRT-LLM names with iteration statistics"
    )
    joined = " | ".join(names)
    for version in (
        "AMD device-metrics-exporter, profiler fields",
        "AMD device-metrics-exporter, gpu_umc_activity only",
        "GKE TPU device plugin (memory_bandwidth_utilization)",
        "TensorRT-LLM names with iteration statistics",
        "TensorRT-LLM 1.1 names",
        "vLLM 0.10+",
        "SGLang",
        "DCGM 4.6+",
    ):
        assert version in joined
    # The hour the MI300X's profiler counted nothing while busy: missing, not idle.
    assert seen.findings == (
        "GPU SN-chat70b-mi300x-0-1: 12 sample(s) with the profiling field at 0 while the GPU is "
        "busy (DCGM_FI_DEV_GPU_UTIL or AMD's gpu_gfx_activity > 0): missing (profiling not "
        "collected), not idle; left out",
    )


def _no_constants(name: str) -> object:
    raise AssertionError(f"not strict JSON: {name}")


def test_cli_prints_each_workloads_ttft_and_stars_the_weaker_signal(
    prometheus: Planted, tmp_path: Path
) -> None:
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO), "COLUMNS": "250"}
    source = _workloads(tmp_path)
    args = ["observe", "--prometheus", prometheus.url, "--days", "3", "--workloads", str(source)]
    done = memwall([*args, "--json"], env, tmp_path, timeout=300)
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout, parse_constant=_no_constants)
    ttft = {(r["workload_id"], r["accelerator_id"]): r["ttft_s"] for r in rows}
    for served in SERVED:
        assert abs(ttft[(served.workload_id, served.accelerator_id)] / served.ttft_s - 1) <= 0.05
    assert all(r["ttft_spread"] is not None for r in rows)
    table = memwall(args, env, tmp_path, timeout=300)
    assert table.returncode == 0, table.stderr
    assert "TTFT" in table.stdout and "58 %*" in table.stdout
    assert "* measured from gpu_umc_activity (memory controller busy time)" in table.stdout


def test_a_longer_amd_sampling_window_divides_the_bytes_it_counted(
    prometheus: Planted, tmp_path: Path
) -> None:
    """The same KiB counted over a 2,000 µs window are half the bandwidth: the MI300X's
    measured utilization halves (0.45 × 1.05 / 2 = 0.236), its efficiency (from the engine's
    step) does not move."""
    from hardware_profiles.parquet import read_table
    from hardware_profiles.schema import WORKLOADS
    from tasks.observe import observe

    workloads = read_table(_workloads(tmp_path), WORKLOADS)
    seen, _ = observe(
        {"": prometheus.url},
        workloads,
        builtin_catalog(),
        days=2,
        end=prometheus.end,
        amd_sampling_interval_us=2000,
        min_samples=100,
    )
    row = seen.rows.set_index("accelerator_id").loc["amd-mi300x"]
    measured = AMD_BYTES.efficiency * AMD_BYTES.dram_factor / 2
    assert abs(row["bandwidth_utilization"] / measured - 1) <= 0.01
    assert abs(row["production_bandwidth_efficiency"] / AMD_BYTES.efficiency - 1) <= 0.03


def test_discover_names_each_accelerator_by_its_exporters_label(prometheus: Planted) -> None:
    """``workloads discover`` over the same fleet: each served model's accelerators, each
    named by the label its exporter gives (AMD's card_model, the TPU's model, DCGM's
    modelName); the TensorRT-LLM 1.1 server has no batch, so Mixtral's row is not written,
    but, served by TensorRT-LLM alone, it is given TensorRT-LLM's token counter as its demand
    query (1.1 counts no tokens: the query answers nothing, so no demand is fitted)."""
    from tasks.served_workloads import WRITABLE, discover

    found = discover({"": prometheus.url}, builtin_catalog(), days=DAYS, end=prometheus.end)
    rows = {r["model_name"]: r for r in found.proposals.to_dict("records")}
    assert set(rows["meta-llama/Llama-3.1-8B-Instruct"]["accelerators"].split(", ")) == {
        "amd-mi325x",
        "google-tpu-v6e",
    }
    eight = rows["meta-llama/Llama-3.1-8B-Instruct"]["source"]
    assert "AMD card_model / TPU model AMD Instinct MI325X, tpu v6e slice" in eight
    seventy = rows[LLAMA_70B]["source"]
    assert "AMD card_model / DCGM modelName AMD Instinct MI300X, NVIDIA H200" in seventy
    mixtral = rows[MIXTRAL]
    assert mixtral["status"] != WRITABLE
    assert mixtral["demand_query"] == engine_query("trtllm", "decode", MIXTRAL)
    assert mixtral["demand_units_per_s"] is None or np.isnan(mixtral["demand_units_per_s"])

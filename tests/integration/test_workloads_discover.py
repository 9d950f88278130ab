"""``memwall workloads discover`` against a real Prometheus: the fleet that
``test_observe_telemetry`` plants (14 days of dcgm-exporter, vLLM under its old and new names
and SGLang, backfilled with promtool, served on loopback), read back as a workloads file.

Planted there: Llama-3.1-70B on two H100s (vLLM, new names), Llama-3.1-8B on one H100 and one
H200 (vLLM, old names; the H200's server misses 3 hours of scrapes) and a third server of it on
a time-sliced H100, Mixtral-8x7B on one H200 (SGLang). Planted here: Qwen2.5-72B on a node
whose GPUs no DCGM series names (its accelerator from the node's label).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from hardware_profiles.parquet import read_table
from hardware_profiles.schema import WORKLOADS
from tests.integration.conftest import LOOPBACK, REPO, backfilled_prometheus, free_port, memwall
from tests.integration.test_observe_telemetry import (
    BW,
    DAY_S,
    DAYS,
    SERVERS,
    Planted,
    Server,
    _expected_batch,
    _lines,
    _no_constants,
    openmetrics,
    planted_batch,
    step_bytes,
)

pytestmark = pytest.mark.integration

ENV = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO), "COLUMNS": "250"}
CATALOG_ID = {"h100": "nvidia-h100-sxm", "h200": "nvidia-h200-sxm"}


QWEN = "Qwen/Qwen2.5-72B-Instruct"
QWEN_BATCH, QWEN_CONTEXT, QWEN_STEP_S, QWEN_GPUS = 16, 2000, 0.03, 4


def node_labelled(end_s: float) -> list[str]:
    """A fourth server, ``serving/qwen72-0`` (vLLM, new names), on a node whose dcgm-exporter
    is not scraped: kube-state-metrics says its node ``node-c`` carries GPU Feature Discovery's
    ``nvidia.com/gpu.product=NVIDIA-H100-80GB-HBM3`` and that it requests 4 GPUs. Batch 16,
    prompts of 1,800 and 400 generated tokens (context 1,800 + 400/2 = 2,000), a 30 ms step:
    16 / 0.03 = 533.3 tokens/s, flat."""
    times = np.arange(end_s - DAYS * DAY_S, end_s + 1, 300)
    labels = f'model_name="{QWEN}",namespace="serving",pod="qwen72-0",instance="10.0.2.1:8000"'
    tokens = np.cumsum(np.full(times.size, 300 * QWEN_BATCH / QWEN_STEP_S))
    ones = np.ones(times.size)
    lines = [
        *_lines("vllm:num_requests_running", labels, times, QWEN_BATCH * ones),
        *_lines("vllm:kv_cache_usage_perc", labels, times, 0.4 * ones),
        *_lines("vllm:inter_token_latency_seconds_count", labels, times, tokens),
        *_lines("vllm:inter_token_latency_seconds_sum", labels, times, tokens * QWEN_STEP_S),
        *_lines("vllm:generation_tokens_total", labels, times, tokens),
    ]
    for name, mean in (("prompt", 1800), ("generation", 400)):
        count = np.cumsum(0.5 * ones)
        lines += _lines(f"vllm:request_{name}_tokens_count", labels, times, count)
        lines += _lines(f"vllm:request_{name}_tokens_sum", labels, times, count * mean)
    pod = 'namespace="serving",pod="qwen72-0"'
    lines += _lines("kube_pod_info", f'{pod},node="node-c",uid="q1"', times, ones)
    lines += _lines(
        "kube_pod_container_resource_requests",
        f'{pod},container="vllm",node="node-c",resource="nvidia_com_gpu",unit="integer"',
        times,
        QWEN_GPUS * ones,
    )
    for node, product in (("node-c", "NVIDIA-H100-80GB-HBM3"), ("node-d", "")):
        node_labels = f'node="{node}",label_nvidia_com_gpu_product="{product}"'
        lines += _lines("kube_node_labels", node_labels, times, ones)
    return lines


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Planted]:
    root = tmp_path_factory.mktemp("discover")
    end_s = float(int(dt.datetime.now(dt.UTC).timestamp()) // 3600 * 3600)
    planted = openmetrics(end_s).removesuffix("# EOF\n")
    planted += "\n".join([*node_labelled(end_s), "# EOF", ""])
    with backfilled_prometheus(root, planted) as url:
        yield Planted(url, dt.datetime.fromtimestamp(end_s, dt.UTC))


def peak_tokens_per_s(model_name: str) -> float:
    """The demand ``workloads sync`` fits (the mean of each day's busiest hour) as planted:
    every server of the model generates ``batch(t) / step(batch(t))`` tokens per second, with
    ``step(b) = bytes(b) / (gpus · BW · efficiency)``; summed over the servers (the shared GPU's
    too: its tokens are demand), averaged over each hour at 5-minute points as the hourly
    subquery does, and the busiest hour of a day taken (the planted day repeats)."""
    times = np.arange(0, DAY_S, 300.0)
    rates = np.zeros(times.size)
    for s in (s for s in SERVERS if s.model_name == model_name):
        batch = planted_batch(s, times)
        seconds = {
            b: step_bytes(s, int(b)) / (len(s.gpus) * BW[s.accelerator] * s.efficiency)
            for b in np.unique(batch)
        }
        rates += batch / np.array([seconds[b] for b in batch])
    return float(rates.reshape(24, 12).mean(axis=1).max())


def _servers(model_name: str) -> list[Server]:
    return [s for s in SERVERS[:4] if s.model_name == model_name]


def test_discover_proposes_the_three_served_workloads(fleet: Planted) -> None:
    from hardware_profiles.catalog import builtin_catalog
    from tasks.served_workloads import discover

    found = discover({"inference": fleet.url}, builtin_catalog(), days=DAYS, end=fleet.end)
    rows = {r["model_name"]: r for r in found.proposals.to_dict("records")}
    expected = {
        "meta-llama/Llama-3.1-70B-Instruct": ("llama-3.1-70b", "nvidia-h100-sxm", 2),
        "meta-llama/Llama-3.1-8B-Instruct": (
            "llama-3.1-8b", "nvidia-h100-sxm, nvidia-h200-sxm", 2,
        ),
        "mistralai/Mixtral-8x7B-Instruct-v0.1": ("mixtral-8x7b", "nvidia-h200-sxm", 1),
    }  # fmt: skip
    assert set(rows) == {*expected, QWEN}
    end_s = fleet.end.timestamp()
    for name, (preset, accelerators, gpus) in expected.items():
        row = rows[name]
        served = _servers(name)
        batch = float(np.mean([_expected_batch(s, end_s) for s in served]))
        demand = peak_tokens_per_s(name)
        print(
            f"\n{row['workload_id']}: batch {batch:.2f} -> {row['batch']:.2f}, context "
            f"{served[0].context:.0f} -> {row['context']:.0f}, demand {demand:.1f} -> "
            f"{row['demand_units_per_s']:.1f} tokens/s; {row['match']}"
        )
        assert row["status"] == "proposed"
        assert (row["model_preset"], row["accelerators"], row["gpus"]) == (
            preset, accelerators, gpus,
        )  # fmt: skip
        assert row["workload_id"] == f"{preset}-decode" and row["pool"] == "inference"
        assert row["match"].startswith("by repository: ")
        assert abs(row["batch"] / batch - 1) <= 0.05
        assert abs(row["context"] / served[0].context - 1) <= 0.05
        assert abs(row["kv_cache_usage"] - served[0].kv_usage) <= 0.01
        assert abs(row["demand_units_per_s"] / demand - 1) <= 0.05
        assert abs(row["demand_growth_per_year"]) < 0.5  # planted flat: no growth
        assert f'model_name="{name}"' in row["demand_query"]
        # Every row says which series it came from.
        for pod in (s.pod for s in served):
            assert f"serving/{pod}" in row["source"]
        assert "accelerator from DCGM modelName" in row["source"]
    llama_8b, llama_70b = (rows[f"meta-llama/Llama-3.1-{b}-Instruct"] for b in ("8B", "70B"))
    assert "vllm:time_per_output_token_seconds" in llama_8b["source"]
    assert "vllm:inter_token_latency_seconds" in llama_70b["source"]
    mixtral = rows["mistralai/Mixtral-8x7B-Instruct-v0.1"]
    assert "sglang:decode_sum_seq_lens" in mixtral["source"]
    assert mixtral["demand_query"].startswith("sum(rate(sglang:generation_tokens_total")
    # No DCGM series names the Qwen server's pod: its node's label places it.
    qwen = rows[QWEN]
    assert (qwen["model_preset"], qwen["accelerators"], qwen["gpus"]) == (
        "qwen2.5-72b", "nvidia-h100-sxm", QWEN_GPUS,
    )  # fmt: skip
    assert (qwen["batch"], qwen["status"]) == (16, "proposed")
    assert qwen["context"] == pytest.approx(2000, rel=1e-9)  # a rate's ratio: not exact
    assert abs(qwen["demand_units_per_s"] / (QWEN_BATCH / QWEN_STEP_S) - 1) <= 0.01
    assert (
        "accelerator from node label nvidia.com/gpu.product (kube-state-metrics) "
        "NVIDIA-H100-80GB-HBM3" in qwen["source"]
    )
    assert any(f.startswith("server vllm serving/qwen72-0: no GPU series") for f in found.findings)
    assert not any("qwen72-0" in f and "left out" in f for f in found.findings)
    # The time-sliced GPU's server is not among the rows' sources, and is reported.
    assert "serving/nb-1" not in llama_8b["source"]
    assert any("GPU GPU-a3 on host-a is shared by 2 pods" in f for f in found.findings)


def test_one_row_per_served_model_and_pool(fleet: Planted) -> None:
    """The same fleet read as two pools: each model twice, the second pool's ids suffixed."""
    from hardware_profiles.catalog import builtin_catalog
    from tasks.served_workloads import discover

    urls = {"inference": fleet.url, "edge": fleet.url}
    found = discover(urls, builtin_catalog(), days=7, end=fleet.end)
    assert found.proposals.groupby("pool").size().to_dict() == {"edge": 4, "inference": 4}
    ids = dict(zip(found.proposals["pool"] + " " + found.proposals["model_name"],
                   found.proposals["workload_id"], strict=True))  # fmt: skip
    assert ids[f"inference {QWEN}"] == "qwen2.5-72b-decode"
    assert ids[f"edge {QWEN}"] == "qwen2.5-72b-decode-edge"
    assert found.proposals["workload_id"].is_unique
    assert any(f.startswith("pool edge: GPU GPU-a3 on host-a is shared") for f in found.findings)


def test_cli_writes_the_reviewed_file(fleet: Planted, tmp_path: Path) -> None:
    to = tmp_path / "discovered.parquet"
    args = ["workloads", "discover", "--prometheus", fleet.url, "--to", str(to)]
    done = memwall(args, ENV, tmp_path, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "llama-3.1-8b-decode" in done.stdout and "nvidia-h200-sxm" in done.stdout
    assert "wrote 4 discovered workloads to" in done.stderr
    written = read_table(to, WORKLOADS).set_index("workload_id")
    assert sorted(written.index) == ["llama-3.1-70b-decode", "llama-3.1-8b-decode",
                                     "mixtral-8x7b-decode", "qwen2.5-72b-decode"]  # fmt: skip
    row = written.loc["llama-3.1-8b-decode"]
    assert (row["phase"], row["unit"], row["model_preset"], row["batch"]) == (
        "decode", "token", "llama-3.1-8b", 6,
    )  # fmt: skip
    assert row["bytes_per_unit"] > 0 and row["demand_units_per_s"] > 0
    assert str(row["origin"]).startswith(f"memwall workloads discover, {fleet.url}, 7 days to")
    # Run again onto the same file: the ids clash, one line, exit 2, the file as it was.
    before = to.read_bytes()
    again = memwall(args, ENV, tmp_path, timeout=300)
    assert again.returncode == 2
    last = again.stderr.strip().splitlines()[-1]
    assert "duplicate workload_id '" in last and "-decode' (each must be unique)" in last
    assert to.read_bytes() == before


def _alias_fleet(end_s: float) -> str:
    """Eight days of one vLLM server serving under an alias (``--served-model-name support``)
    on one H100: telemetry enough for a row, a name no preset carries."""
    times = np.arange(end_s - 8 * DAY_S, end_s + 1, 300)
    labels = 'model_name="support",namespace="help",pod="support-0",instance="10.0.1.1:8000"'
    tokens = np.cumsum(np.full(times.size, 300 * 4 / 0.02))
    lines = [
        *_lines("vllm:num_requests_running", labels, times, np.full(times.size, 4.0)),
        *_lines("vllm:kv_cache_usage_perc", labels, times, np.full(times.size, 0.3)),
        *_lines("vllm:inter_token_latency_seconds_count", labels, times, tokens),
        *_lines("vllm:inter_token_latency_seconds_sum", labels, times, tokens * 0.02),
        *_lines("vllm:generation_tokens_total", labels, times, tokens),
    ]
    for name in ("prompt", "generation"):
        count = np.cumsum(np.full(times.size, 0.5))
        lines += _lines(f"vllm:request_{name}_tokens_count", labels, times, count)
        lines += _lines(f"vllm:request_{name}_tokens_sum", labels, times, count * 500)
    gpu = (
        'gpu="0",UUID="GPU-c0",modelName="NVIDIA H100 80GB HBM3",Hostname="host-c",'
        'namespace="help",pod="support-0"'
    )
    lines += _lines("DCGM_FI_PROF_DRAM_ACTIVE", gpu, times, np.full(times.size, 0.4))
    return "\n".join([*lines, "# EOF", ""])


def test_nothing_matched_writes_nothing(tmp_path: Path) -> None:
    end_s = float(int(dt.datetime.now(dt.UTC).timestamp()) // 3600 * 3600)
    to = tmp_path / "discovered.parquet"
    with backfilled_prometheus(tmp_path, _alias_fleet(end_s)) as url:
        args = ["workloads", "discover", "--prometheus", url, "--to", str(to), "--json"]
        done = memwall(args, ENV, tmp_path, timeout=300)
    assert done.returncode == 2
    (row,) = json.loads(done.stdout, parse_constant=_no_constants)  # strict JSON
    assert (row["model_name"], row["model_preset"]) == ("support", None)
    assert row["accelerators"] == "nvidia-h100-sxm" and abs(row["batch"] - 4) < 1e-9
    assert "no preset matches" in row["status"] and "--config" in row["status"]
    assert "serving" not in row["source"] and "help/support-0" in row["source"]
    last = done.stderr.strip().splitlines()[-1]
    assert "nothing written to" in last and str(to) in last
    assert not to.exists()


def test_unreachable_prometheus_is_one_line(tmp_path: Path) -> None:
    url = f"http://{LOOPBACK}:{free_port()}"
    to = tmp_path / "discovered.parquet"
    args = ["workloads", "discover", "--prometheus", url, "--to", str(to)]
    done = memwall(args, ENV, tmp_path, timeout=120)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and url in lines[0] and "unreachable" in lines[0]
    assert not to.exists()

"""Production efficiency from a real Prometheus: 14 days of dcgm-exporter, vLLM (old and new
metric names) and SGLang series, backfilled with promtool, served on loopback, read back by
``memwall observe``.

Planted: three served models on two GPU models (H100 SXM on host-a, H200 on host-b), each with
its own bandwidth efficiency, batch and context. A decode step's time is what the workload
model's bytes at that batch and context take at the planted efficiency (with ±3 % noise per
scrape); dcgm-exporter's DRAM_ACTIVE is the planted efficiency times a planted byte-model
factor. One GPU is time-sliced between two pods; one GPU and its server miss 3 hours of scrapes;
one GPU's profiling field reads 0 for an hour while it is busy.
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

from hardware_profiles.parquet import write_table
from hardware_profiles.schema import WORKLOADS
from tasks.analysis.workload.examples import example_workloads
from tasks.analysis.workload.presets import preset
from tasks.analysis.workload.workload_model import estimate
from tasks.prometheus import engine_query
from tests.integration.conftest import REPO, backfilled_prometheus, memwall

pytestmark = pytest.mark.integration

_missing = [tool for tool in ("prometheus", "promtool") if shutil.which(tool) is None]
if _missing:
    pytest.skip(
        f"{' and '.join(_missing)} not installed (Debian package prometheus): production "
        "telemetry cannot be tested against a real Prometheus",
        allow_module_level=True,
    )

DAYS = 14
SCRAPE_S = 150
STEP_S = 300
DAY_S = 86400
BW = {"h100": 3.35e12, "h200": 4.8e12}
KIND = {"h100": "NVIDIA H100 80GB HBM3", "h200": "NVIDIA H200"}
HOST = {"h100": "host-a", "h200": "host-b"}
GAP_DAY, GAP_HOURS = 5, 3


@dataclass(frozen=True)
class Server:
    workload_id: str
    model_name: str
    preset: str
    engine: str  # vllm-new, vllm-old, sglang
    pod: str
    accelerator: str
    gpus: tuple[str, ...]
    efficiency: float
    batch: int
    prompt: float
    generated: float
    kv_usage: float
    dram_factor: float = 1.0

    @property
    def context(self) -> float:
        return self.prompt + self.generated / 2


SERVERS = (
    Server("chat-70b-decode", "meta-llama/Llama-3.1-70B-Instruct", "llama-3.1-70b", "vllm-new",
           "chat70b-0", "h100", ("GPU-a0", "GPU-a1"), 0.55, 24, 3000, 400, 0.6, 1.08),
    Server("agent-8b-decode", "meta-llama/Llama-3.1-8B-Instruct", "llama-3.1-8b", "vllm-old",
           "agent8b-0", "h100", ("GPU-a2",), 0.40, 6, 6000, 800, 0.25),
    Server("agent-8b-decode", "meta-llama/Llama-3.1-8B-Instruct", "llama-3.1-8b", "vllm-old",
           "agent8b-1", "h200", ("GPU-b1",), 0.45, 6, 6000, 800, 0.25),
    Server("mixtral-decode", "mistralai/Mixtral-8x7B-Instruct-v0.1", "mixtral-8x7b", "sglang",
           "mixtral-0", "h200", ("GPU-b0",), 0.35, 8, 4096, 0, 0.5),
    # On the time-sliced GPU: its figures must never reach a row.
    Server("agent-8b-decode", "meta-llama/Llama-3.1-8B-Instruct", "llama-3.1-8b", "vllm-old",
           "nb-1", "h100", ("GPU-a3",), 0.10, 2, 500, 100, 0.1),
)  # fmt: skip
GAPPED = {"GPU-b1", "agent8b-1"}


def planted_batch(server: Server, t: np.ndarray) -> np.ndarray:
    """Whole sequences, ±25 % over each day."""
    return np.maximum(1, np.round(server.batch * (1 + 0.25 * np.sin(2 * np.pi * t / DAY_S))))


def step_bytes(server: Server, batch: int) -> float:
    """The workload model's bytes for one decode step of the whole replica."""
    e = estimate(preset(server.preset), phase="decode", batch=batch, context=int(server.context))
    return e.bytes_per_unit * batch


def _lines(name: str, labels: str, times: np.ndarray, values: np.ndarray) -> list[str]:
    return [f"{name}{{{labels}}} {v:.6g} {int(t)}" for t, v in zip(times, values, strict=True)]


def openmetrics(end_s: float) -> str:
    rng = np.random.default_rng(24)
    times = np.arange(end_s - DAYS * DAY_S, end_s + 1, SCRAPE_S)
    gap = (times >= end_s - GAP_DAY * DAY_S) & (times < end_s - GAP_DAY * DAY_S + GAP_HOURS * 3600)
    lines: list[str] = []
    for s in SERVERS:
        t = times[~gap] if s.pod in GAPPED else times
        batch = planted_batch(s, t)
        seconds = {}
        for b in np.unique(batch):
            seconds[b] = step_bytes(s, int(b)) / (len(s.gpus) * BW[s.accelerator] * s.efficiency)
        step = np.array([seconds[b] for b in batch]) * (1 + 0.03 * rng.standard_normal(t.size))
        tokens = batch * SCRAPE_S / step  # inter-token latencies observed per scrape
        bytes_per_s = np.array([step_bytes(s, int(b)) for b in batch]) / step
        requests = np.full(t.size, 0.5)  # requests finished per scrape
        pod = f'namespace="serving",pod="{s.pod}",instance="10.0.0.{len(lines) % 250}:8000"'
        labels = f'model_name="{s.model_name}",{pod}'
        if s.engine == "sglang":
            lines += _lines("sglang:num_running_reqs", labels, t, batch)
            lines += _lines("sglang:token_usage", labels, t, np.full(t.size, s.kv_usage))
            lines += _lines("sglang:decode_sum_seq_lens", labels, t, batch * s.context)
            itl = "sglang:inter_token_latency_seconds"
        else:
            new = s.engine == "vllm-new"
            itl = f"vllm:{'inter_token_latency' if new else 'time_per_output_token'}_seconds"
            kv = f"vllm:{'kv' if new else 'gpu'}_cache_usage_perc"
            lines += _lines("vllm:num_requests_running", labels, t, batch)
            info = f'cache_dtype="auto",block_size="16",{pod}'  # no model_name on the info
            lines += _lines("vllm:cache_config_info", info, t, np.ones(t.size))
            if new:  # --enable-mfu-metrics: the engine's own bytes per GPU, read and written
                per_gpu = np.cumsum(tokens / batch * step * bytes_per_s / len(s.gpus))
                lines += _lines("vllm:estimated_read_bytes_per_gpu_total", labels, t, 0.9 * per_gpu)
                lines += _lines(
                    "vllm:estimated_write_bytes_per_gpu_total", labels, t, 0.1 * per_gpu
                )
            lines += _lines(kv, labels, t, np.full(t.size, s.kv_usage))
            for name, mean in (("prompt", s.prompt), ("generation", s.generated)):
                lines += _lines(f"vllm:request_{name}_tokens_count", labels, t, np.cumsum(requests))
                lines += _lines(
                    f"vllm:request_{name}_tokens_sum", labels, t, np.cumsum(requests * mean)
                )
        if s.engine == "vllm-new":  # a deprecation release: the old name exported too
            old = "vllm:time_per_output_token_seconds"
            lines += _lines(f"{old}_count", labels, t, np.cumsum(tokens))
            lines += _lines(f"{old}_sum", labels, t, np.cumsum(tokens * step))
        lines += _lines(f"{itl}_count", labels, t, np.cumsum(tokens))
        engine = "sglang" if s.engine == "sglang" else "vllm"
        lines += _lines(f"{engine}:generation_tokens_total", labels, t, np.cumsum(tokens))
        lines += _lines(f"{itl}_sum", labels, t, np.cumsum(tokens * step))
        for i, uuid in enumerate(s.gpus):
            g = times[~gap] if uuid in GAPPED else times
            dram = np.full(g.size, s.efficiency * s.dram_factor)
            if uuid == "GPU-b0":  # an hour with profiling off while the GPU is busy
                dram[(g >= end_s - 2 * DAY_S) & (g < end_s - 2 * DAY_S + 3600)] = 0.0
            gpu = (
                f'gpu="{i}",UUID="{uuid}",modelName="{KIND[s.accelerator]}",'
                f'Hostname="{HOST[s.accelerator]}",namespace="serving",pod="{s.pod}"'
            )
            name = (
                "DCGM_FI_PROF_DRAM_ACTIVE"
                if s.accelerator == "h100"
                else ("DCGM_FI_PROF_DRAM_UTIL_RATIO")
            )
            lines += _lines(name, gpu, g, dram)
            lines += _lines("DCGM_FI_DEV_GPU_UTIL", gpu, g, np.full(g.size, 90.0))
    # The time-sliced GPU: dcgm-exporter writes one series per pod sharing it.
    shared = (
        'gpu="3",UUID="GPU-a3",modelName="NVIDIA H100 80GB HBM3",Hostname="host-a",'
        'namespace="serving",pod="nb-2"'
    )
    lines += _lines("DCGM_FI_PROF_DRAM_ACTIVE", shared, times, np.full(times.size, 0.2))
    return "\n".join([*lines, "# EOF", ""])


@dataclass(frozen=True)
class Planted:
    url: str
    end: dt.datetime


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Planted]:
    root = tmp_path_factory.mktemp("telemetry")
    end_s = float(int(dt.datetime.now(dt.UTC).timestamp()) // 3600 * 3600)
    with backfilled_prometheus(root, openmetrics(end_s)) as url:
        yield Planted(url, dt.datetime.fromtimestamp(end_s, dt.UTC))


def _workloads(tmp_path: Path) -> Path:
    frame = example_workloads()
    queries = {
        "chat-70b-decode": engine_query("vllm", "decode", SERVERS[0].model_name),
        "agent-8b-decode": engine_query("vllm", "decode", SERVERS[1].model_name),
        "mixtral-decode": engine_query("sglang", "decode", SERVERS[3].model_name),
    }
    frame["demand_query"] = frame["workload_id"].map(queries).astype(object)
    frame["demand_query"] = frame["demand_query"].where(frame["demand_query"].notna(), None)
    return write_table(frame, tmp_path / "workloads.parquet", WORKLOADS)


def _expected_batch(server: Server, end_s: float) -> float:
    t = np.arange(end_s - DAYS * DAY_S, end_s + 1, STEP_S)
    return float(planted_batch(server, t).mean())


def test_observe_recovers_the_planted_efficiencies_batches_and_contexts(
    prometheus: Planted, tmp_path: Path
) -> None:
    from hardware_profiles.catalog import builtin_catalog
    from hardware_profiles.parquet import read_table
    from tasks.observe import observe

    workloads = read_table(_workloads(tmp_path), WORKLOADS)
    seen, names = observe(
        {"": prometheus.url}, workloads, builtin_catalog(), days=DAYS, end=prometheus.end
    )
    rows = {(r["workload_id"], r["accelerator_id"]): r for r in seen.rows.to_dict("records")}
    catalog_id = {"h100": "nvidia-h100-sxm", "h200": "nvidia-h200-sxm"}
    for s in SERVERS[:4]:
        row = rows[(s.workload_id, catalog_id[s.accelerator])]
        efficiency = float(row["production_bandwidth_efficiency"])
        expected_batch = _expected_batch(s, prometheus.end.timestamp())
        print(
            f"\n{s.workload_id} on {s.accelerator}: efficiency planted {s.efficiency:.3f}, "
            f"recovered {efficiency:.4f}; batch {expected_batch:.2f} -> {row['batch']:.2f}; "
            f"context {s.context:.0f} -> {row['context']:.0f}; {row['verdict']}"
        )
        assert abs(efficiency / s.efficiency - 1) <= 0.03
        assert abs(row["batch"] / expected_batch - 1) <= 0.05
        assert abs(row["context"] / s.context - 1) <= 0.05
        assert row["gpus"] == len(s.gpus)
        # Each sample counts once, even where the server exports both names.
        assert row["samples"] <= DAYS * DAY_S / STEP_S + 1
        assert abs(row["bandwidth_utilization"] / (s.efficiency * s.dram_factor) - 1) <= 0.01
        assert abs(row["byte_model_error"] - (1 / s.dram_factor - 1)) <= 0.03
        assert abs(row["kv_cache_usage"] - s.kv_usage) <= 0.01
        assert str(row["source"]).startswith(f"measured in production, {DAYS} days to")
        assert row["predicted_step_s"] > 0 and row["error"] is not None
        assert "caches the KV" not in row["notes"]  # "auto": the model's own dtype
        if s.engine == "vllm-new":
            assert abs(row["engine_bandwidth_utilization"] / s.efficiency - 1) <= 0.03
            assert "the engine's own byte counter says 55 % of spec" in row["notes"]
        else:
            assert pd.isna(row["engine_bandwidth_utilization"])
    # The names each version uses were both found.
    joined = " | ".join(names)
    for version in ("vLLM 0.10+", "vLLM before 0.10", "SGLang", "DCGM 4.6+", "DCGM before 4.6"):
        assert version in joined
    # The time-sliced GPU, the scrape gap and the missing profiling field are reported.
    findings = "\n".join(seen.findings)
    assert "GPU GPU-a3 on host-a is shared by 2 pods (serving/nb-1, serving/nb-2)" in findings
    gap_start = dt.datetime.fromtimestamp(prometheus.end.timestamp() - GAP_DAY * DAY_S, dt.UTC)
    gaps = [f for f in seen.findings if f.startswith("scrape gap in GPU GPU-b1")]
    assert len(gaps) == 1 and f"{gap_start:%Y-%m-%d %H:%M} UTC, 3.0 h" in gaps[0]
    assert any(f.startswith("scrape gap in vllm serving/agent8b-1") for f in seen.findings)
    assert "GPU GPU-b0: 12 sample(s) with the profiling field at 0" in findings
    # The server on the shared GPU reached no row: agent-8b on H100 is GPU-a2 alone.
    assert rows[("agent-8b-decode", "nvidia-h100-sxm")]["gpus"] == 1


def test_too_few_samples_do_not_calibrate(prometheus: Planted, tmp_path: Path) -> None:
    from hardware_profiles.catalog import builtin_catalog
    from hardware_profiles.parquet import read_table
    from tasks.observe import observe

    workloads = read_table(_workloads(tmp_path), WORKLOADS)
    seen, _ = observe(
        {"": prometheus.url}, workloads, builtin_catalog(), days=0.5, end=prometheus.end
    )
    assert len(seen.rows) == 4
    assert seen.rows["production_bandwidth_efficiency"].isna().all()
    assert all("fewer than 288: does not calibrate" in n for n in seen.rows["notes"])


def _no_constants(name: str) -> object:
    raise AssertionError(f"not strict JSON: {name}")


def test_cli_prints_json_rows_and_a_verdict(prometheus: Planted, tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO), "COLUMNS": "250"}
    source = _workloads(tmp_path)
    args = ["observe", "--prometheus", prometheus.url, "--days", "3", "--workloads", str(source)]
    done = memwall([*args, "--json"], env, tmp_path, timeout=300)
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout, parse_constant=_no_constants)
    keys = [
        "workload_id",
        "model_name",
        "accelerator_id",
        "gpus",
        "batch",
        "context",
        "measured_step_s",
        "predicted_step_s",
        "error",
        "bandwidth_utilization",
        "production_bandwidth_efficiency",
        "flops_utilization",
        "kv_cache_usage",
        "source",
        "notes",
    ]
    assert len(rows) == 4 and all(all(k in r for k in keys) for r in rows)
    table = memwall(args, env, tmp_path, timeout=300)
    assert table.returncode == 0, table.stderr
    assert "agent-8b-decode on nvidia-h100-sxm: bandwidth-bound: 40 % of spec bandwidth" in (
        table.stdout
    )
    assert "the batch is 6 where 24 would fit (KV cache 25 % full)" in table.stdout


def test_unreachable_prometheus_is_one_line(tmp_path: Path) -> None:
    from tests.integration.conftest import LOOPBACK, free_port

    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)}
    url = f"http://{LOOPBACK}:{free_port()}"
    done = memwall(["observe", "--prometheus", url], env, tmp_path, timeout=120)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and url in lines[0] and "unreachable" in lines[0]


@pytest.mark.slow
def test_the_audit_puts_production_first_and_gives_it_a_page(
    prometheus: Planted, prefect_api_url: str, tmp_path: Path
) -> None:
    from flows.audit import audit
    from tests.pdf import pdf_text

    outcome = audit(
        workloads=str(_workloads(tmp_path)),
        out_dir=str(tmp_path / "out"),
        quick=True,
        today=dt.date(2026, 11, 1),
        prometheus=prometheus.url,
    )
    text = " ".join(pdf_text(outcome.pdf_path).split())
    assert "Production efficiency: measured where it is served" in text
    assert "agent-8b-decode on nvidia-h100-sxm: bandwidth-bound: 40 % of spec bandwidth" in text
    assert "GPU GPU-a3 on host-a is shared by 2 pods" in text
    # The method page names production as the decode efficiency's source of both models.
    assert text.count("measured in production, 7 days to") >= 2


def test_rank_takes_production_first_and_goes_on_without_it(
    prometheus: Planted, tmp_path: Path
) -> None:
    """chat-70b-decode runs on the inference pool's H100s: production measured 0.55 there, not
    the default fitted on published runs, so its headroom today moves; an unreachable
    Prometheus leaves the ranking as it was, with one warning line."""
    from tests.integration.conftest import LOOPBACK, free_port

    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)}
    args = ["rank", "--workloads", str(_workloads(tmp_path)), "--start", "2026-11", "--json"]

    def headroom(extra: list[str]) -> tuple[float, str]:
        done = memwall([*args, *extra], env, tmp_path, timeout=300)
        assert done.returncode == 0, done.stderr
        rows = {r["workload_id"]: r for r in json.loads(done.stdout)}
        return float(rows["chat-70b-decode"]["min_headroom"]), done.stderr

    plain, _ = headroom([])
    measured, _ = headroom(["--prometheus", prometheus.url])
    assert abs(measured / plain - 1) > 0.02
    url = f"http://{LOOPBACK}:{free_port()}"
    unreachable, said = headroom(["--prometheus", url])
    assert unreachable == plain
    warnings = [line for line in said.splitlines() if "unreachable" in line]
    assert len(warnings) == 1 and url in warnings[0]


def test_one_prometheus_per_pool(prometheus: Planted, tmp_path: Path) -> None:
    from hardware_profiles.catalog import builtin_catalog
    from hardware_profiles.parquet import read_table
    from tasks.observe import observe

    workloads = read_table(_workloads(tmp_path), WORKLOADS)
    urls = {"inference": prometheus.url, "edge": prometheus.url}
    seen, names = observe(urls, workloads, builtin_catalog(), days=2, end=prometheus.end)
    assert seen.rows.groupby("pool").size().to_dict() == {"edge": 4, "inference": 4}
    assert any(f.startswith("pool edge: GPU GPU-a3 on host-a is shared") for f in seen.findings)
    assert any(n.startswith("pool inference: SGLang names") for n in names)


def test_the_engines_kv_dtype_is_read_from_its_info_gauge(prometheus: Planted) -> None:
    from tasks.telemetry.window import read_telemetry

    telemetry = read_telemetry(prometheus.url, prometheus.end.timestamp(), 1)
    dtypes = telemetry.engine.groupby("server")["kv_cache_dtype"].first().to_dict()
    assert dtypes["vllm serving/chat70b-0"] == "auto"
    assert dtypes["vllm serving/agent8b-0"] == "auto"
    assert dtypes["sglang serving/mixtral-0"] == ""  # SGLang states none


def test_predict_workload_takes_what_production_measured_of_it(
    prometheus: Planted, tmp_path: Path
) -> None:
    """chat-70b-decode runs on the inference pool's H100s, where production measured it at
    the planted 0.55 (±3 % per scrape): that is its efficiency and its source, and its band
    is the window's spread, not the published fit's. agent-8b-decode was measured on H100 and
    H200 pods, but its pool (edge) is served by A100s: the other sources stand there, and a
    warning line says so."""
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)}
    source = str(_workloads(tmp_path))
    args = ["predict", "--workloads", source, "--prometheus", prometheus.url, "--days", "14"]
    done = memwall([*args, "--workload", "chat-70b-decode", "--json"], env, tmp_path, timeout=300)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    about = out["workload"]
    assert about["accelerator_id"] == "nvidia-h100-sxm"
    assert about["efficiency_source"].startswith(f"measured in production, {DAYS} days to")
    assert out["bandwidth_efficiency_source"] == about["efficiency_source"]
    assert abs(out["bandwidth_efficiency"] / SERVERS[0].efficiency - 1) <= 0.03
    assert about["supply_spread"] < 0.1  # the window's ±3 %, not the fit's ±20 % and more
    plain = memwall([*args[:3], "--workload", "chat-70b-decode", "--json"], env, tmp_path)
    assert plain.returncode == 0, plain.stderr
    assert json.loads(plain.stdout)["workload"]["efficiency_source"].startswith("fitted on")
    other = memwall([*args, "--workload", "agent-8b-decode", "--json"], env, tmp_path, timeout=300)
    assert other.returncode == 0, other.stderr
    assert json.loads(other.stdout)["workload"]["accelerator_id"] == "nvidia-a100-80gb-sxm"
    warnings = [line for line in other.stderr.splitlines() if "memwall: warning:" in line]
    assert len(warnings) == 1 and "not on nvidia-a100-80gb-sxm" in warnings[0], other.stderr

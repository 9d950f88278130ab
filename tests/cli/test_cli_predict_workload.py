"""``memwall predict --workload ID`` end to end, from a workloads file: the workload's own row
gives the model, shape, precisions, layout and prompt/output tokens, and the answer is the one
``memwall predict`` gives when told the same by hand, on the hardware the pool serves it on,
with the source of its efficiency and its P10-P90 band."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from hardware_profiles.catalog import builtin_catalog
from hardware_profiles.parquet import write_table
from hardware_profiles.schema import WORKLOADS
from tasks.analysis.supply.backtest import load_backtest
from tasks.analysis.supply.engine_generation import CURRENT, EARLY
from tasks.analysis.supply.selfcheck import Z90
from tasks.analysis.workload.examples import example_workloads
from tasks.analysis.workload.presets import estimate_workload
from tests.cli.test_cli import memwall


def _workloads(tmp_path: Path) -> Path:
    """The examples with chat-70b-decode served as tp=8, batch 16, 2,048 tokens of context,
    an FP8 KV cache and 1,000-token prompts of 250 output tokens."""
    frame = example_workloads()
    at = frame.index[frame["workload_id"] == "chat-70b-decode"][0]
    for column, value in (("layout", "tp=8"), ("batch", 16), ("context_tokens", 2048),
                          ("kv_precision", "fp8"), ("prompt_tokens", 1000),
                          ("output_tokens", 250)):  # fmt: skip
        frame.loc[at, column] = value
    return write_table(frame, tmp_path / "workloads.parquet", WORKLOADS)


def test_a_workload_is_predicted_as_its_row_says_on_its_pools_hardware(tmp_path: Path) -> None:
    source = _workloads(tmp_path)
    done = memwall(
        ["predict", "--workload", "chat-70b-decode", "--workloads", str(source), "--json"],
        None,
        tmp_path,
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    about = out["workload"]
    # The inference pool is the example roadmap's H100 SXM pool; tp=8 spans 8 of them.
    assert (about["pool"], about["accelerator_id"], about["devices"]) == (
        "inference", "nvidia-h100-sxm", 8,
    )  # fmt: skip
    assert out["layout"] == "tp=8"
    by_hand = memwall(
        ["predict", "--preset", "llama-3.1-70b", "--batch", "16", "--context", "2048",
         "--weights", "bf16", "--kv", "fp8", "--activations", "bf16",
         "--accelerator", "nvidia-h100-sxm", "--layout", "tp=8", "--prompt", "1000",
         "--output", "250", "--json"],
        None,
        tmp_path,
    )  # fmt: skip
    assert by_hand.returncode == 0, by_hand.stderr
    expected = json.loads(by_hand.stdout)
    assert out["step_time_s"] == expected["step_time_s"]
    assert out["under_load"] == expected["under_load"]
    assert out["per_device"] == expected["per_device"]
    # The source is the audit's (no telemetry, no probes: the fit on published runs), and the
    # band is step · exp(∓z·s) for the supply spread s it names.
    assert about["efficiency_source"] == out["bandwidth_efficiency_source"]
    assert about["efficiency_source"].startswith("fitted on")
    spread = about["supply_spread"]
    assert spread > 0
    # The audit's band: the leave-one-source-out spread of the workload's class (Llama 3.1 70B
    # is dense), as `memwall backtest` prints it, not the fitted efficiency's narrower one.
    assert about["supply_spread_source"] == (
        "the leave-one-source-out spread of the published dense runs"
    )
    tested = memwall(["backtest", "--json"], None, tmp_path)
    assert tested.returncode == 0, tested.stderr
    class_spread = json.loads(tested.stdout)["leave_one_source_out"]["class_spread"]
    assert spread == pytest.approx(class_spread["dense"])
    assert about["step_p10_s"] == pytest.approx(out["step_time_s"] * math.exp(-Z90 * spread))
    assert about["step_p90_s"] == pytest.approx(out["step_time_s"] * math.exp(Z90 * spread))
    text = memwall(
        ["predict", "--workload", "chat-70b-decode", "--workloads", str(source)], None, tmp_path
    )
    assert text.returncode == 0, text.stderr
    flat = " ".join(text.stdout.split())
    assert "workload chat-70b-decode" in flat and "pool inference: on nvidia-h100-sxm" in flat
    assert "under load 16 sequences" in flat
    assert "step band P10-P90" in flat and "efficiency from fitted on" in flat


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--workload", "pretrain-8b"], "a training workload; predict --workload covers decode"),
        (["--workload", "mixtral-decode", "--preset", "llama-3.1-8b"], "drop --preset"),
        (["--prometheus", "http://127.0.0.1:9"], "go with --workload ID"),
        (["--workload", "mixtral-decode", "--prometheus", "http://127.0.0.1:9", "--days", "0"],
         "--days must be > 0"),
    ],
)  # fmt: skip
def test_what_a_workload_cannot_be_predicted_with_is_one_line(
    tmp_path: Path, args: list[str], says: str
) -> None:
    done = memwall(["predict", *args], None, tmp_path)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and says in lines[0], done.stderr


def test_a_workload_on_an_early_engine_is_predicted_at_that_generations_expert_share(
    tmp_path: Path,
) -> None:
    """Two DeepSeek-R1 decode rows in the inference pool, FP8, batch 32, 2,048 tokens of
    context, identical but for their engine: none (a current engine) and SGLang 0.4.3
    (released 2025-02: an early one). Each is predicted at its own generation's fitted
    MLA-MoE routed-expert share r, which the fit puts lower on early engines: its step takes
    longer. --engine stands for the row's own."""
    shape = {"model_preset": "deepseek-r1", "phase": "decode", "batch": 32,
             "context_tokens": 2048, "precision": "fp8", "weight_precision": "fp8"}  # fmt: skip
    estimated = estimate_workload(shape)
    assert estimated is not None
    rows = [
        {**estimated.workload_columns(), "workload_id": wid, "name": wid, "owner": "o",
         "pool": "inference", "demand_units_per_s": 100.0, "demand_growth_per_year": 0.0,
         "engine": engine}
        for wid, engine in (("r1-current", None), ("r1-early", "SGLang 0.4.3"))
    ]  # fmt: skip
    source = write_table(pd.DataFrame(rows), tmp_path / "workloads.parquet", WORKLOADS)

    def run(wid: str, *engine: str) -> dict[str, Any]:
        done = memwall(
            ["predict", "--workload", wid, "--workloads", str(source), *engine, "--json"],
            None,
            tmp_path,
        )
        assert done.returncode == 0, done.stderr
        out: dict[str, Any] = json.loads(done.stdout)
        return out

    current, early = run("r1-current"), run("r1-early")
    fitted = load_backtest(builtin_catalog(), by_source=False).fitted
    assert current["expert_matmul_efficiency"] == fitted.experts("decode", "MLA-MoE", CURRENT).value
    assert early["expert_matmul_efficiency"] == fitted.experts("decode", "MLA-MoE", EARLY).value
    assert early["expert_matmul_efficiency"] < current["expert_matmul_efficiency"]
    assert early["step_time_s"] > current["step_time_s"]
    assert early["workload"]["engine"] == "SGLang 0.4.3"
    assert "'SGLang 0.4.3' released 2025-02" in early["expert_matmul_efficiency_source"]
    assert "no engine stated" in current["expert_matmul_efficiency_source"]
    told = run("r1-current", "--engine", "SGLang 0.4.3")
    assert told["step_time_s"] == early["step_time_s"]
    assert told["workload"]["engine"] == "SGLang 0.4.3"

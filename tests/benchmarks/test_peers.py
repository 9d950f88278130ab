"""The pure part of the aiconfigurator side by side (benchmarks/peers): which published rows it
can express and what it is asked, and the comparison's arithmetic. None of it needs
aiconfigurator installed; the subprocess part runs in `python -m benchmarks.backtest`."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from benchmarks.peers.aiconfigurator_requests import Request, Unexpressed, express
from benchmarks.peers.comparison import (
    alone_by_vendor,
    common_rows,
    peer_step_s,
    side,
    sides_by,
    target,
)
from benchmarks.peers.side_by_side import print_side_by_side
from tasks.analysis.supply.backtest import Backtest
from tasks.analysis.supply.efficiency import FittedDefaults

pytestmark = pytest.mark.pure
NAN = float("nan")


def row(**given: object) -> dict[str, object]:
    """A published_runs.csv row (as the reader gives it), changed where ``given`` says."""
    base: dict[str, object] = {
        "run_id": "r",
        "model_preset": "deepseek-r1",
        "hardware": "nvidia-h200-sxm",
        "devices": 8,
        "layout": "dp_attention=8",
        "phase": "decode",
        "batch": 128.0,
        "input_tokens": 3200.0,
        "output_tokens": 800.0,
        "weight_precision": "fp8",
        "kv_precision": NAN,
        "compute_precision": "fp8",
        "engine": "SGLang",
        "engine_version": "0.4.3.post2",
        "metric": "tpot_s",
        "measured_value": 0.11,
    }
    return {**base, **given}


def asked(**given: object) -> Request:
    request = express(row(**given))
    assert isinstance(request, Request), request
    return request


def refused(**given: object) -> str:
    answer = express(row(**given))
    assert isinstance(answer, Unexpressed), answer
    return answer.why


def test_a_serving_run_under_load_is_asked_of_the_in_flight_batching_model_per_dp_rank() -> None:
    """Concurrency 128 over dp_attention=8: aiconfigurator's batch is per rank, 128 / 8 = 16;
    attention tp 1 per rank, the routed experts tensor parallel over all 1 · 8 devices (ep 1);
    DeepSeek-R1's FP8 checkpoint is block scaled; the unstated cache is left to its default,
    with the weights' fp8 to fall back on where that does not fit."""
    request = asked()
    assert (request.mode, request.reads) == ("agg", "tpot")
    assert (request.batch_size, request.attention_dp_size, request.tp_size) == (16, 8, 1)
    assert (request.moe_tp_size, request.moe_ep_size) == (8, 1)
    assert (request.gemm_quant_mode, request.moe_quant_mode) == ("fp8_block", "fp8_block")
    assert (request.kvcache_quant_mode, request.kv_if_full) == (None, "fp8")
    assert (request.model_path, request.system_name, request.backend_name) == (
        "deepseek-ai/DeepSeek-R1",
        "h200_sxm",
        "sglang",
    )
    assert (request.isl, request.osl) == (3200, 800)


def test_expert_parallel_max_throughput_run_is_a_static_batch() -> None:
    """b3072 at dp_attention=8,ep=8 on B200 in FP4: 3072 / 8 = 384 per rank, experts whole on
    8 ranks (moe tp 8 / 8 = 1), nvfp4 kernels, the stated fp16 cache as bfloat16 (no retry)."""
    request = asked(
        layout="dp_attention=8,ep=8",
        hardware="nvidia-b200",
        batch=3072.0,
        input_tokens=1024.0,
        output_tokens=2048.0,
        weight_precision="fp4",
        compute_precision="fp4",
        kv_precision="fp16",
        engine="TensorRT-LLM (PyTorch backend)",
        metric="output_tokens_per_s",
    )
    assert (request.mode, request.reads, request.backend_name) == (
        "static",
        "tokens_per_s",
        "trtllm",
    )
    assert (request.batch_size, request.moe_tp_size, request.moe_ep_size) == (384, 1, 8)
    assert (request.gemm_quant_mode, request.moe_quant_mode) == ("nvfp4", "nvfp4")
    assert (request.kvcache_quant_mode, request.kv_if_full) == ("bfloat16", None)


def test_a_dense_prefill_gets_a_local_llama_config_from_the_preset() -> None:
    """Llama-2-70B is not among aiconfigurator's configs: the request carries one written from
    memwall's preset (80 layers, 64 heads over 8 KV heads, FFN 28672), and TTFT is read."""
    request = asked(
        model_preset="llama-2-70b",
        hardware="nvidia-a100-80gb-sxm",
        devices=4,
        layout="tp=4",
        phase="prefill",
        batch=1.0,
        input_tokens=2048.0,
        output_tokens=1.0,
        weight_precision="fp16",
        compute_precision="fp16",
        kv_precision="fp16",
        engine="TensorRT-LLM",
        metric="ttft_s",
    )
    assert (request.mode, request.reads, request.tp_size) == ("static_ctx", "ttft", 4)
    assert (request.moe_tp_size, request.moe_ep_size, request.moe_quant_mode) == (None, None, None)
    assert request.gemm_quant_mode == "bfloat16"
    config = request.local_config
    assert config is not None
    assert config["architectures"] == ["LlamaForCausalLM"]
    assert (config["num_hidden_layers"], config["num_attention_heads"]) == (80, 64)
    assert (config["num_key_value_heads"], config["intermediate_size"]) == (8, 28672)


def test_tpot_at_batch_one_is_a_static_estimate() -> None:
    request = asked(batch=1.0, layout="tp=8")
    assert (request.mode, request.reads, request.batch_size) == ("static", "tpot", 1)


def test_weight_only_int8_is_expressed_for_dense_models_only() -> None:
    dense = asked(
        model_preset="llama-3.1-8b", layout="tp=1", devices=1, weight_precision="int8",
        compute_precision="bf16", kv_precision="bf16", batch=1.0,
    )  # fmt: skip
    assert dense.gemm_quant_mode == "int8_wo"
    why = refused(weight_precision="int8", compute_precision="bf16")
    assert "no aiconfigurator quantization mode" in why


def test_four_bit_experts_with_sixteen_bit_compute_are_gpt_oss_mxfp4() -> None:
    request = asked(
        model_preset="gpt-oss-120b", layout="tp=8", weight_precision="fp4", compute_precision="bf16"
    )
    assert (request.gemm_quant_mode, request.moe_quant_mode) == ("bfloat16", "w4a16_mxfp4")
    assert "quantization mode" in refused(
        model_preset="llama-3.1-8b", layout="tp=1", weight_precision="fp4", compute_precision="bf16"
    )


@pytest.mark.parametrize(
    ("given", "words"),
    [
        ({"engine": "gpt-fast (PyTorch, torch.compile)"}, "TensorRT-LLM, vLLM, SGLang"),
        ({"hardware": "amd-mi300x"}, "no system for it"),
        ({"model_preset": "gemma-2-27b"}, "ships no config"),
        ({"batch": NAN}, "does not state its batch"),
        ({"output_tokens": NAN}, "output length"),
        ({"batch": 4.0}, "does not fill 8 attention-data-parallel ranks"),
        ({"kv_precision": "int4"}, "no aiconfigurator KV mode"),
    ],
)
def test_what_it_cannot_express_is_refused_saying_why(given: dict[str, object], words: str) -> None:
    assert words in refused(**given)


def runs_table() -> pd.DataFrame:
    """Four of memwall's backtest rows: measured steps 100, 200, 50 and 10 ms."""
    return pd.DataFrame(
        {
            "run_id": ["a", "b", "c", "d"],
            "architecture_class": ["dense", "dense", "MLA-MoE", "dense"],
            "vendor": ["NVIDIA", "NVIDIA", "NVIDIA", "AMD"],
            "phase": ["decode", "prefill", "decode", "decode"],
            "batch": [64, 1, 128, 1],
            "measured_step_s": [0.1, 0.2, 0.05, 0.01],
            "loso_error": [-0.10, 0.20, -0.30, 0.50],
        }
    )


def test_a_throughput_is_read_as_the_step_of_the_runs_batch() -> None:
    """2,000 output tokens/s at batch 128: one step takes 128 / 2000 = 0.064 s."""
    assert peer_step_s("tokens_per_s", {"tokens_per_s": 2000.0}, 128) == pytest.approx(0.064)
    assert peer_step_s("ttft", {"ttft_s": 0.3}, 1) == pytest.approx(0.3)
    with pytest.raises(ValueError, match="ttft, tpot, tokens_per_s"):
        peer_step_s("latency", {}, 1)


def test_both_tools_are_scored_on_exactly_the_rows_the_peer_priced() -> None:
    """a: 64 / 800 tokens/s = 0.08 s against 0.1 s, −20 %; b: TTFT 0.25 s against 0.2 s,
    +25 %; c: aiconfigurator failed; d: answered 0 (not modelled). On a and b: memwall
    MAPE (10 + 20) / 2 = 15 %, bias (−10 + 20) / 2 = +5 %; the peer MAPE (20 + 25) / 2 =
    22.5 %, bias (−20 + 25) / 2 = +2.5 %."""
    results: list[dict[str, object]] = [
        {"run_id": "a", "tokens_per_s": 800.0},
        {"run_id": "b", "ttft_s": 0.25},
        {"run_id": "c", "error": "ValueError: no data"},
        {"run_id": "d", "tpot_s": 0.0},
    ]
    reads = {"a": "tokens_per_s", "b": "ttft", "c": "tpot", "d": "tpot"}
    both = common_rows(runs_table(), reads, results)
    assert list(both["run_id"]) == ["a", "b"]
    assert list(both["peer_error"]) == pytest.approx([-0.20, 0.25])
    overall = side(both)
    assert overall.runs == 2
    assert [overall.memwall.mape, overall.memwall.bias] == pytest.approx([0.15, 0.05])
    assert [overall.peer.mape, overall.peer.bias] == pytest.approx([0.225, 0.025])
    assert overall.memwall_closer
    phases = {s.split: s for s in sides_by(both, "phase")}
    assert phases["prefill"].peer.mape == pytest.approx(0.25)
    alone = alone_by_vendor(runs_table(), both)
    assert [(s.split, s.runs) for s in alone] == [("AMD", 1), ("NVIDIA", 1)]
    assert alone[0].mape == pytest.approx(0.5)


def test_the_target_needs_every_class_with_five_common_rows() -> None:
    """Five dense rows where memwall is off 10 % and the peer 5 %, and one MLA-MoE row where
    memwall is off 10 % and the peer 95 %: overall memwall 10 % against (5 · 5 + 95) / 6 =
    20 % (met), dense 10 % against 5 % (missed); MLA-MoE has one row, so it does not count."""
    both = pd.DataFrame(
        {
            "architecture_class": ["dense"] * 5 + ["MLA-MoE"],
            "loso_error": [0.10] * 6,
            "peer_error": [-0.05] * 5 + [-0.95],
        }
    )
    met, lines = target(both)
    assert not met
    assert lines == [
        "overall (6 runs): memwall 10.0 % against 20.0 %, met",
        "class dense (5 runs): memwall 10.0 % against 5.0 %, missed",
    ]
    assert target(both[both["architecture_class"] == "MLA-MoE"])[0]


def test_without_the_peers_environment_one_line_says_how_to_make_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = Backtest(pd.DataFrame(), [], FittedDefaults(), pd.Series(dtype=float))
    print_side_by_side(empty, pd.DataFrame([row()]), tmp_path / ".venv-peers")
    printed = capsys.readouterr().out.strip().splitlines()
    assert len(printed) == 1
    assert "make peers" in printed[0]

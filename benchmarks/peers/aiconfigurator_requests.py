"""Which published runs NVIDIA's aiconfigurator can express, and what its estimator is asked
for each one (``benchmarks/peers/aiconfigurator_rows.py`` asks it, in its own environment).

aiconfigurator prices a step from kernels measured per GPU and engine, so a run is expressible
only where it has all of: the engine (TensorRT-LLM, vLLM, SGLang: its backends), the GPU (its
systems: NVIDIA only), the model (its shipped Hugging Face configs; a Llama-2 run gets a local
``config.json`` written from memwall's preset, whose figures are copied from the published
config, as a user with a model it does not ship would pass a local folder), the precisions
(its quantization modes), a batch that fills every attention-data-parallel rank, and the
lengths its estimate needs. Which database version prices a run is the runner's: its default,
the newest it ships for the GPU and engine, as ``aiconfigurator cli estimate`` uses.

How a run was measured picks the estimate, as memwall's backtest
(:mod:`tasks.analysis.supply.backtest`) reads the same metric:

- ``ttft_s`` or ``prefill_tokens_per_s`` (a prefill run): ``static_ctx``, its TTFT;
- ``tpot_s`` under load (:func:`tasks.analysis.supply.published_terms.under_load`: a serving run's
  time per output token at a concurrency above 1): ``agg``, aiconfigurator's in-flight
  batching model, whose steps carry the arriving prompts, at batch = the concurrency;
- ``tpot_s`` otherwise: ``static``, its TPOT;
- ``output_tokens_per_s`` (generated tokens over a static batch's whole run, prefill
  included): ``static``, its tokens/s = batch · output / (TTFT + the generation).

aiconfigurator's batch is per attention-data-parallel rank (its ``global_bs`` is batch ·
``attention_dp_size``), so a run's batch is divided by its ``dp_attention``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from types import SimpleNamespace
from typing import Final

import pandas as pd

from hardware_profiles.layouts import layout_degrees
from tasks.analysis.supply.published_terms import under_load
from tasks.analysis.workload.architecture import Architecture
from tasks.analysis.workload.presets import PRESETS

# aiconfigurator's backends, by the engine's name as published_runs.csv writes it (before any
# parenthesis: "TensorRT-LLM (PyTorch backend)" is TensorRT-LLM).
BACKENDS: Final = {"TensorRT-LLM": "trtllm", "vLLM": "vllm", "SGLang": "sglang"}
# aiconfigurator's systems (its systems/*.yaml), by memwall's accelerator_id.
SYSTEMS: Final = {
    "nvidia-a100-80gb-sxm": "a100_sxm",
    "nvidia-a100-80gb-pcie": "a100_pcie",
    "nvidia-h100-sxm": "h100_sxm",
    "nvidia-h100-pcie": "h100_pcie",
    "nvidia-h200-sxm": "h200_sxm",
    "nvidia-b200": "b200_sxm",
    "nvidia-b300": "b300_sxm",
    "nvidia-gb200": "gb200",
    "nvidia-gb300": "gb300",
    "nvidia-l40s": "l40s",
    "nvidia-l4": "l4",
}
# The Hugging Face configs aiconfigurator ships (aiconfigurator_core/model_configs), by preset.
SHIPPED_MODELS: Final = {
    "llama-3.1-8b": "meta-llama/Meta-Llama-3.1-8B",
    "llama-3.1-70b": "meta-llama/Meta-Llama-3.1-70B",
    "llama-3.1-405b": "meta-llama/Meta-Llama-3.1-405B",
    "mixtral-8x7b": "mistralai/Mixtral-8x7B-v0.1",
    "mixtral-8x22b": "mistralai/Mixtral-8x22B-v0.1",
    "qwen3-235b-a22b": "Qwen/Qwen3-235B-A22B",
    "qwen3-30b-a3b": "Qwen/Qwen3-30B-A3B",
    "deepseek-v3": "deepseek-ai/DeepSeek-V3",
    "deepseek-r1": "deepseek-ai/DeepSeek-R1",
    "kimi-k2": "moonshotai/Kimi-K2-Instruct",
    "llama-4-scout": "meta-llama/Llama-4-Scout-17B-16E-Instruct",
    "llama-4-maverick": "meta-llama/Llama-4-Maverick-17B-128E-Instruct",
    "gpt-oss-120b": "openai/gpt-oss-120b",
    "gpt-oss-20b": "openai/gpt-oss-20b",
}
# Presets of a plain Llama decoder that aiconfigurator models but does not ship a config for.
LOCAL_LLAMA: Final = ("llama-2-7b", "llama-2-13b", "llama-2-70b")
# Checkpoints published with block-scaled FP8 weights: aiconfigurator's fp8_block kernels.
BLOCK_FP8: Final = ("deepseek-v3", "deepseek-r1", "kimi-k2")
# memwall's storage precision -> aiconfigurator's GEMM (and MoE) quantization mode (weights run
# at the compute precision where the two match; weight-only where compute is wider).
_GEMM: Final = {"bf16": "bfloat16", "fp16": "bfloat16", "fp8": "fp8", "fp4": "nvfp4"}
_WEIGHT_ONLY: Final = {"int8": "int8_wo", "int4": "int4_wo"}
_KV: Final = {"bf16": "bfloat16", "fp16": "bfloat16", "fp8": "fp8", "int8": "int8"}


@dataclass(frozen=True)
class Request:
    """One call of aiconfigurator's ``cli_estimate`` (its keyword names), the run it stands
    for, and which of its results is the run's metric (``reads``: ttft, tpot, tokens_per_s)."""

    run_id: str
    metric: str
    reads: str
    model_path: str
    local_config: dict[str, object] | None
    system_name: str
    backend_name: str
    mode: str
    isl: int
    osl: int
    batch_size: int
    tp_size: int
    pp_size: int
    attention_dp_size: int
    moe_tp_size: int | None
    moe_ep_size: int | None
    gemm_quant_mode: str
    moe_quant_mode: str | None
    kvcache_quant_mode: str | None
    # Where the source does not state the KV cache: the weights' mode, which the runner uses
    # when aiconfigurator finds the batch does not fit with its default (the model's dtype),
    # the rule memwall's backtest applies to the same rows.
    kv_if_full: str | None

    def as_json(self) -> dict[str, object]:
        return asdict(self)


@dataclass(frozen=True)
class Unexpressed:
    """A run aiconfigurator cannot be asked about, and why."""

    run_id: str
    why: str


def _blank(value: object) -> bool:
    """An empty cell, however the reader gives it (None, NaN, pandas' NA, '')."""
    if isinstance(value, str):
        return value == ""
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def _whole(value: object) -> int:
    """A count the reader may give as a float (a column with blanks is read as floats)."""
    return int(float(str(value)))


def llama_config(arch: Architecture) -> dict[str, object]:
    """A Hugging Face ``config.json`` of a plain Llama decoder, from a preset's figures (copied
    from the published config, so this gives back the keys aiconfigurator reads)."""
    return {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "num_hidden_layers": arch.layers,
        "hidden_size": arch.hidden,
        "num_attention_heads": arch.heads,
        "num_key_value_heads": arch.kv_heads,
        "head_dim": arch.head_dim,
        "intermediate_size": arch.ffn,
        "vocab_size": arch.vocab,
        "max_position_embeddings": arch.max_context,
        "tie_word_embeddings": arch.tied_embeddings,
        "hidden_act": "silu",
        "torch_dtype": "float16",
    }


def _model(preset: str) -> tuple[str, dict[str, object] | None] | str:
    """The model path aiconfigurator is given and the local config to write there, or why
    there is none."""
    if preset in SHIPPED_MODELS:
        return SHIPPED_MODELS[preset], None
    if preset in LOCAL_LLAMA:
        return f"local/{preset}", llama_config(PRESETS[preset])
    return f"preset {preset!r}: aiconfigurator ships no config for it"


def _quant(row: Mapping[str, object], preset: str) -> tuple[str, str | None, str | None] | str:
    """The GEMM, MoE and KV quantization modes of a run, or why there are none."""
    weights, compute = str(row["weight_precision"]), str(row["compute_precision"])
    moe_model = preset in PRESETS and PRESETS[preset].experts > 0
    if weights == compute and weights in _GEMM:
        gemm = "fp8_block" if weights == "fp8" and preset in BLOCK_FP8 else _GEMM[weights]
        moe = gemm if moe_model else None  # routed experts at the same kernels' precision
    elif weights in _WEIGHT_ONLY and compute in ("bf16", "fp16") and not moe_model:
        gemm, moe = _WEIGHT_ONLY[weights], None
    elif weights == "fp4" and compute in ("bf16", "fp16") and moe_model:
        # 4-bit experts multiplied in 16 bits, the rest in 16 bits: gpt-oss's MXFP4 checkpoint.
        gemm, moe = "bfloat16", "w4a16_mxfp4"
    else:
        return (
            f"weights {weights} with {compute} compute: no aiconfigurator quantization mode "
            f"(GEMM: {', '.join(sorted({*_GEMM, *_WEIGHT_ONLY}))} storage)"
        )
    kv_text = row.get("kv_precision")
    if _blank(kv_text):
        return gemm, moe, None  # aiconfigurator's default: the model config's dtype
    if str(kv_text) not in _KV:
        return f"KV cache {kv_text}: no aiconfigurator KV mode (valid: {', '.join(_KV)})"
    return gemm, moe, _KV[str(kv_text)]


def _narrower_kv(row: Mapping[str, object]) -> str | None:
    """The KV mode of the weights' precision where it is narrower than 16 bits, else None."""
    mode = _KV.get(str(row["weight_precision"]))
    return None if mode in (None, "bfloat16") else mode


def _estimate(row: Mapping[str, object]) -> tuple[str, str] | str:
    """aiconfigurator's estimate mode for a run and which result is its metric, or why none."""
    metric, phase = str(row["metric"]), str(row["phase"])
    if phase == "prefill" and metric in ("ttft_s", "prefill_tokens_per_s"):
        return "static_ctx", "ttft"
    if phase != "decode":
        return f"phase {phase} with metric {metric}: no aiconfigurator estimate reads it"
    if _blank(row.get("output_tokens")):
        return "the source does not state its output length, which an estimate needs"
    if metric == "tpot_s":
        loaded = under_load(SimpleNamespace(**row))
        return ("agg", "tpot") if loaded else ("static", "tpot")
    if metric == "output_tokens_per_s":
        return "static", "tokens_per_s"
    return f"metric {metric}: no aiconfigurator estimate reads it"


def express(row: Mapping[str, object]) -> Request | Unexpressed:
    """What aiconfigurator is asked for one published run (a row of published_runs.csv), or
    why it cannot be (the first missing piece, in the module docstring's order)."""
    run_id = str(row["run_id"])
    engine = str(row["engine"]).split(" (")[0].strip()
    if engine not in BACKENDS:
        return Unexpressed(
            run_id, f"engine {row['engine']!r} is none of aiconfigurator's: {', '.join(BACKENDS)}"
        )
    hardware = str(row["hardware"])
    if hardware not in SYSTEMS:
        return Unexpressed(run_id, f"accelerator {hardware}: aiconfigurator has no system for it")
    preset = str(row["model_preset"])
    model = _model(preset)
    if isinstance(model, str):
        return Unexpressed(run_id, model)
    quant = _quant(row, preset)
    if isinstance(quant, str):
        return Unexpressed(run_id, quant)
    unstated = [c for c in ("batch", "input_tokens") if _blank(row.get(c))]
    if unstated:
        return Unexpressed(
            run_id, f"the source does not state its {' or '.join(unstated)}, which one needs"
        )
    estimate = _estimate(row)
    if isinstance(estimate, str):
        return Unexpressed(run_id, estimate)
    text = "" if _blank(row.get("layout")) else str(row["layout"])
    degrees = layout_degrees(text) if text else {"tp": _whole(row["devices"])}
    tp, dp = degrees.get("tp", 1), degrees.get("dp_attention", 1)
    ep, pp = degrees.get("ep", 1), degrees.get("pp", 1)
    batch = _whole(row["batch"])
    if batch % dp:
        return Unexpressed(
            run_id,
            f"batch {batch} does not fill {dp} attention-data-parallel ranks evenly "
            "(aiconfigurator's batch is per rank)",
        )
    moe = PRESETS[preset].experts > 0
    output = row.get("output_tokens")
    return Request(
        run_id=run_id,
        metric=str(row["metric"]),
        reads=estimate[1],
        model_path=model[0],
        local_config=model[1],
        system_name=SYSTEMS[hardware],
        backend_name=BACKENDS[engine],
        mode=estimate[0],
        isl=_whole(row["input_tokens"]),
        osl=1 if _blank(output) else max(1, _whole(output)),
        batch_size=batch // dp,
        tp_size=tp,
        pp_size=pp,
        attention_dp_size=dp,
        # The routed experts split over the stage: ep ways whole, else tp · dp ways each.
        moe_tp_size=(tp * dp // ep) if moe else None,
        moe_ep_size=ep if moe else None,
        gemm_quant_mode=quant[0],
        moe_quant_mode=quant[1],
        kvcache_quant_mode=quant[2],
        kv_if_full=_narrower_kv(row) if quant[2] is None else None,
    )

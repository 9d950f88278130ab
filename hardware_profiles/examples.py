"""Built-in example workloads and roadmap, so a first audit needs no input at all.

Every figure below is derived by hand from the model's published config, with the arithmetic
written out as Python expressions so that it can be checked line by line. Notation (DESIGN.md):
P total parameters, P_act active, L layers, H_q/H_kv query/KV heads, d_h head dim, B batch,
S prompt length, T context length, b bytes per element. Per-token figures divide a step by B.

- Decode, per token: FLOPs = 2·P_act + 4·L·T·H_q·d_h; bytes = (b_w·P_touched + B·T·KV_tok) / B,
  with KV_tok = 2·L·H_kv·d_h·b_kv (KV heads, not query heads).
- Prefill, per token: FLOPs = 2·P_act + 2·L·S·H_q·d_h (causal attention, averaged over the
  prompt); bytes = b_w·P / (B·S) (weights once per batch) + KV_tok (written) .
- Training, per step of N tokens: FLOPs = 6·P·N; bytes = 36·P (bf16 weights read twice, fp32
  gradients written and read, fp32 master weights and two Adam moments read and written) plus
  activations 2·34·h·L·b per token (written in the forward pass, read in the backward pass).

P counts the LM head (Llama 3.1 does not tie it to the embedding).
"""

from __future__ import annotations

import datetime as dt

import pandas as pd

from hardware_profiles.parquet import validate_frame
from hardware_profiles.schema import ROADMAP, WORKLOADS

SOURCE = "built-in examples (hardware_profiles/examples.py)"

# Llama 3.1 70B (config.json: 80 layers, hidden 8192, 64 query / 8 KV heads, head dim 128,
# vocab 128256): 70.55e9 parameters. bf16 weights and KV cache (2 bytes).
_L70, _HQ70, _HKV70, _D70, _P70 = 80, 64, 8, 128, 70.55e9
_KV_TOK_70 = 2 * _L70 * _HKV70 * _D70 * 2  # 327,680 bytes per token
_B70, _T70 = 32, 4096

# Llama 3.1 8B (32 layers, hidden 4096, 32 query / 8 KV heads, head dim 128): 8.03e9 params.
_L8, _HQ8, _HKV8, _D8, _H8, _P8 = 32, 32, 8, 128, 4096, 8.03e9
_KV_TOK_8 = 2 * _L8 * _HKV8 * _D8 * 2  # 131,072 bytes per token

# Mixtral 8x7B (32 layers, hidden 4096, 32 query / 8 KV heads, 8 experts, top-2, FFN 14336):
# 46.7e9 parameters, 12.9e9 active. Experts hold 32·8·3·4096·14336 = 45.1e9 of them; with B = 8
# uniformly routed tokens a layer touches 8·(1 - (1 - 2/8)**8) = 7.20 distinct experts.
_EXPERT_PARAMS = 32 * 8 * 3 * 4096 * 14336
_MIXTRAL_TOUCHED = (46.7e9 - _EXPERT_PARAMS) + _EXPERT_PARAMS * (1 - (1 - 2 / 8) ** 8)
_B_MX, _T_MX = 8, 4096

# Prefill: Llama 3.1 8B, batch 4 prompts of S = 4096 tokens.
_B_PF, _S_PF = 4, 4096
# Training: Llama 3.1 8B, 128 sequences of 4096 tokens per step.
_N_TRAIN = 128 * 4096

EXAMPLE_WORKLOADS = [
    {
        "workload_id": "chat-70b-decode",
        "name": "Chat assistant (Llama 3.1 70B decode, batch 32, 4k context)",
        "owner": "inference-team",
        "pool": "inference",
        "phase": "decode",
        "precision": "bf16",
        "unit": "token",
        "flops_per_unit": 2 * _P70 + 4 * _L70 * _T70 * _HQ70 * _D70,
        "bytes_per_unit": (2 * _P70 + _B70 * _T70 * _KV_TOK_70) / _B70,
        "memory_footprint_bytes": 2 * _P70 + _B70 * _T70 * _KV_TOK_70,
        "demand_units_per_s": 12_000.0,
        "demand_growth_per_year": 1.0,
        "model_preset": "llama-3.1-70b",
        "batch": _B70,
        "context_tokens": _T70,
    },
    {
        "workload_id": "agent-8b-decode",
        "name": "Coding agent (Llama 3.1 8B decode, batch 1, 8k context)",
        "owner": "devtools",
        "pool": "edge",
        "phase": "decode",
        "precision": "bf16",
        "unit": "token",
        "flops_per_unit": 2 * _P8 + 4 * _L8 * 8192 * _HQ8 * _D8,
        "bytes_per_unit": 2 * _P8 + 1 * 8192 * _KV_TOK_8,
        "memory_footprint_bytes": 2 * _P8 + 8192 * _KV_TOK_8,
        "demand_units_per_s": 250.0,
        "demand_growth_per_year": 1.5,
        "model_preset": "llama-3.1-8b",
        "batch": 1,
        "context_tokens": 8192,
    },
    {
        "workload_id": "mixtral-decode",
        "name": "Support bot (Mixtral 8x7B decode, batch 8, 4k context)",
        "owner": "support-ml",
        "pool": "inference",
        "phase": "decode",
        "precision": "bf16",
        "unit": "token",
        "flops_per_unit": 2 * 12.9e9 + 4 * 32 * _T_MX * 32 * 128,
        "bytes_per_unit": (2 * _MIXTRAL_TOUCHED + _B_MX * _T_MX * _KV_TOK_8) / _B_MX,
        "memory_footprint_bytes": 2 * 46.7e9 + _B_MX * _T_MX * _KV_TOK_8,
        "demand_units_per_s": 2_500.0,
        "demand_growth_per_year": 0.8,
        "model_preset": "mixtral-8x7b",
        "batch": _B_MX,
        "context_tokens": _T_MX,
    },
    {
        "workload_id": "rag-8b-prefill",
        "name": "RAG prompt ingestion (Llama 3.1 8B prefill, 4 x 4k prompts)",
        "owner": "search",
        "pool": "inference",
        "phase": "prefill",
        "precision": "bf16",
        "unit": "token",
        "flops_per_unit": 2 * _P8 + 2 * _L8 * _S_PF * _HQ8 * _D8,
        "bytes_per_unit": 2 * _P8 / (_B_PF * _S_PF) + _KV_TOK_8,
        "memory_footprint_bytes": 2 * _P8 + _B_PF * _S_PF * _KV_TOK_8,
        "demand_units_per_s": 60_000.0,
        "demand_growth_per_year": 0.6,
        "model_preset": "llama-3.1-8b",
        "batch": _B_PF,
        "context_tokens": _S_PF,
    },
    {
        "workload_id": "pretrain-8b",
        "name": "Continued pre-training (Llama 3.1 8B, 0.5M tokens per step)",
        "owner": "research",
        "pool": "training",
        "phase": "training",
        "precision": "bf16",
        "unit": "step",
        "flops_per_unit": 6 * _P8 * _N_TRAIN,
        "bytes_per_unit": 36 * _P8 + _N_TRAIN * 2 * 34 * _H8 * _L8 * 2,
        "memory_footprint_bytes": 16 * _P8,
        "demand_units_per_s": 2.0,
        "demand_growth_per_year": 0.5,
        "model_preset": "llama-3.1-8b",
        "batch": 128,
        "context_tokens": 4096,
    },
]


def _d(text: str) -> dt.date:
    return dt.date.fromisoformat(text)


# Three pools: H100s today, H200s and B200s arriving, old parts retired.
EXAMPLE_ROADMAP = [
    ("inference", _d("2025-06-01"), "nvidia-h100-sxm", 64, 30_000.0, "installed base"),
    ("inference", _d("2027-03-01"), "nvidia-h200-sxm", 32, 32_000.0, "H200 expansion"),
    ("inference", _d("2027-09-01"), "nvidia-b200", 32, 45_000.0, "B200 expansion"),
    ("inference", _d("2027-10-01"), "nvidia-h100-sxm", -32, None, "retire oldest H100s"),
    ("training", _d("2025-01-01"), "nvidia-h100-sxm", 128, 30_000.0, "installed base"),
    ("training", _d("2027-06-01"), "nvidia-b200", 64, 45_000.0, "B200 training cluster"),
    ("edge", _d("2024-09-01"), "nvidia-l40s", 8, 9_000.0, "installed base"),
    ("edge", _d("2027-01-01"), "nvidia-l4", 16, 3_000.0, "edge refresh"),
]


def example_workloads() -> pd.DataFrame:
    return validate_frame(pd.DataFrame(EXAMPLE_WORKLOADS), WORKLOADS, SOURCE)


def example_roadmap() -> pd.DataFrame:
    frame = pd.DataFrame(
        EXAMPLE_ROADMAP,
        columns=[
            "pool",
            "effective_date",
            "accelerator_id",
            "count_delta",
            "unit_cost_usd",
            "note",
        ],
    )
    return validate_frame(frame, ROADMAP, SOURCE)

"""Served model names matched to presets, and observe's rows merged into one per model."""

from __future__ import annotations

import pandas as pd
import pytest

from tasks.analysis.workload.served_models import engine_only_rows, match_preset, one_row_per_model


@pytest.mark.parametrize(
    ("served", "expected", "aside"),
    [
        ("meta-llama/Llama-3.1-8B-Instruct", "llama-3.1-8b", "Instruct"),
        ("meta-llama/Llama-3.1-70B", "llama-3.1-70b", None),
        ("mistralai/Mixtral-8x7B-Instruct-v0.1", "mixtral-8x7b", "Instruct-v0.1"),
        ("meta-llama/Llama-2-70b-chat-hf", "llama-2-70b", "chat-hf"),
        ("google/gemma-2-27b-it", "gemma-2-27b", "it"),
        ("Qwen/Qwen2.5-72B-Instruct-AWQ", "qwen2.5-72b", "Instruct-AWQ"),
        ("Qwen/Qwen3-235B-A22B-Instruct-2507", "qwen3-235b-a22b", "Instruct-2507"),
        ("deepseek-ai/DeepSeek-V3", "deepseek-v3", None),  # V3 is the model, not a version
        ("models/Kimi-K2-Instruct", "kimi-k2", "Instruct"),  # a local path: its last part
    ],
)
def test_a_repository_name_matches_its_preset(served: str, expected: str, aside: str) -> None:
    match = match_preset(served)
    assert match is not None and match.preset == expected
    assert match.how.startswith(f"by repository: {served} is ")
    assert (f", {aside} set aside" in match.how) if aside else ("set aside" not in match.how)


def test_a_preset_name_matches_by_name() -> None:
    match = match_preset("Llama-3.1-8B")
    assert match is not None and match.preset == "llama-3.1-8b"
    assert match.how.startswith("by name")


@pytest.mark.parametrize(
    "served",
    [
        "support",  # a --served-model-name alias
        "meta-llama/Llama-3.2-3B-Instruct",  # a model memwall has no preset for
        "acme/Llama-3.1-8B-finetuned-support",  # a fine-tune under a new name
        "openai/gpt-3",  # GPT-3's preset cites a paper, not a repository
    ],
)
def test_anything_else_matches_nothing(served: str) -> None:
    assert match_preset(served) is None


def test_one_row_per_model_weights_each_sample_once() -> None:
    """Hand-worked: 300 samples at batch 6, context 2,000, KV 20 % on H100 and 100 at batch 10,
    context 6,000, KV 60 % on H200 give batch (300·6 + 100·10) / 400 = 7, context
    (300·2000 + 100·6000) / 400 = 3,000 and KV (300·0.2 + 100·0.6) / 400 = 0.3; GPUs add up."""
    rows = pd.DataFrame(
        {
            "model_name": ["m", "m", "other"],
            "accelerator_id": ["nvidia-h200-sxm", "nvidia-h100-sxm", "nvidia-h100-sxm"],
            "gpus": [1, 2, 1],
            "batch": [10.0, 6.0, 3.0],
            "context": [6000.0, 2000.0, 100.0],
            "kv_cache_usage": [0.6, 0.2, float("nan")],
            "samples": [100, 300, 50],
            "names_found": ["SGLang names", "vLLM 0.10+ names", "SGLang names"],
        }
    )
    merged = one_row_per_model(rows).set_index("model_name")
    m = merged.loc["m"]
    assert m["accelerators"] == "nvidia-h100-sxm, nvidia-h200-sxm"
    assert (m["gpus"], m["samples"]) == (3, 400)
    assert m["batch"] == pytest.approx(7.0)
    assert m["context"] == pytest.approx(3000.0)
    assert m["kv_cache_usage"] == pytest.approx(0.3)
    assert m["names_found"] == "SGLang names; vLLM 0.10+ names"
    assert merged["kv_cache_usage"].isna().to_dict() == {"m": False, "other": True}


def test_servers_no_gpu_series_names_take_their_figures_from_the_engine_alone() -> None:
    """Two servers of one model placed on H100 by their nodes' labels, 2 and 4 GPUs: 3 usable
    samples at batch 4, 8 and 12 (a fourth, with no step, is not usable) average batch 8 and
    context 1,000; the GPUs add up to 6; an unplaced server is not read."""

    def samples(server: str, batch: list[float], step: list[float]) -> pd.DataFrame:
        n = len(batch)
        return pd.DataFrame(
            {
                "server": server,
                "model_name": "m",
                "engine": "vLLM 0.10+ names",
                "batch": batch,
                "step_s": step,
                "context_tokens": [1000.0] * n,
                "kv_cache_usage": [0.5] * n,
            }
        )

    engine = pd.concat(
        [
            samples("vllm ns/a", [4.0, 8.0], [0.02, 0.02]),
            samples("vllm ns/b", [12.0, 30.0], [0.02, float("nan")]),
            samples("vllm ns/c", [99.0], [0.02]),
        ]
    )
    placed = {"vllm ns/a": ("nvidia-h100-sxm", 2.0), "vllm ns/b": ("nvidia-h100-sxm", 4.0)}
    (row,) = engine_only_rows(engine, placed, "node label").to_dict("records")
    assert (row["accelerator_id"], row["gpus"], row["samples"]) == ("nvidia-h100-sxm", 6.0, 3)
    assert (row["batch"], row["context"], row["kv_cache_usage"]) == (8.0, 1000.0, 0.5)
    assert row["names_found"] == "vLLM 0.10+ names; node label"

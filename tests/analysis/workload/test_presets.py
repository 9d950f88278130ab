"""Presets against the parameter counts their publishers state, and config.json import."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from hardware_profiles.errors import ProfileError
from tasks.analysis.workload.examples import example_workloads
from tasks.analysis.workload.hf_config import import_hf_config
from tasks.analysis.workload.open_models_2025 import OPEN_MODELS_2025
from tasks.analysis.workload.presets import PRESETS, UnknownPresetError, estimate_workload, preset
from tasks.analysis.workload.presets_megatron import MEGATRON_2021_GPT, MEGATRON_GPT
from tasks.analysis.workload.workload_model import parameters

# Parameter counts as published (model cards, safetensors index, papers).
PUBLISHED = {
    "llama-2-7b": 6_738_415_616,
    "llama-2-13b": 13_015_864_320,
    "llama-2-70b": 68_976_648_192,
    "llama-3.1-8b": 8_030_261_248,
    "llama-3.1-70b": 70_553_706_496,
    "llama-3.1-405b": 405_853_388_800,
    "mistral-7b": 7_248_023_552,
    "mixtral-8x7b": 46_702_792_704,
    "mixtral-8x22b": 140.6e9,
    "qwen2.5-72b": 72_706_203_648,
    "gemma-2-27b": 27_227_128_320,
    "deepseek-v3": 671e9,  # without the 14B multi-token-prediction module
    "gpt-3-175b": 175e9,
}


def test_every_listed_model_has_a_preset() -> None:
    # The 2025 models are checked in test_open_models, Megatron's GPTs in test_presets_megatron.
    listed = set(PUBLISHED) | {
        a.name for a in (*OPEN_MODELS_2025, *MEGATRON_GPT, *MEGATRON_2021_GPT)
    }
    assert listed == set(PRESETS)
    assert all(a.source for a in PRESETS.values())


@pytest.mark.parametrize(("name", "count"), sorted(PUBLISHED.items()))
def test_parameter_count_matches_the_publisher(name: str, count: float) -> None:
    assert parameters(preset(name)).total == pytest.approx(count, rel=0.003)


def test_active_parameters_of_moe_models() -> None:
    # Mixtral 8x7B: 12.9B active per token (model card), embedding excluded: 12.75B + ...
    assert parameters(preset("mixtral-8x7b")).active_per_token == pytest.approx(12.9e9, rel=0.02)
    # DeepSeek-V3: 37B activated per token (technical report).
    assert parameters(preset("deepseek-v3")).active_per_token == pytest.approx(37e9, rel=0.02)


def test_unknown_preset_lists_the_valid_ones() -> None:
    with pytest.raises(UnknownPresetError) as caught:
        preset("llama-9")
    message = str(caught.value)
    assert "unknown model preset 'llama-9'" in message
    assert "llama-3.1-70b" in message and "deepseek-v3" in message
    assert preset(" Llama-3.1-8B ") is PRESETS["llama-3.1-8b"]


def _write(tmp_path: Path, config: dict[str, object]) -> Path:
    folder = tmp_path / "my-model"
    folder.mkdir(parents=True)
    path = folder / "config.json"
    path.write_text(json.dumps(config))
    return path


LLAMA_31_8B_CONFIG = {
    "architectures": ["LlamaForCausalLM"],
    "model_type": "llama",
    "hidden_size": 4096,
    "intermediate_size": 14336,
    "num_attention_heads": 32,
    "num_hidden_layers": 32,
    "num_key_value_heads": 8,
    "vocab_size": 128256,
    "max_position_embeddings": 131072,
    "tie_word_embeddings": False,
    "hidden_act": "silu",
}

DEEPSEEK_V3_CONFIG = {
    "model_type": "deepseek_v3",
    "hidden_size": 7168,
    "intermediate_size": 18432,
    "moe_intermediate_size": 2048,
    "num_hidden_layers": 61,
    "first_k_dense_replace": 3,
    "num_attention_heads": 128,
    "num_key_value_heads": 128,
    "n_routed_experts": 256,
    "n_shared_experts": 1,
    "num_experts_per_tok": 8,
    "q_lora_rank": 1536,
    "kv_lora_rank": 512,
    "qk_nope_head_dim": 128,
    "qk_rope_head_dim": 64,
    "v_head_dim": 128,
    "vocab_size": 129280,
    "max_position_embeddings": 163840,
    "tie_word_embeddings": False,
}


def test_import_a_llama_config_matches_the_preset(tmp_path: Path) -> None:
    arch = import_hf_config(_write(tmp_path, LLAMA_31_8B_CONFIG)).architecture
    assert arch.name == "my-model"
    assert parameters(arch).total == parameters(preset("llama-3.1-8b")).total


def test_import_a_deepseek_config_matches_the_preset(tmp_path: Path) -> None:
    arch = import_hf_config(_write(tmp_path, DEEPSEEK_V3_CONFIG), name="dsv3").architecture
    assert arch.is_mla and arch.is_moe
    assert parameters(arch).total == parameters(preset("deepseek-v3")).total
    assert arch.kv_elements_per_token_per_layer() == 512 + 64


def test_import_reads_a_nested_text_config(tmp_path: Path) -> None:
    arch = import_hf_config(
        _write(tmp_path, {"model_type": "llava", "text_config": LLAMA_31_8B_CONFIG})
    ).architecture
    assert arch.kv_heads == 8


def test_import_errors_name_the_file_and_key(tmp_path: Path) -> None:
    broken = dict(LLAMA_31_8B_CONFIG)
    del broken["hidden_size"]
    path = _write(tmp_path, broken)
    with pytest.raises(ProfileError, match=r"config\.json, column 'hidden_size': missing key"):
        import_hf_config(path)
    with pytest.raises(ProfileError, match=r"no such config\.json file"):
        import_hf_config(tmp_path / "absent.json")
    garbage = tmp_path / "garbage.json"
    garbage.write_text("{not json")
    with pytest.raises(ProfileError, match="is not a readable JSON file"):
        import_hf_config(garbage)


def test_estimate_workload_recomputes_a_row_for_mitigations() -> None:
    rows: list[dict[str, Any]] = example_workloads().to_dict("records")  # type: ignore[assignment]
    chat = next(r for r in rows if r["workload_id"] == "chat-70b-decode")
    same = estimate_workload(chat)
    assert same is not None and same.bytes_per_unit == chat["bytes_per_unit"]
    fp8 = estimate_workload(chat, weights="fp8")
    assert fp8 is not None
    # The blocks halve; the batch's gathered embedding rows (batch x 8192) stay in bf16.
    gathered = 2 * chat["batch"] * 8192 / chat["batch"]
    assert fp8.components["weights"].bytes == pytest.approx(
        (same.components["weights"].bytes - gathered) / 2 + gathered
    )
    assert fp8.kv == "bf16"  # only the weights change
    wider = estimate_workload(chat, batch=64)
    assert wider is not None and wider.bytes_per_unit < same.bytes_per_unit
    # A row written before the precision columns existed: its precision stands for both.
    old = {k: v for k, v in chat.items() if k not in ("weight_precision", "kv_precision")}
    old_fp8 = estimate_workload(old, weights="int4")
    assert old_fp8 is not None and (old_fp8.weights, old_fp8.kv) == ("int4", "bf16")
    assert estimate_workload({**chat, "model_preset": None}) is None
    assert estimate_workload({**chat, "phase": "other"}) is None


@pytest.mark.parametrize(
    ("change", "column", "says"),
    [
        ({"hidden_size": 4095}, "num_attention_heads", "does not divide hidden_size 4095"),
        ({"num_key_value_heads": 7}, "num_key_value_heads", "is not a multiple of"),
        ({"num_hidden_layers": 0}, "num_hidden_layers", "whole number of at least 1, got 0"),
        ({"num_hidden_layers": 31.5}, "num_hidden_layers", "got 31.5"),
        ({"num_attention_heads": "32"}, "num_attention_heads", "got '32'"),
        ({"num_key_value_heads": -8}, "num_key_value_heads", "got -8"),
    ],
)
def test_a_config_whose_shape_cannot_exist_is_refused_naming_the_key(
    tmp_path: Path, change: dict[str, object], column: str, says: str
) -> None:
    """Each bad config beside the valid control it was made from (Llama 3.1 8B: hidden 4096,
    32 heads, 8 KV heads), so each fails for the one thing broken in it."""
    assert import_hf_config(_write(tmp_path / "ok", LLAMA_31_8B_CONFIG)).architecture.heads == 32
    with pytest.raises(ProfileError) as caught:
        import_hf_config(_write(tmp_path / "bad", {**LLAMA_31_8B_CONFIG, **change}))
    assert caught.value.column == column
    assert says in str(caught.value)
    assert "\n" not in str(caught.value)


def test_a_head_count_that_does_not_divide_lists_the_ones_that_do(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match=r"that divide it: 1, 3, 5, 7, 9, 13, 15, 21, 35"):
        import_hf_config(_write(tmp_path, {**LLAMA_31_8B_CONFIG, "hidden_size": 4095}))

"""`memwall workloads estimate` at FP4-era precisions: bytes as checkpoints ship them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli.test_cli_profiles import memwall, one_error

pytestmark = pytest.mark.integration


def _estimate(tmp_path: Path, *args: str) -> dict[str, object]:
    result = memwall(["workloads", "estimate", "--preset", "llama-3.1-70b", *args], tmp_path)
    assert result.returncode == 0, result.stderr
    figures: dict[str, object] = json.loads(result.stdout)
    return figures


def test_fp4_weights_cost_nvfp4_bytes(tmp_path: Path) -> None:
    # NVFP4: 4 bits + an 8-bit scale per 16 elements = 0.5625 bytes per parameter; the
    # embedding and LM head (2 x 128256 x 8192) stay bf16 unless --head asks otherwise.
    fp4 = _estimate(tmp_path, "--weights", "fp4", "--json")
    params = 70_553_706_496
    head = 2 * 128256 * 8192
    assert fp4["weight_bytes"] == pytest.approx(0.5625 * (params - head) + 2 * head)
    assert fp4["head_precision"] == "bf16"
    everything = _estimate(tmp_path, "--weights", "fp4", "--head", "fp4", "--json")
    assert everything["weight_bytes_per_parameter"] == pytest.approx(0.5625)


def test_fp4_bytes_per_parameter_over_the_blocks_and_over_the_whole_model(tmp_path: Path) -> None:
    # Whole model: (0.5625 x (70,553,706,496 - 2,101,346,304) + 2 x 2,101,346,304) /
    # 70,553,706,496 = 42,707,145,216 / 70,553,706,496 = 0.6053; the quantized blocks alone:
    # 4 bits + 8 / 16 bits of scale = 4.5 bits = 0.5625 bytes.
    fp4 = _estimate(tmp_path, "--weights", "fp4", "--json")
    assert fp4["weight_bytes_per_parameter"] == pytest.approx(42_707_145_216 / 70_553_706_496)
    assert fp4["quantized_bytes_per_parameter"] == pytest.approx(0.5625)
    # int4 weight-only: 4 bits + a 16-bit scale per group of 128 = 4.125 bits.
    int4 = _estimate(tmp_path, "--weights", "int4", "--json")
    assert int4["quantized_bytes_per_parameter"] == pytest.approx(4.125 / 8)
    shown = memwall(
        ["workloads", "estimate", "--preset", "llama-3.1-70b", "--weights", "fp4"], tmp_path
    )
    assert shown.returncode == 0, shown.stderr
    assert (
        "weights: 0.6053 bytes per parameter over the whole model, 0.5625 over the fp4 block "
        "weights (embedding and LM head bf16)"
    ) in " ".join(shown.stdout.split())


def test_fp8_weights_alone_keep_a_bf16_kv_cache(tmp_path: Path) -> None:
    fp8 = _estimate(tmp_path, "--weights", "fp8", "--context", "8192", "--json")
    assert (fp8["weight_precision"], fp8["kv_precision"]) == ("fp8", "bf16")
    # 2 (K and V) x 80 layers x 8 KV heads x 128 x 2 bytes = 327,680 bytes per token.
    assert fp8["kv_bytes_per_token"] == 327_680
    asked = _estimate(tmp_path, "--weights", "fp8", "--kv", "fp8", "--json")
    assert asked["kv_bytes_per_token"] == 163_840


def test_unknown_precision_lists_the_valid_ones(tmp_path: Path) -> None:
    error = one_error(
        memwall(["workloads", "estimate", "--preset", "llama-3.1-8b", "--weights", "fp5"], tmp_path)
    )
    assert "unknown precision 'fp5'; valid: fp32, tf32, bf16, fp16, fp8, fp6, fp4, int8, int4" in (
        error
    )


def test_fp4_compute_without_fp4_units_names_workload_and_accelerator(tmp_path: Path) -> None:
    # The built-in inference pool holds H100s and H200s, which have no fp4 units.
    target = tmp_path / "workloads.parquet"
    args = ["workloads", "add", "--id", "w4a4", "--owner", "o", "--pool", "inference"]
    args += ["--preset", "llama-3.1-8b", "--weights", "fp4", "--precision", "fp4"]
    error = one_error(memwall([*args, "--demand", "10", "--to", str(target)], tmp_path))
    assert "has no peak on nvidia-" in error and "for workload 'w4a4'" in error
    assert "(no fp4 units)" in error and "weight-only" in error
    assert not target.exists()
    # Weight-only fp4 (bf16 compute) runs on the same hardware.
    args[args.index("--precision") + 1] = "bf16"
    added = memwall([*args, "--demand", "10", "--to", str(target)], tmp_path)
    assert added.returncode == 0, added.stderr


def test_a_config_key_the_import_does_not_understand_is_a_warning(tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    config.write_text(
        json.dumps(
            {
                "model_type": "qwen3",
                "hidden_size": 4096,
                "intermediate_size": 12288,
                "num_attention_heads": 32,
                "num_hidden_layers": 36,
                "num_key_value_heads": 8,
                "head_dim": 128,
                "vocab_size": 151936,
                "max_position_embeddings": 40960,
                "layer_types": ["full_attention"] * 36,
                "hyper_connections": 4,
            }
        )
    )
    result = memwall(["workloads", "estimate", "--config", str(config), "--json"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert "hyper_connections is not understood; ignored" in result.stderr
    assert str(config) in result.stderr

"""`memwall workloads` end to end: a subprocess, its exit code, its output,
and the files it leaves (untouched when the input is bad)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from hardware_profiles.parquet import read_table, write_table
from hardware_profiles.schema import WORKLOADS
from tasks.analysis.workload.presets import preset
from tasks.analysis.workload.workload_model import estimate

pytestmark = pytest.mark.integration


def memwall(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "flows.cli", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
        cwd=cwd,
        timeout=120,
        check=False,
    )


def one_error(result: subprocess.CompletedProcess[str]) -> str:
    """The single `memwall: error:` line of a failed command."""
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("memwall: error:")]
    assert len(errors) == 1, result.stderr
    return errors[0]


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


ADD = [
    "workloads",
    "add",
    "--id",
    "summarise-70b",
    "--owner",
    "docs-team",
    "--pool",
    "inference",
    "--preset",
    "llama-3.1-70b",
    "--phase",
    "decode",
    "--batch",
    "16",
    "--context",
    "8192",
    "--weights",
    "fp8",
    "--kv",
    "fp8",
    "--demand",
    "2000",
    "--unit",
    "token",
    "--growth",
    "0.8",
]


def test_help_lists_the_profile_commands(tmp_path: Path) -> None:
    assert {"workloads", "catalog", "roadmap"} <= set(memwall(["--help"], tmp_path).stdout.split())
    for group, commands in (
        ("workloads", ("estimate", "add", "list", "import", "explain")),
        ("catalog", ("list", "add")),
        ("roadmap", ("show",)),
    ):
        result = memwall([group, "--help"], tmp_path)
        assert result.returncode == 0
        for command in commands:
            assert command in result.stdout


def test_estimate_prints_the_breakdown(tmp_path: Path) -> None:
    result = memwall(
        [
            "workloads",
            "estimate",
            "--preset",
            "llama-3.1-70b",
            "--phase",
            "decode",
            "--batch",
            "16",
            "--context",
            "8192",
            "--weights",
            "fp8",
            "--kv",
            "fp8",
        ],
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    for component in ("weights", "kv_read", "kv_write", "attention", "lm_head", "activations"):
        assert component in result.stdout
    # fp8 KV: 2 · 80 · 8 · 128 · 1 byte = 163,840 bytes per token.
    assert "163,840 bytes per token" in result.stdout
    assert "nvidia-h100-sxm x2" in result.stdout


def test_estimate_json_uses_the_schema_column_names(tmp_path: Path) -> None:
    result = memwall(
        ["workloads", "estimate", "--preset", "mixtral-8x7b", "--batch", "8", "--json"],
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout)
    for column in ("flops_per_unit", "bytes_per_unit", "memory_footprint_bytes", "precision"):
        assert column in figures
    parts = figures["components"]
    assert sum(c["bytes"] for c in parts.values()) == pytest.approx(figures["bytes_per_unit"])
    assert figures["distinct_experts_per_layer"] == pytest.approx(8 * (1 - 0.75**8))


def test_unknown_preset_lists_the_valid_ones(tmp_path: Path) -> None:
    error = one_error(memwall(["workloads", "estimate", "--preset", "llama-4-giant"], tmp_path))
    assert "unknown model preset 'llama-4-giant'; valid: llama-2-7b" in error
    assert "deepseek-v3" in error


@pytest.mark.parametrize(("option", "value"), [("--batch", "0"), ("--batch", "-4")])
def test_zero_or_negative_batch(tmp_path: Path, option: str, value: str) -> None:
    error = one_error(
        memwall(["workloads", "estimate", "--preset", "llama-3.1-8b", option, value], tmp_path)
    )
    assert f"{option} must be > 0, got {value}" in error


def test_context_beyond_the_model_is_a_warning(tmp_path: Path) -> None:
    result = memwall(
        ["workloads", "estimate", "--preset", "llama-2-7b", "--context", "16384"], tmp_path
    )
    assert result.returncode == 0
    assert "warning: context 16384 exceeds llama-2-7b's maximum of 4096 tokens" in result.stderr


MISTRAL_CONFIG = {
    "model_type": "mistral",
    "hidden_size": 4096,
    "intermediate_size": 14336,
    "num_attention_heads": 32,
    "num_hidden_layers": 32,
    "num_key_value_heads": 8,
    "vocab_size": 32768,
    "max_position_embeddings": 32768,
}


def test_estimate_from_a_config_file(tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps(MISTRAL_CONFIG))
    result = memwall(["workloads", "estimate", "--config", str(config), "--json"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["parameters_total"] == 7_248_023_552


def test_add_creates_then_appends(tmp_path: Path) -> None:
    target = tmp_path / "workloads.parquet"
    first = memwall([*ADD, "--engine", "SGLang 0.4.3", "--to", str(target)], tmp_path)
    assert first.returncode == 0, first.stderr
    second = memwall(
        [
            *("workloads", "add", "--owner", "ml", "--pool", "edge"),
            *("--preset", "llama-3.1-8b", "--demand", "50", "--to", str(target)),
        ],
        tmp_path,
    )
    assert second.returncode == 0, second.stderr
    table = read_table(target, WORKLOADS)
    # Without --id the workload is named after its model and phase.
    assert list(table["workload_id"]) == ["summarise-70b", "llama-3.1-8b-decode"]
    row = table.iloc[0]
    assert (row["weight_precision"], row["kv_precision"], row["unit"]) == ("fp8", "fp8", "token")
    # The engine serving it, as --engine said; none said: null (a current engine).
    assert table["engine"].tolist()[0] == "SGLang 0.4.3" and pd.isna(table["engine"].iloc[1])
    assert row["demand_growth_per_year"] == 0.8
    # Each row says its layers, which the step overhead is charged per.
    assert list(table["layers"]) == [80, 32]


def test_add_from_a_config_file_records_its_layers(tmp_path: Path) -> None:
    config = tmp_path / "my-model" / "config.json"
    config.parent.mkdir()
    config.write_text(json.dumps({**MISTRAL_CONFIG, "num_hidden_layers": 24}))
    target = tmp_path / "workloads.parquet"
    result = memwall(
        [
            *("workloads", "add", "--owner", "ml", "--pool", "inference", "--demand", "5"),
            *("--config", str(config), "--batch", "8", "--to", str(target)),
        ],
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    row = read_table(target, WORKLOADS).iloc[0]
    assert (row["layers"], row["batch"], row["model_preset"]) == (24, 8, "my-model")


def _existing(tmp_path: Path) -> tuple[Path, str]:
    """A workloads file holding 'summarise-70b', written in-process (the slow part of these
    tests is starting memwall, not what they check)."""
    row = {
        "workload_id": "summarise-70b",
        "name": "summarise-70b",
        "owner": "docs-team",
        "pool": "inference",
        **estimate(preset("llama-3.1-70b"), phase="decode").workload_columns(),
        "demand_units_per_s": 2000.0,
        "demand_growth_per_year": 0.8,
    }
    target = write_table(pd.DataFrame([row]), tmp_path / "workloads.parquet", WORKLOADS)
    return target, digest(target)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            {},
            "workloads.parquet, row 2, column 'workload_id': duplicate workload_id 'summarise-70b'",
        ),
        ({"--demand": "-5"}, "--demand must be > 0, got -5"),
        ({"--demand": "0"}, "--demand must be > 0, got 0"),
        (
            {"--unit": "tokens"},
            "--unit 'tokens' is not a unit; valid: token, step, request, sample",
        ),
        ({"--unit": "step"}, "--unit 'step' does not match phase decode"),
        ({"--preset": "gpt-5"}, "unknown model preset 'gpt-5'; valid:"),
        (
            {"--pool": "edge", "--precision": "fp8"},
            "column 'precision': precision 'fp8' has no peak on nvidia-a100-80gb-sxm in pool "
            "'edge'",
        ),
        ({"--batch": "0"}, "--batch must be > 0, got 0"),
        (
            {"--engine": "FastServe 2.1"},
            "the new workload, row 1, column 'engine': 'FastServe 2.1': memwall dates the "
            "versions of sglang, vllm, tensorrt-llm only",
        ),
        ({"--engine": ""}, "the new workload, row 1, column 'engine': must not be empty"),
    ],
)
def test_bad_add_leaves_the_file_untouched(
    tmp_path: Path, change: dict[str, str], expected: str
) -> None:
    target, before = _existing(tmp_path)
    args = list(ADD)
    for option, value in change.items():
        if option in args:
            args[args.index(option) + 1] = value
        else:
            args += [option, value]
    error = one_error(memwall([*args, "--to", str(target)], tmp_path))
    assert expected in error
    assert digest(target) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["workloads.parquet"]


HEADER = (
    "workload_id,name,owner,pool,phase,precision,unit,model_preset,batch,context_tokens,"
    "demand_units_per_s,demand_growth_per_year,flops_per_unit,bytes_per_unit,"
    "memory_footprint_bytes"
)
GOOD_CSV = (
    HEADER
    + """
chat,Chat,team-a,inference,decode,bf16,token,llama-3.1-70b,32,4096,1000,0.5,,,
embed,Embedder,team-b,edge,other,bf16,request,,,,300,0.2,2e9,1e9,4e9
"""
)


def test_import_fills_figures_from_presets(tmp_path: Path) -> None:
    csv = tmp_path / "workloads.csv"
    csv.write_text(GOOD_CSV)
    target = tmp_path / "w.parquet"
    result = memwall(["workloads", "import", str(csv), "--to", str(target)], tmp_path)
    assert result.returncode == 0, result.stderr
    table = read_table(target, WORKLOADS).set_index("workload_id")
    assert table.loc["embed", "flops_per_unit"] == 2e9
    assert table["layers"].fillna(0).to_dict() == {"chat": 80, "embed": 0}
    # 2·69.5e9 + 4·80·4096·64·128 ≈ 150e9 FLOPs per token, as the example workload has.
    assert table.loc["chat", "flops_per_unit"] == pytest.approx(150e9, rel=0.01)
    listed = memwall(["workloads", "list", "--workloads", str(target), "--json"], tmp_path)
    assert [r["workload_id"] for r in json.loads(listed.stdout)] == ["chat", "embed"]


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (
            lambda text: text.replace(",demand_growth_per_year", ",growth").replace(
                "growth,flops", "growth,flops"
            ),
            "column 'demand_growth_per_year': missing required column",
        ),
        (
            lambda text: text.replace("other,bf16,request", "other,bf16,requests"),
            "row 2, column 'unit': must be one of token, step, request, sample, got 'requests'",
        ),
        (
            lambda text: text.replace("llama-3.1-70b", "llama-3.1-700b"),
            "row 1, column 'model_preset': unknown model preset 'llama-3.1-700b'",
        ),
        (
            lambda text: text.replace("1000,0.5", "-1000,0.5"),
            "row 1, column 'demand_units_per_s': must be > 0, got -1000.0",
        ),
        (
            lambda text: text.replace("chat,Chat", "embed,Chat"),
            "row 2, column 'workload_id': duplicate workload_id 'embed'",
        ),
        (
            lambda text: text.replace("team-b,edge,other,bf16", "team-b,edge,other,fp8"),
            "row 2, column 'precision': precision 'fp8' has no peak on nvidia-a100-80gb-sxm",
        ),
        (
            lambda text: (
                text.replace("bytes\n", "bytes,layers\n")
                .replace(",,\n", ",,,\n")
                .replace("4e9\n", "4e9,-2\n")
            ),
            "row 2, column 'layers': must be > 0, got -2",
        ),
        (
            lambda text: (
                text.replace("bytes\n", "bytes,engine\n")
                .replace(",,\n", ",,,SGLang 0.4.3\n")
                .replace("4e9\n", "4e9,FastServe 2.1\n")
            ),
            "row 2, column 'engine': 'FastServe 2.1': memwall dates the versions of",
        ),
    ],
)
def test_bad_csv_names_file_row_and_column(tmp_path: Path, edit: object, expected: str) -> None:
    assert callable(edit)
    csv = tmp_path / "workloads.csv"
    csv.write_text(edit(GOOD_CSV))
    target, before = _existing(tmp_path)
    error = one_error(memwall(["workloads", "import", str(csv), "--to", str(target)], tmp_path))
    assert f"{csv}, " in error and expected in error
    assert digest(target) == before


def test_explain_shows_the_components(tmp_path: Path) -> None:
    result = memwall(["workloads", "explain", "mixtral-decode"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert "model_preset: mixtral-8x7b" in result.stdout
    assert "kv_read" in result.stdout and "warning" not in result.stderr
    error = one_error(memwall(["workloads", "explain", "nope"], tmp_path))
    assert "has no workload 'nope'; its workloads are chat-70b-decode" in error


def test_loading_the_cli_imports_no_data_libraries(tmp_path: Path) -> None:
    # `memwall --help` stays instant: the profile commands import pandas/pyarrow lazily.
    probe = "import sys, flows.cli; print(sorted({'pandas', 'pyarrow', 'jax'} & set(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, cwd=tmp_path, check=True
    )
    assert result.stdout.strip() == "[]"

"""`memwall validate` end to end, as a user runs it: a subprocess, its exit code, its output."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli.test_cli_probe import memwall


def test_unknown_preset_is_one_line_listing_the_valid_ones_and_exit_2(tmp_path: Path) -> None:
    result = memwall(["validate", "--quick", "--model", "llama-9-1t"], tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "llama-9-1t" in lines[0]
    assert "mistral-7b" in lines[0] and "Traceback" not in result.stderr


def test_help_names_the_options(tmp_path: Path) -> None:
    result = memwall(["validate", "--help"], tmp_path)
    assert result.returncode == 0
    for option in ("--quick", "--model", "--json", "--catalog"):
        assert option in result.stdout


def _strict(text: str) -> object:
    def refuse(name: str) -> object:
        raise ValueError(f"not strict JSON: {name}")

    return json.loads(text, parse_constant=refuse)


@pytest.mark.slow
@pytest.mark.integration
def test_quick_json_is_strict_and_compares_model_xla_and_measurement(tmp_path: Path) -> None:
    result = memwall(["validate", "--quick", "--model", "mistral-7b", "--json"], tmp_path)
    assert result.returncode == 0, result.stderr
    records = _strict(result.stdout)
    assert isinstance(records, list) and {r["phase"] for r in records} == {"decode", "prefill"}
    for r in records:
        assert r["status"] in ("ok", "unstable")
        assert r["ratio"] == pytest.approx(r["measured_step_s"] / r["predicted_step_s"])
        assert r["xla_flops"] == pytest.approx(r["model_flops"], rel=0.10)
        # XLA charges a gather of several rows its whole table; less that, bytes agree.
        xla = r["xla_bytes"] - r["xla_gather_bytes"]
        assert xla == pytest.approx(r["model_bytes"], rel=0.15)

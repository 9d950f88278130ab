"""`memwall catalog|roadmap` end to end: a subprocess, its exit code, its output, and the
files it leaves (untouched when the input is bad)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hardware_profiles.catalog import builtin_catalog
from hardware_profiles.examples import example_scenarios
from hardware_profiles.parquet import read_table, write_table
from hardware_profiles.schema import CATALOG, ROADMAP
from tests.cli.test_cli_profiles import digest, memwall, one_error

pytestmark = pytest.mark.integration


def test_catalog_list_json(tmp_path: Path) -> None:
    result = memwall(["catalog", "list", "--json"], tmp_path)
    assert result.returncode == 0, result.stderr
    # Strict JSON: NaN or Infinity would be refused here.
    parsed = json.loads(result.stdout, parse_constant=lambda c: pytest.fail(f"non-JSON {c}"))
    rows = {r["accelerator_id"]: r for r in parsed}
    assert len(rows) == len(builtin_catalog())
    assert all(set(r) == set(CATALOG.columns) for r in parsed)
    assert rows["nvidia-h100-sxm"]["peak_flops_per_s_bf16"] == pytest.approx(989.5e12)
    assert "H100 80GB HBM3" in rows["nvidia-h100-sxm"]["device_kind_patterns"]
    assert rows["nvidia-h100-sxm"]["peak_flops_per_s_fp4"] is None
    assert rows["nvidia-b300"]["peak_flops_per_s_fp4"] == pytest.approx(13_125e12)
    assert rows["google-tpu7x"]["checked_on"] == "2026-11-29"
    assert rows["nvidia-rubin"]["status"] == "preliminary"


def test_catalog_list_shows_status_and_source_for_every_row(tmp_path: Path) -> None:
    result = memwall(["catalog", "list"], tmp_path)
    assert result.returncode == 0, result.stderr
    lines = {line.split("│")[1].strip(): line for line in result.stdout.splitlines() if "│" in line}
    for row in builtin_catalog().to_dict("records"):
        line = lines[row["accelerator_id"]]
        assert f" {row['status']} " in line
        assert row["source_url"].split("/")[2] in line
    assert "34,722" in lines["nvidia-rubin"]  # the fp4 dense column


def test_catalog_add_starts_from_the_builtin_catalog(tmp_path: Path) -> None:
    target = tmp_path / "catalog.parquet"
    add = [
        "catalog",
        "add",
        "--id",
        "acme-x1",
        "--vendor",
        "Acme",
        "--name",
        "X1",
        "--memory-gb",
        "96",
        "--bandwidth-tb-s",
        "4",
        "--bf16-tflops",
        "800",
        "--pattern",
        "Acme X1",
        "--source",
        "Acme X1 datasheet rev 2",
        "--to",
        str(target),
    ]
    assert memwall(add, tmp_path).returncode == 0
    table = read_table(target, CATALOG).set_index("accelerator_id")
    assert len(table) == len(builtin_catalog()) + 1
    assert table.loc["acme-x1", "mem_bandwidth_bytes_per_s"] == 4e12
    before = digest(target)
    error = one_error(memwall(add, tmp_path))
    assert "column 'accelerator_id': duplicate accelerator_id 'acme-x1'" in error
    assert digest(target) == before


def test_catalog_add_takes_fp4_power_link_and_provenance(tmp_path: Path) -> None:
    target = tmp_path / "catalog.parquet"
    add = [
        *("catalog", "add", "--id", "acme-x2", "--vendor", "Acme", "--name", "X2"),
        *("--memory-gb", "192", "--bandwidth-tb-s", "8", "--bf16-tflops", "2000"),
        *("--fp8-tflops", "4000", "--fp6-tflops", "4000", "--fp4-tflops", "8000"),
        *("--int8-tops", "4000", "--int4-tops", "8000"),
        *("--tdp-watts", "1200", "--interconnect-gb-s", "900", "--status", "announced"),
        *("--source-url", "https://acme.example/x2", "--note", "fp4 is a preview figure"),
        *("--source", "Acme X2 brief", "--to", str(target)),
    ]
    assert memwall(add, tmp_path).returncode == 0
    row = read_table(target, CATALOG).set_index("accelerator_id").loc["acme-x2"]
    assert row["peak_flops_per_s_fp4"] == 8e15 and row["peak_flops_per_s_fp6"] == 4e15
    assert row["peak_flops_per_s_int4"] == 8e15 and row["peak_flops_per_s_int8"] == 4e15
    assert row["tdp_watts"] == 1200.0
    assert row["interconnect_bandwidth_bytes_per_s"] == 900e9
    assert (row["status"], row["source_url"]) == ("announced", "https://acme.example/x2")
    assert row["note"] == "fp4 is a preview figure" and row["checked_on"] is not None


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (["--status", "rumour"], "--status 'rumour': valid are shipping, announced, preliminary"),
        (["--fp4-tflops", "0"], "--fp4-tflops must be > 0, got 0"),
        (["--int4-tops", "-5"], "--int4-tops must be > 0, got -5"),
        (["--interconnect-gb-s", "-1"], "--interconnect-gb-s must be > 0, got -1"),
    ],
)
def test_catalog_add_refuses_bad_provenance(tmp_path: Path, bad: list[str], message: str) -> None:
    target = tmp_path / "catalog.parquet"
    add = [
        *("catalog", "add", "--id", "acme-x3", "--vendor", "Acme", "--name", "X3"),
        *("--memory-gb", "96", "--bandwidth-tb-s", "4", "--source", "s", "--to", str(target)),
    ]
    assert message in one_error(memwall([*add, *bad], tmp_path))
    assert not target.exists()


def test_roadmap_show_per_pool_and_scenario(tmp_path: Path) -> None:
    path = write_table(example_scenarios(), tmp_path / "plans.parquet", ROADMAP)
    args = ["roadmap", "show", "--roadmap", str(path), "--start", "2027-01", "--months", "9"]
    result = memwall([*args, "--scenario", "rubin-inference"], tmp_path)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "pool inference" in out and "pool training" in out and "pool edge" in out
    assert "scenarios: baseline, b300-edge, rubin-inference" in out
    # September 2027: the base plan's Rubin rack plus the scenario's, 144 x 65,000 USD.
    assert "144 (+144)" in out and "$9,360,000" in out
    error = one_error(memwall([*args, "--scenario", "h300"], tmp_path))
    assert "has no scenario 'h300'; its scenarios are baseline, b300-edge, rubin-inference" in error

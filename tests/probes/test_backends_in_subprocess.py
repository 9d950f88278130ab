"""Probes under JAX settings that must be fixed before JAX initialises (forced CPU devices,
64-bit mode), so each runs in a fresh interpreter."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from hardware_profiles.parquet import validate_frame
from hardware_profiles.schema import MEASUREMENTS

ROOT = Path(__file__).resolve().parents[2]

_SCRIPT = """
import sys
from hardware_profiles.catalog import builtin_catalog
from tasks.discovery import discover
from tasks.probes.runner import ProbePlan, host_steps, run_steps

catalog = builtin_catalog()
accelerators = discover(catalog)
plan = ProbePlan(
    bandwidth_kernels=("copy", "triad", "read"),
    bandwidth_dtypes=tuple(sys.argv[1].split(",")),
    matmul_dtypes=tuple(sys.argv[1].split(",")),
    matmul_sizes=(64,),
    repetitions=3,
    warmup=1,
    min_working_set_bytes=1 << 20,
    cache_multiple=0,
)
frame = run_steps(host_steps(accelerators, catalog, plan, "run-1"), "rows")
print(frame.to_json(orient="records", date_format="iso"))
"""


def _probe(dtypes: str, **env: str) -> pd.DataFrame:
    result = subprocess.run(
        [sys.executable, "-c", _SCRIPT, dtypes],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        cwd=ROOT,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    # An all-null accelerator_id would otherwise be read back as numbers.
    text = {"accelerator_id": "string"}
    frame = pd.read_json(io.StringIO(result.stdout), dtype=text)
    frame["measured_at"] = pd.to_datetime(frame["measured_at"], utc=True)
    return validate_frame(frame, MEASUREMENTS, "subprocess rows")


@pytest.mark.slow
def test_four_forced_cpu_devices_give_per_device_all_device_and_ring_rows() -> None:
    rows = _probe("float32", XLA_FLAGS="--xla_force_host_platform_device_count=4")
    assert sorted(set(rows["device_index"])) == [-1, 0, 1, 2, 3]
    for index in range(4):
        mine = rows[rows["device_index"] == index]
        assert {"copy", "triad", "read", "matmul"} <= set(mine["probe"])
        assert "device-to-device" not in set(mine["probe"])
    together = rows[rows["device_index"] == -1].set_index("probe")
    assert {"copy", "triad", "read", "matmul", "device-to-device"} <= set(together.index)
    # Every result, split over devices or sent round the ring, was validated and is usable.
    assert set(together["status"]) <= {"ok", "unstable"}
    assert "over 4 devices" in str(together.loc["matmul", "detail"])
    # The ring moves each device's 1/4 of the array: 4 devices x n elements x 4 bytes.
    ring = together.loc["device-to-device"]
    n = int(str(ring["detail"]).split("n=")[1].split(" ")[0])
    assert ring["working_set_bytes"] == 4 * n * 4


@pytest.mark.slow
def test_float64_is_measured_when_jax_runs_in_64_bit_mode() -> None:
    rows = _probe("float64", JAX_ENABLE_X64="1")
    measured = rows[rows["probe"].isin(["copy", "triad", "read", "matmul"])]
    assert list(measured["dtype"]) == ["float64"] * 4
    assert set(measured["status"]) <= {"ok", "unstable"}

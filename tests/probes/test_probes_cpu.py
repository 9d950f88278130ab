"""Probes on JAX's CPU backend with small arrays: real timings, real validation."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from hardware_profiles.catalog import builtin_catalog
from hardware_profiles.parquet import validate_frame
from hardware_profiles.schema import MEASUREMENTS
from tasks.discovery import cpu_last_level_cache_bytes, discover
from tasks.probes import bandwidth, matmul
from tasks.probes.runner import ProbePlan, probe_accelerator

CPU = jax.devices("cpu")[0]


@pytest.mark.parametrize("kernel", ["copy", "scale", "add", "triad", "read"])
def test_every_bandwidth_kernel_validates_against_the_hand_derived_value(kernel: str) -> None:
    result = bandwidth.measure_bandwidth(kernel, CPU, "float32", 4096, repetitions=3)
    assert result.max_relative_error <= bandwidth.tolerance("float32")
    assert result.summary.best > 0


def test_expected_triad_value_is_derived_from_start_values() -> None:
    # a = b + s*c with b = 0.25, c = 0.75, s = 0.4 -> 0.55
    assert bandwidth.expected_value("triad", "float32", 10) == pytest.approx(0.55, rel=1e-6)


def test_a_corrupted_bandwidth_result_is_caught() -> None:
    good = jnp.full(1024, bandwidth.expected_value("triad", "float32", 1024), jnp.float32)
    assert bandwidth.relative_error("triad", "float32", 1024, good) < 1e-6
    bad = good.at[17].set(0.0)
    assert bandwidth.relative_error("triad", "float32", 1024, bad) > bandwidth.tolerance("float32")


def test_matmul_product_validates_and_a_corrupted_one_does_not() -> None:
    result = matmul.measure_matmul(CPU, "float32", 64, repetitions=2)
    assert result.relative_error < matmul.TOLERANCE["float32"]
    a, b = matmul.operands(jax.random.PRNGKey(1), 64, "float32", CPU)
    c = jnp.matmul(a, b, precision=jax.lax.Precision.HIGHEST)
    x = jnp.asarray(np.random.default_rng(0).standard_normal(64), jnp.float32)
    assert matmul.product_error(a, b, c, x) < 1e-5
    corrupted = c.at[3, :].multiply(1.5)
    assert matmul.product_error(a, b, corrupted, x) > matmul.TOLERANCE["float32"]


def test_int8_accumulates_in_int32() -> None:
    result = matmul.measure_matmul(CPU, "int8", 64, repetitions=2)
    assert result.output_dtype == "int32"
    assert result.relative_error < matmul.TOLERANCE["int8"]


def test_discovery_finds_the_cpu_with_no_catalog_entry() -> None:
    found = discover(builtin_catalog())
    assert found[0].platform == "cpu"
    assert found[0].accelerator_id is None
    assert "no catalog entry" in found[0].note


def test_last_level_cache_is_read_from_sysfs() -> None:
    size = cpu_last_level_cache_bytes()
    assert size is None or size >= 64 * 1024


def test_quick_plan_rows_validate_against_the_schema() -> None:
    catalog = builtin_catalog()
    accelerator = discover(catalog)[0]
    plan = ProbePlan(
        matmul_dtypes=("float32",),
        matmul_sizes=(64,),
        repetitions=3,
        warmup=1,
        min_working_set_bytes=0,
        cache_multiple=1,
    )
    rows = probe_accelerator(accelerator, catalog, plan, "run-1")
    validate_frame(rows, MEASUREMENTS, "rows")
    assert list(rows["probe"]) == ["triad", "matmul"]
    assert set(rows["status"]) <= {"ok", "unstable"}
    assert rows["spec"].isna().all()  # a CPU has no catalog spec


def test_unsupported_dtype_becomes_a_waived_row() -> None:
    catalog = builtin_catalog()
    accelerator = discover(catalog)[0]
    # float64 needs JAX's 64-bit mode, off by default: JAX would silently run float32.
    plan = ProbePlan(
        bandwidth_kernels=("triad",),
        bandwidth_dtypes=("float64",),
        matmul_dtypes=("float64",),
        matmul_sizes=(64,),
        repetitions=1,
        min_working_set_bytes=0,
        cache_multiple=1,
    )
    rows = probe_accelerator(accelerator, catalog, plan, "run-1")
    assert list(rows["status"]) == ["waived", "waived"]
    assert "float64" in rows.iloc[0]["detail"]

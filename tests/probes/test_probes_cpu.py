"""Probes on JAX's CPU backend with small arrays: real timings, real validation."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from hardware_profiles.catalog import builtin_catalog
from hardware_profiles.parquet import validate_frame
from hardware_profiles.schema import MEASUREMENTS
from tasks.discovery import cpu_last_level_cache_bytes, discover
from tasks.probes import bandwidth, matmul, transfer
from tasks.probes.kernels import BANDWIDTH_KERNELS
from tasks.probes.runner import ProbePlan, probe_accelerator
from tasks.probes.statistics import summarize
from tasks.probes.targets import status_of

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


def _tiny(**changes: object) -> ProbePlan:
    """A plan small enough for a unit test: it still runs every code path it names."""
    settings: dict[str, object] = {
        "bandwidth_kernels": ("triad",),
        "bandwidth_dtypes": ("float32",),
        "matmul_dtypes": ("float32",),
        "matmul_sizes": (64,),
        "repetitions": 3,
        "warmup": 1,
        "min_working_set_bytes": 0,
        "cache_multiple": 1,
        "transfers": False,
    }
    settings.update(changes)
    return ProbePlan(**settings)  # type: ignore[arg-type]


def test_plan_rows_validate_against_the_schema() -> None:
    catalog = builtin_catalog()
    accelerator = discover(catalog)[0]
    rows = probe_accelerator(accelerator, catalog, _tiny(transfers=True), "run-1")
    validate_frame(rows, MEASUREMENTS, "rows")
    # A CPU's device memory is host memory: there is no host<->device link to measure.
    assert list(rows["probe"]) == ["triad", "matmul"]
    assert set(rows["status"]) <= {"ok", "unstable"}
    assert rows["spec"].isna().all()  # a CPU has no catalog spec
    # Every row says what state the host was in.
    assert rows["detail"].str.contains(r"\| host: load ").all()


def test_a_dtype_the_catalog_model_lacks_is_waived() -> None:
    catalog = builtin_catalog()
    a100 = catalog[catalog["peak_flops_per_s_fp8"].isna()].iloc[0]["accelerator_id"]
    accelerator = dataclasses.replace(discover(catalog)[0], accelerator_id=a100)
    plan = _tiny(bandwidth_kernels=(), matmul_dtypes=("float8_e4m3fn",))
    rows = probe_accelerator(accelerator, catalog, plan, "run-1")
    assert list(rows["status"]) == ["waived"]
    assert f"no fp8 peak for {a100}" in rows.iloc[0]["detail"]


def test_unsupported_dtype_becomes_a_waived_row() -> None:
    catalog = builtin_catalog()
    accelerator = discover(catalog)[0]
    # float64 needs JAX's 64-bit mode, off by default: JAX would silently run float32.
    plan = _tiny(bandwidth_dtypes=("float64",), matmul_dtypes=("float64", "complex64"))
    rows = probe_accelerator(accelerator, catalog, plan, "run-1")
    assert list(rows["status"]) == ["waived", "waived", "waived"]
    assert "JAX_ENABLE_X64" in rows.iloc[0]["detail"]
    assert "no matmul validation tolerance for 'complex64'" in rows.iloc[2]["detail"]


@pytest.mark.parametrize("kernel", ["copy", "scale", "add", "triad", "read"])
def test_bfloat16_kernels_validate(kernel: str) -> None:
    result = bandwidth.measure_bandwidth(kernel, CPU, "bfloat16", 4096, repetitions=2)
    assert result.max_relative_error <= bandwidth.tolerance("bfloat16")
    assert result.working_set_bytes == BANDWIDTH_KERNELS[kernel].arrays * 4096 * 2


@pytest.mark.parametrize("dtype", ["bfloat16", "float16", "float8_e4m3fn"])
def test_low_precision_matmuls_validate(dtype: str) -> None:
    result = matmul.measure_matmul(CPU, dtype, 64, repetitions=2)
    assert result.relative_error < matmul.TOLERANCE[dtype]


def test_tf32_is_asked_for_by_name_and_waived_where_the_backend_lacks_it() -> None:
    # XLA's CPU backend has no TF32 dot algorithm: the row says so instead of timing a full
    # float32 product under the tf32 name.
    catalog = builtin_catalog()
    plan = _tiny(bandwidth_kernels=(), matmul_dtypes=("tfloat32",))
    rows = probe_accelerator(discover(catalog)[0], catalog, plan, "run-1")
    assert list(rows["status"]) == ["waived"]
    assert "TF32_TF32_F32" in rows.iloc[0]["detail"]
    # Stored as float32: 4-byte operands and product.
    assert matmul.working_set_bytes("tfloat32", 64) == matmul.working_set_bytes("float32", 64)


def test_a_wrong_kernel_fails_its_row(monkeypatch: pytest.MonkeyPatch) -> None:
    # A triad that forgets the scalar (a = b + c) runs as fast as the real one: only
    # validation can tell, and the row must say failed.
    wrong = dataclasses.replace(bandwidth._BODIES["triad"], fn=lambda b, c, s: b + c)
    monkeypatch.setitem(bandwidth._BODIES, "triad", wrong)
    catalog = builtin_catalog()
    rows = probe_accelerator(discover(catalog)[0], catalog, _tiny(matmul_dtypes=()), "run-1")
    assert list(rows["status"]) == ["failed"]
    assert rows.iloc[0]["best"] > 0


def test_status_rule() -> None:
    steady = summarize(1.0, [1.0] * 5)
    assert status_of(steady, 0.0, 1e-4) == "ok"
    assert status_of(steady, 1e-3, 1e-4) == "failed"
    assert status_of(steady, float("nan"), 1e-4) == "failed"
    assert status_of(None, 0.0, 1e-4) == "waived"
    assert status_of(summarize(1.0, [1.0, 2.0, 1.0]), 0.0, 1e-4) == "unstable"


def test_matmul_sizes_over_the_memory_cap_are_waived_not_attempted() -> None:
    catalog = builtin_catalog()
    # A cap of a millionth of free memory: a few kB, far below a 2048 GEMM's 48 MiB.
    plan = _tiny(bandwidth_kernels=(), matmul_sizes=(2048,), max_free_fraction=1e-6)
    rows = probe_accelerator(discover(catalog)[0], catalog, plan, "run-1")
    assert list(rows["status"]) == ["waived"]
    assert "n=2048 needs about" in rows.iloc[0]["detail"]


def test_sustained_mode_reports_drift() -> None:
    catalog = builtin_catalog()
    plan = _tiny(bandwidth_kernels=(), matmul_dtypes=("float32",), sustained_s=0.2)
    rows = probe_accelerator(discover(catalog)[0], catalog, plan, "run-1")
    sustained = rows[rows["probe"].str.endswith("-sustained")]
    assert list(sustained["probe"]) == ["triad-sustained", "matmul-sustained"]
    assert sustained["detail"].str.contains(r"drift [+-]\d").all()
    assert (sustained["repetitions"] >= 10).all()
    assert set(sustained["status"]) <= {"ok", "unstable"}


def test_default_plan_fits_the_platform() -> None:
    cpu = ProbePlan.for_platform("cpu")
    gpu = ProbePlan.for_platform("gpu")
    assert max(cpu.matmul_sizes) < max(gpu.matmul_sizes) == 8192
    assert set(gpu.matmul_dtypes) == {
        "float32",
        "tfloat32",
        "bfloat16",
        "float16",
        "float8_e4m3fn",
        "int8",
    }
    assert set(cpu.bandwidth_kernels) == set(BANDWIDTH_KERNELS)
    # An accelerator streams 4 GiB a call, so dispatch and sync cost ~1 % of the figure.
    assert gpu.min_working_set_bytes == 4 * 2**30 > cpu.min_working_set_bytes
    assert "float64" not in cpu.bandwidth_dtypes  # JAX's 64-bit mode is off in tests
    assert ProbePlan.for_platform("cpu", quick=True, sustained_s=5).sustained_s == 5


def test_ring_values_follow_the_shifts() -> None:
    # Devices start holding 1, 2, 3; after one shift device 0 holds what device 2 had.
    assert list(transfer.ring_values(3, 1, 1)) == [3.0, 1.0, 2.0]
    assert list(transfer.ring_values(3, 2, 3)) == [1.0, 1.0, 2.0, 2.0, 3.0, 3.0]

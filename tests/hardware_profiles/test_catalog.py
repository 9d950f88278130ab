"""The built-in catalog and device matching."""

from __future__ import annotations

import pandas as pd
import pytest

from hardware_profiles.catalog import builtin_catalog, match_device_kind
from hardware_profiles.schema import GB, TB, TERA


@pytest.fixture(scope="module")
def catalog() -> pd.DataFrame:
    return builtin_catalog()


def test_every_reference_accelerator_is_present(catalog: pd.DataFrame) -> None:
    assert len(catalog) == 21
    assert catalog["source"].str.len().min() > 0


def test_units_are_converted_once_with_decimal_prefixes(catalog: pd.DataFrame) -> None:
    h100 = catalog.set_index("accelerator_id").loc["nvidia-h100-sxm"]
    assert h100["memory_bytes"] == 80 * GB
    assert h100["mem_bandwidth_bytes_per_s"] == pytest.approx(3.35 * TB)
    # Dense, not the sparse headline (1979 TFLOP/s).
    assert h100["peak_flops_per_s_bf16"] == pytest.approx(989.5 * TERA)


@pytest.mark.parametrize(
    ("device_kind", "expected"),
    [
        ("NVIDIA H100 80GB HBM3", "nvidia-h100-sxm"),
        ("NVIDIA H100 PCIe", "nvidia-h100-pcie"),
        ("NVIDIA A100-SXM4-40GB", "nvidia-a100-40gb-sxm"),
        ("NVIDIA L40S", "nvidia-l40s"),
        ("NVIDIA L4", "nvidia-l4"),
        ("TPU v5 lite", "google-tpu-v5e"),
        ("TPU v5", "google-tpu-v5p"),
        ("AMD Instinct MI300X", "amd-mi300x"),
        ("cpu", None),
    ],
)
def test_device_kind_matching_prefers_the_most_specific_pattern(
    catalog: pd.DataFrame, device_kind: str, expected: str | None
) -> None:
    assert match_device_kind(catalog, device_kind) == expected

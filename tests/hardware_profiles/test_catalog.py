"""The built-in catalog and device matching."""

from __future__ import annotations

import pandas as pd
import pytest

from hardware_profiles.catalog import builtin_catalog, match_device_kind, require_peak
from hardware_profiles.errors import ProfileError
from hardware_profiles.examples import example_roadmap
from hardware_profiles.schema import GB, TB, TERA, GiB


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
        ("NVIDIA H100 NVL", "nvidia-h100-nvl"),
        ("NVIDIA H200", "nvidia-h200-sxm"),
        ("NVIDIA B200", "nvidia-b200"),
        ("NVIDIA GB200", "nvidia-gb200"),
        ("NVIDIA A100-SXM4-40GB", "nvidia-a100-40gb-sxm"),
        ("NVIDIA A100-SXM4-80GB", "nvidia-a100-80gb-sxm"),
        ("NVIDIA A100 80GB PCIe", "nvidia-a100-80gb-pcie"),
        ("TPU v4", "google-tpu-v4"),
        ("TPU v6 lite", "google-tpu-v6e"),
        ("TPU v5p", "google-tpu-v5p"),
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


def test_binary_memory_on_a_sheet_stays_binary(catalog: pd.DataFrame) -> None:
    # Google states TPU v4 HBM as 32 GiB: 34,359,738,368 bytes, not 32e9.
    assert catalog.set_index("accelerator_id").loc["google-tpu-v4", "memory_bytes"] == 32 * GiB


def test_every_partly_checked_entry_says_what_was_confirmed(catalog: pd.DataFrame) -> None:
    sources = catalog.set_index("accelerator_id")["source"]
    for accelerator in ("nvidia-b200", "nvidia-l40s", "nvidia-l4", "amd-mi325x", "google-tpu-v4"):
        assert "confirmed" in sources[accelerator]


def test_precision_without_a_peak_is_refused(catalog: pd.DataFrame) -> None:
    roadmap = example_roadmap()
    require_peak(catalog, roadmap, "inference", "fp8", "w.csv", row=3)
    with pytest.raises(ProfileError) as caught:
        require_peak(catalog, roadmap, "edge", "fp8", "w.csv", row=3)
    assert str(caught.value) == (
        "w.csv, row 3, column 'precision': precision 'fp8' has no peak on "
        "nvidia-a100-80gb-sxm in pool 'edge' (no fp8 units); it has peaks for fp32, tf32, "
        "bf16, fp16, int8: compute at one of those (weights may still be stored at fp8: "
        "weight-only)"
    )

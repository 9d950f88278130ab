"""The built-in catalog and device matching."""

from __future__ import annotations

import itertools
from typing import Any

import pandas as pd
import pytest

from hardware_profiles.catalog import _memory_gb, builtin_catalog, match_device_kind, require_peak
from hardware_profiles.errors import ProfileError
from hardware_profiles.examples import example_roadmap
from hardware_profiles.scale_out import read_scale_out
from hardware_profiles.schema import GB, TB, TERA, GiB, MiB


@pytest.fixture(scope="module")
def catalog() -> pd.DataFrame:
    return builtin_catalog()


def test_every_reference_accelerator_is_present(catalog: pd.DataFrame) -> None:
    # the reference sheet's 30, and the 500 W 96 GB H100 torchtitan's H100 runs used
    assert len(catalog) == 31
    assert catalog["source"].str.len().min() > 0


def test_units_are_converted_once_with_decimal_prefixes(catalog: pd.DataFrame) -> None:
    rows = catalog.set_index("accelerator_id")
    h100 = rows.loc["nvidia-h100-sxm"]
    # A plain memory cell is the sheet's decimal GB: Gaudi 3's "128" is 128e9 bytes.
    assert rows.at["intel-gaudi3", "memory_bytes"] == 128 * GB
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


@pytest.mark.parametrize(
    ("accelerator_id", "reported_mib", "datasheet_gb"),
    [
        ("nvidia-h100-sxm", 81_559, 80),
        ("nvidia-a100-80gb-sxm", 81_920, 80),
        ("nvidia-h200-sxm", 143_771, 141),
        ("nvidia-b200", 183_359, 180),
        ("amd-mi300x", 196_592, 192),
    ],
)
def test_memory_is_what_the_device_reports_not_the_datasheet_gb(
    catalog: pd.DataFrame, accelerator_id: str, reported_mib: int, datasheet_gb: int
) -> None:
    """nvidia-smi prints H100 SXM's total as 81,559 MiB = 81,559 x 2**20 = 85,520,809,984
    bytes; the datasheet's "80GB" read as 80e9 would be 6.9 % short. The row's note names
    where the reported figure was read."""
    row = catalog.set_index("accelerator_id").loc[accelerator_id]
    assert row["memory_bytes"] == reported_mib * MiB
    assert row["memory_bytes"] > datasheet_gb * GB
    assert f"{reported_mib:,} MiB" in row["note"] or f"{reported_mib * MiB:,} bytes" in row["note"]


def test_every_shipping_gpu_says_where_its_capacity_comes_from(catalog: pd.DataFrame) -> None:
    """A shipping NVIDIA or AMD part either carries the total its driver reports (a whole number
    of MiB, named in the note) or says no citable total was found and the datasheet stands."""
    rows = catalog[catalog["vendor"].isin(["NVIDIA", "AMD"]) & (catalog["status"] == "shipping")]
    for accelerator_id, memory_bytes, note in zip(
        rows["accelerator_id"], rows["memory_bytes"], rows["note"], strict=True
    ):
        binary = int(memory_bytes) % MiB == 0
        assert ("the device reports" in str(note)) == binary, accelerator_id
        assert binary or "no citable" in str(note), accelerator_id


def test_a_mib_cell_is_read_as_binary() -> None:
    """A cell "81559 MiB" is 81,559 x 1,048,576 = 85,520,809,984 bytes = 85.520809984 GB."""
    assert _memory_gb(" 81559 MiB ") * GB == pytest.approx(85_520_809_984, abs=1e-3)
    assert _memory_gb("32 GiB") * GB == pytest.approx(32 * GiB, abs=1e-3)
    assert _memory_gb("80") == 80.0


def test_every_partly_checked_entry_says_what_was_confirmed(catalog: pd.DataFrame) -> None:
    rows = catalog.set_index("accelerator_id")
    for accelerator in ("nvidia-b200", "nvidia-l40s", "nvidia-l4", "amd-mi325x", "google-tpu-v4"):
        assert "confirmed" in str(rows.at[accelerator, "source"]) + str(
            rows.at[accelerator, "note"]
        )


def test_precision_without_a_peak_is_refused(catalog: pd.DataFrame) -> None:
    roadmap = example_roadmap()
    require_peak(catalog, roadmap, "inference", "fp8", "w.csv", row=3)
    with pytest.raises(ProfileError) as caught:
        require_peak(catalog, roadmap, "edge", "fp8", "w.csv", row=3)
    assert str(caught.value) == (
        "w.csv, row 3, column 'precision': precision 'fp8' has no peak on "
        "nvidia-a100-80gb-sxm in pool 'edge' (no fp8 units); it has peaks for fp32, tf32, "
        "bf16, fp16, int8, int4: compute at one of those (weights may still be stored at fp8: "
        "weight-only)"
    )


# --- provenance and sanity of the figures -------------------------------------------------------

# Pairs (row, lower precision, higher precision) where the vendor's dense rate really is more
# than twice the wider one's, with the reason; anywhere else a ratio above 2 means a sparse
# figure was entered as dense.
WIDER_UNITS = {
    ("nvidia-b300", "fp8", "fp4"): "Blackwell Ultra widened only the fp4 units (105 vs 72 PF HGX)",
    ("nvidia-gb300", "fp8", "fp4"): "Blackwell Ultra: 15 PF fp4 vs 5 PF fp8 dense per GPU",
    ("nvidia-rubin", "bf16", "fp8"): "Rubin trades 16-bit units for fp8/fp4 (preliminary bf16)",
    ("nvidia-rubin", "fp8", "fp4"): "2.5 EF fp4 vs 1.2 EF fp8 training per NVL72",
    ("aws-trainium3", "bf16", "fp8"): "AWS: 2,517 MXFP8 vs 671 bf16 dense, 2,517 sparse bf16",
}
ROUNDING = 1.02  # vendors round each figure on its own (AMD: 10.1 PF fp4 against 5.0 PF fp8)

# Bus width x data rate where the vendor (or its reproduced sheet) publishes both.
BUS = {
    # A100 40GB: 5 HBM2 stacks, 5120-bit at 1215 MHz DDR (2.43 Gb/s), NVIDIA A100 datasheet and
    # deviceQuery "Memory Clock rate: 1215 Mhz, Memory Bus Width: 5120-bit".
    "nvidia-a100-40gb-sxm": (5120, 2.43, 0.01),
    # Gaudi 3: 8 HBM2e stacks (Intel, Hot Chips 2024) x 1024 bit at 3.7 Gb/s as Intel rounds it
    # (launch coverage), so within 4 %.
    "intel-gaudi3": (8 * 1024, 3.7, 0.04),
}


def _peak(row: pd.Series, precision: str) -> float | None:
    value = row[f"peak_flops_per_s_{precision}"]
    return None if pd.isna(value) else float(value)


def test_every_row_has_a_status_a_source_url_and_a_check_date(catalog: pd.DataFrame) -> None:
    assert set(catalog["status"]) <= {"shipping", "announced", "preliminary"}
    assert catalog["status"].notna().all()
    assert catalog["source_url"].str.startswith(("https://", "http://")).all()
    assert catalog["checked_on"].notna().all()
    # What could not be confirmed is said, on every row that is not plainly shipping.
    unsure = catalog[catalog["status"] != "shipping"]
    assert unsure["note"].str.len().min() > 40


def test_no_sparse_figure_is_entered_as_dense(catalog: pd.DataFrame) -> None:
    seen = set()
    for _, row in catalog.iterrows():
        for low, high in (("bf16", "fp8"), ("fp8", "fp4")):
            a, b = _peak(row, low), _peak(row, high)
            if low == "bf16" and a is None:  # the 16-bit rate, where only fp16 is given
                a = _peak(row, "fp16")
            if a is None or b is None:
                continue
            key = (row["accelerator_id"], low, high)
            if key in WIDER_UNITS:
                seen.add(key)
                assert b > 2 * a, f"{key}: exception no longer needed"
                continue
            assert b <= 2 * a * ROUNDING, f"{key}: {b / a:.2f}x, a sparse figure as dense?"
    assert seen == set(WIDER_UNITS)


def test_nvidia_bf16_equals_fp16_where_both_are_given(catalog: pd.DataFrame) -> None:
    nvidia = catalog[(catalog["vendor"] == "NVIDIA") & catalog["peak_flops_per_s_fp16"].notna()]
    assert len(nvidia) >= 10
    assert (nvidia["peak_flops_per_s_bf16"] == nvidia["peak_flops_per_s_fp16"]).all()


def test_precisions_are_ordered_from_wide_to_narrow(catalog: pd.DataFrame) -> None:
    order = ["fp32", "tf32", "bf16", "fp8", "fp6", "fp4"]
    for _, row in catalog.iterrows():
        present = [(p, v) for p in order if (v := _peak(row, p)) is not None]
        for (p, a), (q, b) in itertools.pairwise(present):
            assert a <= b, f"{row['accelerator_id']}: {p} {a:.3g} > {q} {b:.3g}"


def test_int4_only_where_the_vendor_lists_int4_units(catalog: pd.DataFrame) -> None:
    int4 = catalog.set_index("accelerator_id")["peak_flops_per_s_int4"].dropna()
    # A100 (every form factor): 1,248 dense int4 TOPS, twice its 624 int8 (sparse: 2,496).
    assert int4.to_dict() == {
        "nvidia-a100-40gb-sxm": pytest.approx(1248 * TERA),
        "nvidia-a100-80gb-sxm": pytest.approx(1248 * TERA),
        "nvidia-a100-80gb-pcie": pytest.approx(1248 * TERA),
    }
    # Hopper and Blackwell dropped the int4 tensor units; a figure there would be invented.
    assert not [m for m in int4.index if m.startswith(("nvidia-h", "nvidia-b", "nvidia-gb"))]
    for _, row in catalog.iterrows():
        a, b = _peak(row, "int8"), _peak(row, "int4")
        if a is not None and b is not None:
            # Narrower integers run at least as fast, and no sparse figure counts as dense.
            assert a <= b <= 2 * a * ROUNDING, f"{row['accelerator_id']}: int4 {b / a:.2f}x int8"
    # What could not be confirmed for Ada parts is said in the note.
    notes = catalog.set_index("accelerator_id")["note"]
    assert "int4 left blank" in notes["nvidia-l40s"] and "int4 left blank" in notes["nvidia-l4"]


@pytest.mark.parametrize("accelerator_id", sorted(BUS))
def test_bandwidth_is_bus_width_times_data_rate(catalog: pd.DataFrame, accelerator_id: str) -> None:
    bits, gbit_s, tolerance = BUS[accelerator_id]
    bandwidth = catalog.set_index("accelerator_id").at[accelerator_id, "mem_bandwidth_bytes_per_s"]
    assert bandwidth == pytest.approx(bits * gbit_s * 1e9 / 8, rel=tolerance)


def test_new_hardware_converts_binary_memory_and_per_direction_links(catalog: pd.DataFrame) -> None:
    rows: dict[str, dict[str, Any]] = catalog.set_index("accelerator_id").to_dict("index")  # type: ignore[assignment]
    # Google states Ironwood's HBM as 192 GiB and its ICI as 1200 GB/s bidirectional.
    assert rows["google-tpu7x"]["memory_bytes"] == 192 * GiB
    assert rows["google-tpu7x"]["interconnect_bandwidth_bytes_per_s"] == 600 * GB
    assert rows["aws-trainium3"]["memory_bytes"] == 144 * GiB
    # Dense fp4: the HGX B300 table's 105 PF over 8 GPUs, not the 144 PF sparse headline.
    assert rows["nvidia-b300"]["peak_flops_per_s_fp4"] == pytest.approx(13_125 * TERA)
    assert pd.isna(rows["nvidia-b300"]["tdp_watts"])  # conflicting figures, left empty
    assert rows["nvidia-gb300"]["tdp_watts"] == 1400.0
    assert {rows[a]["status"] for a in ("nvidia-rubin", "amd-mi455x")} == {"preliminary"}


@pytest.mark.parametrize(
    ("device_kind", "expected"),
    [
        ("NVIDIA B300 SXM6 AC", "nvidia-b300"),
        ("NVIDIA GB300", "nvidia-gb300"),
        ("NVIDIA B200", "nvidia-b200"),
        ("NVIDIA Rubin", "nvidia-rubin"),
        ("NVIDIA Rubin Ultra", "nvidia-rubin-ultra"),
        ("TPU7x", "google-tpu7x"),
        ("TPU v6 lite", "google-tpu-v6e"),
        ("AMD Instinct MI355X", "amd-mi355x"),
        ("AMD Instinct MI350X", "amd-mi350x"),
        ("AMD Instinct MI455X", "amd-mi455x"),
        ("Trainium3", "aws-trainium3"),
    ],
)
def test_new_device_kinds_match_their_own_row(
    catalog: pd.DataFrame, device_kind: str, expected: str
) -> None:
    assert match_device_kind(catalog, device_kind) == expected


def test_torchtitans_500w_h100_sits_between_the_sxm_and_nvl_parts(catalog: pd.DataFrame) -> None:
    """torchtitan's H100 page: 96GB HBM2e at 2.4 TB/s, 500 W, a peak "between SXM and NVL"
    (its footnote 2): the catalog takes the midpoint, (989.5 + 835.5) / 2 = 912.5 TFLOP/s
    dense bf16, and the page's 400 Gb/s per GPU as its scale-out link."""
    parts = catalog.set_index("accelerator_id")
    part = parts.loc["nvidia-h100-sxm-96gb-500w"]
    assert part["memory_bytes"] == 96 * GB
    assert part["mem_bandwidth_bytes_per_s"] == pytest.approx(2.4 * TB)
    assert part["peak_flops_per_s_bf16"] == pytest.approx(912.5 * TERA)
    sxm, nvl = parts.loc["nvidia-h100-sxm"], parts.loc["nvidia-h100-nvl"]
    for precision in ("fp32", "tf32", "bf16", "fp8"):
        key = f"peak_flops_per_s_{precision}"
        assert part[key] == pytest.approx((sxm[key] + nvl[key]) / 2)
    assert part["tdp_watts"] == 500
    assert match_device_kind(catalog, "NVIDIA H100 80GB HBM3") == "nvidia-h100-sxm"
    links = read_scale_out().set_index("accelerator_id")
    assert links.loc["nvidia-h100-sxm-96gb-500w", "scale_out_bytes_per_s"] == 50e9

"""The scale-out table: read in SI units, every row with its source, bad cells named."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from hardware_profiles.errors import ProfileError
from hardware_profiles.scale_out import COLUMNS, read_scale_out


def test_the_builtin_table_converts_gb_per_s_to_bytes_and_sources_every_row() -> None:
    table = read_scale_out()
    h100 = table.set_index("accelerator_id").loc["nvidia-h100-sxm"]
    assert h100["scale_out_bytes_per_s"] == 50e9  # 400 Gb/s per GPU
    assert h100["scale_up_domain_devices"] == 8
    assert table.set_index("accelerator_id").loc["nvidia-gb200", "scale_up_domain_devices"] == 72
    assert table["source_url"].str.startswith("https://").all()
    assert (table["source_location"].str.len() > 0).all()


@pytest.mark.parametrize(
    ("cell", "value", "says"),
    [
        ("scale_out_gb_s", "fast", "must be a number of GB/s > 0"),
        ("scale_up_domain_devices", "0", "whole number of devices >= 1"),
        ("source_url", "example.com", "is not an http(s) URL"),
        ("source_location", "", "must not be empty"),
    ],
)
def test_a_bad_cell_is_one_error_naming_row_and_column(
    tmp_path: Path, cell: str, value: str, says: str
) -> None:
    row = {
        "accelerator_id": "x",
        "scale_out_gb_s": "50",
        "scale_up_domain_devices": "8",
        "fabric": "RoCE",
        "source_url": "https://example.com/x",
        "source_location": "table 1",
        "note": "",
    }
    row[cell] = value
    path = tmp_path / "net.csv"
    path.write_text(",".join(COLUMNS) + "\n" + ",".join(row[c] for c in COLUMNS) + "\n")
    with pytest.raises(ProfileError, match=f"row 1, column .{cell}.: .*{re.escape(says)}"):
        read_scale_out(path)

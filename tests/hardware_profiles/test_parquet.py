"""Parquet I/O: every reader validates, every writer is atomic."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from hardware_profiles.columns import METADATA_TABLE_KEY, METADATA_VERSION_KEY, SCHEMA_VERSION
from hardware_profiles.errors import ProfileError
from hardware_profiles.examples import example_roadmap
from hardware_profiles.parquet import read_table, write_table
from hardware_profiles.schema import ROADMAP, WORKLOADS
from tasks.analysis.workload.examples import example_workloads


def test_round_trip_keeps_values_and_stamps_schema_version(tmp_path: Path) -> None:
    frame = example_workloads()
    path = write_table(frame, tmp_path / "w.parquet", WORKLOADS)
    metadata = pq.read_schema(path).metadata
    assert metadata[METADATA_VERSION_KEY] == SCHEMA_VERSION.encode()
    assert metadata[METADATA_TABLE_KEY] == b"workloads"
    back = read_table(path, WORKLOADS)
    pd.testing.assert_frame_equal(back, frame)


def test_optional_columns_may_be_absent(tmp_path: Path) -> None:
    frame = example_workloads().drop(columns=["pool_share", "model_preset", "batch"])
    path = tmp_path / "w.parquet"
    frame.to_parquet(path)
    back = read_table(path, WORKLOADS)
    assert back["pool_share"].isna().all()
    assert back["batch"].isna().all()


def _written(tmp_path: Path, frame: pd.DataFrame) -> Path:
    path = tmp_path / "w.parquet"
    frame.to_parquet(path)
    return path


def test_missing_column_names_file_and_column(tmp_path: Path) -> None:
    path = _written(tmp_path, example_workloads().drop(columns=["bytes_per_unit"]))
    with pytest.raises(ProfileError) as caught:
        read_table(path, WORKLOADS)
    assert caught.value.column == "bytes_per_unit"
    assert str(path) in str(caught.value)
    assert "missing required column" in str(caught.value)


def test_wrong_type_names_column(tmp_path: Path) -> None:
    frame = example_workloads()
    frame["flops_per_unit"] = frame["flops_per_unit"].astype(str)
    with pytest.raises(ProfileError) as caught:
        read_table(_written(tmp_path, frame), WORKLOADS)
    assert caught.value.column == "flops_per_unit"
    assert "a number" in str(caught.value)


def test_negative_demand_names_row_and_column(tmp_path: Path) -> None:
    frame = example_workloads()
    frame.loc[2, "demand_units_per_s"] = -5.0
    with pytest.raises(ProfileError) as caught:
        read_table(_written(tmp_path, frame), WORKLOADS)
    assert (caught.value.row, caught.value.column) == (3, "demand_units_per_s")
    assert "must be > 0, got -5.0" in str(caught.value)


def test_unknown_enum_value_lists_valid_ones(tmp_path: Path) -> None:
    frame = example_workloads()
    frame.loc[0, "unit"] = "tokens"
    with pytest.raises(ProfileError) as caught:
        read_table(_written(tmp_path, frame), WORKLOADS)
    assert caught.value.column == "unit"
    assert "token, step, request, sample" in str(caught.value)


def test_null_in_required_column(tmp_path: Path) -> None:
    frame = example_workloads()
    frame["owner"] = frame["owner"].astype(object).where(frame.index != 1, None)
    with pytest.raises(ProfileError) as caught:
        read_table(_written(tmp_path, frame), WORKLOADS)
    assert (caught.value.row, caught.value.column) == (2, "owner")


def test_duplicate_workload_id(tmp_path: Path) -> None:
    frame = example_workloads()
    frame.loc[3, "workload_id"] = str(frame["workload_id"].iloc[0])
    with pytest.raises(ProfileError) as caught:
        read_table(_written(tmp_path, frame), WORKLOADS)
    assert (caught.value.row, caught.value.column) == (4, "workload_id")


def test_fractional_count_is_not_a_whole_number(tmp_path: Path) -> None:
    frame = example_roadmap()
    frame["count_delta"] = frame["count_delta"].astype(float)
    frame.loc[1, "count_delta"] = 2.5
    path = tmp_path / "r.parquet"
    frame.to_parquet(path)
    with pytest.raises(ProfileError) as caught:
        read_table(path, ROADMAP)
    assert (caught.value.row, caught.value.column) == (2, "count_delta")


def test_unknown_column_is_rejected_with_valid_names(tmp_path: Path) -> None:
    frame = example_workloads().assign(demand_per_sec=1.0)
    with pytest.raises(ProfileError, match=r"unknown column.*demand_per_sec.*valid: workload_id"):
        read_table(_written(tmp_path, frame), WORKLOADS)


def test_not_a_parquet_file(tmp_path: Path) -> None:
    path = tmp_path / "w.parquet"
    path.write_text("workload_id,name\nx,y\n")
    with pytest.raises(ProfileError, match="not a readable Parquet file"):
        read_table(path, WORKLOADS)


def test_wrong_table_kind_is_named(tmp_path: Path) -> None:
    path = write_table(example_roadmap(), tmp_path / "r.parquet", ROADMAP)
    with pytest.raises(ProfileError, match="is a 'roadmap' table, but a 'workloads'"):
        read_table(path, WORKLOADS)


def test_newer_schema_version_is_refused(tmp_path: Path) -> None:
    table = pa.Table.from_pandas(example_roadmap(), preserve_index=False)
    table = table.replace_schema_metadata({METADATA_VERSION_KEY: b"99"})
    path = tmp_path / "r.parquet"
    pq.write_table(table, path)
    with pytest.raises(ProfileError, match="schema version 99"):
        read_table(path, ROADMAP)


def test_failed_write_leaves_target_untouched_and_no_temporary(tmp_path: Path) -> None:
    path = write_table(example_workloads(), tmp_path / "w.parquet", WORKLOADS)
    before = path.read_bytes()
    bad = example_workloads()
    bad.loc[0, "demand_units_per_s"] = -1.0
    with pytest.raises(ProfileError):
        write_table(bad, path, WORKLOADS)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w.parquet"]


def test_pool_shares_over_one_in_a_pool_are_refused_with_the_pool_total(tmp_path: Path) -> None:
    """Four workloads each given 90 % of the same pool: 3.6 pools' worth. The valid control
    beside it (the same four at 25 % each) is written and read back."""
    frame = example_workloads().head(4).assign(pool="inference")
    path = tmp_path / "w.parquet"
    write_table(frame.assign(pool_share=0.25), path, WORKLOADS)
    assert read_table(path, WORKLOADS)["pool_share"].sum() == pytest.approx(1.0)
    with pytest.raises(ProfileError) as caught:
        write_table(frame.assign(pool_share=0.9), path, WORKLOADS)
    ids = ", ".join(f"{i} 0.9" for i in frame["workload_id"])
    assert str(caught.value) == (
        f"{path}, row 1, column 'pool_share': pool_share of pool 'inference' adds up to 3.6 "
        f"({ids}); the shares of one pool add up to at most 1"
    )
    assert read_table(path, WORKLOADS)["pool_share"].sum() == pytest.approx(1.0)


def test_a_column_written_twice_is_one_line_naming_it(tmp_path: Path) -> None:
    """Arrow's own error prints the whole schema; memwall names the file and the column."""
    data = pa.Table.from_pandas(example_workloads(), preserve_index=False)
    path = tmp_path / "w.parquet"
    pq.write_table(data.append_column("pool", data.column("pool")), path)
    with pytest.raises(ProfileError) as caught:
        read_table(path, WORKLOADS)
    assert str(caught.value) == (
        f"{path}, column 'pool': has the column 'pool' 2 times; each column appears once"
    )

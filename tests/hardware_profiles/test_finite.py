"""Numbers are finite: NaN and +/-inf are refused in every numeric column of every table, by
the file readers and by the in-memory validation alike, naming the file, row and column."""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from hardware_profiles.catalog import builtin_catalog
from hardware_profiles.columns import Table
from hardware_profiles.errors import ProfileError
from hardware_profiles.examples import example_roadmap
from hardware_profiles.parquet import read_table, validate_frame
from hardware_profiles.schema import CATALOG, MEASUREMENTS, ROADMAP, WORKLOADS
from tasks.analysis.workload.examples import example_workloads
from tests.tasks.test_history import measurements

CASES = {
    "workloads": (WORKLOADS, example_workloads, "demand_units_per_s"),
    "roadmap": (ROADMAP, example_roadmap, None),
    "catalog": (CATALOG, builtin_catalog, "mem_bandwidth_bytes_per_s"),
    "measurements": (
        MEASUREMENTS,
        lambda: measurements("r1", dt.datetime(2026, 1, 5, tzinfo=dt.UTC), 3e12),
        "best",
    ),
}


def _float_column(table: Table, preferred: str | None) -> str:
    if preferred is not None:
        return preferred
    return next(
        f.name
        for f in table.fields
        if pa.types.is_floating(f.metadata["arrow_type"]) and f.metadata["required"]
    )


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
@pytest.mark.parametrize("name", list(CASES))
def test_a_file_with_a_non_finite_number_is_refused(
    tmp_path: Path, name: str, value: float
) -> None:
    table, make, preferred = CASES[name]
    frame = make()
    column = _float_column(table, preferred)
    data = pa.Table.from_pandas(frame, preserve_index=False)
    values = data.column(column).to_pylist()
    values[1] = value  # pyarrow keeps NaN as NaN, as any non-pandas writer would
    data = data.set_column(data.column_names.index(column), column, pa.array(values, pa.float64()))
    path = tmp_path / f"{name}.parquet"
    pq.write_table(data, path)
    with pytest.raises(ProfileError) as caught:
        read_table(path, table)
    assert (caught.value.row, caught.value.column) == (2, column)
    assert str(path) in str(caught.value)
    assert "must be a finite number" in str(caught.value)


@pytest.mark.parametrize("value", [math.inf, -math.inf])
def test_an_in_memory_table_with_infinity_is_refused(value: float) -> None:
    frame = example_workloads()
    frame.loc[2, "bytes_per_unit"] = value
    with pytest.raises(ProfileError, match=r"row 3, column 'bytes_per_unit': must be a finite"):
        validate_frame(frame, WORKLOADS, "import.csv")


def test_an_empty_optional_number_is_still_fine() -> None:
    frame = example_workloads()
    frame["pool_share"] = None
    back = validate_frame(frame, WORKLOADS, "w")
    assert pd.isna(back["pool_share"]).all()

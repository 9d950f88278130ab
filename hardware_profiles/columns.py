"""How a table is declared, so that its schema, its column lists and its checks cannot drift.

Each table is declared once, as a frozen dataclass whose fields carry their Arrow type and
checks in ``field(metadata=...)`` (:func:`column`); the pyarrow schema, the column lists and the
validation in ``hardware_profiles.parquet`` are all derived from that declaration
(:class:`Table`), so a column cannot be added in one place and forgotten in another. The
tables themselves are declared in :mod:`hardware_profiles.schema`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import pandas as pd
import pyarrow as pa

from hardware_profiles.layouts import LAYOUT_DEGREES, TRAINING_LAYOUT_DEGREES, is_layout

SCHEMA_VERSION: Final = "1"
METADATA_VERSION_KEY: Final = b"memwall.schema_version"
METADATA_TABLE_KEY: Final = b"memwall.table"


# --- column checks -----------------------------------------------------------------------


@dataclass(frozen=True)
class Check:
    """A vectorised rule on a column's non-null values, and how to say what it demands."""

    demands: str
    ok: Callable[[pd.Series], pd.Series]


positive = Check("must be > 0", lambda s: s > 0)
non_negative = Check("must be >= 0", lambda s: s >= 0)
fraction = Check("must be in (0, 1]", lambda s: (s > 0) & (s <= 1))
growth = Check("must be > -1 (-1 would mean demand vanishes)", lambda s: s > -1)
not_blank = Check("must not be empty", lambda s: s.astype(str).str.strip() != "")


def at_most(ceiling: float, what: str) -> Check:
    """Positive and below a ceiling no device comes near: a figure above it was given in the
    wrong unit (FLOP/s in a TFLOPS option, bytes in a GB one), which nothing else would catch."""
    return Check(
        f"must be > 0 and at most {ceiling:.0e} {what} (a figure in the wrong unit?)",
        lambda s: (s > 0) & (s <= ceiling),
    )


# Ceilings at 50 to 100 times the largest device of 2026 (B300: 288 GB, 8 TB/s, 15 PFLOP/s
# dense FP4; NVLink 5: 900 GB/s per direction).
device_memory = at_most(1e14, "bytes")
device_bandwidth = at_most(1e15, "bytes/s")
device_flops = at_most(1e18, "FLOP/s")
link_bandwidth = at_most(1e14, "bytes/s")


layout_text = Check(
    "must be a serving layout such as tp=8 or dp_attention=8,ep=8 (degrees "
    f"{', '.join(LAYOUT_DEGREES)}) or a training one such as dp=64,tp=8,pp=16 (degrees "
    f"{', '.join(TRAINING_LAYOUT_DEGREES)})",
    lambda s: s.map(is_layout).astype(bool),
)


def one_of(choices: Sequence[str]) -> Check:
    return Check(f"must be one of {', '.join(choices)}", lambda s: s.isin(choices))


def column(
    arrow_type: pa.DataType,
    *,
    required: bool = True,
    nullable: bool = False,
    check: Check | None = None,
    default: Any = dataclasses.MISSING,
    doc: str = "",
) -> Any:
    """Declare one column: its Arrow type, whether files must carry it, and its check.

    ``required=False`` columns may be absent from a file; they are then filled with nulls
    (and must therefore be nullable).
    """
    if not required and not nullable:
        raise ValueError("an optional column must be nullable")
    metadata = {
        "arrow_type": arrow_type,
        "required": required,
        "nullable": nullable,
        "check": check,
        "doc": doc,
    }
    if default is dataclasses.MISSING and nullable:
        default = None
    return field(default=default, metadata=metadata)


# --- tables ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Table:
    """A declared table: its name (as users say it) and its record type."""

    name: str
    record: type
    unique: tuple[str, ...] = ()
    # (column, group, label): the column's values add up to at most 1 within each group, a
    # breach naming each row by its label (a pool cannot be given away more than once).
    shares: tuple[tuple[str, str, str], ...] = ()

    @property
    def fields(self) -> tuple[dataclasses.Field[Any], ...]:
        return dataclasses.fields(self.record)

    @property
    def columns(self) -> list[str]:
        return [f.name for f in self.fields]

    @property
    def required_columns(self) -> list[str]:
        return [f.name for f in self.fields if f.metadata["required"]]

    @property
    def arrow_schema(self) -> pa.Schema:
        return pa.schema(
            [
                pa.field(f.name, f.metadata["arrow_type"], f.metadata["nullable"])
                for f in self.fields
            ],
            metadata={
                METADATA_VERSION_KEY: SCHEMA_VERSION.encode(),
                METADATA_TABLE_KEY: self.name.encode(),
            },
        )

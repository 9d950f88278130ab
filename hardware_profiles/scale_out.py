"""Scale-out network per device: the link a training run's collectives take beyond the
scale-up domain (InfiniBand, RoCE, EFA as deployed), and how many devices that domain holds.

``data/scale_out.csv`` holds one row per accelerator model, in the units deployment guides use
(GB/s per device, per direction: a 400 Gb/s NIC per GPU is 50 GB/s), with the URL and the place
on the page each figure came from. The scale-up link itself is the catalog's
``interconnect_bandwidth_bytes_per_s``. A fleet whose network differs states its own (a CSV of
the same columns). Every row is validated here; a bad cell is one error naming the file, the
row (1-based, counting data rows) and the column.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Final

import pandas as pd

from hardware_profiles.errors import ProfileError
from hardware_profiles.schema import GB
from hardware_profiles.sheets import read_sheet

BUILTIN_SOURCE: Final = "built-in scale-out table (hardware_profiles/data/scale_out.csv)"
COLUMNS: Final = (
    "accelerator_id",
    "scale_out_gb_s",
    "scale_up_domain_devices",
    "fabric",
    "source_url",
    "source_location",
    "note",
)
_REQUIRED_TEXT: Final = ("accelerator_id", "fabric", "source_url", "source_location")


def validate_scale_out(sheet: pd.DataFrame, source: str | Path) -> pd.DataFrame:
    """The sheet (cells as text) checked and converted: ``scale_out_bytes_per_s`` (SI) and
    ``scale_up_domain_devices`` (int) beside the text columns."""
    missing = [c for c in COLUMNS if c not in sheet.columns]
    if missing:
        raise ProfileError(
            source, f"missing column(s) {', '.join(missing)}; expected {', '.join(COLUMNS)}"
        )
    sheet = sheet[list(COLUMNS)].map(lambda v: str(v).strip())
    rows: list[dict[str, object]] = []
    seen: set[str] = set()
    records: list[dict[str, str]] = sheet.to_dict("records")  # type: ignore[assignment]
    for position, row in enumerate(records, start=1):
        for column in _REQUIRED_TEXT:
            if not row[column]:
                raise ProfileError(source, "must not be empty", row=position, column=column)
        if not row["source_url"].startswith(("http://", "https://")):
            raise ProfileError(
                source, f"{row['source_url']!r} is not an http(s) URL", row=position,
                column="source_url",
            )  # fmt: skip
        try:
            rate = float(row["scale_out_gb_s"])
        except ValueError:
            rate = 0.0
        if not 0 < rate < float("inf"):
            raise ProfileError(
                source, f"{row['scale_out_gb_s']!r} must be a number of GB/s > 0",
                row=position, column="scale_out_gb_s",
            )  # fmt: skip
        domain = row["scale_up_domain_devices"]
        if not domain.isdigit() or int(domain) < 1:
            raise ProfileError(
                source, f"{domain!r} must be a whole number of devices >= 1", row=position,
                column="scale_up_domain_devices",
            )  # fmt: skip
        if row["accelerator_id"] in seen:
            raise ProfileError(
                source, f"duplicate accelerator_id {row['accelerator_id']!r}", row=position,
                column="accelerator_id",
            )  # fmt: skip
        seen.add(row["accelerator_id"])
        rows.append(
            {
                **row,
                "scale_out_bytes_per_s": rate * GB,
                "scale_up_domain_devices": int(domain),
            }
        )
    frame = pd.DataFrame(rows, columns=[*COLUMNS, "scale_out_bytes_per_s"])
    return frame.drop(columns=["scale_out_gb_s"])


def read_scale_out(path: str | Path | None = None) -> pd.DataFrame:
    """A user's scale-out CSV, or the built-in one when no path is given."""
    if path is None:
        text = resources.files("hardware_profiles").joinpath("data/scale_out.csv")
        sheet = pd.read_csv(str(text), dtype=str, keep_default_na=False)
        return validate_scale_out(sheet, BUILTIN_SOURCE)
    sheet = read_sheet(path, "scale-out", COLUMNS)
    return validate_scale_out(sheet, path)

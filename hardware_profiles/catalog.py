"""The built-in accelerator catalog, user catalogs, and matching a device to its entry.

The built-in figures live in ``data/catalog.csv`` in the units spec sheets use (GB, TB/s,
TFLOP/s, dense) so they can be checked against the sheet by eye; this module converts them to
the SI units of the ``catalog`` table exactly once.
"""

from __future__ import annotations

import datetime as dt
from importlib import resources
from pathlib import Path

import pandas as pd

from hardware_profiles.errors import ProfileError
from hardware_profiles.parquet import read_table, validate_frame
from hardware_profiles.schema import CATALOG, GB, PEAK_PRECISIONS, TB, TERA

BUILTIN_SOURCE = "built-in catalog (hardware_profiles/data/catalog.csv)"

_SHEET_FLOPS_COLUMNS = {
    "fp32": "fp32_tflops",
    "tf32": "tf32_tflops",
    "bf16": "bf16_tflops",
    "fp16": "fp16_tflops",
    "fp8": "fp8_tflops",
    "int8": "int8_tops",
}


def _optional(value: str, scale: float) -> float | None:
    return float(value) * scale if value.strip() else None


def builtin_catalog() -> pd.DataFrame:
    """The catalog memwall ships, converted to SI units and validated."""
    text = resources.files("hardware_profiles").joinpath("data/catalog.csv")
    sheet = pd.read_csv(str(text), dtype=str, keep_default_na=False)
    rows = []
    for _, r in sheet.iterrows():
        row: dict[str, object] = {
            "accelerator_id": r["accelerator_id"],
            "vendor": r["vendor"],
            "name": r["name"],
            "device_kind_patterns": [p for p in r["device_kind_patterns"].split("|") if p],
            "memory_bytes": int(float(r["memory_gb"]) * GB),
            "mem_bandwidth_bytes_per_s": float(r["mem_bandwidth_tb_s"]) * TB,
        }
        for precision in PEAK_PRECISIONS:
            row[f"peak_flops_per_s_{precision}"] = _optional(
                r[_SHEET_FLOPS_COLUMNS[precision]], TERA
            )
        row["release_date"] = (
            dt.date.fromisoformat(r["release_date"]) if r["release_date"] else None
        )
        row["list_price_usd"] = _optional(r["list_price_usd"], 1.0)
        row["source"] = r["source"]
        rows.append(row)
    return validate_frame(pd.DataFrame(rows), CATALOG, BUILTIN_SOURCE)


def load_catalog(path: str | Path | None) -> pd.DataFrame:
    """A user's catalog file, or the built-in one when no path is given."""
    return builtin_catalog() if path is None else read_table(path, CATALOG)


def match_device_kind(catalog: pd.DataFrame, device_kind: str) -> str | None:
    """The accelerator_id whose pattern matches ``device_kind`` most specifically, or None.

    Patterns are case-insensitive substrings; the longest matching pattern wins, so
    "NVIDIA L40S" is not taken for an "NVIDIA L4" and "TPU v5 lite" not for a "TPU v5".
    """
    kind = device_kind.lower()
    best: tuple[int, str] | None = None
    for accelerator_id, patterns in zip(
        catalog["accelerator_id"], catalog["device_kind_patterns"], strict=True
    ):
        for pattern in patterns:
            if pattern and pattern.lower() in kind and (best is None or len(pattern) > best[0]):
                best = (len(pattern), accelerator_id)
    return None if best is None else best[1]


def require_known(catalog: pd.DataFrame, accelerator_ids: pd.Series, source: str | Path) -> None:
    """Raise naming the first row whose accelerator_id the catalog lacks."""
    known = set(catalog["accelerator_id"])
    unknown = ~accelerator_ids.isin(known)
    if unknown.any():
        position = int(unknown.to_numpy().argmax())
        raise ProfileError(
            source,
            f"unknown accelerator {accelerator_ids.iloc[position]!r}; the catalog has "
            f"{', '.join(sorted(known))}",
            row=position + 1,
            column="accelerator_id",
        )

"""The built-in accelerator catalog, user catalogs, and matching a device to its entry.

The built-in figures live in ``data/catalog.csv`` in the units spec sheets use (GB, or GiB
where the sheet says GiB, or the MiB total the device reports where a source gives it; TB/s;
TFLOP/s, dense) so they can be checked against the sheet by eye; this module converts them to
the SI units of the ``catalog`` table exactly once.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import pandas as pd

from hardware_profiles.errors import ProfileError
from hardware_profiles.parquet import read_table, validate_frame
from hardware_profiles.schema import CATALOG, GB, PEAK_PRECISIONS, TB, TERA, GiB, MiB, peak_column

BUILTIN_SOURCE = "built-in catalog (hardware_profiles/data/catalog.csv)"

_SHEET_FLOPS_COLUMNS = {
    "fp32": "fp32_tflops",
    "tf32": "tf32_tflops",
    "bf16": "bf16_tflops",
    "fp16": "fp16_tflops",
    "fp8": "fp8_tflops",
    "fp6": "fp6_tflops",
    "fp4": "fp4_tflops",
    "int8": "int8_tops",
    "int4": "int4_tops",  # dense, only where the vendor lists int4 tensor units (A100: yes)
}


@dataclass(frozen=True)
class Provenance:
    """The optional sheet columns: power, scale-up link, and how firm the row's figures are."""

    tdp_watts: float | None = None
    interconnect_gb_s: float | None = None  # GB/s per direction, as NVLink/ICI sheets halve it
    status: str | None = None
    source_url: str | None = None
    checked_on: dt.date | None = None
    note: str | None = None


def _optional(value: str, scale: float) -> float | None:
    return float(value) * scale if value.strip() else None


def _memory_gb(cell: str) -> float:
    """Memory in GB. A plain number is the sheet's decimal GB; "32 GiB" is a binary figure as
    some sheets (Google's) state it; "81559 MiB" is the total the device itself reports
    (nvidia-smi prints MiB), preferred where a source for it exists because vendors' "80GB" HBM
    is in practice binary. Binary cells are converted here so they are never read as decimal."""
    cell = cell.strip()
    for suffix, unit in (("GiB", GiB), ("MiB", MiB)):
        if cell.endswith(suffix):
            return float(cell.removesuffix(suffix)) * unit / GB
    return float(cell)


def sheet_row(
    *,
    accelerator_id: str,
    vendor: str,
    name: str,
    device_kind_patterns: list[str],
    memory_gb: float,
    mem_bandwidth_tb_s: float,
    dense_tflops: dict[str, float | None],
    release_date: dt.date | None,
    list_price_usd: float | None,
    source: str,
    provenance: Provenance | None = None,
) -> dict[str, object]:
    """One catalog row from spec-sheet units (GB, TB/s, dense TFLOP/s or TOP/s, W, GB/s per
    direction) to SI units."""
    unknown = set(dense_tflops) - set(PEAK_PRECISIONS)
    if unknown:
        raise ValueError(f"no peak column for {', '.join(sorted(unknown))}")
    row: dict[str, object] = {
        "accelerator_id": accelerator_id,
        "vendor": vendor,
        "name": name,
        "device_kind_patterns": device_kind_patterns,
        "memory_bytes": round(memory_gb * GB),
        "mem_bandwidth_bytes_per_s": mem_bandwidth_tb_s * TB,
    }
    for precision in PEAK_PRECISIONS:
        tflops = dense_tflops.get(precision)
        row[f"peak_flops_per_s_{precision}"] = None if tflops is None else tflops * TERA
    row["release_date"] = release_date
    row["list_price_usd"] = list_price_usd
    row["source"] = source
    given = provenance or Provenance()
    row["tdp_watts"] = given.tdp_watts
    row["interconnect_bandwidth_bytes_per_s"] = (
        None if given.interconnect_gb_s is None else given.interconnect_gb_s * GB
    )
    row["status"] = given.status
    row["source_url"] = given.source_url
    row["checked_on"] = given.checked_on
    row["note"] = given.note
    return row


def builtin_catalog() -> pd.DataFrame:
    """The catalog memwall ships, converted to SI units and validated."""
    text = resources.files("hardware_profiles").joinpath("data/catalog.csv")
    sheet = pd.read_csv(str(text), dtype=str, keep_default_na=False)
    rows = [
        sheet_row(
            accelerator_id=r["accelerator_id"],
            vendor=r["vendor"],
            name=r["name"],
            device_kind_patterns=[p for p in r["device_kind_patterns"].split("|") if p],
            memory_gb=_memory_gb(r["memory_gb"]),
            mem_bandwidth_tb_s=float(r["mem_bandwidth_tb_s"]),
            dense_tflops={
                precision: _optional(r[column], 1.0)
                for precision, column in _SHEET_FLOPS_COLUMNS.items()
            },
            release_date=dt.date.fromisoformat(r["release_date"]) if r["release_date"] else None,
            list_price_usd=_optional(r["list_price_usd"], 1.0),
            source=r["source"],
            provenance=Provenance(
                tdp_watts=_optional(r["tdp_watts"], 1.0),
                interconnect_gb_s=_optional(r["interconnect_gb_s"], 1.0),
                status=r["status"] or None,
                source_url=r["source_url"] or None,
                checked_on=dt.date.fromisoformat(r["checked_on"]) if r["checked_on"] else None,
                note=r["note"] or None,
            ),
        )
        for _, r in sheet.iterrows()
    ]
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


def precisions_with_peaks(catalog: pd.DataFrame, accelerator_id: str) -> list[str]:
    row = catalog.set_index("accelerator_id").loc[accelerator_id]
    return [p for p in PEAK_PRECISIONS if pd.notna(row[f"peak_flops_per_s_{p}"])]


def require_peak(
    catalog: pd.DataFrame,
    roadmap: pd.DataFrame,
    pool: str,
    precision: str,
    source: str | Path,
    row: int | None = None,
    workload: str | None = None,
) -> None:
    """Raise unless every model the roadmap ever puts in ``pool`` has a dense peak at the
    compute ``precision``: fp8/fp6/fp4 and int4 compute need their own units (int4 is never
    priced at the int8 peak). Weight-only quantization is no compute precision: it runs
    anywhere the compute precision does."""
    column = peak_column(precision)
    known = catalog.set_index("accelerator_id")
    who = f" for workload {workload!r}" if workload else ""
    for accelerator_id in sorted(set(roadmap.loc[roadmap["pool"] == pool, "accelerator_id"])):
        if accelerator_id in known.index and pd.isna(known.loc[accelerator_id, column]):
            raise ProfileError(
                source,
                f"precision {precision!r} has no peak on {accelerator_id} in pool {pool!r}"
                f"{who} (no {precision} units); it has peaks for "
                f"{', '.join(precisions_with_peaks(catalog, accelerator_id))}: compute at one "
                f"of those (weights may still be stored at {precision}: weight-only)",
                row=row,
                column="precision",
            )

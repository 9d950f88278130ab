"""Published measured training runs: what memwall's training step model is checked against.

``data/published_training_runs.csv`` holds public measurements (papers, framework benchmark
pages) with the URL and the place on the page each came from, and the run as published: model,
hardware, devices, layout (``dp=..,tp=..,pp=..,cp=..,ep=..,vp=..``), ZeRO stage (FSDP is 3),
global batch and micro-batch in sequences, sequence length, recompute policy, compute
precision, optimizer recipe, whether the pipeline stages are uneven, whether the tensor-parallel
collectives were overlapped with the GEMMs (``tp_comm_overlap``: ``yes``, ``no``, or empty where
the source does not say, read as no; the column may be left out), and the measured value.

Metrics: ``step_time_s`` (seconds per optimizer step), ``tokens_per_s`` (all devices),
``tokens_per_s_per_device``, ``mfu`` (a fraction: model FLOPs over time, devices and the dense
bf16 peak). ``published_mfu`` is the MFU the source states beside another metric, or empty.
``source_id`` groups the rows of one source (the backtest leaves each out in turn); ``split``
says whether a row may fit the default GEMM efficiency (``fit``) or only measures the error
(``holdout``). Every row is validated here; a bad cell is one error naming the file, the row
(1-based, counting data rows) and the column. Whether the preset, hardware and layout are
known and valid is the backtest's business (it skips, and says so).
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Final

import pandas as pd

from hardware_profiles.errors import ProfileError
from hardware_profiles.layouts import (
    RECOMPUTE_POLICIES,
    TRAINING_LAYOUT_DEGREES,
    layout_degrees,
    training_devices,
)
from hardware_profiles.schema import PRECISIONS
from hardware_profiles.sheets import count, given, http_url, one_of, positive, read_sheet

BUILTIN_SOURCE: Final = (
    "built-in published training runs (hardware_profiles/data/published_training_runs.csv)"
)
METRICS: Final = ("step_time_s", "tokens_per_s", "tokens_per_s_per_device", "mfu")
SPLITS: Final = ("fit", "holdout")
OPTIONAL: Final = "tp_comm_overlap"  # a file written before the column reads as not stated
COLUMNS: Final = (
    "run_id",
    "source_id",
    "model",
    "model_preset",
    "hardware",
    "devices",
    "layout",
    "zero",
    "global_batch",
    "micro_batch",
    "sequence",
    "recompute",
    "compute_precision",
    "optimizer",
    "uneven_stages",
    "tp_comm_overlap",
    "metric",
    "measured_value",
    "published_mfu",
    "source_url",
    "source_location",
    "split",
    "note",
)


def _fraction_or_empty(value: str) -> float | None:
    if value == "":
        return None
    number = positive(value)
    if number > 1:
        raise ValueError(f"{value!r} must be a fraction in (0, 1] (43 % is 0.43)")
    return number


_CHECKS: Final[dict[str, Callable[[str], object]]] = {
    **dict.fromkeys(("run_id", "source_id", "model", "model_preset", "hardware"), given),
    "layout": given,
    "devices": count(1),
    "zero": lambda v: int(one_of(("0", "1", "2", "3"))(v)),
    "global_batch": count(1),
    "micro_batch": count(1),
    "sequence": count(1),
    "recompute": one_of(RECOMPUTE_POLICIES),
    "compute_precision": one_of(PRECISIONS),
    "optimizer": given,
    "uneven_stages": lambda v: one_of(("yes", "no"))(v) == "yes",
    "tp_comm_overlap": lambda v: one_of(("yes", "no", ""))(v) == "yes",
    "metric": one_of(METRICS),
    "measured_value": positive,
    "published_mfu": _fraction_or_empty,
    "source_url": lambda v: http_url(given(v)),
    "source_location": given,
    "split": one_of(SPLITS),
    "note": str,
}


def _check_shape(typed: dict[str, list[object]], source: str | Path, position: int) -> None:
    """A row's cells that must agree: its layout spans its devices, and its micro-batch fits
    in its global batch (a run that broke either was not the run the source describes)."""
    layout, devices = str(typed["layout"][-1]), int(str(typed["devices"][-1]))
    try:
        spanned = training_devices(layout_degrees(layout, TRAINING_LAYOUT_DEGREES))
    except ValueError as exc:
        raise ProfileError(source, str(exc), row=position, column="layout") from None
    if spanned != devices:
        raise ProfileError(
            source,
            f"{layout!r} spans dp·tp·pp·cp = {spanned} devices, but the row's devices is {devices}",
            row=position,
            column="layout",
        )
    micro, whole = int(str(typed["micro_batch"][-1])), int(str(typed["global_batch"][-1]))
    if micro > whole:
        raise ProfileError(
            source,
            f"micro-batch {micro} is larger than the global batch of {whole} sequences",
            row=position,
            column="micro_batch",
        )


def validate_published_training_runs(sheet: pd.DataFrame, source: str | Path) -> pd.DataFrame:
    """The sheet (every cell text) checked cell by cell, left to right, and typed."""
    if OPTIONAL not in sheet.columns:
        sheet = sheet.assign(**{OPTIONAL: ""})
    missing = [c for c in COLUMNS if c not in sheet.columns]
    if missing:
        raise ProfileError(
            source, f"missing column(s) {', '.join(missing)}; expected {', '.join(COLUMNS)}"
        )
    sheet = sheet[list(COLUMNS)].map(lambda v: str(v).strip())
    typed: dict[str, list[object]] = {c: [] for c in COLUMNS}
    seen: set[str] = set()
    for position, row in enumerate(sheet.itertuples(index=False), start=1):
        for column, cell in zip(COLUMNS, row, strict=True):
            try:
                typed[column].append(_CHECKS[column](cell))
            except ValueError as exc:
                raise ProfileError(source, str(exc), row=position, column=column) from None
        _check_shape(typed, source, position)
        run_id = str(typed["run_id"][-1])
        if run_id in seen:
            raise ProfileError(
                source, f"duplicate run_id {run_id!r}", row=position, column="run_id"
            )
        seen.add(run_id)
    return pd.DataFrame(typed, columns=list(COLUMNS))


def read_published_training_runs(path: str | Path | None = None) -> pd.DataFrame:
    """A published-training-runs CSV, validated; the built-in one when no path is given."""
    if path is None:
        data = resources.files("hardware_profiles").joinpath("data/published_training_runs.csv")
        sheet = pd.read_csv(str(data), dtype=str, keep_default_na=False)
        return validate_published_training_runs(sheet, BUILTIN_SOURCE)
    sheet = read_sheet(path, "published-training-runs", COLUMNS)
    return validate_published_training_runs(sheet, path)

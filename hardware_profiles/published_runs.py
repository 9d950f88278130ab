"""Published measured runs: real serving results memwall's predictions are checked against.

``data/published_runs.csv`` holds public measurements (engine benchmark pages, papers, MLPerf)
with the URL and the place on the page each came from. Every row is validated here; a bad cell
is one error naming the file, the row (1-based, counting data rows) and the column. Whether a
row's preset and hardware are known is the backtest's business (it skips, and says so), since
presets and catalogs differ between installations.

Metrics: ``tpot_s`` (decode seconds per output token per sequence: the step time),
``output_tokens_per_s`` (decode output tokens/s across the batch and all devices), ``ttft_s``
(prefill time to first token of one batch of prompts), ``prefill_tokens_per_s`` (prompt
tokens/s across the batch). ``output_tokens``, ``batch``, ``input_tokens`` and
``kv_precision`` may be empty where the source does not state them. ``split`` says whether a
row may fit defaults (``fit``) or only measures the error (``holdout``).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Final

import pandas as pd

from hardware_profiles.errors import ProfileError, first_line
from hardware_profiles.schema import PRECISIONS

BUILTIN_SOURCE: Final = "built-in published runs (hardware_profiles/data/published_runs.csv)"
COLUMNS: Final = (
    "run_id",
    "model",
    "model_preset",
    "hardware",
    "devices",
    "phase",
    "batch",
    "input_tokens",
    "output_tokens",
    "weight_precision",
    "kv_precision",
    "compute_precision",
    "engine",
    "engine_version",
    "metric",
    "measured_value",
    "source_url",
    "source_location",
    "split",
    "note",
)
METRICS: Final = {
    "tpot_s": "decode",
    "output_tokens_per_s": "decode",
    "ttft_s": "prefill",
    "prefill_tokens_per_s": "prefill",
}
SPLITS: Final = ("fit", "holdout")
_TEXT: Final = ("run_id", "model", "model_preset", "hardware", "source_url", "source_location")
_CHOICES: Final = {
    "phase": ("decode", "prefill"),
    "weight_precision": PRECISIONS,
    "kv_precision": PRECISIONS,
    "compute_precision": PRECISIONS,
    "metric": tuple(METRICS),
    "split": SPLITS,
}
# Whole numbers and the least each may be (output_tokens: a prefill run may generate none).
_COUNTS: Final = {"devices": 1, "batch": 1, "input_tokens": 1, "output_tokens": 0}
# Cells a source may leave unstated (empty): the backtest predicts a decode run without its
# output length at the prompt length, uses the weights' precision for an unstated KV cache, and
# skips (saying so) a run without its batch or prompt length.
_OPTIONAL_COUNTS: Final = ("output_tokens", "batch", "input_tokens")
_OPTIONAL_CHOICES: Final = ("kv_precision",)


def _count(value: str, least: int) -> int | None:
    try:
        number = int(value)
    except ValueError:
        return None
    return number if number >= least else None


def _positive(value: str) -> float | None:
    try:
        number = float(value)
    except ValueError:
        return None
    return number if number > 0 and number != float("inf") else None


def validate_published_runs(sheet: pd.DataFrame, source: str | Path) -> pd.DataFrame:
    """The sheet (every cell text) checked cell by cell and typed: counts as int, the measured
    value as float."""
    missing = [c for c in COLUMNS if c not in sheet.columns]
    if missing:
        raise ProfileError(
            source, f"missing column(s) {', '.join(missing)}; expected {', '.join(COLUMNS)}"
        )
    sheet = sheet[list(COLUMNS)].map(lambda v: str(v).strip())
    seen: set[str] = set()
    typed: dict[str, list[object]] = {c: [] for c in COLUMNS}
    for position, row in enumerate(sheet.itertuples(index=False), start=1):
        cells = dict(zip(COLUMNS, row, strict=True))

        def bad(column: str, problem: str, row_number: int = position) -> ProfileError:
            return ProfileError(source, problem, row=row_number, column=column)

        for column in _TEXT:
            if not cells[column]:
                raise bad(column, "must not be empty")
        if cells["run_id"] in seen:
            raise bad("run_id", f"duplicate run_id {cells['run_id']!r}")
        seen.add(cells["run_id"])
        for column, choices in _CHOICES.items():
            if column in _OPTIONAL_CHOICES and not cells[column]:
                continue
            if cells[column] not in choices:
                raise bad(column, f"{cells[column]!r} is not valid; valid: {', '.join(choices)}")
        if METRICS[cells["metric"]] != cells["phase"]:
            raise bad(
                "metric",
                f"{cells['metric']!r} measures {METRICS[cells['metric']]}, but the row's phase "
                f"is {cells['phase']!r}",
            )
        if not cells["source_url"].startswith(("http://", "https://")):
            raise bad("source_url", f"{cells['source_url']!r} is not an http(s) URL")
        values: dict[str, object] = dict(cells)
        for column, least in _COUNTS.items():
            if column in _OPTIONAL_COUNTS and not cells[column]:
                values[column] = None
                continue
            count = _count(cells[column], least)
            if count is None:
                raise bad(column, f"{cells[column]!r} must be a whole number >= {least}")
            values[column] = count
        if cells["phase"] == "decode" and values["output_tokens"] == 0:
            raise bad("output_tokens", "a decode run must generate at least one token")
        measured = _positive(cells["measured_value"])
        if measured is None:
            raise bad("measured_value", f"{cells['measured_value']!r} must be a number > 0")
        values["measured_value"] = measured
        for column in COLUMNS:
            typed[column].append(values[column])
    frame = pd.DataFrame(typed, columns=list(COLUMNS))
    return frame.astype(dict.fromkeys(_COUNTS, "Int64"))


def read_published_runs(path: str | Path) -> pd.DataFrame:
    """A published-runs CSV, validated."""
    try:
        sheet = pd.read_csv(path, dtype=str, keep_default_na=False)
    except FileNotFoundError:
        raise ProfileError(path, "no such published-runs file") from None
    except (OSError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise ProfileError(path, f"is not a readable CSV file ({first_line(exc)})") from None
    except pd.errors.EmptyDataError:
        raise ProfileError(path, f"is empty; expected the columns {', '.join(COLUMNS)}") from None
    return validate_published_runs(sheet, path)


def builtin_published_runs() -> pd.DataFrame:
    """The runs memwall ships; an empty table where this installation has none."""
    data = resources.files("hardware_profiles").joinpath("data/published_runs.csv")
    if not data.is_file():
        return pd.DataFrame({c: pd.Series(dtype=object) for c in COLUMNS})
    sheet = pd.read_csv(str(data), dtype=str, keep_default_na=False)
    return validate_published_runs(sheet, BUILTIN_SOURCE)

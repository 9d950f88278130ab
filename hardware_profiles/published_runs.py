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
row may fit defaults (``fit``) or only measures the error (``holdout``). ``layout`` (optional
column; empty: the engine's default) is the serving layout the run used, e.g. ``tp=8`` or
``dp_attention=8,ep=8``; it must span the row's ``devices``.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Annotated, Final

import pandas as pd
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_core import PydanticCustomError

from hardware_profiles.errors import ProfileError, first_line
from hardware_profiles.schema import PRECISIONS, layout_degrees, layout_devices

BUILTIN_SOURCE: Final = "built-in published runs (hardware_profiles/data/published_runs.csv)"
METRICS: Final = {
    "tpot_s": "decode",
    "output_tokens_per_s": "decode",
    "ttft_s": "prefill",
    "prefill_tokens_per_s": "prefill",
}
SPLITS: Final = ("fit", "holdout")


def _problem(text: str) -> PydanticCustomError:
    """A cell's problem in memwall's words; the context keeps braces in the text literal."""
    return PydanticCustomError("published_run", "{problem}", {"problem": text})


def _given(value: str) -> str:
    if not value:
        raise _problem("must not be empty")
    return value


def _http(value: str) -> str:
    if not value.startswith(("http://", "https://")):
        raise _problem(f"{value!r} is not an http(s) URL")
    return value


def _one_of(choices: tuple[str, ...]) -> Callable[[str], str]:
    def check(value: str) -> str:
        if value not in choices:
            raise _problem(f"{value!r} is not valid; valid: {', '.join(choices)}")
        return value

    return check


def _count(least: int) -> Callable[[str], int]:
    def parse(value: str) -> int:
        try:
            number = int(value)
        except ValueError:
            number = least - 1
        if number < least:
            raise _problem(f"{value!r} must be a whole number >= {least}")
        return number

    return parse


def _unless_empty(parse: Callable[[str], int]) -> Callable[[str], int | None]:
    """A count a source may leave unstated: empty is None."""
    return lambda value: None if value == "" else parse(value)


def _stated_precision(value: str) -> str:
    """A precision, or empty where the source does not state it (the KV cache's)."""
    return value and _one_of(PRECISIONS)(value)


def _positive(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        number = 0.0
    if not 0 < number < float("inf"):
        raise _problem(f"{value!r} must be a number > 0")
    return number


Text = Annotated[str, AfterValidator(_given)]
Precision = Annotated[str, AfterValidator(_one_of(PRECISIONS))]


class PublishedRun(BaseModel):
    """One row of the sheet, its fields in the sheet's column order: every cell arrives as
    text and leaves typed (counts int, the measured value float). Counts a source may leave
    unstated (empty) are None and an unstated KV precision stays empty: the backtest predicts
    a decode run without its output length at the prompt length, uses the weights' precision
    for an unstated KV cache, and skips (saying so) a run without its batch or prompt
    length."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    run_id: Text
    model: Text
    model_preset: Text
    hardware: Text
    devices: Annotated[int, BeforeValidator(_count(1))]
    phase: Annotated[str, AfterValidator(_one_of(("decode", "prefill")))]
    batch: Annotated[int | None, BeforeValidator(_unless_empty(_count(1)))]
    input_tokens: Annotated[int | None, BeforeValidator(_unless_empty(_count(1)))]
    # A prefill run may generate none.
    output_tokens: Annotated[int | None, BeforeValidator(_unless_empty(_count(0)))]
    weight_precision: Precision
    kv_precision: Annotated[str, AfterValidator(_stated_precision)]
    compute_precision: Precision
    engine: str
    engine_version: str
    metric: Annotated[str, AfterValidator(_one_of(tuple(METRICS)))]
    measured_value: Annotated[float, BeforeValidator(_positive)]
    source_url: Annotated[str, AfterValidator(_given), AfterValidator(_http)]
    source_location: Text
    split: Annotated[str, AfterValidator(_one_of(SPLITS))]
    note: str
    layout: str = ""

    @field_validator("layout")
    @classmethod
    def _spans_the_devices(cls, value: str, info: ValidationInfo) -> str:
        if not value:
            return value
        try:
            degrees = layout_degrees(value)
        except ValueError as exc:
            raise _problem(str(exc)) from None
        devices = info.data.get("devices")
        if devices is not None and layout_devices(degrees) != devices:
            raise _problem(
                f"layout {value!r} spans {layout_devices(degrees)} devices, but the row's "
                f"devices is {devices}"
            )
        return value

    @field_validator("output_tokens")
    @classmethod
    def _decode_generates(cls, value: int | None, info: ValidationInfo) -> int | None:
        if value == 0 and info.data.get("phase") == "decode":
            raise _problem("a decode run must generate at least one token")
        return value

    @field_validator("metric")
    @classmethod
    def _measures_the_phase(cls, value: str, info: ValidationInfo) -> str:
        phase = info.data.get("phase")
        if phase is not None and METRICS[value] != phase:
            raise _problem(f"{value!r} measures {METRICS[value]}, but the row's phase is {phase!r}")
        return value


COLUMNS: Final = tuple(PublishedRun.model_fields)
# Columns a sheet may leave out (filled with their default).
OPTIONAL: Final = ("layout",)
_COUNTS: Final = ("devices", "batch", "input_tokens", "output_tokens")


def validate_published_runs(sheet: pd.DataFrame, source: str | Path) -> pd.DataFrame:
    """The sheet (every cell text) checked row by row and typed. A bad row is one error naming
    the file, the row, the column of its first bad cell (left to right) and what would be
    valid; a run_id seen before is one too."""
    missing = [c for c in COLUMNS if c not in sheet.columns and c not in OPTIONAL]
    if missing:
        raise ProfileError(
            source, f"missing column(s) {', '.join(missing)}; expected {', '.join(COLUMNS)}"
        )
    optional = {c: sheet[c].fillna("") if c in sheet else "" for c in OPTIONAL}
    sheet = sheet.assign(**optional)
    sheet = sheet[list(COLUMNS)].map(lambda v: str(v).strip())
    seen: set[str] = set()
    typed: dict[str, list[object]] = {c: [] for c in COLUMNS}
    for position, row in enumerate(sheet.itertuples(index=False), start=1):
        try:
            run = PublishedRun.model_validate(dict(zip(COLUMNS, row, strict=True)))
        except ValidationError as exc:
            first = exc.errors(include_url=False)[0]
            column = str(first["loc"][0]) if first["loc"] else None
            raise ProfileError(source, first["msg"], row=position, column=column) from None
        if run.run_id in seen:
            raise ProfileError(
                source, f"duplicate run_id {run.run_id!r}", row=position, column="run_id"
            )
        seen.add(run.run_id)
        for column, value in run.model_dump().items():
            typed[column].append(value)
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

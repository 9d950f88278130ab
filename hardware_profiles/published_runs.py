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

``layout`` is how the run spread the model over its devices, as the source states it:
``tp`` (tensor parallel), ``ep`` (experts split over devices), ``dp_attention`` (each rank
runs attention for its own sequences), ``pp`` (pipeline stages), e.g. ``tp=8`` or
``dp_attention=8,ep=8``. Attention runs on ``tp x dp_attention`` devices per stage and the
experts are split over those same devices, so a replica has ``pp x tp x dp_attention``
devices and ``ep``, where stated, equals ``tp x dp_attention``; a layout that does not match
the ``devices`` column is refused. Empty: the source does not say.

A row's *source* (:func:`source_page`) is the page it was read from, without the commit or
revision: the unit the backtest's leave-one-source-out error leaves out whole.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Annotated, Final, TypeVar
from urllib.parse import urlsplit

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

from hardware_profiles.errors import ProfileError
from hardware_profiles.schema import PRECISIONS
from hardware_profiles.sheets import count, given, http_url, one_of, positive, read_sheet

BUILTIN_SOURCE: Final = "built-in published runs (hardware_profiles/data/published_runs.csv)"
METRICS: Final = {
    "tpot_s": "decode",
    "output_tokens_per_s": "decode",
    "ttft_s": "prefill",
    "prefill_tokens_per_s": "prefill",
}
SPLITS: Final = ("fit", "holdout")
T = TypeVar("T")
LAYOUT_AXES: Final = ("tp", "ep", "dp_attention", "pp")


def _problem(text: str) -> PydanticCustomError:
    """A cell's problem in memwall's words; the context keeps braces in the text literal."""
    return PydanticCustomError("published_run", "{problem}", {"problem": text})


def _in_words(check: Callable[[str], T]) -> Callable[[str], T]:
    """A shared cell check (:mod:`hardware_profiles.sheets`) whose problem pydantic reports
    in memwall's words rather than as its own "Value error"."""

    def run(value: str) -> T:
        try:
            return check(value)
        except ValueError as exc:
            raise _problem(str(exc)) from None

    return run


_given = _in_words(given)
_http = _in_words(http_url)


def _one_of(choices: tuple[str, ...]) -> Callable[[str], str]:
    return _in_words(one_of(choices))


def _count(least: int) -> Callable[[str], int]:
    return _in_words(count(least))


_positive = _in_words(positive)


def _unless_empty(parse: Callable[[str], int]) -> Callable[[str], int | None]:
    """A count a source may leave unstated: empty is None."""
    return lambda value: None if value == "" else parse(value)


def _stated_precision(value: str) -> str:
    """A precision, or empty where the source does not state it (the KV cache's)."""
    return value and _one_of(PRECISIONS)(value)


def parse_layout(value: str) -> dict[str, int]:
    """``axis=degree`` pairs, comma-separated (``dp_attention=8,ep=8``): each axis one of
    :data:`LAYOUT_AXES`, at most once, with a whole degree >= 1; empty is no layout stated."""
    degrees: dict[str, int] = {}
    for part in filter(None, (p.strip() for p in value.split(","))):
        axis, _, degree = part.partition("=")
        axis = axis.strip()
        if axis not in LAYOUT_AXES or axis in degrees:
            axes = ", ".join(LAYOUT_AXES)
            raise _problem(f"{part!r} is not a layout axis=degree of a new axis; axes: {axes}")
        degrees[axis] = _count(1)(degree.strip())
    return degrees


def layout_devices(degrees: dict[str, int]) -> int:
    """Devices a layout spans (module docstring): pp x tp x dp_attention."""
    return degrees.get("pp", 1) * degrees.get("tp", 1) * degrees.get("dp_attention", 1)


def source_page(url: str) -> str:
    """The page a row was read from, the unit leave-one-source-out leaves out: host and path
    without query, fragment or trailing slash, and for a file on GitHub its repository and
    path without the commit or branch (a page read at two commits is one source)."""
    parts = urlsplit(url)
    host = parts.netloc.lower().removeprefix("www.")
    path = [p for p in parts.path.split("/") if p]
    if host == "github.com" and len(path) > 4 and path[2] in ("blob", "tree", "raw"):
        path = path[:2] + path[4:]
    elif host == "raw.githubusercontent.com" and len(path) > 3:
        host, path = "github.com", path[:2] + path[3:]
    return "/".join([host, *path])


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
    layout: str
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

    @field_validator("layout")
    @classmethod
    def _layout_spans_the_devices(cls, value: str, info: ValidationInfo) -> str:
        degrees = parse_layout(value)
        if not degrees:
            return ""
        attention = degrees.get("tp", 1) * degrees.get("dp_attention", 1)
        if "ep" in degrees and degrees["ep"] != attention:
            raise _problem(
                f"{value!r}: ep={degrees['ep']} must equal tp x dp_attention = {attention} "
                "(experts are split over the devices that run attention)"
            )
        devices = info.data.get("devices")
        if devices is not None and layout_devices(degrees) != devices:
            raise _problem(
                f"{value!r} spans pp x tp x dp_attention = {layout_devices(degrees)} devices, "
                f"but the row's devices is {devices}"
            )
        return ",".join(f"{axis}={degree}" for axis, degree in degrees.items())

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
_COUNTS: Final = ("devices", "batch", "input_tokens", "output_tokens")


def validate_published_runs(sheet: pd.DataFrame, source: str | Path) -> pd.DataFrame:
    """The sheet (every cell text) checked row by row and typed. A bad row is one error naming
    the file, the row, the column of its first bad cell (left to right) and what would be
    valid; a run_id seen before is one too."""
    missing = [c for c in COLUMNS if c not in sheet.columns]
    if missing:
        raise ProfileError(
            source, f"missing column(s) {', '.join(missing)}; expected {', '.join(COLUMNS)}"
        )
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
    sheet = read_sheet(path, "published-runs", COLUMNS)
    return validate_published_runs(sheet, path)


def builtin_published_runs() -> pd.DataFrame:
    """The runs memwall ships; an empty table where this installation has none."""
    data = resources.files("hardware_profiles").joinpath("data/published_runs.csv")
    if not data.is_file():
        return pd.DataFrame({c: pd.Series(dtype=object) for c in COLUMNS})
    sheet = pd.read_csv(str(data), dtype=str, keep_default_na=False)
    return validate_published_runs(sheet, BUILTIN_SOURCE)

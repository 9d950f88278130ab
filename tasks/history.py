"""Every run's measurements and ranking, kept as an append-only Parquet dataset, and drift.

Layout under the history location (a path or an fsspec URL)::

    measurements/<run id>.parquet   the run's measurements rows (the measurements schema)
    ranking/<run id>.parquet        the run's ranking, one row per workload
    demand/<run id>.parquet         the demand the run projected, and where it came from
    validation/<run id>.parquet     the run's check of the workload model on its host, one
                                    row per case (``memwall validate``'s records)
    predictions/<run id>.parquet    what the run predicted per served workload at the batch
                                    and context production served, and what it measured
                                    there (absent from histories older than the self-check:
                                    they read as no predictions yet)

One file per run, never rewritten: two audits recording at once write two different files, so
neither can lose the other's rows, and there is no lock to leave behind.

A history heals: a file that cannot be read (truncated by a full disk, half-synced, written by
something else) is moved into ``quarantine/`` beside it with a ``.reason.txt`` saying why, and
the rest is read. One bad file never stops the weekly audit; nothing is deleted.

Drift: a device's figure (triad bandwidth, matmul throughput per dtype; the best size of the
run) more than :data:`DEGRADED_FRACTION` below the median of its previous runs, once there are
at least :data:`MIN_TRAILING_RUNS` of them, is ``degraded``. The median, not the mean, so one
bad week does not hide the next.

A quick audit reuses the last validation of the same host and software
(:func:`last_validation`): the cases take most of an audit's minute on a CPU, and what they
check (the workload model against this host's steps) changes with the host and the software,
not from week to week.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import pandas as pd

from hardware_profiles.columns import Table
from hardware_profiles.errors import MemwallError
from hardware_profiles.parquet import sweep_debris
from hardware_profiles.schema import (
    DEMAND_HISTORY,
    MEASUREMENTS,
    PREDICTION_HISTORY,
    RANKING_HISTORY,
    VALIDATION_HISTORY,
)
from hardware_profiles.strict_json import dumps
from tasks.analysis.health import DEFAULT_STRAGGLER_FRACTION, peer_verdicts
from tasks.storage import (
    StorageError,
    join,
    list_parquet,
    move_aside,
    read_parquet,
    set_aside,
    write_parquet,
)

DEGRADED_FRACTION: Final = 0.10
MIN_TRAILING_RUNS: Final = 3
TREND_PROBES: Final = ("triad", "matmul")
_USABLE: Final = ("ok", "unstable")


HISTORY_FOLDERS: Final = ("measurements", "ranking", "demand", "validation", "predictions")


@dataclass(frozen=True)
class SetAside:
    """A history file that could not be read: where it was, where it is now, and why."""

    path: str
    moved_to: str | None  # None: it could not be moved either, and is only left out
    reason: str

    def line(self) -> str:
        where = f"moved to {self.moved_to}" if self.moved_to else "left in place, not read"
        return f"{self.path}: {self.reason} ({where})"


@dataclass(frozen=True)
class RecordedRun:
    measurements: str
    ranking: str


def record_run(
    history: str,
    run_id: str,
    measurements: pd.DataFrame,
    ranking: pd.DataFrame,
    recorded_at: dt.datetime,
) -> RecordedRun:
    """Append one run: one new file per table, each written all at once."""
    ranked = ranking[[c for c in RANKING_HISTORY.columns if c in ranking.columns]].assign(
        run_id=run_id, recorded_at=recorded_at
    )
    # A workload whose pool has no hardware in the horizon has no headroom figure: recorded as
    # 0 (no supply), the column being required.
    ranked["headroom_now"] = ranked["headroom_now"].fillna(0.0)
    return RecordedRun(
        measurements=write_parquet(
            measurements, join(history, "measurements", f"{run_id}.parquet"), MEASUREMENTS
        ),
        ranking=write_parquet(
            ranked, join(history, "ranking", f"{run_id}.parquet"), RANKING_HISTORY
        ),
    )


def _table(folder: str) -> Table:
    tables: dict[str, Table] = {"measurements": MEASUREMENTS, "demand": DEMAND_HISTORY}
    tables |= {"validation": VALIDATION_HISTORY, "predictions": PREDICTION_HISTORY}
    return tables.get(folder, RANKING_HISTORY)


def _read_all(
    history: str, folder: str, set_aside_now: list[SetAside] | None = None
) -> pd.DataFrame:
    """Every readable file of ``folder``; an unreadable one is moved aside (and appended to
    ``set_aside_now``), never raised."""
    table = _table(folder)
    frames = []
    for path in list_parquet(join(history, folder)):
        try:
            frames.append(read_parquet(path, table))
        except StorageError as exc:
            if "no such" in str(exc):  # another reader moved it aside meanwhile
                continue
            aside = _quarantine(path, str(exc))
        except MemwallError as exc:
            aside = _quarantine(path, str(exc))
        else:
            continue
        if set_aside_now is not None:
            set_aside_now.append(aside)
    frames = [f for f in frames if not f.empty]
    if not frames:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in table.columns})
    return pd.concat(frames, ignore_index=True)


def _quarantine(path: str, message: str) -> SetAside:
    # The message starts with the path; the reason is what follows it.
    reason = message.removeprefix(path).lstrip(":, ") or message
    try:
        return SetAside(path, move_aside(path, reason), reason)
    except StorageError:
        return SetAside(path, None, reason)


def read_measurements(history: str, set_aside_now: list[SetAside] | None = None) -> pd.DataFrame:
    return _read_all(history, "measurements", set_aside_now)


def read_rankings(history: str, set_aside_now: list[SetAside] | None = None) -> pd.DataFrame:
    return _read_all(history, "ranking", set_aside_now)


def check_history(history: str) -> list[SetAside]:
    """Read the whole history once, before anything is measured, moving aside what cannot be
    read and sweeping the temporary files of writers that died; returns what was set aside
    now. A history that cannot even be listed is one entry, not an error: the run goes on,
    and its recording will say whether it could be written."""
    found: list[SetAside] = []
    for folder in HISTORY_FOLDERS:
        if "://" not in history:
            sweep_debris(join(history, folder))
        try:
            _read_all(history, folder, found)
        except StorageError as exc:
            found.append(SetAside(join(history, folder), None, f"cannot be read: {exc}"))
    return found


def quarantined(history: str) -> list[SetAside]:
    """Everything ever set aside in ``history`` and not yet dealt with, with its reason."""
    return [
        SetAside(path, path, reason)
        for folder in HISTORY_FOLDERS
        for path, reason in set_aside(join(history, folder))
    ]


def trend(
    measurements: pd.DataFrame, straggler_fraction: float = DEFAULT_STRAGGLER_FRACTION
) -> pd.DataFrame:
    """One row per device, figure and run, oldest first, with its drift verdict and its
    verdict against its peers (tasks.analysis.health: ``straggler``, ``vs_model``).

    A figure is a probe and dtype (``triad float32``, ``matmul bfloat16``); its value in a run
    is the best usable result of that run on that device. ``trailing_median`` is the median of
    the device's earlier runs (null until :data:`MIN_TRAILING_RUNS` exist); ``degraded`` is
    true when the value is more than :data:`DEGRADED_FRACTION` below it.
    """
    columns = [
        "host",
        "device_index",
        "device_kind",
        "figure",
        "unit",
        "run_id",
        "measured_at",
        "value",
        "trailing_median",
        "change",
        "degraded",
        "model_median",
        "peers",
        "vs_model",
        "straggler",
    ]
    usable = measurements[
        measurements["probe"].isin(TREND_PROBES)
        & measurements["status"].isin(_USABLE)
        & measurements["best"].notna()
    ]
    if usable.empty:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in columns})
    usable = usable.assign(figure=usable["probe"] + " " + usable["dtype"])
    keys = ["host", "device_index", "device_kind", "figure", "unit"]
    per_run = (
        usable.groupby([*keys, "run_id"], dropna=False)
        .agg(value=("best", "max"), measured_at=("measured_at", "min"))
        .reset_index()
        .sort_values([*keys, "measured_at", "run_id"], kind="stable")
    )
    per_run["trailing_median"] = per_run.groupby(keys, dropna=False)["value"].transform(
        lambda v: (
            v.expanding()
            .median()
            .shift(1)
            .where(v.expanding().count().shift(1).ge(MIN_TRAILING_RUNS))
        )
    )
    per_run["change"] = per_run["value"] / per_run["trailing_median"] - 1.0
    per_run["degraded"] = per_run["change"].lt(-DEGRADED_FRACTION)
    per_run = peer_verdicts(per_run, straggler_fraction)
    return per_run[columns].reset_index(drop=True)


def record_demand(history: str, run_id: str, demand: pd.DataFrame, recorded_at: dt.datetime) -> str:
    """Append the demand one run projected (``tasks.demand``'s provenance rows) as
    ``demand/<run id>.parquet``: the trend of demand beside the trend of the hardware."""
    rows = demand.assign(run_id=run_id, recorded_at=recorded_at)[DEMAND_HISTORY.columns]
    return write_parquet(rows, join(history, "demand", f"{run_id}.parquet"), DEMAND_HISTORY)


def read_demand(history: str, set_aside_now: list[SetAside] | None = None) -> pd.DataFrame:
    """Every recorded run's demand, oldest run first."""
    rows = _read_all(history, "demand", set_aside_now)
    return rows.sort_values(["recorded_at", "workload_id"], kind="stable").reset_index(drop=True)


@dataclass(frozen=True)
class PastValidation:
    """A validation an earlier run recorded, reused by this one: whose, when, and its cases
    (``memwall validate``'s records)."""

    run_id: str
    recorded_at: dt.datetime
    records: list[dict[str, Any]]


def record_validation(
    history: str,
    run_id: str,
    host: str,
    software: str,
    records: Sequence[Mapping[str, Any]],
    recorded_at: dt.datetime,
) -> str | None:
    """Append one run's validation cases as ``validation/<run id>.parquet`` (nothing where the
    run checked no case)."""
    if not records:
        return None
    rows = pd.DataFrame(
        {
            "run_id": run_id,
            "recorded_at": recorded_at,
            "host": host,
            "software": software,
            "device_kind": [str(r["device_kind"]) for r in records],
            "case": [str(r["case"]) for r in records],
            "record": [dumps(dict(r), indent=False).decode() for r in records],
        }
    )
    return write_parquet(rows, join(history, "validation", f"{run_id}.parquet"), VALIDATION_HISTORY)


def last_validation(
    history: str, host: str, software: str, device_kinds: Iterable[str]
) -> PastValidation | None:
    """The latest recorded validation of ``host`` with the same ``software`` that checked
    every one of ``device_kinds`` and ran at least one case; None where there is none (a new
    host, new software, a new device, or a history from before validations were kept)."""
    rows = _read_all(history, "validation")
    rows = rows[(rows["host"] == host) & (rows["software"] == software)]
    wanted = set(device_kinds)
    for run_id, run in sorted(
        rows.groupby("run_id"), key=lambda g: g[1]["recorded_at"].max(), reverse=True
    ):
        records = [json.loads(text) for text in run["record"]]
        ran = [r for r in records if r.get("status") in _USABLE]
        if ran and wanted <= set(run["device_kind"]):
            return PastValidation(str(run_id), run["recorded_at"].max().to_pydatetime(), records)
    return None


def record_predictions(
    history: str, run_id: str, predictions: pd.DataFrame, recorded_at: dt.datetime
) -> str | None:
    """Append what one run predicted per served workload
    (:func:`tasks.analysis.supply.selfcheck.predictions`' rows) as
    ``predictions/<run id>.parquet``; nothing where the run read no served workload."""
    if predictions.empty:
        return None
    rows = predictions.assign(run_id=run_id, recorded_at=recorded_at)[PREDICTION_HISTORY.columns]
    return write_parquet(
        rows, join(history, "predictions", f"{run_id}.parquet"), PREDICTION_HISTORY
    )


def read_predictions(history: str, set_aside_now: list[SetAside] | None = None) -> pd.DataFrame:
    """Every recorded run's predictions, oldest run first (none in a history from before
    predictions were kept)."""
    rows = _read_all(history, "predictions", set_aside_now)
    return rows.sort_values(
        ["recorded_at", "workload_id", "accelerator_id"], kind="stable"
    ).reset_index(drop=True)

"""Backtest: predict every published measured run with :func:`tasks.analysis.supply.predict.predict`
and report the error; fit the per-phase defaults on the rows declared ``fit``.

Error of a run = predicted step time / measured step time − 1: negative when memwall predicts
the step faster than it ran (it overestimates supply), positive when slower. MAPE is the mean
of |error|, bias its mean.

How each run is read (its metric, its under-load steps, a cache precision it does not state) is
:mod:`tasks.analysis.supply.published_terms`.

The fit (efficiencies and step overheads together) is :mod:`tasks.analysis.supply.published_fit`.

The headline error is **leave-one-source-out**: the rows of each source (one page: an engine's
blog, a vendor's performance page, a benchmark table; ``published_runs.source_page``) predicted
by defaults fitted on every other source's ``fit`` rows, the rows the shipped defaults are
fitted on (a row kept out of the fit, such as an MoE run while the fit has one efficiency for
every architecture, is predicted, never fitted). Rows of one page share
an engine, its version, its harness and often its hardware, so a split that leaves rows of the
same page on both sides (the ``fit``/``holdout`` one) is optimistic about a new engine or a new
vendor; this one is not. It is summarised overall and per architecture class, vendor and phase,
and each class's RMS log error is the spread its workloads' date bands take
(``FittedDefaults.class_spread``). How much of it is the sources disagreeing with each other
rather than the model is :mod:`tasks.analysis.supply.source_disagreement`.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Final

import numpy as np
import pandas as pd

from hardware_profiles.published_runs import builtin_published_runs, read_published_runs
from tasks.analysis.supply.calibration import DEFAULT_BANDWIDTH_EFFICIENCY, DEFAULT_FLOPS_EFFICIENCY
from tasks.analysis.supply.efficiency import (
    EXPERTS_AS_DENSE,
    NO_OVERHEAD,
    Efficiency,
    FittedDefaults,
)
from tasks.analysis.supply.mixed_step import mixed_step
from tasks.analysis.supply.predict import Prediction, predict
from tasks.analysis.supply.published_fit import fit
from tasks.analysis.supply.published_terms import measured_step_s, prepare
from tasks.analysis.supply.source_disagreement import ClassDisagreement, by_class
from tasks.analysis.workload.architecture import ARCHITECTURE_CLASSES

STREAM_BANDWIDTH: Final = Efficiency(DEFAULT_BANDWIDTH_EFFICIENCY, "default (STREAM-based)", 0.0)
STREAM_FLOPS: Final = Efficiency(DEFAULT_FLOPS_EFFICIENCY, "default (STREAM-based)", 0.0)
LOSO: Final = "leave-one-source-out"
# A class's own leave-one-source-out spread needs this many rows; fewer take all rows' spread.
MIN_CLASS_RUNS: Final = 5
# The groupings the leave-one-source-out error is summarised by (columns of ``Backtest.runs``).
GROUPINGS: Final = {
    "class": "architecture_class",
    "vendor": "vendor",
    "phase": "phase",
    "generation": "engine_generation",
    "source": "source",
}


@dataclass(frozen=True)
class Summary:
    split: str
    runs: int
    mape: float
    bias: float

    def as_json(self) -> dict[str, object]:
        return {"split": self.split, "runs": self.runs, "mape": self.mape, "bias": self.bias}


@dataclass(frozen=True)
class Backtest:
    """Every predictable run with its prediction and error, the rows skipped (with why), the
    fitted defaults, and the errors of the STREAM defaults on the same rows for comparison."""

    runs: pd.DataFrame
    skipped: list[str]
    fitted: FittedDefaults
    stream_error: pd.Series
    prepared: pd.DataFrame = field(default_factory=pd.DataFrame)

    @functools.cached_property
    def leave_one_out(self) -> pd.Series:
        """Each ``fit`` row's error when the defaults are fitted on the other fit rows (by
        run_id): the error the model's terms were chosen by, without the holdout."""
        return _leave_one_out(self.prepared)

    def loo_summary(self) -> Summary:
        errors = self.leave_one_out.to_numpy(float)
        if errors.size == 0:
            return Summary("leave-one-out", 0, float("nan"), float("nan"))
        return Summary(
            "leave-one-out", int(errors.size), float(np.abs(errors).mean()), float(errors.mean())
        )

    def loso_summary(self, column: str | None = None, value: str | None = None) -> Summary:
        """The leave-one-source-out MAPE and bias of every row, or of the rows whose
        ``column`` (one of :data:`GROUPINGS`' values) is ``value``."""
        chosen = self.runs if column is None else self.runs[self.runs[column] == value]
        errors = chosen["loso_error"].to_numpy(float)
        label = LOSO if value is None else value
        if errors.size == 0:
            return Summary(label, 0, float("nan"), float("nan"))
        return Summary(label, int(errors.size), float(np.abs(errors).mean()), float(errors.mean()))

    def loso_by(self, grouping: str) -> list[Summary]:
        """One leave-one-source-out summary per value of ``grouping`` (a :data:`GROUPINGS`
        key), classes in :data:`ARCHITECTURE_CLASSES` order, others by name."""
        column = GROUPINGS[grouping]
        present = set(self.runs[column].astype(str))
        order: list[str] = (
            [c for c in ARCHITECTURE_CLASSES if c in present] if grouping == "class" else []
        )
        order += sorted(present - set(order))
        return [self.loso_summary(column, value) for value in order]

    @functools.cached_property
    def disagreement(self) -> list[ClassDisagreement]:
        """Per class, how much of the leave-one-source-out error is the sources disagreeing
        with each other (:mod:`tasks.analysis.supply.source_disagreement`)."""
        if self.runs.empty or self.prepared.empty or self.runs["loso_error"].isna().all():
            return []
        p = self.prepared
        carries = p["_under_load"] | (p["prefill_steps"] > 0)

        def numbers(column: str) -> np.ndarray:
            return p[column].to_numpy(dtype=float, na_value=np.nan)

        per_step = numbers("batch") * numbers("input_tokens") / numbers("output_tokens")
        published = p[["run_id", "weight_precision", "engine"]].assign(
            prompt_tokens_per_step=np.where(carries.to_numpy(bool), per_step, 0.0),
            # Presets of one architecture (DeepSeek-V3, V3.1 and R1) are one model here.
            model_shape=p["_arch"].map(lambda arch: repr(replace(arch, name="", source=""))),
        )
        return by_class(self.runs.merge(published, on="run_id", how="left"))

    @property
    def sources(self) -> int:
        return int(self.runs["source"].nunique()) if not self.runs.empty else 0

    def summary(self, split: str, *, stream: bool = False, phase: str | None = None) -> Summary:
        """MAPE and bias of one split (of one phase), with the fitted defaults or, with
        ``stream``, the STREAM defaults."""
        chosen = self.runs["split"] == split
        if phase is not None:
            chosen &= self.runs["phase"] == phase
        errors = (self.stream_error if stream else self.runs["error"])[chosen].to_numpy(float)
        if errors.size == 0:
            return Summary(split, 0, float("nan"), float("nan"))
        return Summary(split, int(errors.size), float(np.abs(errors).mean()), float(errors.mean()))


def fit_defaults(prepared: pd.DataFrame) -> FittedDefaults:
    """The defaults fitted on the ``fit`` rows (:func:`tasks.analysis.supply.published_fit.fit`)."""
    if prepared.empty:
        return FittedDefaults()
    return fit(prepared[prepared["split"] == "fit"])


def predicted_step(
    row: Mapping[Any, Any], bandwidth: Efficiency, flops: Efficiency, fitted: FittedDefaults | None
) -> tuple[Prediction, float]:
    """``predict``'s step for a prepared run (its routed experts at its class's share where
    ``fitted``; under load, the mixed step's time), and the prefill share its metric adds
    (with the prefill's own efficiencies and overhead where ``fitted``, else STREAM's and
    none)."""
    vendor, devices, phase = str(row["vendor"]), int(row["devices"]), str(row["phase"])
    kind, generation = str(row["architecture_class"]), str(row["engine_generation"])
    overhead = fitted.overhead(phase) if fitted is not None else NO_OVERHEAD
    experts = fitted.experts(phase, kind, generation) if fitted is not None else EXPERTS_AS_DENSE
    args = (row["_arch"], row["_estimate"], row["_accelerator"])
    layout = row["_layout"]
    step = predict(*args, bandwidth, flops, devices, overhead, layout, experts=experts)
    prefill_flops = _prefill_flops(vendor, flops, fitted)
    if row["_under_load"]:
        loaded = mixed_step(
            row["_arch"], step, row["_estimate"], row["_accelerator"], prefill_flops,
            int(row["input_tokens"]), int(row["output_tokens"]),
        )  # fmt: skip
        step = replace(
            step, step_time_s=loaded.step_time_s, tokens_per_s=loaded.output_tokens_per_s
        )
    prefill = row["_prefill"]
    if prefill is None:
        return step, 0.0
    prefill_bw = STREAM_BANDWIDTH if fitted is not None else bandwidth
    first = predict(
        row["_arch"], prefill, row["_accelerator"], prefill_bw, prefill_flops, devices,
        fitted.overhead("prefill") if fitted is not None else NO_OVERHEAD, layout,
    )  # fmt: skip
    return step, first.step_time_s * float(row["prefill_steps"])


def _prefill_flops(vendor: str, flops: Efficiency, fitted: FittedDefaults | None) -> Efficiency:
    """The GEMM efficiency a decode run's prompts (its static batch's prefill, or the chunks
    riding on its steps under load) run at: the fitted prefill one; where no prefill run was
    fitted (a fit without the one source of prefill runs), the STREAM-based GEMM default the
    projection would use, never decode's: a decode step's matmuls are a few rows per weight
    (GEMV-like, fitted at about a sixth of the peak), a prompt's are hundreds of rows, a GEMM
    like the probe's. Without ``fitted`` (the STREAM comparison), ``flops``."""
    if fitted is None:
        return flops
    return fitted.lookup("prefill", vendor) or STREAM_FLOPS


def _fitted_efficiencies(
    row: Mapping[Any, Any], fitted: FittedDefaults
) -> tuple[Efficiency, Efficiency]:
    """The bandwidth and compute efficiencies the projection would use for a prepared run:
    ``fitted``'s for its phase and vendor, STREAM's where nothing was fitted."""
    phase, vendor = str(row["phase"]), str(row["vendor"])
    return (
        fitted.lookup(phase, vendor, "bandwidth") or STREAM_BANDWIDTH,
        fitted.lookup(phase, vendor, "flops") or STREAM_FLOPS,
    )


def _leave_one_out(prepared: pd.DataFrame) -> pd.Series:
    chosen = prepared[prepared["split"] == "fit"] if not prepared.empty else prepared
    errors = {}
    for i in chosen.index:
        fitted = fit(chosen.drop(index=i))
        row = chosen.loc[i].to_dict()
        prediction, share = predicted_step(row, *_fitted_efficiencies(row, fitted), fitted)
        errors[str(row["run_id"])] = (prediction.step_time_s + share) / row["measured_step_s"] - 1
    return pd.Series(errors, dtype=float)


def leave_one_source_out(prepared: pd.DataFrame) -> pd.Series:
    """Each row's error when the defaults are fitted on every other source's ``fit`` rows,
    by run_id: the module docstring's headline."""
    errors: dict[str, float] = {}
    if prepared.empty:
        return pd.Series(errors, dtype=float)
    for source in prepared["source"].unique():
        own = prepared["source"] == source
        fitted = fit(prepared[~own & (prepared["split"] == "fit")])
        for row in prepared[own].to_dict("records"):
            prediction, share = predicted_step(row, *_fitted_efficiencies(row, fitted), fitted)
            step = prediction.step_time_s + share
            errors[str(row["run_id"])] = step / float(row["measured_step_s"]) - 1.0
    return pd.Series(errors, dtype=float)


def class_spread(runs: pd.DataFrame) -> dict[str, float]:
    """The RMS natural-log error, leave-one-source-out, of each architecture class with at
    least :data:`MIN_CLASS_RUNS` rows, and of all rows (key ``"all"``): the supply spread of a
    workload of that class whose efficiency is a fitted default."""
    if runs.empty:
        return {}
    logs = np.log1p(runs["loso_error"].to_numpy(float))
    spreads = {"all": float(np.sqrt(np.mean(logs**2)))}
    for name in ARCHITECTURE_CLASSES:
        chosen = (runs["architecture_class"] == name).to_numpy()
        if chosen.sum() >= MIN_CLASS_RUNS:
            spreads[name] = float(np.sqrt(np.mean(logs[chosen] ** 2)))
    return spreads


def backtest(
    runs: pd.DataFrame,
    catalog: pd.DataFrame,
    *,
    by_source: bool = True,
    loso: Mapping[str, float] | None = None,
) -> Backtest:
    """Fit on the ``fit`` rows, then predict every row with the efficiencies and overheads
    the projection would use for it (the fitted defaults of its phase and vendor); with
    ``by_source``, also leave each source out (one fit per source: what the date bands'
    class spreads need; a single prediction needs only the defaults, so it can skip them).
    ``loso``: each run's leave-one-source-out error already computed for these runs, catalog
    and model (``tasks.published_backtest`` keeps them), taken instead of the per-source fits."""
    prepared, skipped = prepare(runs, catalog)
    fitted = fit_defaults(prepared)
    out: list[dict[str, object]] = []
    stream_errors: list[float] = []
    for row in prepared.to_dict("records") if not prepared.empty else []:
        phase, vendor = str(row["phase"]), str(row["vendor"])
        bandwidth, flops = _fitted_efficiencies(row, fitted)
        prediction, share = predicted_step(row, bandwidth, flops, fitted)
        stream, stream_share = predicted_step(row, STREAM_BANDWIDTH, STREAM_FLOPS, None)
        measured = float(row["measured_step_s"])
        step = prediction.step_time_s + share
        metric, batch, prompt = str(row["metric"]), int(row["batch"]), int(row["input_tokens"])
        out.append(
            {
                "run_id": row["run_id"],
                "split": row["split"],
                "source": row["source"],
                "architecture_class": row["architecture_class"],
                "engine_generation": row["engine_generation"],
                "vendor": vendor,
                "model_preset": row["model_preset"],
                "hardware": row["hardware"],
                "devices": int(row["devices"]),
                "layout": str(row["_layout"]),
                "phase": phase,
                "batch": batch,
                "context": int(row["context"]),
                "metric": metric,
                "measured_value": float(row["measured_value"]),
                "predicted_value": measured_step_s(metric, step, batch, prompt),
                "measured_step_s": measured,
                "predicted_step_s": step,
                "prefill_share_s": share,
                "overhead_s": prediction.overhead_time_s,
                "error": step / measured - 1.0,
                "bound": prediction.bound,
                "bandwidth_efficiency": bandwidth.value,
                "flops_efficiency": flops.value,
                "efficiency_source": (fitted.lookup(phase, vendor) or STREAM_BANDWIDTH).source,
                "notes": [*row["_notes"], *prediction.notes],
            }
        )
        stream_errors.append((stream.step_time_s + stream_share) / measured - 1.0)
    columns = [
        "run_id", "split", "source", "architecture_class", "engine_generation", "vendor",
        "model_preset", "hardware",
        "devices", "layout", "phase", "batch", "context", "metric", "measured_value",
        "predicted_value", "measured_step_s", "predicted_step_s", "prefill_share_s", "overhead_s",
        "error", "loso_error", "bound", "bandwidth_efficiency", "flops_efficiency",
        "efficiency_source", "notes",
    ]  # fmt: skip
    table = pd.DataFrame(out, columns=[c for c in columns if c != "loso_error"])
    if loso is not None:
        errors = pd.Series(loso, dtype=float)
    else:
        errors = leave_one_source_out(prepared) if by_source else pd.Series(dtype=float)
    table.insert(columns.index("loso_error"), "loso_error", table["run_id"].map(errors))
    by_source = by_source or loso is not None
    fitted = replace(fitted, class_spread=class_spread(table) if by_source else {})
    return Backtest(
        table, skipped, fitted, pd.Series(stream_errors, index=table.index, dtype=float), prepared
    )


def load_backtest(
    catalog: pd.DataFrame, runs: str | Path | None = None, *, by_source: bool = True
) -> Backtest:
    """The backtest of a published-runs file, or of the runs memwall ships."""
    table = builtin_published_runs() if runs is None else read_published_runs(runs)
    return backtest(table, catalog, by_source=by_source)

"""Backtest: predict every published measured run with :func:`tasks.analysis.predict.predict`
and report the error; fit the per-phase defaults on the rows declared ``fit``.

Error of a run = predicted step time / measured step time − 1: negative when memwall predicts
the step faster than it ran (it overestimates supply), positive when slower. MAPE is the mean
of |error|, bias its mean. The measured step time is the metric itself (``tpot_s``,
``ttft_s``) or the step's tokens over the metric (``output_tokens_per_s``: batch / value;
``prefill_tokens_per_s``: batch · prompt / value); all of a run's devices are one
tensor-parallel replica. A decode run is predicted at its mean context, prompt plus half the
generated tokens (the prompt alone where the source does not state how many it generated).

Fit: for each phase, and each vendor with at least :data:`MIN_FIT_RUNS` fit rows (else every
vendor's rows together), the efficiency of the phase's binding ceiling (decode: bandwidth,
prefill: compute; the other ceiling keeps its STREAM default) that minimises the squared log
error over the fit rows. Its spread is the residuals' RMS log error, with one degree of
freedom taken by the fit.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
import pandas as pd

from hardware_profiles.errors import MemwallError
from hardware_profiles.published_runs import builtin_published_runs, read_published_runs
from tasks.analysis.calibration import DEFAULT_BANDWIDTH_EFFICIENCY, DEFAULT_FLOPS_EFFICIENCY
from tasks.analysis.efficiency import FITTED_CEILING, FittedDefaults
from tasks.analysis.models.presets import PRESETS
from tasks.analysis.predict import Efficiency, predict
from tasks.analysis.workload_model import estimate

MIN_FIT_RUNS: Final = 2
_GRID: Final = np.geomspace(0.02, 1.0, 800)
_UNIT: Final = Efficiency(1.0, "", 0.0)
STREAM_BANDWIDTH: Final = Efficiency(DEFAULT_BANDWIDTH_EFFICIENCY, "default (STREAM-based)", 0.0)
STREAM_FLOPS: Final = Efficiency(DEFAULT_FLOPS_EFFICIENCY, "default (STREAM-based)", 0.0)


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


def measured_step_s(metric: str, value: float, batch: int, input_tokens: int) -> float:
    """A run's step time from its metric. The map is its own inverse: given a step time it
    returns the metric, which is how a prediction is stated in the run's own terms."""
    if metric in ("tpot_s", "ttft_s"):
        return value
    if metric == "output_tokens_per_s":
        return batch / value
    return batch * input_tokens / value


def _prepare(runs: pd.DataFrame, catalog: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """Each run's time terms at efficiency 1 (memory, compute, communication) and its measured
    step time; rows whose preset, hardware or precision this memwall cannot use are skipped."""
    known = catalog.set_index("accelerator_id", drop=False)
    rows: list[dict[str, object]] = []
    skipped: list[str] = []
    each: Iterator[Any] = runs.itertuples(index=False)  # typed loosely: columns of mixed types
    for number, run in enumerate(each, start=1):
        where = f"row {number} ({run.run_id})"
        if run.model_preset not in PRESETS:
            skipped.append(f"{where}: preset {run.model_preset!r} is unknown to this memwall")
            continue
        if run.hardware not in known.index:
            skipped.append(f"{where}: accelerator {run.hardware!r} is not in the catalog")
            continue
        unstated = [c for c in ("batch", "input_tokens") if pd.isna(getattr(run, c))]
        if unstated:
            skipped.append(
                f"{where}: the source does not state its {' or '.join(unstated)}, which a "
                "prediction needs"
            )
            continue
        generated = 0 if pd.isna(run.output_tokens) else int(run.output_tokens)
        batch, prompt = int(run.batch), int(run.input_tokens)
        context = prompt + (generated // 2 if run.phase == "decode" else 0)
        arch = PRESETS[run.model_preset]
        accelerator = known.loc[run.hardware].to_dict()
        try:
            est = estimate(
                arch,
                phase=run.phase,
                batch=batch,
                context=context,
                weights=run.weight_precision,
                kv=run.kv_precision or None,
                activations=run.compute_precision,
            )
            unit = predict(arch, est, accelerator, _UNIT, _UNIT, int(run.devices))
        except MemwallError as exc:
            skipped.append(f"{where}: {exc}")
            continue
        rows.append(
            {
                **run._asdict(),
                "vendor": str(accelerator["vendor"]),
                "context": context,
                "memory_s_at_1": unit.memory_time_s,
                "compute_s_at_1": unit.compute_time_s,
                "communication_s": unit.communication_time_s,
                "measured_step_s": measured_step_s(run.metric, run.measured_value, batch, prompt),
                "_arch": arch,
                "_estimate": est,
                "_accelerator": accelerator,
            }
        )
    return pd.DataFrame(rows), skipped


def _steps(rows: pd.DataFrame, bandwidth: np.ndarray, flops: np.ndarray) -> np.ndarray:
    """Predicted step times for efficiencies broadcast against the rows."""
    memory = rows["memory_s_at_1"].to_numpy(float)[:, None] / bandwidth
    compute = rows["compute_s_at_1"].to_numpy(float)[:, None] / flops
    return np.asarray(
        np.maximum(memory, compute) + rows["communication_s"].to_numpy(float)[:, None]
    )


def _fit_one(rows: pd.DataFrame, phase: str, label: str) -> Efficiency:
    """Least squares in log space on a grid, then on a finer grid around the best point."""

    def residuals(grid: np.ndarray) -> np.ndarray:
        if FITTED_CEILING[phase] == "bandwidth":
            steps = _steps(rows, grid[None, :], np.array([[STREAM_FLOPS.value]]))
        else:
            steps = _steps(rows, np.array([[STREAM_BANDWIDTH.value]]), grid[None, :])
        return np.asarray(np.log(steps / rows["measured_step_s"].to_numpy(float)[:, None]))

    coarse = int(np.argmin((residuals(_GRID) ** 2).sum(axis=0)))
    fine = np.geomspace(_GRID[max(coarse - 1, 0)], _GRID[min(coarse + 1, len(_GRID) - 1)], 401)
    residual = residuals(fine)
    best = int(np.argmin((residual**2).sum(axis=0)))
    n = len(rows)
    spread = float(np.sqrt((residual[:, best] ** 2).sum() / max(n - 1, 1)))
    source = f"fitted on {n} published run{'s' if n > 1 else ''} ({phase}, {label})"
    return Efficiency(float(fine[best]), source, spread)


def fit_defaults(prepared: pd.DataFrame) -> FittedDefaults:
    """Per-phase defaults on the ``fit`` rows: per vendor where it has enough, and across
    vendors; plus the STREAM defaults' RMS log error on the same rows."""
    if prepared.empty:
        return FittedDefaults()
    fit = prepared[prepared["split"] == "fit"]
    fitted: dict[tuple[str, str | None], Efficiency] = {}
    for phase in FITTED_CEILING:
        rows = fit[fit["phase"] == phase]
        if len(rows) >= MIN_FIT_RUNS:
            fitted[(phase, None)] = _fit_one(rows, phase, "all vendors")
        for vendor, group in rows.groupby("vendor"):
            if len(group) >= MIN_FIT_RUNS:
                fitted[(phase, str(vendor))] = _fit_one(group, phase, str(vendor))
    stream = None
    if not fit.empty:
        steps = _steps(fit, np.array([[STREAM_BANDWIDTH.value]]), np.array([[STREAM_FLOPS.value]]))[
            :, 0
        ]
        stream = float(
            np.sqrt(np.mean(np.log(steps / fit["measured_step_s"].to_numpy(float)) ** 2))
        )
    return FittedDefaults(fitted, stream)


def backtest(runs: pd.DataFrame, catalog: pd.DataFrame) -> Backtest:
    """Fit on the ``fit`` rows, then predict every row with the efficiencies the projection
    would use for it (the fitted default of its phase and vendor)."""
    prepared, skipped = _prepare(runs, catalog)
    fitted = fit_defaults(prepared)
    out: list[dict[str, object]] = []
    stream_errors: list[float] = []
    for row in prepared.to_dict("records") if not prepared.empty else []:
        phase = str(row["phase"])
        own = fitted.lookup(phase, str(row["vendor"]))
        bandwidth, flops = STREAM_BANDWIDTH, STREAM_FLOPS
        if own is not None and FITTED_CEILING[phase] == "bandwidth":
            bandwidth = own
        elif own is not None:
            flops = own
        args = (row["_arch"], row["_estimate"], row["_accelerator"])
        prediction = predict(*args, bandwidth, flops, int(row["devices"]))
        stream = predict(*args, STREAM_BANDWIDTH, STREAM_FLOPS, int(row["devices"]))
        measured = float(row["measured_step_s"])
        metric, batch, prompt = str(row["metric"]), int(row["batch"]), int(row["input_tokens"])
        out.append(
            {
                "run_id": row["run_id"],
                "split": row["split"],
                "model_preset": row["model_preset"],
                "hardware": row["hardware"],
                "devices": int(row["devices"]),
                "phase": phase,
                "batch": batch,
                "context": int(row["context"]),
                "metric": metric,
                "measured_value": float(row["measured_value"]),
                "predicted_value": measured_step_s(metric, prediction.step_time_s, batch, prompt),
                "measured_step_s": measured,
                "predicted_step_s": prediction.step_time_s,
                "error": prediction.step_time_s / measured - 1.0,
                "bound": prediction.bound,
                "bandwidth_efficiency": bandwidth.value,
                "flops_efficiency": flops.value,
                "efficiency_source": (own or STREAM_BANDWIDTH).source,
                "notes": list(prediction.notes),
            }
        )
        stream_errors.append(stream.step_time_s / measured - 1.0)
    columns = [
        "run_id", "split", "model_preset", "hardware", "devices", "phase", "batch", "context",
        "metric", "measured_value", "predicted_value", "measured_step_s", "predicted_step_s",
        "error", "bound", "bandwidth_efficiency", "flops_efficiency", "efficiency_source",
        "notes",
    ]  # fmt: skip
    table = pd.DataFrame(out, columns=columns)
    return Backtest(
        table, skipped, fitted, pd.Series(stream_errors, index=table.index, dtype=float)
    )


def load_backtest(catalog: pd.DataFrame, runs: str | Path | None = None) -> Backtest:
    """The backtest of a published-runs file, or of the runs memwall ships."""
    table = builtin_published_runs() if runs is None else read_published_runs(runs)
    return backtest(table, catalog)

"""memwall checks itself: each audit's predictions set against what production measured since.

An audit that reads serving telemetry knows, per served workload and accelerator model, the
batch and context production served over its window. At that shape it predicts the decode
step with the efficiencies it projects with (production's own first, where an earlier window
calibrated) and records the prediction with its P10-P90 band (tasks/history.py). The next
audit measures the step again over its own window; set against the prediction,

    error = measured_step / predicted_step - 1

is memwall's own error on this fleet (positive: slower than memwall said, so memwall
over-stated supply). The band is the one the projection gives the workload's supply on that
accelerator model (:mod:`tasks.analysis.projection.uncertainty`): supply is proportional to
the binding efficiency, whose log spread ``s`` is the efficiency's own (production's spread
over its window, a probe's CV) or, for a default fitted on published runs, the backtest's
leave-one-source-out spread of the workload's architecture class. A step is inversely
proportional to supply, so its P10-P90 is ``step · exp(∓z·s)``, z the 90th percentile of a
standard normal. (The projection then weights these spreads over the models a pool holds in
the horizon; a step is checked on one model, now, so it takes that model's.) A workload whose
latest measured step falls outside its band has drifted past it: flagged.

Only the next measurement of the same workload on the same accelerator model checks a
prediction (the window after the prediction's run); a workload not served since stays
unchecked. Over the last :data:`DEFAULT_LAST_RUNS` runs, per workload: the checks, the mean
absolute error, the bias (mean signed error) and the latest error; overall: the mean absolute
error of every check.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any, Final

import numpy as np
import pandas as pd

from tasks.analysis.supply.efficiency import SPREAD_CLASSES
from tasks.analysis.supply.production import PredictStep, ServedModel
from tasks.analysis.workload.presets import PRESETS

DEFAULT_LAST_RUNS: Final = 8
Z90: Final = NormalDist().inv_cdf(0.9)
PREDICTION_COLUMNS: Final = (
    "workload_id", "model_name", "accelerator_id", "gpus", "replica_gpus", "batch",
    "context_tokens", "measured_step_s", "window", "predicted_step_s", "predicted_tokens_per_s",
    "step_p10_s", "step_p90_s", "supply_spread", "efficiency_source",
)  # fmt: skip
CHECK_COLUMNS: Final = (
    "workload_id", "accelerator_id", "run_id", "recorded_at", "checked_by", "window",
    "predicted_step_s", "measured_step_s", "error", "step_p10_s", "step_p90_s", "in_band",
    "batch_change", "efficiency_source",
)  # fmt: skip
WORKLOAD_COLUMNS: Final = (
    "workload_id", "accelerators", "checks", "mean_abs_error", "bias", "last_error",
    "last_in_band", "flagged",
)  # fmt: skip


def _finite(value: Any) -> bool:
    return isinstance(value, numbers.Real) and math.isfinite(value)


def _number(value: Any) -> float:
    """A row's figure as a float, NaN where it has none."""
    return float(value) if _finite(value) else math.nan


# (served model, accelerator_id) -> the supply log spread of its band (None: no band).
SupplySpread = Callable[[ServedModel, str], "float | None"]
# The same, with where the spread comes from.
SourcedSpread = Callable[[ServedModel, str], "tuple[float, str] | None"]


def sourced_supply_spread_on(calibrated: pd.DataFrame) -> SourcedSpread:
    """The projection's supply spread of a decode workload on one accelerator model, from the
    calibrated catalog, and what it is: its architecture class's leave-one-source-out spread
    where decode's efficiency there is a fitted default, else the bandwidth efficiency's own
    spread (decode served at a batch is bandwidth-bound)."""
    rows = {str(r["accelerator_id"]): r for r in calibrated.to_dict("records")}

    def spread(model: ServedModel, accelerator: str) -> tuple[float, str] | None:
        row = rows.get(accelerator)
        if row is None:
            return None
        known = PRESETS.get(model.model_preset)
        name = known.architecture_class if known is not None else SPREAD_CLASSES[-1]
        by_class = row.get(f"class_spread_decode_{name}")
        if by_class is not None and _finite(by_class):
            runs = f"{name} runs" if known is not None else "all runs (no known preset)"
            return float(by_class), f"the leave-one-source-out spread of the published {runs}"
        own = row.get("bandwidth_spread_decode")
        if own is None or not _finite(own):
            return None
        return float(own), "the decode bandwidth efficiency's own spread"

    return spread


def supply_spread_on(calibrated: pd.DataFrame) -> SupplySpread:
    """:func:`sourced_supply_spread_on`'s spread alone."""
    sourced = sourced_supply_spread_on(calibrated)

    def spread(model: ServedModel, accelerator: str) -> float | None:
        found = sourced(model, accelerator)
        return None if found is None else found[0]

    return spread


def predictions(
    observed: pd.DataFrame,
    served: Mapping[str, ServedModel],
    predicted_step: PredictStep,
    spread_of: SupplySpread,
) -> pd.DataFrame:
    """One row per observed row (``memwall observe``'s, with ``replica_gpus``) of a known
    workload with a served batch and context: the step ``predicted_step`` gives there, the
    tokens/s of all its replicas at that step, and its P10-P90 band from ``spread_of``."""
    rows = []
    for r in observed.to_dict("records"):
        model = served.get(str(r["model_name"]))
        batch, context = _number(r["batch"]), _number(r["context"])
        if r["workload_id"] is None or model is None or not (batch > 0 and context > 0):
            continue  # no workload to predict, or a row that did not read the served shape
        replica = max(1, round(float(r["replica_gpus"])))
        predicted = predicted_step(model, str(r["accelerator_id"]), replica, batch, context)
        step, source = predicted if predicted is not None else (None, "no prediction possible")
        spread = spread_of(model, str(r["accelerator_id"]))
        low, high = step_band(step, spread)
        replicas = int(r["gpus"]) / replica
        measured = _number(r["measured_step_s"])
        rows.append(
            {
                "workload_id": str(r["workload_id"]),
                "model_name": str(r["model_name"]),
                "accelerator_id": str(r["accelerator_id"]),
                "gpus": int(r["gpus"]),
                "replica_gpus": replica,
                "batch": batch,
                "context_tokens": context,
                "measured_step_s": measured if math.isfinite(measured) else None,
                "window": str(r["window"]),
                "predicted_step_s": step,
                "predicted_tokens_per_s": None if step is None else batch * replicas / step,
                "step_p10_s": low,
                "step_p90_s": high,
                "supply_spread": spread,
                "efficiency_source": source,
            }
        )
    return pd.DataFrame(rows, columns=list(PREDICTION_COLUMNS))


def step_band(step_s: float | None, spread: float | None) -> tuple[float | None, float | None]:
    """A step's P10 and P90 for a supply log spread: 20 ms at a spread of 0.1 is
    20·exp(∓1.2816·0.1) = 17.59 to 22.73 ms. None and None without a step or a spread."""
    if step_s is None or spread is None:
        return None, None
    return step_s * math.exp(-Z90 * spread), step_s * math.exp(Z90 * spread)


@dataclass(frozen=True)
class Accuracy:
    """memwall's error on this fleet: every check (``checks``, :data:`CHECK_COLUMNS`), per
    workload (``workloads``, :data:`WORKLOAD_COLUMNS`) and overall, over the last ``runs``
    runs that recorded predictions."""

    checks: pd.DataFrame
    workloads: pd.DataFrame
    runs: int
    overall_mean_abs_error: float | None

    @property
    def flagged(self) -> list[str]:
        return [str(w) for w in self.workloads.loc[self.workloads["flagged"], "workload_id"]]

    def headline(self) -> str:
        """One line: the overall error, or why there is none yet."""
        if self.runs == 0:
            return "no predictions recorded yet: nothing to compare"
        if self.checks.empty:
            return (
                f"{self.runs} run(s) recorded predictions, none measured since: "
                "nothing to compare yet (the next audit with telemetry checks them)"
            )
        assert self.overall_mean_abs_error is not None
        line = (
            f"memwall's step error on this fleet: {100 * self.overall_mean_abs_error:.1f} % mean "
            f"absolute over {len(self.checks)} check(s) of the last {self.runs} run(s)"
        )
        if self.flagged:
            line += f"; past its P10-P90 band: {', '.join(self.flagged)}"
        return line


def accuracy(recorded: pd.DataFrame, last_runs: int = DEFAULT_LAST_RUNS) -> Accuracy:
    """Each prediction of ``recorded`` (the history's prediction rows, any order) checked by
    the next run that measured the same workload on the same accelerator model, over the last
    ``last_runs`` runs. A prediction of 20 ms with a band of 18-22 ms, measured at 25 ms by the
    next run, is an error of 25 / 20 - 1 = +25 %, outside its band: flagged."""
    runs = (
        recorded.groupby("run_id")["recorded_at"].max().sort_values(kind="stable")
        if not recorded.empty
        else pd.Series(dtype=object)
    )
    kept = set(runs.index[-last_runs:]) if last_runs > 0 else set()
    rows = recorded[recorded["run_id"].isin(kept)].sort_values(
        ["recorded_at", "run_id"], kind="stable"
    )
    checks = []
    for (workload, accelerator), group in rows.groupby(
        ["workload_id", "accelerator_id"], sort=True
    ):
        measured = group[group["measured_step_s"].notna()]
        for r in group.to_dict("records"):
            if not _finite(r["predicted_step_s"]):
                continue
            later = measured[measured["recorded_at"] > r["recorded_at"]]
            if later.empty:
                continue
            m = later.to_dict("records")[0]
            measured_s, predicted_s = float(m["measured_step_s"]), float(r["predicted_step_s"])
            low, high = r["step_p10_s"], r["step_p90_s"]
            banded = _finite(low) and _finite(high)
            checks.append(
                {
                    "workload_id": str(workload),
                    "accelerator_id": str(accelerator),
                    "run_id": str(r["run_id"]),
                    "recorded_at": r["recorded_at"],
                    "checked_by": str(m["run_id"]),
                    "window": str(m["window"]),
                    "predicted_step_s": predicted_s,
                    "measured_step_s": measured_s,
                    "error": measured_s / predicted_s - 1.0,
                    "step_p10_s": float(low) if banded else None,
                    "step_p90_s": float(high) if banded else None,
                    # No band recorded: nothing to drift past.
                    "in_band": bool(float(low) <= measured_s <= float(high)) if banded else True,
                    "batch_change": float(m["batch"]) / float(r["batch"]) - 1.0,
                    "efficiency_source": str(r["efficiency_source"]),
                }
            )
    table = pd.DataFrame(checks, columns=list(CHECK_COLUMNS))
    return Accuracy(
        table,
        _per_workload(table),
        len(kept),
        float(np.mean(np.abs(table["error"].to_numpy(dtype=float)))) if len(table) else None,
    )


def _per_workload(checks: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for workload, group in checks.sort_values("recorded_at", kind="stable").groupby(
        "workload_id", sort=True
    ):
        errors = group["error"].to_numpy(dtype=float)
        latest = group[group["recorded_at"] == group["recorded_at"].max()]
        rows.append(
            {
                "workload_id": str(workload),
                "accelerators": ", ".join(sorted(set(group["accelerator_id"].astype(str)))),
                "checks": len(group),
                "mean_abs_error": float(np.mean(np.abs(errors))),
                "bias": float(np.mean(errors)),
                "last_error": float(latest["error"].iloc[-1]),
                "last_in_band": bool(latest["in_band"].all()),
                "flagged": not bool(latest["in_band"].all()),
            }
        )
    return pd.DataFrame(rows, columns=list(WORKLOAD_COLUMNS))

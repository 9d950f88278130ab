"""memwall against a peer estimator on exactly the published runs both express.

Both are judged as memwall's backtest judges itself (:mod:`tasks.analysis.supply.backtest`):
error = predicted step time / measured step time − 1 (negative: predicted faster than it ran),
MAPE the mean of |error|, bias its mean. memwall's error on a run is its leave-one-source-out
one, the headline's (``loso_error``: the run predicted by defaults fitted without its source);
the peer's step is the figure its estimate gives for the run's metric, read as a step the way
the metric is (``ttft``, ``tpot``: the step itself; ``tokens_per_s``: batch / tokens per s).
The target: memwall closer (lower MAPE) than the peer overall and in every architecture class
with at least :data:`MIN_CLASS_RUNS` common rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import pandas as pd

from tasks.analysis.supply.backtest import GROUPINGS, MIN_CLASS_RUNS, Summary
from tasks.analysis.workload.architecture import ARCHITECTURE_CLASSES

# How a peer's figure is read as a step: the results' key, and whether it is a throughput.
READS: Final = {
    "ttft": ("ttft_s", False),
    "tpot": ("tpot_s", False),
    "tokens_per_s": ("tokens_per_s", True),
}


@dataclass(frozen=True)
class Side:
    """memwall's and the peer's MAPE and bias on the same rows."""

    split: str
    memwall: Summary
    peer: Summary

    @property
    def runs(self) -> int:
        return self.memwall.runs

    @property
    def memwall_closer(self) -> bool:
        return self.memwall.mape < self.peer.mape


def peer_step_s(reads: str, result: Mapping[str, Any], batch: int) -> float:
    """The step time a peer's result says for a run: the figure ``reads`` names, a throughput
    turned into the time one step of the run's batch takes."""
    if reads not in READS:
        raise ValueError(f"a peer's result is read as one of {', '.join(READS)}, not {reads!r}")
    key, throughput = READS[reads]
    value = float(result[key])
    return batch / value if throughput else value


def common_rows(
    runs: pd.DataFrame, reads: Mapping[str, str], results: Iterable[Mapping[str, Any]]
) -> pd.DataFrame:
    """memwall's backtest rows (``Backtest.runs``) that the peer priced, each with
    ``peer_step_s`` and ``peer_error`` beside memwall's ``loso_error``: the rows both express.
    ``reads`` maps run_id to what its request reads; a result with an ``error`` priced nothing,
    and neither did one whose figure is not a positive step time (aiconfigurator answers 0 for
    what it did not model)."""
    priced: dict[str, float] = {}
    for result in results:
        run_id = str(result["run_id"])
        if "error" in result or run_id not in reads:
            continue
        chosen = runs[runs["run_id"] == run_id]
        if chosen.empty:
            continue
        value = float(result[READS[reads[run_id]][0]])
        if value > 0 and np.isfinite(value):
            priced[run_id] = peer_step_s(reads[run_id], result, int(chosen["batch"].iloc[0]))
    both = runs[runs["run_id"].isin(list(priced)) & runs["loso_error"].notna()].copy()
    both["peer_step_s"] = both["run_id"].map(priced).astype(float)
    both["peer_error"] = both["peer_step_s"] / both["measured_step_s"] - 1.0
    return both


def _summary(label: str, errors: pd.Series) -> Summary:
    values = errors.to_numpy(float)
    if values.size == 0:
        return Summary(label, 0, float("nan"), float("nan"))
    return Summary(label, int(values.size), float(np.abs(values).mean()), float(values.mean()))


def side(both: pd.DataFrame, label: str = "all") -> Side:
    """Both tools' MAPE and bias on the rows of ``both`` (:func:`common_rows`)."""
    return Side(label, _summary(label, both["loso_error"]), _summary(label, both["peer_error"]))


def sides_by(both: pd.DataFrame, grouping: str) -> list[Side]:
    """One :class:`Side` per value of ``grouping`` (class, vendor or phase; classes in
    :data:`ARCHITECTURE_CLASSES` order, others by name)."""
    column = GROUPINGS[grouping]
    present = set(both[column].astype(str))
    order: list[str] = (
        [c for c in ARCHITECTURE_CLASSES if c in present] if grouping == "class" else []
    )
    order += sorted(present - set(order))
    return [side(both[both[column].astype(str) == value], value) for value in order]


def alone_by_vendor(runs: pd.DataFrame, both: pd.DataFrame) -> list[Summary]:
    """memwall's leave-one-source-out MAPE and bias, per vendor, on the rows the peer does not
    express (its other hardware, engines and models)."""
    rest = runs[~runs["run_id"].isin(both["run_id"]) & runs["loso_error"].notna()]
    return [
        _summary(vendor, rest.loc[rest["vendor"] == vendor, "loso_error"])
        for vendor in sorted(set(rest["vendor"].astype(str)))
    ]


def target(both: pd.DataFrame) -> tuple[bool, list[str]]:
    """Whether memwall is closer than the peer overall and in every class with at least
    :data:`MIN_CLASS_RUNS` common rows, and one line per part of the target."""
    parts = [side(both)] + [s for s in sides_by(both, "class") if s.runs >= MIN_CLASS_RUNS]
    lines = [
        f"{'overall' if s.split == 'all' else 'class ' + s.split} ({s.runs} runs): memwall "
        f"{100 * s.memwall.mape:.1f} % against {100 * s.peer.mape:.1f} %, "
        f"{'met' if s.memwall_closer else 'missed'}"
        for s in parts
    ]
    return bool(parts[0].runs) and all(s.memwall_closer for s in parts), lines

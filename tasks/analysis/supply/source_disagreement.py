"""Where the published sources disagree with each other: the part of the leave-one-source-out
error that no prediction from memwall's inputs can remove, and the part its model's shape
leaves.

Published pages differ in what they do not state: how the engine was built and tuned, the
benchmark harness, the driver. The leave-one-source-out error mixes that with what the model
gets wrong, and a user reading "MLA-MoE 45 %" needs to know which. Two figures tell them apart,
per architecture class:

- **Contradicting pairs.** Two runs from different sources on the same model architecture
  (DeepSeek-V3 and R1 are one), hardware,
  device count, layout, weight precision, phase, metric, engine family and engine generation,
  in which run *a* has no more work than run *b* (batch, context, and prompt tokens per step
  ``batch · prompt / output`` no larger) and memwall's own predicted step of *a* is no longer
  than *b*'s, yet *a* was measured ``q`` times slower, ``q`` above :data:`GAP`. Whatever the
  model, as long as it predicts *a* no slower than *b*, the ratio of the two runs' errors is at
  least ``q``, so one of them is off by at least ``√q − 1``.
- **Each source's offset.** A source's mean leave-one-source-out log error is a constant it
  adds to every one of its rows; with it taken out, what is left (the within-source error) is
  how well the model's shape follows batch, context and layout inside one page. The offset's
  share of the class's mean squared log error says how much of the headline is the level a
  source runs at, which only a measurement of the engine as deployed (the fleet's own serving
  telemetry, ``memwall predict --prometheus``) can set. An offset also holds what a source
  alone brings (the one Intel page's offset is the Gaudi's own misfit as much as its harness):
  the contradicting pairs are the part no model can remove, the offsets an upper bound on it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import pandas as pd

from tasks.analysis.supply.engine_generation import family
from tasks.analysis.workload.architecture import ARCHITECTURE_CLASSES

# A measured gap below this ratio may be run-to-run noise: not counted as a contradiction.
GAP: Final = 1.10
# The columns two runs must share for the one with less work to be expected no slower.
_SAME: Final = (
    "architecture_class",
    "model_shape",
    "hardware",
    "devices",
    "layout",
    "weight_precision",
    "phase",
    "metric",
    "engine_family",
    "engine_generation",
)


@dataclass(frozen=True)
class Contradiction:
    """Run ``less_work`` (no more work, predicted no slower) measured ``gap`` times slower
    than ``more_work``, from another source."""

    less_work: str  # run_id
    more_work: str
    less_work_source: str
    more_work_source: str
    gap: float  # measured step of less_work / measured step of more_work

    @property
    def least_error(self) -> float:
        """``√gap − 1``: one of the two runs is off by at least this much, whatever the model."""
        return math.sqrt(self.gap) - 1.0

    def as_json(self) -> dict[str, Any]:
        return {
            "less_work": self.less_work,
            "more_work": self.more_work,
            "less_work_source": self.less_work_source,
            "more_work_source": self.more_work_source,
            "measured_gap": self.gap,
            "least_error": self.least_error,
        }


@dataclass(frozen=True)
class OffsetSplit:
    """Runs' leave-one-source-out error with and without each source's own mean offset, and
    the offsets' share of the mean squared log error (the module docstring)."""

    runs: int
    sources: int
    loso_mape: float
    within_source_mape: float  # each source's mean log error taken out
    offset_share: float  # of the mean squared leave-one-source-out log error

    def as_json(self) -> dict[str, Any]:
        return {
            "runs": self.runs,
            "sources": self.sources,
            "loso_mape": self.loso_mape,
            "within_source_mape": self.within_source_mape,
            "offset_share": self.offset_share,
        }


def offset_split(sources: pd.Series, loso_errors: pd.Series) -> OffsetSplit:
    """:class:`OffsetSplit` of runs from ``sources`` with ``loso_errors`` (aligned)."""
    logs = np.log1p(loso_errors.to_numpy(float))
    offsets = pd.Series(logs).groupby(sources.to_numpy()).transform("mean").to_numpy(float)
    squared = float(np.sum(logs**2))
    return OffsetSplit(
        runs=len(logs),
        sources=int(sources.nunique()),
        loso_mape=float(np.mean(np.abs(np.expm1(logs)))),
        within_source_mape=float(np.mean(np.abs(np.expm1(logs - offsets)))),
        offset_share=float(np.sum(offsets**2)) / squared if squared > 0 else 0.0,
    )


@dataclass(frozen=True)
class ClassDisagreement:
    """One architecture class: its offset split and its contradicting pairs."""

    architecture_class: str
    offsets: OffsetSplit
    contradictions: tuple[Contradiction, ...]

    @property
    def worst(self) -> Contradiction | None:
        return max(self.contradictions, key=lambda c: c.gap, default=None)

    def as_json(self) -> dict[str, Any]:
        worst = self.worst
        return {
            **self.offsets.as_json(),
            "contradicting_pairs": len(self.contradictions),
            "contradicting_runs": len(
                {r for c in self.contradictions for r in (c.less_work, c.more_work)}
            ),
            "worst_pair": None if worst is None else worst.as_json(),
        }


def _work(frame: pd.DataFrame) -> pd.DataFrame:
    """Each run's work: batch, context, and the prompt tokens each step carries (under load,
    ``batch · prompt / output``; a static batch's prompts spread over its output; else 0)."""
    return frame[["batch", "context", "prompt_tokens_per_step"]].astype(float)


def contradictions(runs: pd.DataFrame) -> list[Contradiction]:
    """The module docstring's contradicting pairs among ``runs`` (a backtest's runs joined
    with ``weight_precision``, ``engine``, ``prompt_tokens_per_step`` and ``model_shape``, the
    architecture less its name and config source), each pair once."""
    if runs.empty:
        return []
    frame = runs.assign(engine_family=runs["engine"].astype(str).map(family))
    found: list[Contradiction] = []
    for _, group in frame.groupby(list(_SAME), dropna=False, sort=False):
        ids = group["run_id"].astype(str).to_numpy()
        sources = group["source"].astype(str).to_numpy()
        work = _work(group).to_numpy(float)
        predicted = group["predicted_step_s"].to_numpy(float)
        measured = group["measured_step_s"].to_numpy(float)
        for a in range(len(group)):
            for b in range(len(group)):
                if sources[a] == sources[b] or not (work[a] <= work[b]).all():
                    continue
                gap = measured[a] / measured[b]
                if predicted[a] <= predicted[b] and gap > GAP:
                    found.append(Contradiction(ids[a], ids[b], sources[a], sources[b], float(gap)))
    return found


def by_class(runs: pd.DataFrame) -> list[ClassDisagreement]:
    """Per architecture class present in ``runs`` (with ``loso_error``), in
    :data:`ARCHITECTURE_CLASSES` order: the module docstring's figures."""
    if runs.empty:
        return []
    pairs = contradictions(runs)
    of_run = dict(zip(runs["run_id"].astype(str), runs["architecture_class"], strict=True))
    out = []
    for name in ARCHITECTURE_CLASSES:
        chosen = runs[runs["architecture_class"] == name]
        if chosen.empty:
            continue
        out.append(
            ClassDisagreement(
                architecture_class=name,
                offsets=offset_split(chosen["source"], chosen["loso_error"]),
                contradictions=tuple(c for c in pairs if of_run[c.less_work] == name),
            )
        )
    return out

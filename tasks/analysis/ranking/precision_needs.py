"""Which precision each workload would need on each accelerator model of its pool: the pool's
current hardware and what the roadmap brings in the horizon.

The wall is precision-specific (the bf16 ridge falls from H100 to Rubin while the fp8 and fp4
ridges rise), so "lower the precision" has a different answer per model. For every workload
that starves, or runs memory-bound within ``NEAR_HEADROOM`` of starving, and every model its
pool holds in some month of the horizon, the projection is evaluated as if the pool held that
many devices each month, all of that one model, under today's precisions and under each
precision mitigation (:data:`PRECISION_CHANGES`: the same variants the mitigations table
tries). The answer is the smallest change that keeps the workload from starving through the
horizon: the sufficient option that keeps the most bytes per unit (ties in catalogue order),
"as is" where today's precisions suffice, "none suffices" where none does. An option a model
lacks the units for (fp8 or fp4 compute on an A100) is not one, and says so.

Only the rows asked for are evaluated (the report's top workloads), on a view of the projector
restricted to them: each workload's headroom depends on its own share, demand and pool, so the
rows evaluate exactly as in the full projection, at a cost that does not grow with the table.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
import pandas as pd

from tasks.analysis.projection.horizon import NEVER
from tasks.analysis.projection.projector import Projection, Projector
from tasks.analysis.workload.figures import Figures
from tasks.analysis.workload.variants import PRECISION_CHANGES, precision_variant

# A memory-bound workload whose headroom falls below this in some month is close enough to
# the wall to ask what it would need; starving ones (below 1) always are.
NEAR_HEADROOM: Final = 1.25
AS_IS: Final = "as-is"
NONE_SUFFICES: Final = "none"
NEED_COLUMNS: Final = (
    "workload_id",
    "accelerator_id",
    "first_month",
    "starve_month",
    "need",
    "label",
    "bytes_per_unit",
    "compute_short",
    "unavailable",
)


def near_the_wall(projection: Projection) -> np.ndarray:
    """Per workload: memory-bound with headroom under :data:`NEAR_HEADROOM` in some month."""
    outcome = projection.outcome
    close = outcome.memory_bound & (outcome.headroom < NEAR_HEADROOM)
    return np.asarray(outcome.supported & close.any(axis=1))


@dataclass(frozen=True)
class _Option:
    key: str
    label: str
    figures: Figures
    applies: np.ndarray
    compute: str | None = None  # the compute precision it moves to, whose units it needs


def _options(view: Projector, served: pd.DataFrame) -> list[_Option]:
    """Today's precisions, then each precision change, with where each applies (``served``:
    the view's workloads at the batch they are served at)."""
    figures = view.baseline_figures
    options = [_Option(AS_IS, "as is", figures, np.ones(len(figures.precision), dtype=bool))]
    for change in PRECISION_CHANGES:
        variant, applies, _ = precision_variant(figures, served, change)
        options.append(_Option(change.key, change.label, variant, applies, change.compute))
    return options


def precision_needs(projection: Projection, rows: np.ndarray) -> pd.DataFrame:
    """One row per workload of ``rows`` (positions in the projection, kept in that order) near
    the wall and per model its pool holds in the horizon: ``first_month`` the pool holds it,
    ``starve_month`` there at today's precisions (None: never), ``need`` (``as-is``, a
    mitigation key, or ``none``) and its ``label``, the ``bytes_per_unit`` it leaves (NaN for
    none), ``compute_short`` (headroom still under 1 while compute-bound), and ``unavailable``:
    the compute precisions that model has no units for ("no fp4 units")."""
    projector = projection.projector
    rows = np.asarray(rows, dtype=np.int64)
    rows = rows[near_the_wall(projection)[rows]]
    if rows.size == 0:
        return pd.DataFrame({c: [] for c in NEED_COLUMNS})
    view = projector.restricted(rows)
    options = _options(view, projection.served_workloads.iloc[rows])
    ids = projection.workloads["workload_id"].to_numpy()[rows]
    keys = np.array([o.key for o in options], dtype=object)
    labels = np.array([o.label for o in options], dtype=object)
    nbytes = np.stack([o.figures.bytes_per_unit for o in options])  # (options, rows)
    held = projector.fleet.counts[view.placement.pool_index] > 0  # (rows, models, months)
    months = np.array([*projection.months, None], dtype=object)  # NEVER (-1) picks None
    frames = []
    for m, model in enumerate(projector.fleet.models):
        on = np.flatnonzero(held[:, m, :].any(axis=1))
        if on.size == 0:
            continue
        counts = projection.fleet.all_of(m)
        outcomes = [view.evaluate(o.figures, counts) for o in options]
        suffices = np.stack(
            [
                o.applies & out.supported & (out.starve_index == NEVER)
                for o, out in zip(options, outcomes, strict=True)
            ]
        )
        # Today's precisions first, then the change that keeps the most bytes.
        preference = np.where(suffices, nbytes, -np.inf)
        preference[0] = np.where(suffices[0], np.inf, -np.inf)
        choice = preference.argmax(axis=0)[on]
        found = np.asarray(suffices.any(axis=0))[on]
        short = np.stack([out.shortfall_index for out in outcomes])[choice, on] != NEVER
        unavailable = np.full(on.size, "", dtype=object)
        for o, out in zip(options, outcomes, strict=True):
            if o.compute is not None:
                lacks = (o.applies & ~out.supported)[on]
                joiner = np.where(unavailable == "", "", "; ")
                unavailable = np.where(
                    lacks, unavailable + joiner + f"no {o.compute} units", unavailable
                )
        frames.append(
            pd.DataFrame(
                {
                    "workload_id": ids[on],
                    "accelerator_id": model,
                    "first_month": months[held[on, m, :].argmax(axis=1)],
                    "starve_month": months[outcomes[0].starve_index[on]],
                    "need": np.where(found, keys[choice], NONE_SUFFICES),
                    "label": np.where(found, labels[choice], "none suffices"),
                    "bytes_per_unit": np.where(found, nbytes[choice, on], np.nan),
                    "compute_short": found & short,
                    "unavailable": unavailable,
                    "_row": on,
                }
            )
        )
    table = pd.concat(frames, ignore_index=True)
    return (
        table.sort_values(["_row", "first_month", "accelerator_id"], kind="stable")
        .drop(columns="_row")
        .reset_index(drop=True)
    )

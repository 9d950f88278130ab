"""The calendar of one projection: its months, and the fleet each pool holds in each of them.

Month t is the start month plus t; a roadmap change counts from the month containing its
effective date (changes before the start are part of the fleet at t = 0). A pool's fleet is a
(pools, models, months) array of counts, the running sum of the roadmap's count deltas.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd

from hardware_profiles.errors import MemwallError
from hardware_profiles.months import add_months, month_index

DEFAULT_HORIZON_MONTHS = 18
MAX_HORIZON_MONTHS = 120
NEVER = -1


class HorizonError(MemwallError):
    """A projection horizon outside what memwall projects."""


def horizon_months(start: dt.date, months: int) -> list[dt.date]:
    """The first day of each month of the horizon, the start month first."""
    if not 1 <= months <= MAX_HORIZON_MONTHS:
        raise HorizonError(
            f"a horizon of {months} months is out of range; valid: 1 to {MAX_HORIZON_MONTHS}"
        )
    return [add_months(start, t) for t in range(months)]


def first_month(mask: np.ndarray) -> np.ndarray:
    """Per row of a (rows, months) mask: the first month it holds, NEVER where none."""
    hit = mask.any(axis=1)
    return np.where(hit, mask.argmax(axis=1), NEVER)


@dataclass(frozen=True)
class Fleet:
    """Accelerators per pool, model and month of the horizon: counts[pool, model, month]."""

    months: list[dt.date]
    pools: list[str]
    models: list[str]
    counts: np.ndarray

    def pool_total(self) -> np.ndarray:
        """Devices per pool and month, (pools, months)."""
        return np.asarray(self.counts.sum(axis=1))

    def held(self) -> np.ndarray:
        """Whether each pool holds each model in some month of the horizon, (pools, models)."""
        return np.asarray(self.counts.max(axis=2) > 0)

    def on_pool_mix(self, target: int) -> np.ndarray | None:
        """Counts as if every pool held as many devices as it does, each month, but of the
        mix of models pool ``target`` holds that month; None where ``target`` is ever empty."""
        total = self.pool_total()
        if (total[target] <= 0).any():
            return None
        mix = self.counts[target] / total[target][None, :]  # (models, months)
        return np.asarray(total[:, None, :] * mix[None, :, :])

    def all_of(self, model: int) -> np.ndarray:
        """Counts as if every pool's devices were of ``model``, month by month."""
        counts = np.zeros_like(self.counts)
        counts[:, model, :] = self.pool_total()
        return counts


def fleet_by_month(roadmap: pd.DataFrame, months: list[dt.date]) -> Fleet:
    """The running sum of the roadmap's count deltas at every month of the horizon."""
    pools = sorted(set(roadmap["pool"].astype(str)))
    models = sorted(set(roadmap["accelerator_id"].astype(str)))
    pool_of = {p: i for i, p in enumerate(pools)}
    model_of = {m: i for i, m in enumerate(models)}
    start = months[0]
    when = np.array([month_index(start, d) for d in roadmap["effective_date"]], dtype=np.int64)
    keep = when < len(months)
    deltas = np.zeros((len(pools), len(models), len(months)))
    np.add.at(
        deltas,
        (
            np.array([pool_of[p] for p in roadmap["pool"].astype(str)], dtype=np.int64)[keep],
            np.array([model_of[m] for m in roadmap["accelerator_id"].astype(str)], dtype=np.int64)[
                keep
            ],
            np.clip(when, 0, None)[keep],
        ),
        roadmap["count_delta"].to_numpy(dtype=float)[keep],
    )
    return Fleet(months, pools, models, np.cumsum(deltas, axis=2))

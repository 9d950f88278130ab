"""A pool's fleet at a month: the running sum of the roadmap's count deltas."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd


def month_start(day: dt.date) -> dt.date:
    return day.replace(day=1)


def fleet_at(roadmap: pd.DataFrame, month: dt.date) -> pd.DataFrame:
    """Accelerators per (pool, accelerator_id) in the month containing ``month``.

    A roadmap change counts from the first day of the month that contains its effective date.
    Models whose count has fallen to zero are dropped.
    """
    effective = roadmap["effective_date"].map(month_start)
    applied = roadmap[effective <= month_start(month)]
    counts = applied.groupby(["pool", "accelerator_id"], as_index=False).agg(
        count=("count_delta", "sum")
    )
    return pd.DataFrame(counts[counts["count"] > 0].reset_index(drop=True))


def negative_fleet_row(roadmap: pd.DataFrame) -> int | None:
    """Position of the first roadmap row after which a pool would hold fewer than zero of a
    model (retiring more than was bought), or None."""
    ordered = roadmap.assign(_month=roadmap["effective_date"].map(month_start)).sort_values(
        "_month", kind="stable"
    )
    running = ordered.groupby(["pool", "accelerator_id"])["count_delta"].cumsum()
    below = running < 0
    if not below.any():
        return None
    first_label = below[below].index[0]
    return int(np.flatnonzero(roadmap.index == first_label)[0])

"""Roadmap months: a change counts from the month containing its date, and a pool may never
hold fewer than zero of a model."""

from __future__ import annotations

import numpy as np
import pandas as pd

from hardware_profiles.errors import ProfileError
from hardware_profiles.months import month_start


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


def require_non_negative(roadmap: pd.DataFrame, source: str) -> None:
    """Refuse a roadmap (one scenario's rows) that retires more of a model than a pool holds,
    naming the row."""
    bad = negative_fleet_row(roadmap)
    if bad is None:
        return
    row = roadmap.iloc[bad]
    raise ProfileError(
        source,
        f"retires more {row['accelerator_id']} than pool {row['pool']!r} holds by "
        f"{row['effective_date']}",
        row=bad + 1,
        column="count_delta",
    )

"""Hand-built records for the projection's stages, tested without project() or a catalog file.

One accelerator model "h100" at the figures of ``test_serving``'s docstring: usable bandwidth
0.85 x 3.35e12 = 2.8475e12 B/s in every phase, bf16 0.7 x 989.5e12 = 692.65e12 FLOP/s, no fp8
peak, 80e9 B of memory, no step overhead and no interconnect figure.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from hardware_profiles.schema import PEAK_PRECISIONS
from tasks.analysis.projection.horizon import Fleet
from tasks.analysis.supply.ceilings import PEAK_INDEX, PHASE_ORDER, Ceilings
from tasks.analysis.supply.efficiency import SPREAD_CLASSES

BW = 0.85 * 3.35e12
BF16 = 0.7 * 989.5e12
MONTHS = [dt.date(2027, 1, 1), dt.date(2027, 2, 1), dt.date(2027, 3, 1)]


def ceilings(models: int = 1) -> Ceilings:
    phases = len(PHASE_ORDER)
    flops = np.full((phases, models, len(PEAK_PRECISIONS)), np.nan)
    flops[:, :, PEAK_INDEX["bf16"]] = BF16
    zeros = np.zeros((phases, models))
    return Ceilings(
        np.full((phases, models), BW), flops, zeros, zeros, zeros,
        np.full((phases, len(SPREAD_CLASSES), models), np.nan),
    )  # fmt: skip


def fleet(counts: list[list[float]], pools: list[str] | None = None) -> Fleet:
    """One model "h100"; ``counts`` per pool and month."""
    names = pools or [f"p{i}" for i in range(len(counts))]
    return Fleet(MONTHS, names, ["h100"], np.asarray(counts, dtype=float)[:, None, :])


def catalog() -> pd.DataFrame:
    return pd.DataFrame({"accelerator_id": ["h100"], "memory_bytes": [80e9]})

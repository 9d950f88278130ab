"""Roofline vocabulary shared by the projection: bounds, and how a pool is shared.

For one accelerator model h at precision p with calibrated bandwidth BW_h and FLOP/s F_h,p, a
workload of arithmetic intensity AI attains min(F, AI·BW). A pool holds several models, so the
pool's attainable rate is the count-weighted sum of each model's (see
``tasks.analysis.projection``), and its compute utilisation is that sum over the pool's peak.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

MEMORY = "memory"
COMPUTE = "compute"


def pool_shares(workloads: pd.DataFrame, full_pool_supply_units_per_s: np.ndarray) -> np.ndarray:
    """Each workload's share of its pool: as given, else what the given shares leave, split in
    proportion to the fraction of the whole pool each workload needs today.

    Splitting by need (demand over what the whole pool could supply) gives every workload of a
    pool the same headroom today, so differences over time come from growth and hardware alone.
    """
    need = workloads["demand_units_per_s"].to_numpy(dtype=float) / full_pool_supply_units_per_s
    given = workloads["pool_share"]
    has_share = given.notna().to_numpy()
    pools = workloads["pool"]
    left = (
        1
        - pd.Series(np.where(has_share, given.fillna(0.0), 0.0))
        .groupby(pools.to_numpy())
        .transform("sum")
        .to_numpy()
    )
    open_need = (
        pd.Series(np.where(has_share, 0.0, need))
        .groupby(pools.to_numpy())
        .transform("sum")
        .to_numpy()
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        proportional = np.clip(left, 0.0, None) * need / open_need
    return np.where(has_share, given.fillna(0.0).to_numpy(dtype=float), proportional)

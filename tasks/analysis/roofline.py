"""The roofline of a workload on the fleet its pool holds, today.

For one accelerator model h at precision p with calibrated bandwidth BW_h and FLOP/s F_h,p, a
workload of arithmetic intensity AI attains min(F, AI·BW). A pool holds several models, so the
pool's attainable rate is the count-weighted sum of each model's, and its compute utilisation
is that sum over the pool's peak, min(1, AI·BW/F) when the pool holds one model.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from hardware_profiles.errors import ProfileError
from hardware_profiles.schema import peak_column
from tasks.analysis.fleet import fleet_at

MEMORY = "memory"
COMPUTE = "compute"


def pool_ceilings(
    workloads: pd.DataFrame,
    fleet: pd.DataFrame,
    calibrated: pd.DataFrame,
    workloads_source: str = "workloads",
) -> pd.DataFrame:
    """Per workload: the pool's summed bandwidth term and FLOP/s term at its precision.

    Returns workload_id, bandwidth_bytes_per_s (Σ n·BW), flops_per_s (Σ n·F_p) and
    bandwidth_term_flops_per_s (Σ n·min(F_p, AI·BW)) aligned with ``workloads``.
    """
    ai = workloads["flops_per_unit"] / workloads["bytes_per_unit"]
    pairs = workloads[["workload_id", "pool", "precision"]].assign(ai=ai.to_numpy())
    pairs = pairs.reset_index(names="_position").merge(fleet, on="pool", how="left")
    pairs = pairs.merge(calibrated, on="accelerator_id", how="left")
    flops_columns = {p: f"flops_per_s_{p}" for p in pairs["precision"].unique()}
    peak = np.full(len(pairs), np.nan)
    for precision, name in flops_columns.items():
        peak_column(precision)  # raises on an unknown precision
        column = name if precision != "int4" else "flops_per_s_int8"
        rows = (pairs["precision"] == precision).to_numpy()
        peak[rows] = pairs.loc[rows, column].to_numpy(dtype=float)
    missing = np.isnan(peak) & pairs["accelerator_id"].notna().to_numpy()
    if missing.any():
        first = pairs[missing].iloc[0]
        raise ProfileError(
            workloads_source,
            f"precision {first['precision']!r} has no peak on {first['accelerator_id']} in pool "
            f"{first['pool']!r}; give the workload a precision that hardware supports",
            row=int(first["_position"]) + 1,
            column="precision",
        )
    count = pairs["count"].fillna(0).to_numpy(dtype=float)
    bw = pairs["bandwidth_bytes_per_s"].fillna(0).to_numpy(dtype=float)
    peak = np.nan_to_num(peak)
    ai_values = pairs["ai"].to_numpy(dtype=float)
    summed = (
        pd.DataFrame(
            {
                "_position": pairs["_position"].to_numpy(),
                "bandwidth_bytes_per_s": count * bw,
                "flops_per_s": count * peak,
                "bandwidth_term_flops_per_s": count * ai_values * bw,
                "attainable_flops_per_s": count * np.minimum(peak, ai_values * bw),
            }
        )
        .groupby("_position")
        .sum()
    )
    summed = summed.reindex(range(len(workloads)), fill_value=0.0)
    summed.insert(0, "workload_id", workloads["workload_id"].to_numpy())
    return summed.reset_index(drop=True)


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


def roofline_today(
    workloads: pd.DataFrame,
    roadmap: pd.DataFrame,
    calibrated: pd.DataFrame,
    today: dt.date,
    workloads_source: str = "workloads",
) -> pd.DataFrame:
    """Arithmetic intensity, ridge, bound, utilisation and headroom of each workload today."""
    fleet = fleet_at(roadmap, today)
    ceilings = pool_ceilings(workloads, fleet, calibrated, workloads_source)
    ai = (workloads["flops_per_unit"] / workloads["bytes_per_unit"]).to_numpy(dtype=float)
    flops = ceilings["flops_per_s"].to_numpy(dtype=float)
    bandwidth = ceilings["bandwidth_bytes_per_s"].to_numpy(dtype=float)
    attainable = ceilings["attainable_flops_per_s"].to_numpy(dtype=float)
    full_supply = attainable / workloads["flops_per_unit"].to_numpy(dtype=float)
    share = pool_shares(workloads, full_supply)
    supply = share * full_supply
    with np.errstate(divide="ignore", invalid="ignore"):
        utilization = np.where(flops > 0, attainable / flops, 0.0)
        ridge = np.where(bandwidth > 0, flops / bandwidth, np.nan)
    memory_bound = ceilings["bandwidth_term_flops_per_s"].to_numpy(dtype=float) < flops
    return pd.DataFrame(
        {
            "workload_id": workloads["workload_id"].to_numpy(),
            "name": workloads["name"].to_numpy(),
            "owner": workloads["owner"].to_numpy(),
            "pool": workloads["pool"].to_numpy(),
            "phase": workloads["phase"].to_numpy(),
            "precision": workloads["precision"].to_numpy(),
            "arithmetic_intensity_flops_per_byte": ai,
            "ridge_flops_per_byte": ridge,
            "bound": np.where(memory_bound, MEMORY, COMPUTE),
            "utilization_now": utilization,
            "pool_share": share,
            "supply_units_per_s": supply,
            "demand_units_per_s": workloads["demand_units_per_s"].to_numpy(dtype=float),
            "headroom_now": supply / workloads["demand_units_per_s"].to_numpy(dtype=float),
        }
    )


def rank_by_utilization(roofline: pd.DataFrame) -> pd.DataFrame:
    """Most bandwidth-starved first: lowest compute utilisation, then lowest headroom."""
    ranked = roofline.sort_values(
        ["utilization_now", "headroom_now", "workload_id"], kind="stable"
    ).reset_index(drop=True)
    ranked.insert(0, "rank", np.arange(1, len(ranked) + 1))
    return ranked

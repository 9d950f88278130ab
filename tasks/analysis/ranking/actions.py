"""The actions that buy the most months, drawn from the mitigations table.

Each mitigation tried on every workload (``tasks.analysis.ranking.mitigations``) is an action a team
could take across the fleet: store weights and KV cache at fp8, double the decode batch, move
workloads to another pool's hardware. An action's worth is the months it buys summed over the
workloads it applies to (a workload that no longer starves counts the rest of the horizon, a
lower bound), and the workloads it rescues: those that starve today and no longer do. A
training job's mitigations (FP8 matmuls, recompute, more tensor or pipeline parallelism, a
larger micro-batch, a faster network) count the months they move its wall, and carry the cost
and accuracy risk :mod:`tasks.analysis.training.audit` states for them.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from tasks.analysis.projection.horizon import NEVER
from tasks.analysis.training.audit import RISKS
from tasks.analysis.walls.training import MITIGATION_PREFIX

# What each kind of mitigation costs, where it costs no hardware (a precision change's kind is
# what it stores or computes at lower precision: weights, kv, compute).
_SOFTWARE = "no purchase (software: validate accuracy)"
_NO_PURCHASE = {
    "weights": _SOFTWARE,
    "kv": _SOFTWARE,
    "compute": _SOFTWARE,
    "batch": "no purchase (serving config: KV memory per replica)",
}


@dataclass(frozen=True)
class Action:
    label: str
    months_gained: int  # summed over the workloads it helps
    workloads_helped: int
    rescued: tuple[str, ...]  # names of workloads that starve today and no longer would
    cost_usd: float | None  # 0: no purchase; None: unknown
    cost_note: str


def top_actions(mitigations: pd.DataFrame, ranking: pd.DataFrame, count: int = 3) -> list[Action]:
    """The ``count`` mitigations with the most months gained over all workloads (ties: most
    rescued, then the order they were tried in); none that buys nothing."""
    if mitigations.empty:
        return []
    names = dict(zip(ranking["workload_id"], ranking["name"], strict=True))
    starving = set(ranking.loc[ranking["starve_month"].notna(), "workload_id"])
    gained = mitigations["months_gained"].fillna(0.0).clip(lower=0.0)
    rescued = (
        mitigations["applicable"].to_numpy(dtype=bool)
        & (mitigations["starve_index"].to_numpy() == NEVER)
        & mitigations["workload_id"].isin(starving).to_numpy()
    )
    frame = mitigations.assign(_gained=gained, _rescued=rescued, _helped=gained > 0)
    order = {key: i for i, key in enumerate(dict.fromkeys(mitigations["mitigation"]))}
    actions = []
    for key, rows in frame.groupby("mitigation", sort=False):
        total = int(rows["_gained"].sum())
        if total <= 0:
            continue
        kind = str(key).partition(":")[0]
        saved = tuple(str(names[w]) for w in rows.loc[rows["_rescued"], "workload_id"])
        cost_usd, note = _cost(str(key), kind)
        actions.append(
            (
                -total,
                -len(saved),
                order[key],
                Action(
                    label=str(rows["label"].iloc[0]),
                    months_gained=total,
                    workloads_helped=int(rows["_helped"].sum()),
                    rescued=saved,
                    cost_usd=cost_usd,
                    cost_note=note,
                ),
            )
        )
    actions.sort(key=lambda a: (a[0], a[1], a[2]))
    return [a[3] for a in actions[:count]]


def _cost(key: str, kind: str) -> tuple[float | None, str]:
    """(dollars: 0 for no purchase, None where unknown; what it costs, in words). A training
    mitigation's words are its stated cost and, where it has one, its accuracy risk."""
    if key.startswith(MITIGATION_PREFIX):
        risk, cost = RISKS[key.removeprefix(MITIGATION_PREFIX)]
        return None, cost if risk.startswith("none") else f"{cost}; accuracy: {risk}"
    if kind in _NO_PURCHASE:
        return 0.0, _NO_PURCHASE[kind]
    return None, "unknown: hardware of that pool's mix"

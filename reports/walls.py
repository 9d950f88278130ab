"""Page 1's answers, in the order a reader asks them: which workloads hit which wall, when
(with the P10-P90 band where the ranking carries one), and the three actions that buy the most
months, each with its cost where known and the workloads it rescues."""

from __future__ import annotations

import datetime as dt
from typing import Any
from xml.sax.saxutils import escape

import pandas as pd
from reportlab.lib.units import cm
from reportlab.platypus import Flowable, Paragraph, Table

from reports.styles import stylesheet, table_style
from tasks.analysis.ranking.actions import Action
from tasks.analysis.ranking.ranking import records
from tasks.analysis.supply.collectives import LINK_KINDS
from tasks.analysis.walls.walls import ADDRESSED_BY, WALLS

NAMES_PER_WALL = 3
WALL_TITLES = {
    "capacity": "Capacity wall (the batch and its KV cache do not fit a replica; a training "
    "job: its layout's memory per device does not fit)",
    "latency": "Latency wall (batch 1 misses the latency target)",
    "network": "Network wall (a training job's collectives outlast its compute, demand not met)",
    "bandwidth": "Bandwidth wall (starves: memory-bound, demand not met)",
    "compute": "Compute wall (compute-bound, demand not met)",
}


def _month(value: Any) -> str:
    return "–" if value is None or pd.isna(value) else f"{value:%Y-%m}"


def wall_label(r: Any, band: bool = True) -> str:
    """``latency 2027-03``, ``network 2027-07 (likely 2027-01 to 2028-01)`` where a network
    or compute wall's month has a band (a bandwidth wall's is its starvation's, shown
    beside; ``band=False``: never, for narrow cells), or ``–`` for a workload that hits no
    wall."""
    if pd.isna(r.wall):
        return "–"
    label = f"{r.wall} {_month(r.wall_month)}"
    low, high = _wall_band(r)
    if not band or r.wall == "bandwidth" or low is None:
        return label
    return f"{label} (likely {_month(low)} to {'beyond' if high is None else _month(high)})"


def _wall_band(r: Any) -> tuple[Any, Any]:
    """The P10 and P90 month of a wall's month (None where the ranking carries none)."""
    low, high = (getattr(r, f"wall_month_{p}", None) for p in ("p10", "p90"))
    return (None if low is None or pd.isna(low) else low), (
        None if high is None or pd.isna(high) else high
    )


def _band(r: Any) -> str:
    """The P10-P90 band of a wall's month, where the ranking carries one."""
    low, high = _wall_band(r)
    if low is None:
        return ""
    return f" (P10-P90 {_month(low)} to {'beyond the horizon' if high is None else _month(high)})"


def _remedy(r: Any) -> str:
    remedy = getattr(r, "wall_remedy", None)
    return "" if remedy is None or pd.isna(remedy) else f" (lifted by: {remedy})"


def wall_lines(ranking: pd.DataFrame, after: dt.date) -> list[str]:
    """One line per wall hit in the horizon, earliest workloads first, and the unserved."""
    lines = []
    walled = ranking[ranking["wall"].notna()].sort_values("wall_month", kind="stable")
    for wall in WALLS:
        hit = walled[walled["wall"] == wall]
        if hit.empty:
            continue
        names = "; ".join(
            f"{r.name} from {_month(r.wall_month)}{_band(r)}{_remedy(r)}"
            for r in records(hit.head(NAMES_PER_WALL))
        )
        more = f" and {len(hit) - NAMES_PER_WALL} more" if len(hit) > NAMES_PER_WALL else ""
        lines.append(
            f"{WALL_TITLES[wall]}: {len(hit)} workload(s): {names}{more}. "
            f"Addressed by: {ADDRESSED_BY[wall]}."
        )
    if not lines:
        lines.append(f"No workload hits a wall before {after:%Y-%m}.")
    unserved = ranking[ranking["served_from"].isna()]
    if not unserved.empty:
        names = ", ".join(f"{r.name} (pool {r.pool})" for r in records(unserved.head(3)))
        lines.append(f"Not served before {after:%Y-%m} (no hardware in its pool): {names}.")
    return lines


def _action_row(action: Action) -> list[str]:
    saved = ", ".join(action.rescued[:3]) + (
        f" and {len(action.rescued) - 3} more" if len(action.rescued) > 3 else ""
    )
    return [
        action.label,
        f"+{action.months_gained} over {action.workloads_helped} workload(s)",
        action.cost_note
        if action.cost_usd in (0.0, None)
        else f"${action.cost_usd:,.0f} ({action.cost_note})",
        saved or "none rescued outright (starve later)",
    ]


def first_page(ranking: pd.DataFrame, actions: list[Action], after: dt.date) -> list[Flowable]:
    """The walls and the three actions, as page 1 shows them below the headline."""
    s = stylesheet()
    flow: list[Flowable] = [Paragraph("Which workloads hit which wall, and when", s["h2"])]
    flow += [Paragraph("• " + escape(line), s["body"]) for line in wall_lines(ranking, after)]
    flow.append(
        Paragraph(f"The {len(actions) or 'three'} actions that buy the most months", s["h2"])
    )
    if not actions:
        flow.append(Paragraph("No mitigation tried buys any month.", s["body"]))
        return flow
    header = ["action", "months gained", "cost", "rescues"]
    cell = s["cell"]
    data = [[Paragraph(h, cell) for h in header]]
    data += [[Paragraph(escape(c), cell) for c in _action_row(a)] for a in actions]
    table = Table(data, colWidths=[3.2 * cm, 3.6 * cm, 5.0 * cm, 6.2 * cm], repeatRows=1)
    table.setStyle(table_style())
    flow.append(table)
    return flow


def is_job(r: Any) -> bool:
    """Whether a ranking row is a training workload laid out as a job (it has a step)."""
    step = getattr(r, "step_time_s", None)
    return step is not None and not pd.isna(step)


def replica_facts(r: Any) -> list[list[str]]:
    """A workload page's wall and replica, as label/value pairs (none without wall columns)."""
    if not hasattr(r, "wall"):
        return []
    if is_job(r):
        return [
            ["Wall", wall_label(r, band=False), "Served from", _month(r.served_from)],
            [
                "Job",
                f"{int(r.devices_per_replica)} x {r.replica_accelerator_id}",
                "Layout",
                str(r.replica_layout),
            ],
            ["Step", f"{r.step_time_s:.3g} s", "Wall band", _band(r).strip(" ()") or "–"],
        ]
    if pd.isna(r.replica_accelerator_id):
        replica = "–"
    elif pd.isna(r.devices_per_replica):
        replica = "none within the cap"
    else:
        replica = f"{int(r.devices_per_replica)} x {r.replica_accelerator_id}"
    batch = "unbounded" if pd.isna(r.max_batch) else f"{int(r.max_batch):,}"
    served = getattr(r, "served_batch", None)
    if served is not None and not pd.isna(served):
        batch += " (supply evaluated at it: the SLO caps the batch)"
    facts = [
        ["Wall", wall_label(r, band=False), "Served from", _month(r.served_from)],
        ["Replica", replica, "Max batch", batch],
    ]
    tpot = getattr(r, "tpot_under_load_s", None)
    if tpot is not None and not pd.isna(tpot):
        facts.append(
            [
                "Under load",
                f"{tpot * 1e3:.3g} ms per output token, "
                f"{r.output_tokens_per_s_under_load:,.0f} tokens/s",
                "Layout",
                str(r.replica_layout),
            ]
        )
    return facts


def remedy_note(r: Any) -> list[Flowable]:
    """What lifts a workload's capacity or latency wall, under its facts."""
    remedy = getattr(r, "wall_remedy", None)
    if remedy is None or pd.isna(remedy):
        return []
    return [
        Paragraph(
            escape(
                f"{str(r.wall).capitalize()} wall lifted by: {remedy}. Max batch: the largest "
                "that fits the replica and meets the latency target."
            ),
            stylesheet()["small"],
        )
    ]


def method_lines(devices: pd.DataFrame) -> list[str]:
    """How the walls are found, for the method section, with the interconnects the catalog
    lacks (no tensor-parallel communication counted on those)."""
    missing = devices.loc[devices["interconnect_bandwidth_bytes_per_s"].isna(), "name"]
    lines = [
        "Walls: bandwidth = starvation; capacity = the workload's batch (weights + KV cache at "
        "its context) fits no replica of at most max_devices_per_replica devices (default 8) "
        "of any model its pool holds that month, in 90 % of each device's memory; latency = "
        "batch 1 misses tpot_slo_s (decode) or ttft_slo_s (prefill) on every replica size up "
        "to the cap; compute = shortfall while compute-bound; the first in that order counts. "
        "A replica's step on n devices: max(bytes/(n·BW), FLOPs/(n·F)) + 2(n−1)/n · all-reduce "
        "bytes / interconnect bandwidth (one all-reduce of the activations after the attention "
        "and FFN blocks of every layer, each call also paying the link's latency: "
        + ", ".join(f"{k.name} {k.latency_s * 1e6:.0f} us" for k in LINK_KINDS)
        + "); max batch = the largest that "
        "fits the replica and meets the target; where that is below the workload's batch (and "
        "at least 1) its supply is evaluated at it (fewer sequences share each read of the "
        "weights). Rows without a model preset: weights and KV "
        "split as for the batch mitigation, no communication term. Training replicas hold one "
        "sequence (the rest is data parallel). Before a pool holds hardware a workload is not "
        "served (no headroom); before its start_month it has no demand.",
    ]
    if not missing.empty:
        lines.append(
            "No interconnect bandwidth in the catalog for "
            + ", ".join(str(m) for m in missing)
            + ": no tensor-parallel communication counted on those (step times are a lower "
            "bound)."
        )
    return lines

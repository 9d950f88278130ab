"""What the audit found, as plain tables and records: the analysis' one exit.

The PDF (:mod:`reports`), the CLI and the Prefect artifacts show what :func:`gather` returns
and compute nothing themselves: which workloads to detail, their byte components, the
headroom series and their bands, the roofline's ceilings and points, the devices' spec against
calibrated figures, the precision each top workload needs, the three actions, the walls' month
states.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from hardware_profiles.errors import MemwallError
from hardware_profiles.months import month_index
from hardware_profiles.provenance import models_in_window
from tasks.analysis.projection.projector import Projection
from tasks.analysis.ranking.actions import Action, top_actions
from tasks.analysis.ranking.precision_needs import precision_needs
from tasks.analysis.ranking.ranking import Ranked, records
from tasks.analysis.supply.backtest import Backtest
from tasks.analysis.supply.calibrated import efficiency_sources
from tasks.analysis.training.audit import TrainingFindings
from tasks.analysis.workload.presets import estimate_workload
from tasks.analysis.workload.variants import decode_split

TOP_N = 10
DETAIL_PAGES = 5
TIMELINE_SERIES = 8
ROOFLINE_POINTS = 60
WALL_ROWS = 15


@dataclass(frozen=True)
class Ceiling:
    name: str
    bandwidth_bytes_per_s: float
    flops_per_s: float


@dataclass(frozen=True)
class Point:
    label: str
    intensity: float
    flops_per_s: float
    highlight: bool


@dataclass(frozen=True)
class Series:
    """A workload's headroom per month, with its P10 and P90 where the band is known."""

    label: str
    values: Sequence[float]
    low: Sequence[float] | None = None
    high: Sequence[float] | None = None


@dataclass(frozen=True)
class Event:
    month: int
    label: str


@dataclass(frozen=True)
class TimelineRow:
    label: str
    states: Sequence[int]
    walls: Sequence[int]  # index into WALLS per month, -1 where none


@dataclass(frozen=True)
class Findings:
    """A projection's results, in ranking order where a table has one row per workload."""

    months: list[dt.date]
    ranking: pd.DataFrame
    mitigations: pd.DataFrame  # rows of the top workloads only, in ranking order
    details: pd.DataFrame  # the workloads table's rows of the top workloads, with the split
    timelines: list[Series]
    events: list[Event]
    ceilings: list[Ceiling]
    points: list[Point]
    devices: pd.DataFrame
    roofline_precision: str
    # Catalog rows of the models held in the horizon, with first_month and pools (provenance).
    hardware: pd.DataFrame = field(default_factory=pd.DataFrame)
    # Per top workload near the wall and model of its pool: the precision it needs there.
    precision_needs: pd.DataFrame = field(default_factory=pd.DataFrame)
    actions: list[Action] = field(default_factory=list)  # the three that buy the most months
    wall_rows: list[TimelineRow] = field(default_factory=list)  # top workloads, ranking order
    efficiencies: pd.DataFrame | None = None  # per model and phase, with sources
    backtest: Backtest | None = None
    training: TrainingFindings | None = None  # the jobs of training workloads, with months
    # The calibrated catalog the projection used: the audit predicts served steps with it.
    calibrated: pd.DataFrame | None = None


def device_table(
    calibrated: pd.DataFrame,
    catalog: pd.DataFrame,
    models: list[str],
    measurements: pd.DataFrame | None,
    precision: str,
) -> pd.DataFrame:
    """Spec vs calibrated per model in the roadmap (and any measured here): efficiencies,
    where they came from, ridge points at ``precision``, and the worst probe status."""
    measured = (
        set() if measurements is None else set(measurements["accelerator_id"].dropna().astype(str))
    )
    wanted = list(dict.fromkeys([*models, *sorted(measured)]))
    spec = catalog.set_index("accelerator_id").reindex(wanted)
    cal = calibrated.set_index("accelerator_id").reindex(wanted)
    spec_flops = spec[f"peak_flops_per_s_{precision}"].astype(float)
    spec_bw = spec["mem_bandwidth_bytes_per_s"].astype(float)
    status = pd.Series("not measured", index=wanted, dtype=object)
    if measurements is not None and not measurements.empty:
        order = {"failed": 0, "unstable": 1, "waived": 2, "ok": 3}
        rows = measurements[measurements["accelerator_id"].notna()]
        worst = rows.groupby("accelerator_id")["status"].agg(
            lambda s: min(s, key=lambda v: order.get(str(v), 0))
        )
        status.update(worst.astype(object))
    return pd.DataFrame(
        {
            "accelerator_id": wanted,
            "name": spec["name"].to_numpy(),
            "spec_bandwidth_bytes_per_s": spec_bw.to_numpy(),
            "bandwidth_bytes_per_s": cal["bandwidth_bytes_per_s"].to_numpy(),
            "bandwidth_efficiency": cal["bandwidth_efficiency"].to_numpy(),
            "bandwidth_from": cal["bandwidth_from"].to_numpy(),
            "spec_flops_per_s": spec_flops.to_numpy(),
            "flops_per_s": cal[f"flops_per_s_{precision}"].to_numpy(),
            "flops_efficiency": cal[f"flops_efficiency_{precision}"].to_numpy(),
            "flops_from": cal[f"flops_from_{precision}"].to_numpy(),
            "spec_ridge_flops_per_byte": (spec_flops / spec_bw).to_numpy(),
            "ridge_flops_per_byte": (
                cal[f"flops_per_s_{precision}"] / cal["bandwidth_bytes_per_s"]
            ).to_numpy(),
            "status": status.to_numpy(),
            "interconnect_bandwidth_bytes_per_s": spec.get(
                "interconnect_bandwidth_bytes_per_s", pd.Series(np.nan, index=wanted)
            ).to_numpy(dtype=float, na_value=np.nan),
        }
    )


def _events(roadmap: pd.DataFrame, months: list[dt.date]) -> list[Event]:
    events = []
    for r in records(roadmap):
        t = month_index(months[0], r.effective_date)
        if 0 < t < len(months):
            note = f" ({r.note})" if isinstance(r.note, str) and r.note.strip() else ""
            events.append(
                Event(
                    t,
                    f"{months[t]:%Y-%m} {r.pool}: {int(r.count_delta):+d} {r.accelerator_id}{note}",
                )
            )
    return sorted(events, key=lambda e: e.month)


def byte_components(row: pd.Series) -> dict[str, float] | None:
    """Bytes per unit by component (weights, KV read, ...) where the workload model can
    re-derive the row (it was made from a preset); None otherwise."""
    try:
        estimate = estimate_workload({str(k): v for k, v in row.items()})
    except MemwallError:
        return None
    if estimate is None:
        return None
    return {name: cost.bytes for name, cost in estimate.components.items() if cost.bytes > 0}


def _plottable(headroom: np.ndarray) -> list[float]:
    """A headroom row a log chart can draw: months without hardware (NaN) at the floor, months
    before a workload starts (no demand, +inf) at its highest finite headroom."""
    finite = headroom[np.isfinite(headroom)]
    top = float(finite.max()) if finite.size else 1.0
    return [float(v) for v in np.nan_to_num(headroom, nan=0.0, posinf=top)]


def gather(
    projection: Projection,
    ranked: Ranked,
    calibrated: pd.DataFrame,
    catalog: pd.DataFrame,
    roadmap: pd.DataFrame,
    measurements: pd.DataFrame | None = None,
    top_n: int = TOP_N,
    backtest: Backtest | None = None,
) -> Findings:
    projector = projection.projector
    outcome = projection.outcome if ranked.outcome is None else ranked.outcome
    order = ranked.order
    ranking = ranked.ranking
    top = order[:DETAIL_PAGES]
    top_ids = ranking["workload_id"].iloc[: len(top)].to_numpy()
    mitigations = ranked.mitigations[ranked.mitigations["workload_id"].isin(top_ids)]
    mitigations = mitigations.assign(
        _rank=mitigations["workload_id"].map(dict(zip(top_ids, range(len(top)), strict=True)))
    ).sort_values(["_rank"], kind="stable")
    lookup = np.array([*projection.months, None], dtype=object)
    starve_index = mitigations["starve_index"].to_numpy()
    mitigations["starve_month"] = lookup[
        np.where(starve_index < 0, len(projection.months), starve_index)
    ]
    workloads = projection.workloads
    weights, kv = decode_split(workloads)
    details = workloads.iloc[top].assign(
        weights_bytes_per_unit=weights[top],
        kv_bytes_per_unit=kv[top],
        byte_components=pd.Series(
            [byte_components(row) for _, row in workloads.iloc[top].iterrows()],
            index=workloads.index[top],
            dtype=object,
        ),
    )
    band = ranked.band
    timelines = [
        Series(
            f"{i + 1}. {ranking['name'].iloc[i]}",
            _plottable(outcome.headroom[w]),
            None if band is None else _plottable(band.headroom_p10[w]),
            None if band is None else _plottable(band.headroom_p90[w]),
        )
        for i, w in enumerate(order[:TIMELINE_SERIES])
    ]
    precision = str(workloads["precision"].mode().iloc[0])
    held = projector.fleet.counts.max(axis=(0, 2)) > 0
    models = [m for m, h in zip(projector.fleet.models, held, strict=True) if h]
    devices = device_table(calibrated, catalog, models, measurements, precision)
    ceilings = [
        Ceiling(str(d.name), float(d.bandwidth_bytes_per_s), float(d.flops_per_s))
        for d in records(devices[devices["accelerator_id"].isin(models)])
        if np.isfinite(d.flops_per_s)
    ]
    # Per device in each workload's first served month; none for a workload never served.
    with np.errstate(divide="ignore", invalid="ignore"):
        per_device = projection.placement.at_first_served(outcome.attainable_flops_per_s) / (
            projection.placement.at_first_served(
                projector.fleet.pool_total()[projector.placement.pool_index]
            )
        )
    intensity = projector.baseline_figures.intensity
    shown = order[:ROOFLINE_POINTS]
    points = [
        Point(str(i + 1), float(intensity[w]), float(per_device[w]), i < top_n)
        for i, w in enumerate(shown)
        if per_device[w] > 0
    ]
    return Findings(
        months=projection.months,
        ranking=ranking,
        mitigations=pd.DataFrame(mitigations.drop(columns="_rank")),
        details=pd.DataFrame(details.reset_index(drop=True)),
        timelines=timelines,
        events=_events(roadmap, projection.months),
        ceilings=ceilings,
        points=points,
        devices=devices,
        roofline_precision=precision,
        hardware=models_in_window(roadmap, catalog, projection.months[0], len(projection.months)),
        precision_needs=precision_needs(projection, order[:top_n]),
        actions=top_actions(ranked.mitigations, ranking),
        wall_rows=[]
        if ranked.walls is None
        else [
            TimelineRow(
                f"{i + 1}. {ranking['name'].iloc[i]}",
                list(ranked.walls.state[w]),
                list(ranked.walls.month_wall[w]),
            )
            for i, w in enumerate(order[:WALL_ROWS])
        ],
        efficiencies=efficiency_sources(calibrated, models, precision),
        backtest=backtest,
        training=None if ranked.training is None else ranked.training.findings,
        calibrated=calibrated,
    )

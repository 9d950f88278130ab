"""The three profile tables an audit joins, loaded and checked against each other."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pandas as pd

from hardware_profiles import examples
from hardware_profiles.catalog import BUILTIN_SOURCE, load_catalog, require_known
from hardware_profiles.errors import ProfileError
from hardware_profiles.fleet import require_non_negative
from hardware_profiles.layouts import LAYOUT_DEGREES, TRAINING_LAYOUT_DEGREES, layout_degrees
from hardware_profiles.parquet import read_table
from hardware_profiles.roadmaps import baseline_name, split_scenarios
from hardware_profiles.schema import ROADMAP, WORKLOADS, Profiles
from tasks.analysis.supply.engine_generation import stated_engine_problem
from tasks.analysis.training.audit import check_rows, most_devices
from tasks.analysis.workload import examples as workload_examples


def read_profiles(
    workloads: str | Path | None = None,
    roadmap: str | Path | None = None,
    catalog: str | Path | None = None,
) -> Profiles:
    """Each table validated on its own (the built-in examples where no path is given), not
    yet checked against the others: a roadmap with scenarios is checked once per scenario
    (:func:`load_scenarios`)."""
    catalog_frame = load_catalog(catalog)
    workloads_frame = (
        workload_examples.example_workloads()
        if workloads is None
        else read_table(workloads, WORKLOADS)
    )
    roadmap_frame = examples.example_roadmap() if roadmap is None else read_table(roadmap, ROADMAP)
    return Profiles(
        workloads=workloads_frame,
        roadmap=roadmap_frame,
        catalog=catalog_frame,
        workloads_source=workload_examples.SOURCE if workloads is None else str(workloads),
        roadmap_source=examples.SOURCE if roadmap is None else str(roadmap),
        catalog_source=BUILTIN_SOURCE if catalog is None else str(catalog),
    )


def load_profiles(
    workloads: str | Path | None = None,
    roadmap: str | Path | None = None,
    catalog: str | Path | None = None,
) -> Profiles:
    """Read the three tables and cross-check them, the roadmap taken as one plan."""
    profiles = read_profiles(workloads, roadmap, catalog)
    check_consistent(profiles)
    return profiles


def check_consistent(profiles: Profiles) -> None:
    """Every workload needs rows, every pool it names needs hardware in the catalog, every
    stated engine must be one memwall can date, and every training layout must be one an
    engine could run on its pool (:func:`check_rows`)."""
    if profiles.workloads.empty:
        raise ProfileError(profiles.workloads_source, "has no workloads (the table is empty)")
    if profiles.roadmap.empty:
        raise ProfileError(profiles.roadmap_source, "has no roadmap rows (the table is empty)")
    require_known(profiles.catalog, profiles.roadmap["accelerator_id"], profiles.roadmap_source)
    require_non_negative(profiles.roadmap, profiles.roadmap_source)
    require_phase_layouts(profiles.workloads, profiles.workloads_source)
    require_known_engines(profiles.workloads, profiles.workloads_source)
    pools = set(profiles.roadmap["pool"])
    orphan = ~profiles.workloads["pool"].isin(pools)
    if orphan.any():
        position = int(orphan.to_numpy().argmax())
        raise ProfileError(
            profiles.workloads_source,
            f"pool {profiles.workloads['pool'].iloc[position]!r} has no hardware in the roadmap "
            f"({profiles.roadmap_source}); its pools are {', '.join(sorted(pools))}",
            row=position + 1,
            column="pool",
        )
    check_rows(profiles.workloads, profiles.workloads_source, most_devices(profiles.roadmap))


def require_phase_layouts(workloads: pd.DataFrame, source: str) -> None:
    """A layout in the words of its row's phase: a serving one (tp, dp_attention, ep, pp) for
    decode and prefill, a training one (dp, tp, pp, cp, ep, vp) for training. The column's
    own check accepts either; only the row knows which it needs."""
    if "layout" not in workloads:
        return
    for position, (phase, text) in enumerate(
        zip(workloads["phase"], workloads["layout"], strict=True), start=1
    ):
        if text is None or pd.isna(text):
            continue
        degrees = TRAINING_LAYOUT_DEGREES if phase == "training" else LAYOUT_DEGREES
        try:
            layout_degrees(str(text), degrees)
        except ValueError as exc:
            raise ProfileError(
                source, f"a {phase} workload's {exc}", row=position, column="layout"
            ) from None


def require_known_engines(workloads: pd.DataFrame, source: str) -> None:
    """Every stated engine one memwall can date (:func:`stated_engine_problem`): the column's
    own check refuses only a blank one, the engine families live with the analysis. Each
    distinct value is checked once."""
    if "engine" not in workloads:
        return
    stated = workloads["engine"]
    for text in stated.dropna().unique():
        problem = stated_engine_problem(str(text))
        if problem is not None:
            position = int((stated == text).to_numpy().argmax()) + 1
            raise ProfileError(source, problem, row=position, column="engine")


def load_scenarios(
    workloads: str | Path | None,
    roadmap: str | Path | None,
    catalog: str | Path | None,
) -> dict[str, Profiles]:
    """Each scenario's profiles, checked on their own: a retirement in one plan must not be
    charged against a purchase in another."""
    whole = read_profiles(workloads, roadmap, catalog)
    if roadmap is None:
        # The built-in what-if plans: the example roadmap as the baseline, plus two purchases.
        whole = dataclasses.replace(whole, roadmap=examples.example_scenarios())
    split = split_scenarios(whole.roadmap)
    result = {}
    for name, rows in split.items():
        source = whole.roadmap_source
        profiles = dataclasses.replace(
            whole,
            roadmap=rows,
            roadmap_source=source if len(split) == 1 else f"{source} (scenario {name!r})",
        )
        check_consistent(profiles)
        result[name] = profiles
    return result


def pick_scenario(scenarios: dict[str, Profiles], name: str | None) -> tuple[str, Profiles]:
    """The scenario ``name``, or the baseline when no name is given."""
    names = list(scenarios)
    chosen = baseline_name(names) if name is None else name
    if chosen not in scenarios:
        source = next(iter(scenarios.values())).roadmap_source
        raise ProfileError(
            source,
            f"has no scenario {chosen!r}; its scenarios are {', '.join(names)}",
            column="scenario",
        )
    return chosen, scenarios[chosen]


def require_alternatives(scenarios: dict[str, Profiles]) -> None:
    """A what-if needs something to compare: the baseline and at least one named scenario. A
    roadmap that names none would be compared with itself and 'beat' by nothing."""
    if len(scenarios) < 2:
        source = next(iter(scenarios.values())).roadmap_source
        raise ProfileError(
            source,
            "names no scenario to compare with the baseline; give the what-if rows a scenario "
            "name (rows without one are shared by every scenario)",
            column="scenario",
        )

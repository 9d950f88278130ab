"""Cross-checks between the three profile tables."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from hardware_profiles.errors import ProfileError
from hardware_profiles.examples import example_roadmap
from hardware_profiles.parquet import write_table
from hardware_profiles.schema import ROADMAP, WORKLOADS
from tasks.analysis.projection.placement import engine_generations
from tasks.analysis.supply.engine_generation import CURRENT, EARLY, GENERATIONS, NEWEST
from tasks.analysis.workload.examples import example_workloads
from tasks.profiles import load_profiles


def test_builtin_examples_are_consistent() -> None:
    profiles = load_profiles()
    assert set(profiles.workloads["phase"]) >= {"decode", "prefill", "training"}
    assert profiles.roadmap["pool"].nunique() == 3


def test_roadmap_naming_an_unknown_accelerator(tmp_path: Path) -> None:
    roadmap = example_roadmap()
    roadmap.loc[2, "accelerator_id"] = "nvidia-h900"
    path = write_table(roadmap, tmp_path / "r.parquet", ROADMAP)
    with pytest.raises(ProfileError) as caught:
        load_profiles(roadmap=path)
    assert (caught.value.row, caught.value.column) == (3, "accelerator_id")
    assert "unknown accelerator 'nvidia-h900'" in str(caught.value)
    assert "nvidia-h100-sxm" in str(caught.value)


def test_workload_in_a_pool_with_no_hardware(tmp_path: Path) -> None:
    workloads = example_workloads()
    workloads.loc[1, "pool"] = "moon-base"
    path = write_table(workloads, tmp_path / "w.parquet", WORKLOADS)
    with pytest.raises(ProfileError) as caught:
        load_profiles(workloads=path)
    assert (caught.value.row, caught.value.column) == (2, "pool")


def test_empty_workloads_file(tmp_path: Path) -> None:
    path = write_table(example_workloads().iloc[0:0], tmp_path / "w.parquet", WORKLOADS)
    with pytest.raises(ProfileError, match="has no workloads"):
        load_profiles(workloads=path)


def test_retiring_more_than_bought(tmp_path: Path) -> None:
    roadmap = example_roadmap()
    roadmap.loc[3, "count_delta"] = -500
    path = write_table(roadmap, tmp_path / "r.parquet", ROADMAP)
    with pytest.raises(ProfileError) as caught:
        load_profiles(roadmap=path)
    assert (caught.value.row, caught.value.column) == (4, "count_delta")


def test_each_scenario_is_checked_on_its_own(tmp_path: Path) -> None:
    # Two plans each retire what the shared plan leaves of the training pool's H100s: fine one
    # plan at a time, but the two retirements together exceed what the pool ever held.
    from tasks.profiles import load_scenarios

    roadmap = example_roadmap()
    h100 = (roadmap["pool"] == "training") & (roadmap["accelerator_id"] == "nvidia-h100-sxm")
    left = int(roadmap.loc[h100, "count_delta"].sum())
    plans = pd.DataFrame(
        [
            (pool, dt.date(2027, 7, 1), accelerator, count, None, note, name)
            for name in ("plan-a", "plan-b")
            for pool, accelerator, count, note in (
                ("training", "nvidia-b200", 256, "buy"),
                ("training", "nvidia-h100-sxm", -left, "retire"),
            )
        ],
        columns=[*roadmap.columns[:6], "scenario"],
    )
    both = pd.concat([roadmap, plans], ignore_index=True)
    path = write_table(both, tmp_path / "s.parquet", ROADMAP)
    with pytest.raises(ProfileError, match="retires more"):
        load_profiles(roadmap=path)
    assert list(load_scenarios(None, path, None)) == ["baseline", "plan-a", "plan-b"]


def test_without_a_roadmap_the_built_in_scenarios_are_compared() -> None:
    # The baseline of the built-in scenarios is the example roadmap itself, so an audit or a
    # ranking without --roadmap sees the same fleet; what-if gets two plans to compare.
    from tasks.profiles import load_scenarios

    scenarios = load_scenarios(None, None, None)
    assert list(scenarios) == ["baseline", "b300-edge", "rubin-inference"]
    baseline = scenarios["baseline"].roadmap.drop(columns=["scenario"])
    pd.testing.assert_frame_equal(baseline, example_roadmap().drop(columns=["scenario"]))


def test_an_older_workloads_file_without_the_engine_column_loads(tmp_path: Path) -> None:
    """Written as memwall wrote it before workloads stated their engine: the column absent,
    every row then taken as served by a current engine."""
    older = pa.Table.from_pandas(example_workloads(), preserve_index=False).drop(["engine"])
    path = tmp_path / "w.parquet"
    pq.write_table(older, path)
    assert "engine" not in pq.read_schema(path).names
    workloads = load_profiles(workloads=path).workloads
    assert workloads["engine"].isna().all()
    assert set(engine_generations(workloads)[0]) == {GENERATIONS.index(NEWEST)}


@pytest.mark.parametrize(
    ("engine", "says"),
    [
        ("", "must not be empty"),
        ("  ", "must not be empty"),
        ("FastServe 2.1", "'FastServe 2.1': memwall dates the versions of sglang, vllm, "
                          "tensorrt-llm only"),
    ],
)  # fmt: skip
def test_an_engine_memwall_cannot_read_is_refused_naming_file_row_and_column(
    tmp_path: Path, engine: str, says: str
) -> None:
    workloads = example_workloads().assign(engine=None)
    workloads.loc[2, "engine"] = engine
    path = tmp_path / "w.parquet"
    pq.write_table(pa.Table.from_pandas(workloads, preserve_index=False), path)
    with pytest.raises(ProfileError) as caught:
        load_profiles(workloads=path)
    assert (caught.value.source, caught.value.row, caught.value.column) == (str(path), 3, "engine")
    assert says in caught.value.problem


def test_an_engine_named_alone_or_with_a_datable_version_loads(tmp_path: Path) -> None:
    workloads = example_workloads().assign(engine=None)
    for row, engine in enumerate(("FastServe", "SGLang 0.4.3", "vLLM 0.10.1")):
        workloads.loc[row, "engine"] = engine
    path = write_table(workloads, tmp_path / "w.parquet", WORKLOADS)
    loaded = load_profiles(workloads=path).workloads
    index, why = engine_generations(loaded)
    assert [GENERATIONS[i] for i in index[:3]] == [NEWEST, EARLY, CURRENT]
    assert why[0] == "engine 'FastServe' names no datable version: taken as a current release"

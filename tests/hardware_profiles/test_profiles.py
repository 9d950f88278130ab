"""Cross-checks between the three profile tables."""

from __future__ import annotations

from pathlib import Path

import pytest

from hardware_profiles.errors import ProfileError
from hardware_profiles.examples import example_roadmap, example_workloads
from hardware_profiles.parquet import write_table
from hardware_profiles.profiles import load_profiles
from hardware_profiles.schema import ROADMAP, WORKLOADS


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

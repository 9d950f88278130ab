"""The published training runs: each sourced, each cell checked, a bad one named."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from hardware_profiles.errors import ProfileError
from hardware_profiles.published_training_runs import COLUMNS, read_published_training_runs


def test_the_builtin_runs_are_many_sourced_and_typed() -> None:
    runs = read_published_training_runs()
    assert len(runs) >= 12
    assert runs["source_url"].str.startswith("https://").all()
    assert (runs["source_location"].str.len() > 0).all()
    assert runs["source_id"].nunique() >= 3
    assert set(runs["split"]) == {"fit", "holdout"}
    assert all(isinstance(n, int) for n in runs["devices"])


@pytest.mark.parametrize(
    ("column", "value", "says"),
    [
        ("devices", "0", "must be a whole number >= 1"),
        ("zero", "4", "valid: 0, 1, 2, 3"),
        ("metric", "speed", "valid: step_time_s, tokens_per_s"),
        ("published_mfu", "43", "must be a fraction in (0, 1]"),
        ("source_url", "arxiv", "is not an http(s) URL"),
        ("tp_comm_overlap", "maybe", "valid: yes, no, "),
    ],
)
def test_a_bad_cell_names_its_row_and_column(
    tmp_path: Path, column: str, value: str, says: str
) -> None:
    good = read_published_training_runs().head(1).astype(str)
    good["uneven_stages"] = "no"
    good["tp_comm_overlap"] = ""
    good["published_mfu"] = "0.5"
    good[column] = value
    path = tmp_path / "runs.csv"
    good[list(COLUMNS)].to_csv(path, index=False)
    with pytest.raises(ProfileError, match=f"row 1, column '{column}': .*{re.escape(says)}"):
        read_published_training_runs(path)


def test_tp_comm_overlap_is_optional_and_filled_only_where_stated(tmp_path: Path) -> None:
    """A file written before the column reads as not stated (no overlap); the built-in rows
    say yes only for the Megatron-LM README's runs, which name --tp-comm-overlap."""
    good = read_published_training_runs().head(1).astype(str)
    good["uneven_stages"] = "no"
    good["published_mfu"] = "0.5"
    path = tmp_path / "runs.csv"
    good[[c for c in COLUMNS if c != "tp_comm_overlap"]].to_csv(path, index=False)
    assert not read_published_training_runs(path)["tp_comm_overlap"].any()
    runs = read_published_training_runs()
    overlapped = set(runs.loc[runs["tp_comm_overlap"], "source_id"])
    assert overlapped == {"megatron-lm-h100-2024"}

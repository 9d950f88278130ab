"""The published backtest's leave-one-source-out errors, kept on disk per runs, catalog and
model code."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from hardware_profiles.catalog import builtin_catalog
from hardware_profiles.published_runs import read_published_runs
from tasks.analysis.supply.backtest import backtest
from tasks.published_backtest import CACHE_ENV, published_backtest


def _runs(tmp_path: Path) -> Path:
    """The built-in sheet's gpt-fast and dstack rows (four sources): a quick backtest."""
    sheet = Path(__file__).resolve().parents[2] / "hardware_profiles/data/published_runs.csv"
    lines = sheet.read_text().splitlines(keepends=True)
    kept = [lines[0], *(x for x in lines[1:] if x.startswith(("gptfast-", "dstack-")))]
    path = tmp_path / "runs.csv"
    path.write_text("".join(kept))
    return path


def _cached(folder: Path) -> list[Path]:
    return sorted(folder.glob("published-backtest-*.json"))


def test_the_errors_are_kept_and_read_back_unchanged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first backtest writes its errors; the second reads them, and both equal the
    backtest computed afresh, row by row, with the same class spreads."""
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    runs, catalog = _runs(tmp_path), builtin_catalog()
    first = published_backtest(catalog, runs)
    [kept] = _cached(tmp_path / "cache")
    again = published_backtest(catalog, runs)
    fresh = backtest(read_published_runs(runs), catalog)
    for result in (first, again):
        pd.testing.assert_series_equal(result.runs["loso_error"], fresh.runs["loso_error"])
        assert result.fitted.class_spread == pytest.approx(fresh.fitted.class_spread)
    assert set(json.loads(kept.read_text())["loso_error"]) == set(fresh.runs["run_id"])


def test_a_damaged_file_is_computed_over_and_another_catalog_has_its_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    runs, catalog = _runs(tmp_path), builtin_catalog()
    expected = published_backtest(catalog, runs).runs["loso_error"]
    [kept] = _cached(tmp_path / "cache")
    kept.write_text("{not json")
    pd.testing.assert_series_equal(published_backtest(catalog, runs).runs["loso_error"], expected)
    assert json.loads(kept.read_text())["loso_error"]

    other = catalog.copy()
    other["mem_bandwidth_bytes_per_s"] = other["mem_bandwidth_bytes_per_s"] * 1.1
    published_backtest(other, runs)
    assert len(_cached(tmp_path / "cache")) == 2


def test_a_folder_that_cannot_be_written_costs_only_the_recomputation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    monkeypatch.setenv(CACHE_ENV, str(blocked / "cache"))
    result = published_backtest(builtin_catalog(), _runs(tmp_path))
    assert result.runs["loso_error"].notna().any()

"""History: an append-only dataset that concurrent writers cannot corrupt, and drift."""

from __future__ import annotations

import datetime as dt
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pandas as pd
import pytest

from hardware_profiles.errors import ProfileError
from tasks.history import read_measurements, read_rankings, record_run, trend

T0 = dt.datetime(2026, 1, 5, 6, 0, tzinfo=dt.UTC)


def measurements(run_id: str, at: dt.datetime, triad: float, host: str = "h1") -> pd.DataFrame:
    base = {
        "run_id": run_id,
        "measured_at": at,
        "host": host,
        "device_index": 0,
        "platform": "gpu",
        "device_kind": "NVIDIA H100 80GB HBM3",
        "accelerator_id": "nvidia-h100-sxm",
        "repetitions": 5,
        "cv": 0.01,
        "p10": None,
        "p90": None,
        "spec": None,
        "efficiency": None,
        "status": "ok",
        "detail": "",
        "software": "jax test",
    }
    rows = [
        {
            **base,
            "probe": "triad",
            "dtype": "float32",
            "working_set_bytes": 3 * 2**30,
            "best": triad,
            "median": triad * 0.98,
            "unit": "bytes_per_s",
        },
        {
            **base,
            "probe": "matmul",
            "dtype": "bfloat16",
            "working_set_bytes": 2**25,
            "best": 7e14,
            "median": 6.9e14,
            "unit": "flops_per_s",
        },
        {
            **base,
            "probe": "matmul",
            "dtype": "bfloat16",
            "working_set_bytes": 2**27,
            "best": 7.5e14,
            "median": 7.4e14,
            "unit": "flops_per_s",
        },
    ]
    return pd.DataFrame(rows)


def ranking(n: int = 2) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "rank": range(1, n + 1),
            "workload_id": [f"w{i}" for i in range(n)],
            "name": [f"Workload {i}" for i in range(n)],
            "pool": "p",
            "bound": "memory",
            "utilization_now": 0.2,
            "headroom_now": 1.5,
            "phase": "decode",  # a ranking carries more columns than history keeps
        }
    )


def test_a_recorded_run_reads_back(tmp_path: Path) -> None:
    recorded = record_run(str(tmp_path), "r1", measurements("r1", T0, 3e12), ranking(), T0)
    assert Path(recorded.measurements).name == "r1.parquet"
    back = read_measurements(str(tmp_path))
    assert len(back) == 3 and set(back["run_id"]) == {"r1"}
    ranks = read_rankings(str(tmp_path))
    assert list(ranks["workload_id"]) == ["w0", "w1"]
    assert (ranks["recorded_at"] == T0).all()


def test_an_empty_history_reads_as_no_rows(tmp_path: Path) -> None:
    assert read_measurements(str(tmp_path / "none")).empty
    assert trend(read_measurements(str(tmp_path / "none"))).empty


def test_an_invalid_run_writes_nothing(tmp_path: Path) -> None:
    bad = measurements("r1", T0, 3e12)
    bad.loc[0, "best"] = -1.0
    with pytest.raises(ProfileError, match="row 1, column 'best': must be >= 0"):
        record_run(str(tmp_path), "r1", bad, ranking(), T0)
    assert not list(tmp_path.rglob("*.parquet")) and not list(tmp_path.rglob("*.tmp"))


def test_history_works_on_an_fsspec_url() -> None:
    url = "memory://memwall-history-test"
    record_run(url, "r1", measurements("r1", T0, 3e12), ranking(), T0)
    record_run(url, "r2", measurements("r2", T0 + dt.timedelta(days=7), 3e12), ranking(), T0)
    assert set(read_measurements(url)["run_id"]) == {"r1", "r2"}


def _writer(history: str, writer: int, runs: int) -> list[str]:
    ids = []
    for i in range(runs):
        run_id = f"w{writer}-{i:02d}"
        at = T0 + dt.timedelta(minutes=i)
        record_run(history, run_id, measurements(run_id, at, 3e12, f"host{writer}"), ranking(), at)
        ids.append(run_id)
    return ids


def test_two_concurrent_writers_lose_nothing(tmp_path: Path) -> None:
    runs = 15
    # Separate processes, started fresh (forking a process that holds JAX's threads can hang).
    with ProcessPoolExecutor(
        max_workers=2, mp_context=multiprocessing.get_context("spawn")
    ) as pool:
        futures = [pool.submit(_writer, str(tmp_path), w, runs) for w in (1, 2)]
        written = [run for f in futures for run in f.result()]
    back = read_measurements(str(tmp_path))
    assert len(back) == 2 * runs * 3
    assert sorted(set(back["run_id"])) == sorted(written)
    assert len(read_rankings(str(tmp_path))) == 2 * runs * 2
    assert not list(tmp_path.rglob("*.tmp"))


def _history(values: list[float]) -> pd.DataFrame:
    return pd.concat(
        [measurements(f"r{i}", T0 + dt.timedelta(days=7 * i), v) for i, v in enumerate(values)],
        ignore_index=True,
    )


def test_a_drop_of_more_than_ten_percent_below_the_trailing_median_is_degraded() -> None:
    rows = trend(_history([3.0e12, 3.1e12, 2.9e12, 2.6e12]))
    triad = rows[rows["figure"] == "triad float32"].reset_index(drop=True)
    assert list(triad["run_id"]) == ["r0", "r1", "r2", "r3"]
    assert triad["trailing_median"].isna()[:3].all()
    assert triad.loc[3, "trailing_median"] == pytest.approx(3.0e12)
    assert triad.loc[3, "change"] == pytest.approx(-0.1333, abs=1e-3)
    assert list(triad["degraded"]) == [False, False, False, True]
    # The matmul figure is the best size of each run, and it did not move.
    matmul = rows[rows["figure"] == "matmul bfloat16"]
    assert (matmul["value"] == 7.5e14).all() and not matmul["degraded"].any()


def test_ten_percent_or_less_is_not_degraded() -> None:
    rows = trend(_history([3.0e12, 3.0e12, 3.0e12, 2.71e12]))
    assert not rows["degraded"].any()


def test_fewer_than_three_earlier_runs_never_flag() -> None:
    rows = trend(_history([3.0e12, 3.0e12, 1.0e12]))
    assert not rows["degraded"].any()
    assert rows["trailing_median"].isna().all()


def test_failed_and_waived_results_do_not_count() -> None:
    history = _history([3.0e12, 3.0e12, 3.0e12, 3.0e12])
    history.loc[history["run_id"] == "r3", "status"] = "failed"
    rows = trend(history)
    assert "r3" not in set(rows["run_id"])

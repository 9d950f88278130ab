"""The one fake hardware: a recorded measurements file replayed as this host's, this run's."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest

from hardware_profiles.parquet import write_table
from hardware_profiles.schema import MEASUREMENTS
from tasks.replay import REPLAY_ENV, ReplayError, recording, replayed
from tests.tasks.test_history import measurements

RECORDED_AT = dt.datetime(2026, 1, 5, 6, 0, tzinfo=dt.UTC)
REPLAYED_AT = dt.datetime(2026, 3, 2, 6, 0, 7, tzinfo=dt.UTC)


def test_the_recording_becomes_this_hosts_rows_of_this_run(tmp_path: Path) -> None:
    recorded = measurements("20260105T060000Z-rec", RECORDED_AT, 2.9e12, host="gpu-node-1")
    path = tmp_path / "recording.parquet"
    write_table(recorded, path, MEASUREMENTS)

    rows = replayed(str(path), "host-07", "20260302T060000Z-abc123", REPLAYED_AT)

    assert set(rows["run_id"]) == {"20260302T060000Z-abc123"}
    assert set(rows["host"]) == {"host-07"}
    assert set(rows["measured_at"]) == {pd.Timestamp(REPLAYED_AT)}
    # Every figure as recorded, row for row.
    figures = ["device_index", "device_kind", "probe", "dtype", "best", "median", "status"]
    pd.testing.assert_frame_equal(rows[figures], recorded[figures])


def test_a_recording_that_cannot_be_read_fails_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "recording.parquet"
    path.write_bytes(b"PAR1 cut short by a full disk")
    with pytest.raises(ReplayError, match=f"cannot replay {REPLAY_ENV}: {path}: not a readable"):
        replayed(str(path), "host-07", "r", REPLAYED_AT)
    with pytest.raises(ReplayError, match="no such measurements file"):
        replayed(str(tmp_path / "absent.parquet"), "host-07", "r", REPLAYED_AT)


def test_an_empty_recording_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "recording.parquet"
    write_table(measurements("r", RECORDED_AT, 1.0).iloc[:0], path, MEASUREMENTS)
    with pytest.raises(ReplayError, match="has no rows; record one with memwall probe --out"):
        replayed(str(path), "host-07", "r", REPLAYED_AT)


def test_only_a_worker_that_names_a_recording_replays(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(REPLAY_ENV, raising=False)
    assert recording() is None
    monkeypatch.setenv(REPLAY_ENV, "")
    assert recording() is None
    monkeypatch.setenv(REPLAY_ENV, "/shared/recording.parquet")
    assert recording() == "/shared/recording.parquet"

"""Fleet health: each device against the median of its model's devices in the same run."""

from __future__ import annotations

import pandas as pd
import pytest

from tasks.analysis.health import health, peer_verdicts


def rows(values: dict[str, float], kind: str = "H100", run_id: str = "r1") -> pd.DataFrame:
    return pd.DataFrame(
        {
            "host": list(values),
            "device_index": 0,
            "device_kind": kind,
            "figure": "triad float32",
            "run_id": run_id,
            "value": list(values.values()),
        }
    )


def test_a_device_more_than_5_percent_below_its_models_median_is_a_straggler() -> None:
    judged = peer_verdicts(rows({"a": 100.0, "b": 98.0, "c": 101.0, "d": 90.0}))
    # median of 100, 98, 101, 90 is 99
    assert judged["model_median"].tolist() == [99.0] * 4
    assert judged["straggler"].tolist() == [False, False, False, True]
    assert judged["vs_model"].iloc[3] == pytest.approx(90 / 99 - 1)
    found = health(judged, "r1")
    assert found.headline == (
        "3 of 4 devices within 5 % of their model's median; 1 straggler(s): "
        "d H100 #0 (triad float32 -9.1 %)."
    )


def test_models_and_runs_are_judged_apart_and_a_lone_device_is_not_judged() -> None:
    frame = pd.concat(
        [
            rows({"a": 100.0, "b": 60.0}, kind="H100"),
            rows({"c": 30.0}, kind="A100"),  # alone: no peer, no verdict
            rows({"a": 50.0, "b": 50.0}, kind="H100", run_id="r0"),
        ],
        ignore_index=True,
    )
    judged = peer_verdicts(frame)
    assert judged["straggler"].tolist() == [False, True, False, False, False]
    assert pd.isna(judged["vs_model"].iloc[2])
    found = health(judged, "r1")
    assert (found.devices, found.judged, [s.host for s in found.stragglers]) == (3, 2, ["b"])


def test_all_devices_at_once_is_no_devices_peer() -> None:
    frame = rows({"a": 100.0, "b": 95.0, "a-all": 195.0})
    frame["host"] = ["a", "b", "a"]
    frame["device_index"] = [0, 0, -1]
    judged = peer_verdicts(frame)
    assert judged["model_median"].iloc[0] == 97.5 and pd.isna(judged["vs_model"].iloc[2])
    assert not judged["straggler"].any()


def test_the_threshold_is_configurable_and_checked() -> None:
    frame = rows({"a": 100.0, "b": 100.0, "c": 93.0})
    assert not peer_verdicts(frame, 0.10)["straggler"].any()
    assert peer_verdicts(frame, 0.05)["straggler"].tolist() == [False, False, True]
    with pytest.raises(ValueError, match="fraction in"):
        peer_verdicts(frame, 5.0)


def test_a_healthy_fleet_says_so() -> None:
    found = health(peer_verdicts(rows({"a": 100.0, "b": 99.0})), "r1")
    assert found.headline == "2 of 2 devices within 5 % of their model's median; no stragglers."

"""The history keeps each run's validation cases; a quick audit finds the last one of the same
host and software, and no other."""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path
from typing import Any

from tasks.history import check_history, last_validation, record_validation

T0 = dt.datetime(2026, 11, 2, 6, 0, tzinfo=dt.UTC)
SOFTWARE = "jax 0.10.2; jaxlib 0.10.2; cpu"


def case(name: str, status: str = "ok", kind: str = "cpu") -> dict[str, Any]:
    return {
        "case": name,
        "phase": "decode",
        "device_kind": kind,
        "status": status,
        "ratio": 1.1 if status == "ok" else None,
        "xla_bytes": math.nan,  # written as null
    }


def test_the_last_validation_of_the_same_host_and_software_is_found(tmp_path: Path) -> None:
    history = str(tmp_path / "history")
    record_validation(history, "r1", "h1", SOFTWARE, [case("old")], T0)
    record_validation(history, "r2", "h1", SOFTWARE, [case("new")], T0 + dt.timedelta(days=7))
    record_validation(history, "r3", "h2", SOFTWARE, [case("other host")], T0 + dt.timedelta(8))
    record_validation(history, "r4", "h1", "jax 0.11", [case("new jax")], T0 + dt.timedelta(9))

    found = last_validation(history, "h1", SOFTWARE, {"cpu"})

    assert found is not None
    assert (found.run_id, found.recorded_at) == ("r2", T0 + dt.timedelta(days=7))
    assert found.records == [{**case("new"), "xla_bytes": None}]
    assert check_history(history) == []  # the folder is read (and healed) like the others


def test_nothing_to_reuse_for_new_software_a_new_device_or_cases_that_never_ran(
    tmp_path: Path,
) -> None:
    history = str(tmp_path / "history")
    assert last_validation(history, "h1", SOFTWARE, {"cpu"}) is None  # no history yet
    record_validation(history, "r1", "h1", SOFTWARE, [case("waived", "waived")], T0)
    record_validation(history, "r2", "h1", SOFTWARE, [case("cpu only")], T0)
    assert last_validation(history, "h1", "jax 0.11", {"cpu"}) is None
    assert last_validation(history, "h1", SOFTWARE, {"cpu", "NVIDIA H100"}) is None
    found = last_validation(history, "h1", SOFTWARE, {"cpu"})
    assert found is not None and found.run_id == "r2"  # r1 ran no case


def test_a_run_without_cases_records_nothing(tmp_path: Path) -> None:
    assert record_validation(str(tmp_path), "r1", "h1", SOFTWARE, [], T0) is None
    assert not (tmp_path / "validation").exists()

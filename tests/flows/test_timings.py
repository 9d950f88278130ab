"""Each stage's seconds: laps of a stopwatch, progress lines that end with their stage's time,
and the ``timings`` every ``--json`` output carries (objects: a last key; row lists: a line on
standard error, the rows unchanged)."""

from __future__ import annotations

import json

import pytest

from flows.cli_common import print_json
from flows.timings import Stopwatch, TimedLines


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_laps_are_the_time_since_the_last_lap_and_add_up_per_stage() -> None:
    clock = FakeClock()
    watch = Stopwatch(started=90.0, clock=clock)
    assert watch.lap("start-up") == 10.0
    clock.now = 100.25
    watch.lap("load")
    clock.now = 101.0
    watch.lap("load")
    assert watch.laps == {"start-up": 10.0, "load": 1.0}
    assert watch.timings() == {"start_up_s": 10.0, "load_s": 1.0}


def test_a_progress_line_is_written_when_the_next_begins_with_its_seconds() -> None:
    clock = FakeClock()
    written: list[str] = []
    lines = TimedLines("starting", written.append, started=99.0, clock=clock)
    lines.next("probing")
    clock.now = 102.5
    lines.next("ranking")
    assert written == ["starting  1.0 s", "probing  2.5 s"]
    lines.close()
    lines.close()
    assert written[-1] == "ranking  0.0 s" and len(written) == 3


def test_an_object_carries_its_timings_last_and_rows_stay_a_list(
    capsys: pytest.CaptureFixture[str],
) -> None:
    print_json({"step_time_s": float("nan"), "bound": "memory"}, timings={"load_s": 0.5})
    out = capsys.readouterr()
    assert list(json.loads(out.out)) == ["step_time_s", "bound", "timings"]
    assert json.loads(out.out)["timings"] == {"load_s": 0.5} and out.err == ""

    print_json([{"rank": 1}], timings={"rank_s": 0.25})
    out = capsys.readouterr()
    assert json.loads(out.out) == [{"rank": 1}]
    assert json.loads(out.err) == {"timings": {"rank_s": 0.25}}

"""Where a command's seconds go: each stage's wall time, in the order the stages ran.

A user who waits wants to see what for: the progress lines of an audit end with each stage's
seconds, every ``--json`` output carries a ``timings`` object, and the audit's PDF lists the
stages on its method page. One :class:`Stopwatch` per command or flow run; ``lap`` closes the
stage that just ended. :data:`STARTED` is when memwall's first module was imported (the
interpreter's own start, some tens of milliseconds, is before it), so the first stage of a
command run from the shell includes its imports.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

STARTED = time.perf_counter()

Clock = Callable[[], float]


class Stopwatch:
    """Seconds per stage: each ``lap(stage)`` is the time since the previous lap (or since
    ``started``); a stage lapped twice adds up."""

    def __init__(self, started: float | None = None, clock: Clock = time.perf_counter) -> None:
        self._clock = clock
        self._last = clock() if started is None else started
        self.laps: dict[str, float] = {}

    def lap(self, stage: str) -> float:
        """Close ``stage`` now; returns its seconds."""
        now = self._clock()
        seconds = now - self._last
        self._last = now
        self.laps[stage] = self.laps.get(stage, 0.0) + seconds
        return seconds

    def timings(self) -> dict[str, float]:
        """The laps as a ``--json`` output's ``timings`` object: ``<stage>_s``, in
        milliseconds' precision, in the order the stages ran."""
        return as_json(self.laps)


def as_json(laps: Mapping[str, float]) -> dict[str, float]:
    """``{"load": 0.21234}`` as ``{"load_s": 0.212}``: units in the name, stages in order."""
    return {f"{_key(stage)}_s": round(seconds, 3) for stage, seconds in laps.items()}


def _key(stage: str) -> str:
    return stage.replace(" ", "_").replace("-", "_")


class TimedLines:
    """Progress lines that end with their stage's seconds: each line is written when the
    next begins (or at ``close``), with the time between. ``first`` names what runs before
    the first message arrives."""

    def __init__(
        self,
        first: str,
        write: Callable[[str], None],
        started: float | None = None,
        clock: Clock = time.perf_counter,
    ) -> None:
        self._write = write
        self._watch = Stopwatch(started, clock)
        self._current: str | None = first

    def next(self, message: str) -> None:
        """``message`` begins: the line before it ends."""
        self.close()
        self._current = message

    def close(self) -> None:
        """Write the line still open, if any."""
        if self._current is None:
            return
        line, self._current = self._current, None
        self._write(f"{line}  {self._watch.lap(line):.1f} s")

"""A recorded measurements file replayed instead of probing: memwall's one fake hardware.

The fleet's load test runs fifty "hosts" on one machine. Fifty probers there would measure
each other for an hour, and what is under test is the fleet's machinery (queues, workers,
fan-out, time-outs, report, history), not the hardware. So a host whose worker sets
``$MEMWALL_REPLAY_MEASUREMENTS`` to a measurements file (``memwall probe --out`` writes one)
answers ``probe-host`` with that file's rows instead of measuring: stamped with this run's id,
this host's name and the time of the replay, every figure as recorded. It takes the host's
probe lock as a probe does, and a file that cannot be read fails the run as a broken probe
would. Only ``probe-host`` reads the variable; ``memwall audit`` and ``memwall probe`` always
measure.
"""

from __future__ import annotations

import datetime as dt
import os
from typing import Final

import pandas as pd

from hardware_profiles.errors import MemwallError
from hardware_profiles.schema import MEASUREMENTS
from tasks.storage import read_parquet

REPLAY_ENV: Final = "MEMWALL_REPLAY_MEASUREMENTS"


class ReplayError(MemwallError):
    """A recording that cannot stand in for a host's measurements."""


def recording() -> str | None:
    """The measurements file this host replays, or None: it measures."""
    return os.environ.get(REPLAY_ENV) or None


def replayed(location: str, host: str, run_id: str, at: dt.datetime) -> pd.DataFrame:
    """The recording's rows as ``host``'s measurements of run ``run_id``, taken ``at``."""
    try:
        frame = read_parquet(location, MEASUREMENTS)
    except MemwallError as exc:
        raise ReplayError(f"cannot replay {REPLAY_ENV}: {exc}") from None
    if frame.empty:
        raise ReplayError(
            f"cannot replay {REPLAY_ENV}: {location} has no rows; record one with "
            "memwall probe --out FILE"
        )
    return frame.assign(run_id=run_id, host=host, measured_at=pd.Timestamp(at))

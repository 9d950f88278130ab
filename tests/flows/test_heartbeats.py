"""The heartbeat and the zombie-run automation agree with each other and with Prefect's own
limits, so the bound the README promises is the one the server keeps. (That the server keeps
it, with real kills, is tests/integration/test_crash_state.py.)"""

from __future__ import annotations

from prefect.flow_engine import MINIMUM_HEARTBEAT_INTERVAL
from prefect.settings import get_current_settings
from prefect.settings.models.flows import FlowsSettings

from flows.heartbeats import (
    CRASH_BOUND_S,
    HEARTBEAT_ENV,
    HEARTBEAT_FREQUENCY_S,
    SILENCE_WINDOW_S,
    heartbeat_environment,
)


def test_runs_get_the_heartbeat_rate_prefect_keeps() -> None:
    """Prefect raises a shorter interval to its floor, and refuses one below 30 s in its
    settings: the rate memwall sets must be the rate the runs send."""
    rate = int(heartbeat_environment()[HEARTBEAT_ENV])
    assert rate == HEARTBEAT_FREQUENCY_S >= MINIMUM_HEARTBEAT_INTERVAL
    assert FlowsSettings(heartbeat_frequency=rate).heartbeat_frequency == rate


def test_the_window_spares_late_heartbeats_and_the_bound_covers_the_evaluation() -> None:
    """90 s window / 30 s heartbeats: two heartbeats late or lost in a row do not crash a
    live run. Bound 120 s > 90 s window + 5 s between the server's proactive evaluations."""
    assert SILENCE_WINDOW_S >= 3 * HEARTBEAT_FREQUENCY_S
    granularity_s = get_current_settings().server.events.proactive_granularity.total_seconds()
    assert SILENCE_WINDOW_S + granularity_s < CRASH_BOUND_S

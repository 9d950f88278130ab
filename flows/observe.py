"""The audit's production step: read the serving telemetry where a Prometheus is given.

The efficiencies the fleet's own engines reach come first in the efficiency order. An
unreachable Prometheus does not stop a weekly audit: it says so in one line (run log and CLI)
and goes on with the other sources.
"""

from __future__ import annotations

import contextlib

import pandas as pd
from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.exceptions import MissingContextError
from prefect.logging import get_run_logger

from flows.progress import announce
from hardware_profiles.schema import Profiles
from tasks.analysis.findings import Findings
from tasks.analysis.supply.production import Observation
from tasks.observe import audit_predictions, observe
from tasks.prometheus import PrometheusUnreachable

AUDIT_WINDOW_DAYS = 7


@task(cache_policy=NO_CACHE)
def observe_task(profiles: Profiles, prometheus: str | None) -> Observation | None:
    """Production rows over the last week, or None without a Prometheus or when it cannot be
    reached (then one warning line)."""
    if not prometheus:
        return None
    announce(f"reading serving telemetry from Prometheus at {prometheus}")
    try:
        seen, _ = observe(
            {"": prometheus}, profiles.workloads, profiles.catalog, days=AUDIT_WINDOW_DAYS
        )
    except PrometheusUnreachable as exc:
        warning = f"{exc}: no production efficiency, the other sources stand"
        with contextlib.suppress(MissingContextError):
            get_run_logger().warning(warning)
        announce(f"warning: {warning}")
        return None
    return seen


@task(cache_policy=NO_CACHE)
def predictions_task(
    profiles: Profiles, observation: Observation | None, found: Findings
) -> pd.DataFrame | None:
    """The audit's prediction for each served workload at the shape production served (None
    without telemetry): recorded, so that the next audit checks memwall against it."""
    if observation is None or found.calibrated is None:
        return None
    return audit_predictions(
        observation.rows, profiles.workloads, profiles.catalog, found.calibrated
    )

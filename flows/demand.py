"""The audit's demand step: read it from Prometheus where asked, and record what was used.

An unreachable Prometheus does not stop a weekly audit: it goes on with the demand the
workloads file states and says so, in the run log, to the CLI, and in the PDF. A query that
answers wrongly (no series, several, a negative or NaN rate) is bad input and fails the run
before anything is probed, as ``memwall workloads sync`` would.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt

import pandas as pd
from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.exceptions import MissingContextError
from prefect.logging import get_run_logger

from flows.progress import announce
from hardware_profiles.schema import Profiles
from tasks.demand import demand_or_file
from tasks.history import record_demand


@task(cache_policy=NO_CACHE)
def demand_task(profiles: Profiles, prometheus: str | None) -> tuple[Profiles, pd.DataFrame, bool]:
    """The profiles with their demand synced from ``prometheus`` (where given and reachable),
    per workload where its demand came from, and whether Prometheus answered (or was not
    asked): an unreachable one is said once, here, for the production step too."""
    if prometheus:
        announce(f"reading demand from Prometheus at {prometheus}")
    workloads, provenance, warning = demand_or_file(
        profiles.workloads, prometheus, profiles.workloads_source
    )
    if warning:
        warning += "; no production efficiency from it either"
        with contextlib.suppress(MissingContextError):
            get_run_logger().warning(warning)
        announce(f"warning: {warning}")
    return dataclasses.replace(profiles, workloads=workloads), provenance, warning is None


@task(cache_policy=NO_CACHE)
def record_demand_task(
    history: str, run_id: str, demand: pd.DataFrame, recorded_at: dt.datetime
) -> str:
    return record_demand(history, run_id, demand, recorded_at)

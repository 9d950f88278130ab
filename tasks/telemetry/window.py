"""A window of a fleet's serving telemetry: every engine's and every GPU's samples from one
Prometheus, read together, as the long tables production efficiency is measured on."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import pandas as pd

from tasks.prometheus import DEFAULT_TIMEOUT_S
from tasks.telemetry.engines import read_engines
from tasks.telemetry.gpus import read_gpus
from tasks.telemetry.reader import AMD_SAMPLING_INTERVAL_US, DEFAULT_STEP_S, Reader


@dataclass
class Telemetry:
    """The long tables :func:`tasks.analysis.supply.production.observe_rows` reads, and the
    versions whose names answered."""

    engine: pd.DataFrame
    gpus: pd.DataFrame
    names_found: list[str] = field(default_factory=list)


def read_telemetry(
    url: str,
    end_s: float,
    days: float,
    step_s: float = DEFAULT_STEP_S,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    amd_sampling_interval_us: float = AMD_SAMPLING_INTERVAL_US,
) -> Telemetry:
    """Every engine's and every GPU's samples over the ``days`` before ``end_s`` from ``url``
    (``amd_sampling_interval_us``: the AMD exporter's profiler ``SamplingInterval``).
    Raises :class:`tasks.prometheus.PrometheusUnreachable` when nothing answers."""
    end_s = float(int(end_s // step_s) * step_s)
    reader = Reader(
        url, end_s - days * 86400, end_s, step_s, timeout_s, amd_sampling_interval_us * 1e-6
    )
    # The GPUs' queries beside the engines': Prometheus answers both at once.
    with ThreadPoolExecutor(max_workers=1) as pool:
        gpus_read = pool.submit(read_gpus, reader)
        engine, names = read_engines(reader)
        gpus, dcgm = gpus_read.result()
    return Telemetry(engine, gpus, [*dcgm, *names])

"""The audit report: everything the PDF shows, already computed (:mod:`tasks.analysis.findings`
gathers the analysis' part), with the run's context."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import pandas as pd

from hardware_profiles.schema import Accelerator
from tasks.analysis.findings import TOP_N, Findings
from tasks.analysis.supply.production import Observation
from tasks.history import PastValidation


@dataclass(frozen=True)
class AuditReport:
    """Everything the audit PDF shows, already computed."""

    run_id: str
    generated_at: dt.datetime
    host: str
    findings: Findings
    calibration_defaults: dict[str, float]
    sources: dict[str, str]
    measurements: pd.DataFrame | None = None
    accelerators: list[Accelerator] = field(default_factory=list)
    settings: dict[str, object] = field(default_factory=dict)
    software: str = ""
    top_n: int = TOP_N
    demand: pd.DataFrame | None = None  # per workload: where its demand came from (tasks.demand)
    # What the serving telemetry says (memwall observe's rows and what it set aside).
    production: Observation | None = None
    # What this audit predicts per served workload (tasks.analysis.supply.selfcheck), recorded.
    predictions: pd.DataFrame | None = None
    validation: list[dict[str, object]] = field(default_factory=list)  # memwall validate cases
    # Where the validation cases were reused from (a quick audit); None: run by this audit.
    validation_from: PastValidation | None = None
    # Seconds per stage until the report was made, in order (flows.timings.Stopwatch.laps).
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def title(self) -> str:
        return f"memwall audit of {self.host}"

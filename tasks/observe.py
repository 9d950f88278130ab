"""``memwall observe``'s work: read each pool's Prometheus, then measure production efficiency.

The prediction each row is compared with is memwall's own without production data (workload
probes where given, else the defaults fitted on published runs, else STREAM's), so a row's
``error`` is how far memwall's supply model is from what this fleet's engine does.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor

import pandas as pd

from tasks.analysis.supply.calibrated import efficiencies_for, overhead_for
from tasks.analysis.supply.calibration import calibrate
from tasks.analysis.supply.predict import PredictionError
from tasks.analysis.supply.predict import predict as predict_step
from tasks.analysis.supply.production import (
    MIN_CALIBRATION_SAMPLES,
    ROW_COLUMNS,
    Observation,
    PredictStep,
    ServedModel,
    Window,
    served_models,
)
from tasks.analysis.supply.production_rows import observe_rows
from tasks.analysis.supply.selfcheck import predictions, supply_spread_on
from tasks.analysis.workload.presets import preset
from tasks.analysis.workload.workload_model import WorkloadModelError, estimate
from tasks.prometheus import DEFAULT_TIMEOUT_S
from tasks.published_backtest import published_backtest
from tasks.telemetry.reader import AMD_SAMPLING_INTERVAL_US, DEFAULT_STEP_S
from tasks.telemetry.window import read_telemetry


def predictor(catalog: pd.DataFrame, calibrated: pd.DataFrame) -> PredictStep:
    """memwall's predicted decode step at a served batch and context, with the efficiency
    source it used; None where the model cannot be split over that many devices."""
    specs = catalog.set_index("accelerator_id", drop=False)

    def predicted(
        model: ServedModel, accelerator: str, devices: int, batch: float, context: float
    ) -> tuple[float, str] | None:
        arch = preset(model.model_preset)
        try:
            est = estimate(
                arch,
                phase="decode",
                batch=max(1, round(batch)),
                context=max(1, round(context)),
                weights=model.weights,
                kv=model.kv,
                activations=model.compute,
            )
            bandwidth, flops = efficiencies_for(calibrated, accelerator, "decode", model.compute)
            row = {str(k): v for k, v in specs.loc[accelerator].items()}
            overhead = overhead_for(calibrated, accelerator, "decode")
            result = predict_step(arch, est, row, bandwidth, flops, devices, overhead)
        except (PredictionError, WorkloadModelError):
            return None
        return result.step_time_s, f"bandwidth efficiency {bandwidth.source}"

    return predicted


def probe_ceilings(calibrated: pd.DataFrame) -> dict[str, tuple[float, str]]:
    """accelerator_id -> the fraction of spec bandwidth the STREAM probes reach, and whence."""
    return {
        str(r["accelerator_id"]): (
            float(r["bandwidth_efficiency"]),
            "STREAM triad measured"
            if r["bandwidth_from"] == "measured"
            else f"STREAM default {float(r['bandwidth_efficiency']):.2f}, no probe run",
        )
        for _, r in calibrated.iterrows()
    }


def observe(
    urls: Mapping[str, str],
    workloads: pd.DataFrame,
    catalog: pd.DataFrame,
    *,
    days: float = 7,
    end: dt.datetime | None = None,
    measurements: pd.DataFrame | None = None,
    history: pd.DataFrame | None = None,
    step_s: float = DEFAULT_STEP_S,
    min_samples: int = MIN_CALIBRATION_SAMPLES,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    amd_sampling_interval_us: float = AMD_SAMPLING_INTERVAL_US,
) -> tuple[Observation, list[str]]:
    """Rows over every pool (``urls``: pool -> Prometheus URL; the pool "" for one URL) and
    the names found per pool (``amd_sampling_interval_us``: the AMD exporter's profiler
    window). Raises PrometheusUnreachable naming the URL that did not answer."""
    end_s = (end or dt.datetime.now(dt.UTC)).timestamp()
    # Every pool's Prometheus is asked at once, and memwall calibrates while they answer.
    with ThreadPoolExecutor(max_workers=max(1, len(urls))) as asking:
        reads = [
            asking.submit(
                read_telemetry, url, end_s, days, step_s, timeout_s, amd_sampling_interval_us
            )
            for url in urls.values()
        ]
        calibrated = calibrate(
            catalog, measurements, fitted=published_backtest(catalog).fitted, history=history
        )
        telemetries = [read.result() for read in reads]
    frames, findings, names = [], [], []
    for pool, telemetry in zip(urls, telemetries, strict=True):
        window = Window(float(int(end_s // step_s) * step_s), days, step_s)
        seen = observe_rows(
            telemetry.engine,
            telemetry.gpus,
            catalog,
            workloads,
            window,
            probe_ceiling=probe_ceilings(calibrated),
            predicted_step=predictor(catalog, calibrated),
            min_samples=min_samples,
        )
        frames.append(seen.rows.assign(pool=pool or None))
        prefix = f"pool {pool}: " if pool else ""
        findings += [prefix + f for f in seen.findings]
        names += [prefix + n for n in telemetry.names_found]
    rows = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=ROW_COLUMNS)
    return Observation(rows, tuple(findings)), names


def audit_predictions(
    observed: pd.DataFrame,
    workloads: pd.DataFrame,
    catalog: pd.DataFrame,
    calibrated: pd.DataFrame,
) -> pd.DataFrame:
    """What an audit predicts for each served workload at the shape production served, with
    the efficiencies it projected with (``calibrated``: production's own first) and the band
    its projection gives the workload's supply on that model: the rows the next audit checks
    (:mod:`tasks.analysis.supply.selfcheck`)."""
    return predictions(
        observed,
        served_models(workloads),
        predictor(catalog, calibrated),
        supply_spread_on(calibrated),
    )

"""The production rows: one per workload and accelerator model, from the engines' and the
GPUs' series over a window (the maths, and what is left out and why:
:mod:`tasks.analysis.supply.production`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd

from hardware_profiles.catalog import match_device_kind
from hardware_profiles.schema import peak_column
from tasks.analysis.supply.production import (
    BYTES_MOVED,
    ENGINE_KV_DTYPES,
    MIN_CALIBRATION_SAMPLES,
    ROW_COLUMNS,
    WEAKER,
    Observation,
    PredictStep,
    ServedModel,
    Window,
    bandwidth_efficiency,
    log_spread,
    served_models,
    step_cost,
)
from tasks.analysis.supply.telemetry_checks import (
    missing_profiling,
    scrape_gaps,
    series_table,
    shared_gpus,
)
from tasks.analysis.workload.presets import preset


def _spec(catalog: pd.DataFrame, accelerator_id: str) -> Mapping[str, Any]:
    row = catalog.set_index("accelerator_id", drop=False).loc[accelerator_id]
    return {str(k): v for k, v in row.items()}


def _median(values: pd.Series) -> float:
    finite = values.to_numpy(dtype=float)
    finite = finite[np.isfinite(finite)]
    return float(np.median(finite)) if finite.size else float("nan")


def _mean(values: pd.Series) -> float:
    finite = values.to_numpy(dtype=float)
    finite = finite[np.isfinite(finite)]
    return float(finite.mean()) if finite.size else float("nan")


def observe_rows(
    engine: pd.DataFrame,
    gpus: pd.DataFrame,
    catalog: pd.DataFrame,
    workloads: pd.DataFrame,
    window: Window,
    *,
    probe_ceiling: Mapping[str, tuple[float, str]] | None = None,
    predicted_step: PredictStep | None = None,
    min_samples: int = MIN_CALIBRATION_SAMPLES,
) -> Observation:
    """One row per (served model, accelerator model) from the long tables ``engine``
    (:data:`ENGINE_COLUMNS`, one row per engine server and sample) and ``gpus``
    (:data:`GPU_COLUMNS`, one row per GPU series and sample).

    ``probe_ceiling``: accelerator_id -> (fraction of spec the STREAM probes reach, source).
    ``predicted_step``: (model, accelerator_id, gpus, batch, context) -> (seconds, efficiency
    source) memwall predicts without production data, or None where it cannot.
    """
    findings: list[str] = []
    gpus = gpus.copy()
    slices = series_table(gpus)
    slices = slices[slices["mig_instance"] != ""]
    for r in slices.itertuples():
        findings.append(
            f"GPU {r.uuid} on {r.host}, MIG instance {r.mig_instance} ({r.namespace}/{r.pod}): "
            "a MIG slice's share of the spec bandwidth is not in the catalog; left out"
        )
    gpus = gpus[~gpus["uuid"].isin(set(slices["uuid"]))]
    shared = shared_gpus(gpus)
    for uuid, pods in shared.items():
        host = str(gpus.loc[gpus["uuid"] == uuid, "host"].iloc[0])
        findings.append(
            f"GPU {uuid} on {host} is shared by {len(pods)} pods ({', '.join(pods)}): time-sliced "
            "or MPS, not attributable to one workload; left out"
        )
    missing = missing_profiling(gpus)
    if missing.any():
        for bad, count in gpus[missing].groupby("uuid").size().items():
            findings.append(
                f"GPU {bad}: {count} sample(s) with the profiling field at 0 while the GPU is "
                "busy (DCGM_FI_DEV_GPU_UTIL or AMD's gpu_gfx_activity > 0): missing (profiling "
                "not collected), not idle; left out"
            )
        gpus.loc[missing, "bandwidth_utilization"] = np.nan
    for (gpu, _), group in gpus.groupby(["uuid", "pod"], dropna=False):
        times = group["time_s"].to_numpy(dtype=float)
        findings += [g.describe() for g in scrape_gaps(times, window.step_s, f"GPU {gpu}")]
    for label, group in engine.groupby("server"):
        times = group["time_s"].to_numpy(dtype=float)
        findings += [g.describe() for g in scrape_gaps(times, window.step_s, str(label))]

    # Each pod's GPU samples, split once (a fleet's window is millions of rows).
    by_pod = {
        (str(namespace), str(pod)): frame
        for (namespace, pod), frame in gpus.groupby(["namespace", "pod"], sort=False)
        if str(pod)
    }
    served = served_models(workloads)
    rows: list[dict[str, Any]] = []
    groups: dict[tuple[str, str], list[tuple[pd.DataFrame, pd.DataFrame]]] = {}
    for name, samples in engine.groupby("server", sort=False):
        server = str(name)
        first = samples.iloc[0]
        pod_gpus = by_pod.get((str(first["namespace"] or ""), str(first["pod"] or "")))
        mine = None if pod_gpus is None else pod_gpus[~pod_gpus["uuid"].isin(list(shared))]
        if mine is None or mine.empty:
            reason = (
                "no GPU series carries its pod label" if pod_gpus is None else "its GPU is shared"
            )
            findings.append(f"server {server} ({first['model_name']}): {reason}; left out")
            continue
        kinds = sorted({str(kind) for kind in mine["device_kind"].unique()})
        accelerator = match_device_kind(catalog, kinds[0]) if len(kinds) == 1 else None
        if accelerator is None:
            findings.append(
                f"server {server}: accelerator {', '.join(kinds)} matches no catalog model "
                "(or several kinds in one pod); left out"
            )
            continue
        groups.setdefault((str(first["model_name"]), accelerator), []).append((samples, mine))

    for (model_name, accelerator), members in sorted(groups.items()):
        rows.append(
            _row(
                model_name,
                accelerator,
                members,
                catalog,
                served.get(model_name),
                window,
                probe_ceiling or {},
                predicted_step,
                min_samples,
            )
        )
    frame = pd.DataFrame(rows, columns=list(ROW_COLUMNS))
    return Observation(frame, tuple(findings))


def _row(
    model_name: str,
    accelerator: str,
    members: list[tuple[pd.DataFrame, pd.DataFrame]],
    catalog: pd.DataFrame,
    model: ServedModel | None,
    window: Window,
    probe_ceiling: Mapping[str, tuple[float, str]],
    predicted_step: PredictStep | None,
    min_samples: int,
) -> dict[str, Any]:
    spec = _spec(catalog, accelerator)
    bandwidth = float(spec["mem_bandwidth_bytes_per_s"])
    notes: list[str] = []
    samples = []
    # Bytes moved stand wherever any of the row's GPUs reports them: a busy time is never
    # mixed in with them.
    weak_only = all(g["weaker_signal"].eq(True).all() for _, g in members)
    for engine_samples, gpu_samples in members:
        n = int(gpu_samples["uuid"].nunique())
        measured = gpu_samples if weak_only else gpu_samples[~gpu_samples["weaker_signal"].eq(True)]
        util = measured.groupby("time_s")["bandwidth_utilization"].mean()
        s = engine_samples.set_index("time_s")[
            [
                "batch", "step_s", "context_tokens", "kv_cache_usage",
                "engine_bytes_per_s_per_gpu", "ttft_s",
            ]
        ].copy()  # fmt: skip
        s["gpus"] = n
        s["dram"] = util.reindex(s.index)
        samples.append(s)
    data = pd.concat(samples)
    gpus = int(sum(int(g["uuid"].nunique()) for _, g in members))
    per_replica = gpus / len(members)
    usable = data[(data["batch"] > 0) & (data["step_s"] > 0) & (data["context_tokens"] > 0)]
    names = sorted({str(s["engine"].iloc[0]) for s, _ in members})
    names += sorted({str(v) for _, g in members for v in g["bandwidth_source"].unique()})
    ttft = data["ttft_s"].to_numpy(dtype=float)
    ttft = ttft[np.isfinite(ttft) & (ttft > 0)]
    dram = _median(data["dram"])
    row: dict[str, Any] = {
        "workload_id": None if model is None else model.workload_id,
        "model_name": model_name,
        "accelerator_id": accelerator,
        "gpus": gpus,
        "batch": _mean(usable["batch"]),
        "context": _mean(usable["context_tokens"]),
        "measured_step_s": _median((usable if len(usable) else data)["step_s"]),
        "predicted_step_s": None,
        "error": None,
        "bandwidth_utilization": dram,
        "production_bandwidth_efficiency": None,
        "flops_utilization": None,
        "kv_cache_usage": _mean(usable["kv_cache_usage"]),
        "source": None,
        "pool": None,
        "production_bandwidth_spread": None,
        "achieved_bandwidth_bytes_per_s": None,
        "spec_bandwidth_bytes_per_s": bandwidth,
        "probe_ceiling_fraction": None,
        "byte_model_error": None,
        "engine_bandwidth_utilization": _median(data["engine_bytes_per_s_per_gpu"]) / bandwidth,
        "batch_that_fits": None,
        "bound": None,
        "samples": len(usable),
        "window": window.describe(),
        "names_found": "; ".join(names),
        "verdict": None,
        "replica_gpus": per_replica,
        "ttft_s": float(np.median(ttft)) if ttft.size else None,
        "ttft_spread": log_spread(ttft) if ttft.size else None,
        "bandwidth_signal": None if dram != dram else (WEAKER if weak_only else BYTES_MOVED),
    }
    if model is None:
        notes.append(
            f'no decode workload\'s demand_query selects model_name="{model_name}" with a '
            "model preset: its bytes per step are unknown, no efficiency computed"
        )
    elif data["batch"].isna().all():
        notes.append(
            f"{', '.join(sorted({str(s['engine'].iloc[0]) for s, _ in members}))} export no "
            "batch: the step and TTFT are shown, no efficiency computed"
        )
    elif len(usable) < min_samples:
        notes.append(
            f"{len(usable)} usable samples in the window, fewer than {min_samples}: "
            "does not calibrate"
        )
    else:
        model = _with_engine_kv(model, members, notes)
        _efficiencies(row, usable, model, spec, bandwidth, notes)
        _verdict(row, probe_ceiling.get(accelerator))
        if predicted_step is not None:
            predicted = predicted_step(
                model, accelerator, max(1, round(per_replica)), row["batch"], row["context"]
            )
            if predicted is not None:
                row["predicted_step_s"], source = predicted
                row["error"] = row["measured_step_s"] / row["predicted_step_s"] - 1
                notes.append(f"predicted with {source}")
    if row["bandwidth_signal"] == WEAKER:
        notes.append(
            "bandwidth utilization is gpu_umc_activity, the memory controller's busy time, not "
            "bytes moved: a weaker signal, not compared with memwall's bytes"
        )
        said = row["source"] or "no efficiency"
        row["source"] = f"{said}; bandwidth utilization {WEAKER}"
    row["notes"] = "; ".join(notes)
    return row


def _with_engine_kv(
    model: ServedModel, members: list[tuple[pd.DataFrame, pd.DataFrame]], notes: list[str]
) -> ServedModel:
    """The model with the KV dtype its engine states (``vllm:cache_config_info``), where that
    differs from the workload row's: the engine's is what a step reads. Said in a note."""
    stated = {str(d) for s, _ in members for d in s["kv_cache_dtype"].unique() if str(d)}
    if len(stated) != 1 or next(iter(stated)) not in ENGINE_KV_DTYPES:
        return model
    dtype = next(iter(stated))
    engine_kv = ENGINE_KV_DTYPES[dtype]
    row_kv = model.kv or preset(model.model_preset).dtype
    if (engine_kv or preset(model.model_preset).dtype) == row_kv:
        return model
    notes.append(
        f"the engine caches the KV in {dtype} where workload {model.workload_id} says {row_kv}: "
        "memwall's bytes use the engine's (set the workload's kv_precision)"
    )
    return replace(model, kv=engine_kv)


def _efficiencies(
    row: dict[str, Any],
    usable: pd.DataFrame,
    model: ServedModel,
    spec: Mapping[str, Any],
    bandwidth: float,
    notes: list[str],
) -> None:
    # Each distinct (batch, context) once: a fleet's window holds thousands of samples of a few
    # hundred shapes. A shape as one complex number sorts as one key (np.unique over rows
    # sorts a view of each row's bytes, which a fleet's window takes a second for).
    shapes = usable["batch"].to_numpy(dtype=float) + 1j * usable["context_tokens"].to_numpy(
        dtype=float
    )
    distinct, where = np.unique(shapes, return_inverse=True)
    costs = [step_cost(model, float(z.real), float(z.imag)) for z in distinct]
    step_bytes = np.array([c.bytes for c in costs])[where.ravel()]
    step_flops = np.array([c.flops for c in costs])[where.ravel()]
    seconds = usable["step_s"].to_numpy(dtype=float)
    n = usable["gpus"].to_numpy(dtype=float)
    efficiency = bandwidth_efficiency(step_bytes, seconds, n, bandwidth)
    value = float(np.median(efficiency))
    row["production_bandwidth_efficiency"] = value
    row["production_bandwidth_spread"] = log_spread(efficiency)
    row["achieved_bandwidth_bytes_per_s"] = value * bandwidth
    row["source"] = f"measured in production, {row['window']}, {row['gpus']} GPUs"
    peak = spec.get(peak_column(model.compute))
    if peak is not None and not pd.isna(peak):
        row["flops_utilization"] = float(np.median(step_flops / (seconds * n * float(peak))))
        memory_s = float(np.median(step_bytes / (n * bandwidth)))
        compute_s = float(np.median(step_flops / (n * float(peak))))
        row["bound"] = "bandwidth" if memory_s >= compute_s else "compute"
    dram = row["bandwidth_utilization"]
    if dram == dram and dram > 0 and row["bandwidth_signal"] == BYTES_MOVED:
        row["byte_model_error"] = value / dram - 1
        notes.append(
            f"memwall's bytes per step disagree with the exporter's measured bandwidth by "
            f"{100 * row['byte_model_error']:+.1f} %"
        )
    engine = row["engine_bandwidth_utilization"]
    if engine == engine and engine > 0:
        notes.append(
            f"the engine's own byte counter says {100 * engine:.0f} % of spec bandwidth "
            f"(memwall's bytes: {100 * value:.0f} %)"
        )
    kv = row["kv_cache_usage"]
    if kv == kv and kv > 0:
        row["batch_that_fits"] = row["batch"] / kv


def _verdict(row: dict[str, Any], ceiling: tuple[float, str] | None) -> None:
    value = float(row["production_bandwidth_efficiency"])
    verdict = f"{row['bound'] or 'bandwidth'}-bound: {100 * value:.0f} % of spec bandwidth"
    if ceiling is not None:
        row["probe_ceiling_fraction"] = value / ceiling[0]
        verdict += f", {100 * value / ceiling[0]:.0f} % of what the probes reach ({ceiling[1]})"
    if row["batch_that_fits"] is not None:
        verdict += (
            f"; the batch is {row['batch']:.0f} where {row['batch_that_fits']:.0f} would fit "
            f"(KV cache {100 * row['kv_cache_usage']:.0f} % full)"
        )
    row["verdict"] = verdict

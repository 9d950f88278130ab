"""Production efficiency: what the fleet's own serving engine reaches, from its telemetry.

A decode step of a replica of N devices, serving a batch of B sequences of mean context T,
moves ``bytes(B, T)`` and does ``flops(B, T)`` (the workload model,
:mod:`tasks.analysis.workload.workload_model`, at that batch and context). The engine measures
how long the step took (its inter-token latency, ``t``). So, at each sample of the window,

    production bandwidth efficiency  e_bw = bytes(B, T) / (t · N · BW_spec)
    FLOP utilization                 e_f  = flops(B, T) / (t · N · F_spec,precision)

and the window's figure is the median of the samples, with the standard deviation of their
natural log as its spread (the form every :class:`~tasks.analysis.supply.efficiency.Efficiency`
carries). The step overhead (launches, scheduling) is inside ``t``: like a workload probe's,
this efficiency holds its own overhead.

DCGM measures the same thing another way: ``DCGM_FI_PROF_DRAM_ACTIVE`` is the fraction of
cycles the memory interface moves data, i.e. achieved bandwidth over the device's peak. Where
memwall's byte count is right, ``e_bw`` and DCGM's figure agree; ``e_bw / dram_active - 1`` is
memwall's byte-model error on this workload, reported, never hidden.

The other exporters state the same ratio in their own units (:mod:`tasks.telemetry` reads
them): AMD's device-metrics-exporter as the bytes its profiler saw moved in one sampling window
over the card's maximum bandwidth (:func:`amd_bandwidth_utilization`), GKE's TPU device plugin
as a percentage. AMD's ``gpu_umc_activity`` is the memory controller's busy time, not bytes
moved: a weaker signal, shown as such (``bandwidth_signal``, the row's ``source``), never
compared with memwall's bytes and never the figure an efficiency rests on. Production
efficiency always rests on the engine's measured step, whatever the exporter.

Mean context from the engine's histograms: a request of prompt P and G generated tokens spends
G decode steps at a mean context ``P + G/2``; with the means of the two histograms, ``T ≈ mean(P)
+ mean(G)/2`` (exact when G does not vary with P). SGLang states the batch's summed sequence
lengths itself: ``T = decode_sum_seq_lens / num_running_reqs``; TensorRT-LLM counts the prompt
and generated tokens of finished requests, whose rates over the rate of finished requests are
the same two means. Time to first token (TTFT) is each engine's histogram's mean per sample;
the row carries its median over the window and the spread of its logarithm.

Telemetry that cannot stand for one workload is reported and left out (issue #24, item 6):

- a GPU several pods share (time-slicing, MPS) is not attributable to any of them; a MIG
  slice (a series with dcgm-exporter's ``GPU_I_ID``) is attributable but its share of the
  spec bandwidth is not in the catalog, so it is reported and left out too;
- a profiling field at 0 while ``DCGM_FI_DEV_GPU_UTIL`` (AMD: ``gpu_gfx_activity``) is above
  0 is a field not collected (profiling off, another profiler holding the counters), not an
  idle memory: missing;
- a scrape gap is reported, never filled (no interpolation: the samples present are used);
- a window with fewer than :data:`MIN_CALIBRATION_SAMPLES` usable samples does not calibrate.

Hand-worked check (``tests/analysis/supply/test_production.py``): one H100 SXM (3.35 TB/s), a
step of 1.675 GB measured at 1 ms achieves 1.675 TB/s, an efficiency of 0.5.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any, Final, TypeVar

import numpy as np
import pandas as pd

from hardware_profiles.catalog import match_device_kind
from hardware_profiles.errors import MemwallError
from hardware_profiles.schema import peak_column
from tasks.analysis.supply.efficiency import Efficiency
from tasks.analysis.supply.telemetry_checks import (
    missing_profiling,
    scrape_gaps,
    series_table,
    shared_gpus,
)
from tasks.analysis.workload.presets import preset
from tasks.analysis.workload.workload_model import estimate

# A day of 5-minute samples: fewer and the spread over the window says little.
MIN_CALIBRATION_SAMPLES: Final = 288
# What the JSON rows of `memwall observe` hold, in order (the list, then the extras).
ROW_COLUMNS: Final = (
    "workload_id", "model_name", "accelerator_id", "gpus", "batch", "context",
    "measured_step_s", "predicted_step_s", "error", "bandwidth_utilization",
    "production_bandwidth_efficiency", "flops_utilization", "kv_cache_usage", "source", "notes",
    "pool", "production_bandwidth_spread", "achieved_bandwidth_bytes_per_s",
    "spec_bandwidth_bytes_per_s", "probe_ceiling_fraction", "byte_model_error",
    "engine_bandwidth_utilization", "batch_that_fits", "bound", "samples", "window",
    "names_found", "verdict", "replica_gpus", "ttft_s", "ttft_spread", "bandwidth_signal",
)  # fmt: skip
ENGINE_COLUMNS: Final = (
    "server", "model_name", "namespace", "pod", "host", "engine", "time_s", "batch", "step_s",
    "context_tokens", "kv_cache_usage", "engine_bytes_per_s_per_gpu", "kv_cache_dtype", "ttft_s",
)  # fmt: skip
# vLLM's --kv-cache-dtype as its cache_config_info states it -> memwall's precision; "auto"
# is the model's own dtype (None: the workload model's default).
ENGINE_KV_DTYPES: Final = {"auto": None, "fp8": "fp8", "fp8_e4m3": "fp8", "fp8_e5m2": "fp8"}
GPU_COLUMNS: Final = (
    "uuid", "gpu", "host", "device_kind", "namespace", "pod", "time_s",
    "bandwidth_utilization", "gpu_util", "bandwidth_source", "mig_instance", "weaker_signal",
)  # fmt: skip


Number = TypeVar("Number", float, np.ndarray)


class ProductionError(MemwallError):
    """Telemetry that cannot be read as a workload's production figures."""


@dataclass(frozen=True)
class StepCost:
    """Bytes moved and FLOPs done by one decode step of a whole replica."""

    bytes: float
    flops: float


@dataclass(frozen=True)
class ServedModel:
    """How a workload row says its model is served: the preset and its precisions."""

    workload_id: str
    model_preset: str
    weights: str
    kv: str | None
    compute: str


@lru_cache(maxsize=65536)
def _integer_step(model: ServedModel, batch: int, context: int) -> StepCost:
    e = estimate(
        preset(model.model_preset),
        phase="decode",
        batch=batch,
        context=context,
        weights=model.weights,
        kv=model.kv,
        activations=model.compute,
    )
    return StepCost(e.bytes_per_unit * batch, e.flops_per_unit * batch)


def step_cost(model: ServedModel, batch: float, context: float) -> StepCost:
    """One replica's decode step at a mean ``batch`` and ``context``: the workload model at the
    integer batches either side, interpolated linearly (bytes and FLOPs are linear in the
    batch but for an MoE's experts touched), at the context rounded to 16 tokens (a cache key;
    the KV term it shifts is under 0.5 % at 2,000 tokens)."""
    if batch <= 0 or context <= 0:
        raise ProductionError(f"batch and context must be > 0, got {batch:g} and {context:g}")
    tokens = max(16, round(context / 16.0) * 16)
    low = max(1, math.floor(batch))
    high = max(low, math.ceil(batch))
    a, b = _integer_step(model, low, tokens), _integer_step(model, high, tokens)
    w = 0.0 if high == low else (batch - low) / (high - low)
    if batch < 1:  # below one sequence: scale the batch-1 step's per-sequence share down
        return StepCost(a.bytes, a.flops * batch)
    return StepCost(a.bytes + w * (b.bytes - a.bytes), a.flops + w * (b.flops - a.flops))


def bandwidth_efficiency(
    step_bytes: Number, step_s: Number, gpus: Number, bandwidth_bytes_per_s: float
) -> Number:
    """``step_bytes / (step_s · gpus · bandwidth)``: 1.675e9 B in 1 ms on one 3.35e12 B/s
    device is 1.675e12 / 3.35e12 = 0.5."""
    efficiency: Number = step_bytes / (step_s * gpus * bandwidth_bytes_per_s)
    return efficiency


def log_spread(values: np.ndarray) -> float:
    """Standard deviation of ln(values): 0.1 is about ±10 %."""
    values = values[np.isfinite(values) & (values > 0)]
    return float(np.std(np.log(values))) if values.size > 1 else 0.0


# --- the rows --------------------------------------------------------------------------------


def served_models(workloads: pd.DataFrame) -> dict[str, ServedModel]:
    """Served model name (the engines' ``model_name`` label) -> the decode workload serving it:
    the ``model_name="..."`` its demand_query selects, for rows made from a model preset."""
    out: dict[str, ServedModel] = {}
    if "demand_query" not in workloads or "model_preset" not in workloads:
        return out
    for _, row in workloads.iterrows():
        query, name = row.get("demand_query"), row.get("model_preset")
        if row["phase"] != "decode" or not isinstance(query, str) or not isinstance(name, str):
            continue
        served = served_name(query)
        if served is None:
            continue
        weights = row.get("weight_precision")
        kv = row.get("kv_precision")
        out[served] = ServedModel(
            str(row["workload_id"]),
            name,
            str(weights) if isinstance(weights, str) else str(row["precision"]),
            str(kv) if isinstance(kv, str) else None,
            str(row["precision"]),
        )
    return out


def served_name(query: str) -> str | None:
    """The value of the first ``model_name="..."`` selector in a PromQL query."""
    marker = 'model_name="'
    start = query.find(marker)
    if start < 0:
        return None
    end = query.find('"', start + len(marker))
    return None if end < 0 else query[start + len(marker) : end]


def row_line(verdict: Any, notes: Any, ttft_s: Any, ttft_spread: Any) -> str:
    """What a row says after its name, in one line: its verdict (its notes where it calibrates
    nothing), then its time to first token where the engine exports one. Missing values may
    be None or NaN (a frame's)."""
    said = verdict if isinstance(verdict, str) else notes if isinstance(notes, str) else ""
    if isinstance(ttft_s, float) and math.isfinite(ttft_s):
        said += f"{'; ' if said else ''}time to first token {describe_ttft(ttft_s, ttft_spread)}"
    return said


def describe_ttft(value: Any, spread: Any) -> str:
    """A row's time to first token as printed: the median in ms, ± the spread of its logarithm
    as a percentage (0.1 is about ±10 %); "–" where the engine exported none."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{1e3 * float(value):.0f} ms ±{100 * float(spread or 0):.0f} %"


@dataclass(frozen=True)
class Window:
    """The window observed: its end, its length in days, and the query step."""

    end_s: float
    days: float
    step_s: float

    def describe(self) -> str:
        end = pd.Timestamp(self.end_s, unit="s", tz="UTC")
        days = "1 day" if self.days == 1 else f"{self.days:g} days"
        return f"{days} to {end:%Y-%m-%d %H:%M} UTC"


@dataclass(frozen=True)
class Observation:
    """What ``memwall observe`` reports: one row per served model and accelerator model, and
    the telemetry it set aside, each as one line."""

    rows: pd.DataFrame
    findings: tuple[str, ...]

    def production_efficiencies(self) -> dict[tuple[str, str], Efficiency]:
        """(accelerator_id, "decode") -> (efficiency, spread, source) over the calibrated rows:
        their GPU-weighted median, the source naming the window and the GPUs."""
        out: dict[tuple[str, str], Efficiency] = {}
        usable = self.rows[self.rows["production_bandwidth_efficiency"].notna()]
        for accelerator, group in usable.groupby("accelerator_id"):
            weights = group["gpus"].to_numpy(dtype=float)
            values = group["production_bandwidth_efficiency"].to_numpy(dtype=float)
            order = np.argsort(values)
            cumulative = np.cumsum(weights[order])
            median = float(values[order][np.searchsorted(cumulative, cumulative[-1] / 2)])
            spread = float(
                np.hypot(
                    np.average(group["production_bandwidth_spread"], weights=weights),
                    log_spread(values),
                )
            )
            gpus = int(weights.sum())
            window = str(group["window"].iloc[0])
            out[(str(accelerator), "decode")] = Efficiency(
                median, f"measured in production, {window}, {gpus} GPUs", spread
            )
        return out

    def workload_efficiencies(self, workload_id: str) -> dict[tuple[str, str], Efficiency]:
        """(accelerator_id, "decode") -> what production measured for ``workload_id`` alone on
        that model (the row with the most GPUs where several pools serve it): its own figure,
        where :meth:`production_efficiencies` pools every workload served on the model."""
        out: dict[tuple[str, str], Efficiency] = {}
        mine = self.rows[
            (self.rows["workload_id"] == workload_id)
            & self.rows["production_bandwidth_efficiency"].notna()
        ].sort_values("gpus", ascending=False, kind="stable")
        for r in mine.to_dict("records"):
            out.setdefault(
                (str(r["accelerator_id"]), "decode"),
                Efficiency(
                    float(r["production_bandwidth_efficiency"]),
                    str(r["source"]),
                    float(r["production_bandwidth_spread"]),
                ),
            )
        return out


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


# What a row's bandwidth utilization measures: bytes moved over the peak (DCGM's DRAM_ACTIVE,
# AMD's profiler bytes, the TPU's HBM bandwidth utilization), or only a busy time.
BYTES_MOVED: Final = "bytes moved over peak"
WEAKER: Final = "from gpu_umc_activity (memory controller busy time): a weaker signal"

PredictStep = Callable[[ServedModel, str, int, float, float], "tuple[float, str] | None"]


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

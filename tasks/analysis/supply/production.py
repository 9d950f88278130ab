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

The other exporters state the same ratio in their own units (:mod:`tasks.telemetry.gpus` reads
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
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Final, TypeVar

import numpy as np
import pandas as pd

from hardware_profiles.errors import MemwallError
from tasks.analysis.supply.efficiency import Efficiency
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


# What a row's bandwidth utilization measures: bytes moved over the peak (DCGM's DRAM_ACTIVE,
# AMD's profiler bytes, the TPU's HBM bandwidth utilization), or only a busy time.
BYTES_MOVED: Final = "bytes moved over peak"
WEAKER: Final = "from gpu_umc_activity (memory controller busy time): a weaker signal"

PredictStep = Callable[[ServedModel, str, int, float, float], "tuple[float, str] | None"]

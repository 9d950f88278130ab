"""The one vocabulary every stage speaks: tables, their columns, units and allowed values.

Each table is declared once, as a record whose fields carry their Arrow type and checks
(:mod:`hardware_profiles.columns` says how, and derives the rest from it).

Units live in column names (``_bytes``, ``_bytes_per_s``, ``_flops``, ``_flops_per_s``, ``_s``).
Decimal and binary prefixes are kept apart by name: ``GB`` is 10**9, ``GiB`` is 2**30.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Final

import pandas as pd
import pyarrow as pa

from hardware_profiles.columns import (
    Check,
    Table,
    column,
    device_bandwidth,
    device_flops,
    device_memory,
    fraction,
    growth,
    layout_text,
    link_bandwidth,
    non_negative,
    not_blank,
    one_of,
    positive,
)
from hardware_profiles.layouts import RECOMPUTE_POLICIES

# Decimal (vendor spec sheets) and binary (memory allocators) prefixes, never mixed.
KB: Final = 10**3
MB: Final = 10**6
GB: Final = 10**9
TB: Final = 10**12
KiB: Final = 2**10
MiB: Final = 2**20
GiB: Final = 2**30
TERA: Final = 10**12

PHASES: Final = ("training", "prefill", "decode", "other")
PRECISIONS: Final = ("fp32", "tf32", "bf16", "fp16", "fp8", "fp6", "fp4", "int8", "int4")
# Precisions a catalog states a dense peak for. Every compute precision has its own: int4
# compute runs only where the device has int4 units (never priced at the int8 peak), fp8/fp6/
# fp4 only where it has those. Weight-only quantization (int4 weights, bf16 compute) needs
# nothing but the compute precision's peak: the workload's ``precision`` is its compute.
PEAK_PRECISIONS: Final = ("fp32", "tf32", "bf16", "fp16", "fp8", "fp6", "fp4", "int8", "int4")
WORK_UNITS: Final = ("token", "step", "request", "sample")
MEASUREMENT_UNITS: Final = ("bytes_per_s", "flops_per_s")
STATUSES: Final = ("ok", "unstable", "waived", "failed")
# How firm a catalog row's figures are: on sale, announced by the vendor, or leaked/estimated.
CATALOG_STATUSES: Final = ("shipping", "announced", "preliminary")


def peak_column(precision: str) -> str:
    """Catalog column holding the dense peak a workload computing at ``precision`` runs
    against (null where the device lacks those units)."""
    if precision not in PEAK_PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; valid: {', '.join(PRECISIONS)}")
    return f"peak_flops_per_s_{precision}"


# --- tables ------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class CatalogRecord:
    """One accelerator model, per device as JAX sees it; FLOP figures are dense."""

    accelerator_id: str = column(pa.string(), check=not_blank)
    vendor: str = column(pa.string())
    name: str = column(pa.string())
    device_kind_patterns: list[str] = column(
        pa.list_(pa.string()), doc="case-insensitive substrings of JAX's/NVML's device name"
    )
    memory_bytes: int = column(pa.int64(), check=device_memory)
    mem_bandwidth_bytes_per_s: float = column(pa.float64(), check=device_bandwidth)
    peak_flops_per_s_fp32: float | None = column(pa.float64(), nullable=True, check=device_flops)
    peak_flops_per_s_tf32: float | None = column(pa.float64(), nullable=True, check=device_flops)
    peak_flops_per_s_bf16: float | None = column(pa.float64(), nullable=True, check=device_flops)
    peak_flops_per_s_fp16: float | None = column(pa.float64(), nullable=True, check=device_flops)
    peak_flops_per_s_fp8: float | None = column(pa.float64(), nullable=True, check=device_flops)
    peak_flops_per_s_int8: float | None = column(pa.float64(), nullable=True, check=device_flops)
    peak_flops_per_s_fp6: float | None = column(
        pa.float64(), required=False, nullable=True, check=device_flops
    )
    peak_flops_per_s_fp4: float | None = column(
        pa.float64(), required=False, nullable=True, check=device_flops
    )
    peak_flops_per_s_int4: float | None = column(
        pa.float64(), required=False, nullable=True, check=device_flops, doc="int4 tensor units"
    )
    release_date: dt.date | None = column(pa.date32(), nullable=True)
    list_price_usd: float | None = column(pa.float64(), nullable=True, check=positive)
    source: str = column(pa.string())
    tdp_watts: float | None = column(pa.float64(), required=False, nullable=True, check=positive)
    interconnect_bandwidth_bytes_per_s: float | None = column(
        pa.float64(),
        required=False,
        nullable=True,
        check=link_bandwidth,
        doc="scale-up link (NVLink, ICI, Infinity Fabric) per device, per direction",
    )
    status: str | None = column(
        pa.string(), required=False, nullable=True, check=one_of(CATALOG_STATUSES)
    )
    source_url: str | None = column(pa.string(), required=False, nullable=True)
    checked_on: dt.date | None = column(pa.date32(), required=False, nullable=True)
    note: str | None = column(pa.string(), required=False, nullable=True)


@dataclass(frozen=True, kw_only=True)
class RoadmapRecord:
    """A planned fleet change; a pool's fleet at a date is the running sum of count_delta."""

    pool: str = column(pa.string(), check=not_blank)
    effective_date: dt.date = column(pa.date32())
    accelerator_id: str = column(pa.string(), check=not_blank)
    count_delta: int = column(pa.int64(), doc="+ buy, - retire")
    unit_cost_usd: float | None = column(pa.float64(), nullable=True, check=non_negative)
    note: str | None = column(pa.string(), required=False, nullable=True)
    scenario: str | None = column(pa.string(), required=False, nullable=True)


@dataclass(frozen=True, kw_only=True)
class WorkloadRecord:
    """One workload: what one unit of work costs and how many units per second it needs."""

    workload_id: str = column(pa.string(), check=not_blank)
    name: str = column(pa.string())
    owner: str = column(pa.string())
    pool: str = column(pa.string(), check=not_blank)
    phase: str = column(pa.string(), check=one_of(PHASES))
    precision: str = column(pa.string(), check=one_of(PRECISIONS))
    unit: str = column(pa.string(), check=one_of(WORK_UNITS))
    flops_per_unit: float = column(pa.float64(), check=positive)
    bytes_per_unit: float = column(pa.float64(), check=positive)
    memory_footprint_bytes: float = column(pa.float64(), check=non_negative)
    demand_units_per_s: float = column(pa.float64(), check=positive)
    demand_growth_per_year: float = column(pa.float64(), check=growth)
    pool_share: float | None = column(
        pa.float64(),
        required=False,
        nullable=True,
        check=fraction,
        doc="fraction of the pool; null means proportional to today's FLOP demand",
    )
    model_preset: str | None = column(pa.string(), required=False, nullable=True)
    batch: int | None = column(pa.int64(), required=False, nullable=True, check=positive)
    context_tokens: int | None = column(pa.int64(), required=False, nullable=True, check=positive)
    layers: int | None = column(
        pa.int64(),
        required=False,
        nullable=True,
        check=positive,
        doc="decoder layers of the model, where known: decode pays the step overhead per layer",
    )
    weight_precision: str | None = column(
        pa.string(),
        required=False,
        nullable=True,
        check=one_of(PRECISIONS),
        doc="precision the weights are stored in, where the workload model produced the row",
    )
    kv_precision: str | None = column(
        pa.string(),
        required=False,
        nullable=True,
        check=one_of(PRECISIONS),
        doc="precision of the KV cache, where the workload model produced the row",
    )
    demand_growth_sigma: float | None = column(
        pa.float64(),
        required=False,
        nullable=True,
        check=non_negative,
        doc="standard deviation of demand_growth_per_year (a fit's spread), for date bands",
    )
    demand_query: str | None = column(
        pa.string(),
        required=False,
        nullable=True,
        doc="PromQL returning this workload's units per second, for memwall workloads sync",
    )
    tpot_slo_s: float | None = column(
        pa.float64(), required=False, nullable=True, check=positive, doc="decode: per output token"
    )
    ttft_slo_s: float | None = column(
        pa.float64(), required=False, nullable=True, check=positive, doc="prefill: first token"
    )
    start_month: dt.date | None = column(
        pa.date32(), required=False, nullable=True, doc="no demand before this month"
    )
    max_devices_per_replica: int | None = column(
        pa.int64(), required=False, nullable=True, check=positive, doc="tensor-parallel cap"
    )
    layout: str | None = column(
        pa.string(),
        required=False,
        nullable=True,
        check=layout_text,
        doc="serving layout of a replica (tp=8, dp_attention=8,ep=8; null: the engine's "
        "default), or a training workload's layout (dp=64,tp=8,pp=16)",
    )
    prompt_tokens: int | None = column(
        pa.int64(),
        required=False,
        nullable=True,
        check=positive,
        doc="decode under load: prompt tokens of each arriving request",
    )
    output_tokens: int | None = column(
        pa.int64(),
        required=False,
        nullable=True,
        check=positive,
        doc="decode under load: output tokens of each request",
    )
    engine: str | None = column(
        pa.string(),
        required=False,
        nullable=True,
        check=not_blank,
        doc="serving engine, NAME or NAME VERSION (SGLang 0.4.3, vLLM 0.10.1): its generation's "
        "fitted routed-expert share; null: a current engine",
    )
    global_batch_tokens: int | None = column(
        pa.int64(), required=False, nullable=True, check=positive, doc="training: tokens per step"
    )
    micro_batch: int | None = column(
        pa.int64(), required=False, nullable=True, check=positive, doc="training: sequences"
    )
    recompute: str | None = column(
        pa.string(),
        required=False,
        nullable=True,
        check=one_of(RECOMPUTE_POLICIES),
        doc="training: activation recompute policy",
    )
    zero_stage: int | None = column(
        pa.int64(),
        required=False,
        nullable=True,
        check=Check("must be 0, 1, 2 or 3", lambda s: s.isin([0, 1, 2, 3])),
        doc="training: ZeRO stage 0-3 (FSDP is 3)",
    )
    optimizer: str | None = column(
        pa.string(), required=False, nullable=True, doc="training: optimizer recipe, e.g. adam"
    )
    origin: str | None = column(
        pa.string(),
        required=False,
        nullable=True,
        doc="where the row came from: the Prometheus series memwall workloads discover read "
        "it off (null: written by hand or by workloads add)",
    )


@dataclass(frozen=True, kw_only=True)
class MeasurementRecord:
    """One probe result on one device (or on all of a host's devices at once)."""

    run_id: str = column(pa.string())
    measured_at: dt.datetime = column(pa.timestamp("us", tz="UTC"))
    host: str = column(pa.string())
    device_index: int = column(pa.int64(), doc="-1 for a probe over all devices")
    platform: str = column(pa.string())
    device_kind: str = column(pa.string())
    accelerator_id: str | None = column(pa.string(), nullable=True)
    probe: str = column(pa.string())
    dtype: str = column(pa.string())
    working_set_bytes: int = column(pa.int64(), check=non_negative)
    repetitions: int = column(pa.int64(), check=non_negative)
    best: float | None = column(pa.float64(), nullable=True, check=non_negative)
    median: float | None = column(pa.float64(), nullable=True, check=non_negative)
    p10: float | None = column(pa.float64(), nullable=True, check=non_negative)
    p90: float | None = column(pa.float64(), nullable=True, check=non_negative)
    cv: float | None = column(pa.float64(), nullable=True, check=non_negative)
    unit: str = column(pa.string(), check=one_of(MEASUREMENT_UNITS))
    spec: float | None = column(pa.float64(), nullable=True, check=positive)
    efficiency: float | None = column(pa.float64(), nullable=True, check=non_negative)
    status: str = column(pa.string(), check=one_of(STATUSES))
    detail: str = column(pa.string())
    software: str = column(pa.string())


CATALOG: Final = Table("catalog", CatalogRecord, unique=("accelerator_id",))
ROADMAP: Final = Table("roadmap", RoadmapRecord)
WORKLOADS: Final = Table(
    "workloads",
    WorkloadRecord,
    unique=("workload_id",),
    shares=(("pool_share", "pool", "workload_id"),),
)
MEASUREMENTS: Final = Table("measurements", MeasurementRecord)
TABLES: Final = {t.name: t for t in (CATALOG, ROADMAP, WORKLOADS, MEASUREMENTS)}


@dataclass(frozen=True)
class Accelerator:
    """One device as discovered on a host, with the catalog entry it matched (if any)."""

    host: str
    device_index: int
    platform: str
    device_kind: str
    memory_bytes: int | None
    accelerator_id: str | None
    note: str = ""


@dataclass(frozen=True, kw_only=True)
class RankingHistoryRecord:
    """One workload's place in one run's ranking, as the history keeps it (tasks/history.py)."""

    run_id: str = column(pa.string(), check=not_blank)
    recorded_at: dt.datetime = column(pa.timestamp("us", tz="UTC"))
    rank: int = column(pa.int64(), check=positive)
    workload_id: str = column(pa.string())
    name: str = column(pa.string())
    pool: str = column(pa.string())
    bound: str = column(pa.string())
    utilization_now: float = column(pa.float64())
    headroom_now: float = column(pa.float64())
    min_headroom: float | None = column(pa.float64(), required=False, nullable=True)
    starve_month: dt.date | None = column(pa.date32(), required=False, nullable=True)


RANKING_HISTORY: Final = Table("ranking history", RankingHistoryRecord)

# Where a run's demand figures came from: a Prometheus range query, or the workloads file.
DEMAND_SOURCES: Final = ("prometheus", "file")


@dataclass(frozen=True, kw_only=True)
class DemandHistoryRecord:
    """The demand one run projected for one workload, and where it came from
    (tasks/history.py), so the trend of demand sits beside the trend of the hardware."""

    run_id: str = column(pa.string(), check=not_blank)
    recorded_at: dt.datetime = column(pa.timestamp("us", tz="UTC"))
    workload_id: str = column(pa.string())
    name: str = column(pa.string())
    source: str = column(pa.string(), check=one_of(DEMAND_SOURCES))
    demand_units_per_s: float = column(pa.float64(), check=positive)
    demand_growth_per_year: float = column(pa.float64(), check=growth)
    demand_growth_sigma: float | None = column(pa.float64(), nullable=True, check=non_negative)
    query: str | None = column(pa.string(), nullable=True)
    window_start: dt.datetime | None = column(pa.timestamp("us", tz="UTC"), nullable=True)
    window_end: dt.datetime | None = column(pa.timestamp("us", tz="UTC"), nullable=True)
    detail: str = column(pa.string(), doc="where the figures came from, in words")


DEMAND_HISTORY: Final = Table("demand history", DemandHistoryRecord)


@dataclass(frozen=True, kw_only=True)
class ValidationHistoryRecord:
    """One case of a run's check of the workload model on its host (``memwall validate``'s
    record), as the history keeps it (tasks/history.py): a quick audit reuses the latest
    check of the same host and software instead of running the cases again."""

    run_id: str = column(pa.string(), check=not_blank)
    recorded_at: dt.datetime = column(pa.timestamp("us", tz="UTC"))
    host: str = column(pa.string())
    software: str = column(pa.string(), doc="jax, jaxlib, backend and driver versions")
    device_kind: str = column(pa.string())
    case: str = column(pa.string())
    record: str = column(pa.string(), doc="the case as memwall validate --json prints it")


VALIDATION_HISTORY: Final = Table("validation history", ValidationHistoryRecord)


@dataclass(frozen=True, kw_only=True)
class PredictionHistoryRecord:
    """What one run predicted for one served workload on one accelerator model, at the batch
    and context production served in the run's window, and what production measured there
    (tasks/history.py): the next run's measurement, set against this prediction, is memwall's
    own error on this fleet (``memwall history --accuracy``)."""

    run_id: str = column(pa.string(), check=not_blank)
    recorded_at: dt.datetime = column(pa.timestamp("us", tz="UTC"))
    workload_id: str = column(pa.string())
    model_name: str = column(pa.string(), doc="the engines' model_name label")
    accelerator_id: str = column(pa.string())
    gpus: int = column(pa.int64(), check=positive, doc="GPUs serving it in the window")
    replica_gpus: int = column(pa.int64(), check=positive)
    batch: float = column(pa.float64(), check=positive, doc="mean running sequences, as served")
    context_tokens: float = column(pa.float64(), check=positive, doc="mean context, as served")
    measured_step_s: float | None = column(
        pa.float64(), nullable=True, check=positive, doc="the window's median decode step"
    )
    window: str = column(pa.string(), doc="the telemetry window measured, in words")
    predicted_step_s: float | None = column(pa.float64(), nullable=True, check=positive)
    predicted_tokens_per_s: float | None = column(
        pa.float64(), nullable=True, check=positive, doc="all its replicas at that step"
    )
    step_p10_s: float | None = column(pa.float64(), nullable=True, check=positive)
    step_p90_s: float | None = column(pa.float64(), nullable=True, check=positive)
    supply_spread: float | None = column(
        pa.float64(), nullable=True, check=non_negative, doc="log spread of the P10-P90 band"
    )
    efficiency_source: str = column(pa.string(), doc="the efficiency the prediction used")


PREDICTION_HISTORY: Final = Table("prediction history", PredictionHistoryRecord)


@dataclass(frozen=True)
class Profiles:
    """Validated workloads, roadmap and catalog, with where each came from (for messages)."""

    workloads: pd.DataFrame
    roadmap: pd.DataFrame
    catalog: pd.DataFrame
    workloads_source: str
    roadmap_source: str
    catalog_source: str

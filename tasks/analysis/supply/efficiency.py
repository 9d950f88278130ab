"""Efficiency per accelerator model and phase, each with its source and its spread.

STREAM-style probes measure ceilings; real decode and prefill reach less of them. For each
model and phase memwall takes, in order:

0. what production measured on the user's own fleet: the serving engines' step times over a
   window, at the batch and context they served (``tasks.analysis.supply.production``, read by
   ``memwall observe`` and by an audit given ``--prometheus``), source
   ``measured in production, <window>, <n> GPUs``;
1. what a workload-shaped probe measured on that model: this run's rows, else the latest run
   in the history (``workload-decode`` gives decode's bandwidth efficiency, ``workload-prefill``
   prefill's compute efficiency);
2. a default fitted on published measured runs for that phase and the model's vendor (or on
   all vendors' runs where the vendor has too few), see ``tasks.analysis.supply.backtest``;
3. the STREAM-based calibration (triad and matmul probes, or the defaults 0.85 and 0.70).

Decode is fitted on bandwidth (per vendor) and prefill on compute, the ceilings that bind them;
decode's compute ceiling is fitted too (across vendors: large-batch decode runs far below the
GEMM peak), prefill's bandwidth and training's two keep the STREAM-based figures. With a fitted
efficiency comes the phase's fitted step overhead (``tasks.analysis.supply.predict``): the two were
fitted together and only mean something together. A measured efficiency carries none: the
probe's step time already holds its own.

Spread is the standard deviation of the efficiency's natural log: a measured one's CV (and
its variation across devices and cases), a fitted one's residual spread on the runs it was
fitted on, the STREAM-based one's RMS error on all published runs.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

import numpy as np
import pandas as pd

from tasks.analysis.supply.engine_generation import GENERATIONS, workload_generation
from tasks.analysis.workload.architecture import ARCHITECTURE_CLASSES

PHASE_CEILINGS: Final = ("decode", "prefill", "training")
# The ceiling each workload probe and each fitted default speaks for.
WORKLOAD_PROBES: Final = {"workload-decode": "decode", "workload-prefill": "prefill"}
FITTED_CEILING: Final = {"decode": "bandwidth", "prefill": "flops"}
_USABLE: Final = ("ok", "unstable")
# Architecture classes with their own band spread, then "all": a workload of no known preset.
SPREAD_CLASSES: Final = (*ARCHITECTURE_CLASSES, "all")


@dataclass(frozen=True)
class Efficiency:
    """A fraction of a spec ceiling a workload reaches, where that figure came from, and its
    spread: the standard deviation of its natural log (0.1 is about ±10 %)."""

    value: float
    source: str
    spread: float


@dataclass(frozen=True)
class Overhead:
    """Seconds a step costs beyond its bytes and FLOPs (per layer in decode and prefill:
    :mod:`tasks.analysis.workload.step_overhead`), and where that figure came from."""

    seconds: float
    source: str


NO_OVERHEAD: Final = Overhead(0.0, "none")
# The share of its dense peak a large GEMM reaches, per vendor, as measured in public results
# (the project's reference sanity bands: BF16 GEMM about 80 % on H100, 51 % on MI300X; AMD's
# own "Measuring Max-Achievable FLOPs" ROCm blog puts MI300X's achievable matrix FLOPs well
# under its peak too). A compute efficiency fitted on one vendor's runs is that vendor's share
# of its peak; carried to another vendor it is scaled by the ratio of their GEMM shares (a
# vendor not listed is taken as NVIDIA). Bandwidth efficiencies need no such ratio: HBM
# triads reach 85-90 % of spec on every vendor's GPUs (same reference).
GEMM_SHARE: Final = {"NVIDIA": 0.80, "AMD": 0.51}
GEMM_SHARE_SOURCE: Final = "vendor GEMM share of peak (H100 ~80 %, MI300X ~51 %)"


def gemm_ratio(vendor: str) -> float:
    """``vendor``'s GEMM share over NVIDIA's: what a compute efficiency fitted on NVIDIA's
    runs becomes on ``vendor``'s devices (1 for NVIDIA and vendors not listed)."""
    return GEMM_SHARE.get(vendor, GEMM_SHARE["NVIDIA"]) / GEMM_SHARE["NVIDIA"]


# Attention's FLOPs in prefill are not a GEMM of the weights: a fused attention kernel runs
# them at its own share of the peak. FlashAttention-3 (Shah et al. 2024, figures 5-6): causal
# forward at head dim 128 on H100 SXM5 reaches about 400-640 TFLOP/s in bf16 from 1k to 16k
# tokens, 40-65 % of the 989 TFLOP/s dense peak; FlashAttention-2 on A100 reaches 50-70 %
# (Dao 2023). Half the peak, with that range as its spread.
ATTENTION_EFFICIENCY: Final = Efficiency(
    0.5, "default (FlashAttention-2/3 causal forward: 40-70 % of the dense peak)", 0.25
)
# The routed experts' matmuls at the dense efficiencies: a workload of no MoE class, or of a
# class the published runs fit no efficiency for (supply.published_fit's class factor).
EXPERTS_AS_DENSE: Final = Efficiency(1.0, "as the dense matmuls (no class fit)", 0.0)
# Source of the experts' share where a measured efficiency stands (it was fitted with none).
_HELD: Final = "as the dense matmuls: held in the measured efficiency"
# Source of a phase's compute efficiency where STREAM's per-precision figures stand.
PER_PRECISION: Final = "per precision: matmul measured or default"
_NOT_WORD: Final = re.compile(r"[^0-9a-z]+")


@dataclass(frozen=True)
class FittedDefaults:
    """Efficiencies fitted on published runs: the binding ceiling's (:data:`FITTED_CEILING`)
    keyed by (phase, vendor), vendor None being the fit on every vendor's runs; the other
    ceiling's where fitted, keyed by (phase, ceiling); and each phase's step overhead.
    ``stream_spread`` is the STREAM defaults' RMS log error on all published runs (None
    without runs): the spread of an efficiency nothing better backs. ``class_spread`` is the
    backtest's leave-one-source-out RMS log error per architecture class (and ``"all"``):
    the spread a workload of that class takes where its efficiency is a fitted default, since
    it says how far such a prediction lands from a source the fit never saw."""

    efficiencies: Mapping[tuple[str, str | None], Efficiency] = field(default_factory=dict)
    stream_spread: float | None = None
    other_ceiling: Mapping[tuple[str, str], Efficiency] = field(default_factory=dict)
    overheads: Mapping[str, Overhead] = field(default_factory=dict)
    class_spread: Mapping[str, float] = field(default_factory=dict)
    # Decode's routed-expert matmuls per MoE architecture class: the share of the dense
    # efficiencies a grouped GEMM at few tokens per expert reaches (supply.published_fit).
    expert_matmuls: Mapping[str, Efficiency] = field(default_factory=dict)
    # r per (class, engine generation: :mod:`tasks.analysis.supply.engine_generation`) where
    # that generation's fit rows of the class come from enough sources; ``expert_matmuls``
    # holds each class's r fitted over every generation: the fallback.
    generation_experts: Mapping[tuple[str, str], Efficiency] = field(default_factory=dict)

    def lookup(self, phase: str, vendor: str, ceiling: str | None = None) -> Efficiency | None:
        """The fitted efficiency of ``phase``'s ``ceiling`` (its binding one by default) for
        ``vendor``, else for all vendors; None where nothing was fitted."""
        if ceiling is not None and ceiling != FITTED_CEILING.get(phase):
            return _carried(self.other_ceiling.get((phase, ceiling)), ceiling, vendor)
        own = self.efficiencies.get((phase, vendor))
        if own is not None:
            return own
        return _carried(self.efficiencies.get((phase, None)), FITTED_CEILING.get(phase), vendor)

    def overhead(self, phase: str) -> Overhead:
        return self.overheads.get(phase, NO_OVERHEAD)

    def experts(
        self, phase: str, architecture_class: str, generation: str | None = None
    ) -> Efficiency:
        """The routed experts' share of the dense efficiencies in ``phase`` for a model of
        ``architecture_class``: fitted for decode (few tokens per expert), that of engine
        ``generation`` where the class has one for it, else over every generation (which
        says so where the class has any); else as dense."""
        if phase != "decode":
            return EXPERTS_AS_DENSE
        pooled = self.expert_matmuls.get(architecture_class, EXPERTS_AS_DENSE)
        if generation is None:
            return pooled
        own = self.generation_experts.get((architecture_class, generation))
        if own is not None:
            return own
        if any(c == architecture_class for c, _ in self.generation_experts):
            return Efficiency(pooled.value, _fallback(pooled.source, generation), pooled.spread)
        return pooled


def _fallback(source: str, generation: str) -> str:
    """The source of a parameter fitted over every engine generation, standing in for
    ``generation``'s own."""
    return f"{source}; pooled over engine generations: {generation} has no fit of its own"


def _carried(fitted: Efficiency | None, ceiling: str | None, vendor: str) -> Efficiency | None:
    """A compute efficiency fitted across vendors (NVIDIA's GEMM share as reference) on
    ``vendor``'s devices: scaled by :func:`gemm_ratio`; a bandwidth one as it is."""
    ratio = gemm_ratio(vendor)
    if fitted is None or ceiling != "flops" or ratio == 1.0:
        return fitted
    return Efficiency(
        fitted.value * ratio, f"{fitted.source}, x {ratio:.2f}: {GEMM_SHARE_SOURCE}", fitted.spread
    )


NO_FIT: Final = FittedDefaults()


def _latest_workload_rows(measurements: pd.DataFrame) -> pd.DataFrame:
    """Usable workload-probe rows of each model's latest run that has any."""
    rows = measurements[
        measurements["probe"].isin(list(WORKLOAD_PROBES))
        & measurements["accelerator_id"].notna()
        & measurements["efficiency"].notna()
        & measurements["status"].isin(_USABLE)
    ]
    if rows.empty:
        return rows
    latest = rows.groupby(["accelerator_id", "probe"])["measured_at"].transform("max")
    newest_run = rows.loc[rows["measured_at"] == latest, ["accelerator_id", "probe", "run_id"]]
    return rows.merge(newest_run.drop_duplicates(), on=["accelerator_id", "probe", "run_id"])


def measured_efficiencies(
    measurements: pd.DataFrame | None, *, here: bool
) -> dict[tuple[str, str], Efficiency]:
    """(accelerator_id, phase) -> what workload probes measured: the median over the latest
    run's devices and cases; spread from their CV and their variation."""
    if measurements is None or measurements.empty:
        return {}
    rows = _latest_workload_rows(measurements)
    out: dict[tuple[str, str], Efficiency] = {}
    for (model, probe), group in rows.groupby(["accelerator_id", "probe"]):
        values = group["efficiency"].to_numpy(dtype=float)
        values = values[values > 0]
        if values.size == 0:
            continue
        cv = (
            float(np.nanmedian(group["cv"].to_numpy(dtype=float)))
            if group["cv"].notna().any()
            else 0.0
        )
        spread = float(np.hypot(cv, np.std(np.log(values))))
        day = f"{pd.Timestamp(group['measured_at'].max()):%Y-%m-%d}"
        if here:
            source = f"measured here (workload probe, {day})"
        else:
            hosts = sorted(set(group["host"].astype(str)))
            where = hosts[0] if len(hosts) == 1 else f"{len(hosts)} hosts"
            source = f"measured on {where} (workload probe, {day}, history)"
        out[(str(model), WORKLOAD_PROBES[str(probe)])] = Efficiency(
            float(np.median(values)), source, spread
        )
    return out


def phase_columns(
    base: pd.DataFrame,
    vendors: pd.Series,
    *,
    here: pd.DataFrame | None = None,
    history: pd.DataFrame | None = None,
    fitted: FittedDefaults = NO_FIT,
    production: Mapping[tuple[str, str], Efficiency] | None = None,
    engine: str | None = None,
) -> pd.DataFrame:
    """``base`` (the STREAM-based calibration, one row per model) with, for each phase in
    :data:`PHASE_CEILINGS`: ``bandwidth_efficiency_<phase>``, ``bandwidth_from_<phase>``,
    ``bandwidth_spread_<phase>``, and ``flops_efficiency_<phase>`` (NaN where the
    STREAM-based per-precision figures stand), ``flops_from_<phase>``, ``flops_spread_<phase>``;
    and ``step_overhead_s_<phase>`` with ``step_overhead_from_<phase>``: the fitted overhead
    where the phase's binding efficiency is the fitted one, else 0; and, for the fitted
    phases, ``class_spread_<phase>_<class>`` for each of :data:`SPREAD_CLASSES`: the
    leave-one-source-out spread of that architecture class where the phase's binding
    efficiency is the fitted one (NaN elsewhere, or without a backtest), and
    ``expert_share_<phase>_<class>`` (with ``expert_from_`` and ``expert_spread_``) for each
    of :data:`ARCHITECTURE_CLASSES`: the routed experts' share of the dense efficiencies a
    model of that class reaches (:meth:`FittedDefaults.experts`) where the phase's binding
    efficiency is the fitted one, fitted with it (1 where a measured one stands: it holds
    its own). ``production``: (accelerator_id, phase) -> the efficiency measured in
    production, first in the order. The fitted expert shares are those of the engine
    generation ``engine`` runs (``NAME`` or ``NAME VERSION``; none: the newest,
    :func:`~tasks.analysis.supply.engine_generation.workload_generation`), which their source
    names; beside them, each generation's own, under :func:`generation_key` (the projection
    gives each workload its own engine's: a fleet still on an early engine is not projected
    as if on a current one).
    """
    generation, why = workload_generation(engine)
    measured = {
        **measured_efficiencies(history, here=False),
        **measured_efficiencies(here, here=True),
        **(production or {}),
    }
    stream_spread = fitted.stream_spread if fitted.stream_spread is not None else 0.0
    spread_note = "" if fitted.stream_spread is not None else "; spread unknown: no published runs"
    ids = base["accelerator_id"].astype(str).tolist()
    vendor_of = dict(zip(ids, vendors.astype(str), strict=True))
    columns: dict[str, list[object]] = {}
    for phase in PHASE_CEILINGS:
        for ceiling in ("bandwidth", "flops"):
            values: list[object] = []
            sources: list[object] = []
            spreads: list[object] = []
            for i, model in enumerate(ids):
                chosen = None
                if FITTED_CEILING.get(phase) == ceiling:
                    chosen = measured.get((model, phase))
                if chosen is None and phase in FITTED_CEILING:
                    chosen = fitted.lookup(phase, vendor_of[model], ceiling)
                if chosen is not None:
                    values.append(chosen.value)
                    sources.append(chosen.source)
                    spreads.append(chosen.spread)
                    continue
                if ceiling == "bandwidth":
                    values.append(float(base["bandwidth_efficiency"].iloc[i]))
                    origin = str(base["bandwidth_from"].iloc[i])
                    label = "STREAM triad measured" if origin == "measured" else "default"
                else:
                    values.append(float("nan"))
                    label = PER_PRECISION
                sources.append(label + spread_note)
                spreads.append(stream_spread)
            columns[f"{ceiling}_efficiency_{phase}"] = values
            columns[f"{ceiling}_from_{phase}"] = sources
            columns[f"{ceiling}_spread_{phase}"] = spreads
        overheads = [_overhead(phase, m, vendor_of[m], measured, fitted) for m in ids]
        if phase in FITTED_CEILING:
            by_fit = [
                (m, phase) not in measured and fitted.lookup(phase, vendor_of[m]) is not None
                for m in ids
            ]
            for name in SPREAD_CLASSES:
                spread = fitted.class_spread.get(name, fitted.class_spread.get("all", np.nan))
                columns[f"class_spread_{phase}_{name}"] = [
                    spread if chosen else np.nan for chosen in by_fit
                ]
            for name in ARCHITECTURE_CLASSES:
                key = f"{phase}_{name}"
                share = _engine(fitted.experts(phase, name, generation), why)
                columns.update(_expert_columns(key, share, by_fit))
                for each in GENERATIONS:
                    own = fitted.experts(phase, name, each)
                    columns.update(_expert_columns(generation_key(key, each), own, by_fit))
        columns[f"step_overhead_s_{phase}"] = [o.seconds for o in overheads]
        columns[f"step_overhead_from_{phase}"] = [o.source for o in overheads]
    return base.assign(**{k: pd.Series(v, index=base.index) for k, v in columns.items()})


def generation_key(key: str, generation: str) -> str:
    """The ``<phase>_<class>`` part of an expert-share column, for engine ``generation``'s
    own column (``decode_MLA-MoE`` -> ``decode_MLA-MoE_engines_before_2025_07``)."""
    return f"{key}_{_NOT_WORD.sub('_', generation.lower()).strip('_')}"


def _expert_columns(key: str, share: Efficiency, by_fit: list[bool]) -> dict[str, list[object]]:
    """The three ``expert_*_<key>`` columns of one expert share: fitted where the phase's
    binding efficiency is the fitted one, held in the measured efficiency elsewhere."""
    return {
        f"expert_share_{key}": [share.value if chosen else 1.0 for chosen in by_fit],
        f"expert_from_{key}": [share.source if chosen else _HELD for chosen in by_fit],
        f"expert_spread_{key}": [share.spread if chosen else 0.0 for chosen in by_fit],
    }


def _overhead(
    phase: str,
    model: str,
    vendor: str,
    measured: Mapping[tuple[str, str], Efficiency],
    fitted: FittedDefaults,
) -> Overhead:
    """The fitted overhead goes with the fitted efficiency it was fitted alongside."""
    if (model, phase) in measured:
        return Overhead(0.0, "none: held in the measured efficiency")
    if phase in FITTED_CEILING and fitted.lookup(phase, vendor) is not None:
        return fitted.overhead(phase)
    return NO_OVERHEAD


def _engine(share: Efficiency, why: str) -> Efficiency:
    """A fitted expert share with the reason its engine generation was chosen (as dense: as
    it is)."""
    if share is EXPERTS_AS_DENSE:
        return share
    return Efficiency(share.value, f"{share.source}; {why}", share.spread)

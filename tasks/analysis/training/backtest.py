"""The training step model checked against published measured runs, and the GEMM efficiency
it is fitted with.

Every run of ``published_training_runs`` is predicted with :func:`step_time` at a GEMM
efficiency e; its measured step time is the published metric turned into seconds per step
(tokens/s: the step's tokens over it; MFU: the step's model FLOPs over MFU × devices × the
bf16 peak, so the same FLOP count as the prediction's). The error of a run is predicted /
measured − 1.

**Fit.** e is fitted per (accelerator, software stack, compute precision) on the ``fit``
rows, then per (accelerator, stack), per (accelerator, precision), per accelerator and over
all rows: the e whose predictions have a median log error of zero (found by bisection: the
step time falls as e rises), with the standard deviation of the log errors as its spread. A
prediction takes the most specific fit that exists, and says which (``efficiency_level``).
The stack is the engine that ran the source's runs (:data:`STACKS`): the same H100 reaches
a different share of its peak under torchtitan's FSDP2, Megatron-LM or Meta's own Llama 3
stack, so one stack's runs should not price another's where the data can tell them apart. A
run of a source not named there has no stack and takes the accelerator's fit. The built-in
runs put rows of every source on the fit side (alternate model sizes of a table, one of
Llama 3's two), so that each stack is priced by its own runs and judged on its others.

**Held out.** The ``holdout`` rows are predicted with the fit and summarised apart; and every
row again with e fitted on the other sources' rows alone (leave one source out), which says
how the model does on a source it has never seen. MAPE is the mean |error|, bias the mean
error; where the source states an MFU, the predicted MFU's difference in points is kept too.
How much of the leave-one-source-out error is each source's own level (its stack's share of
the peak, which no other source's runs can tell) rather than the model's shape across sizes
and layouts is :meth:`TrainingBacktest.offsets`
(:func:`tasks.analysis.supply.source_disagreement.offset_split`).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Final

import pandas as pd

from hardware_profiles.errors import MemwallError
from hardware_profiles.published_training_runs import read_published_training_runs
from tasks.analysis.supply.calibration import DEFAULT_BANDWIDTH_EFFICIENCY
from tasks.analysis.supply.efficiency import Efficiency
from tasks.analysis.supply.source_disagreement import OffsetSplit, offset_split
from tasks.analysis.training.layout import TrainingRun, check_run, parse_layout
from tasks.analysis.training.network import Network, network_for
from tasks.analysis.training.step_time import (
    Device,
    StepTime,
    device_from_catalog,
    step_flops,
    step_time,
)
from tasks.analysis.workload.architecture import Architecture
from tasks.analysis.workload.presets import preset

STREAM_BANDWIDTH: Final = Efficiency(DEFAULT_BANDWIDTH_EFFICIENCY, "default (STREAM-based)", 0.0)
# Without any published run to fit on: the STREAM-based matmul default.
_LOW, _HIGH = 0.02, 1.0
_FEW: Final = 3  # runs a fit needs to speak for its own spread
_ALL: Final = "all"
Key = tuple[str, str]  # (accelerator_id or "all", precision or "all")
StackKey = tuple[str, str, str]  # (accelerator_id, stack, precision or "all")
UNSTATED: Final = "unstated"
# The software stack each built-in source's runs were measured on.
STACKS: Final[dict[str, str]] = {
    "torchtitan-a100": "torchtitan",
    "torchtitan-h100": "torchtitan",
    "llama3-paper": "meta-llama3",
    "megatron-lm-h100-2024": "megatron-lm",
    "megatron-lm-a100-2021": "megatron-lm",
}
LEVELS: Final = (
    "accelerator+stack+precision",
    "accelerator+stack",
    "accelerator+precision",
    "accelerator",
    "all",
)


@dataclass(frozen=True)
class Case:
    """One published run, ready to predict."""

    run_id: str
    source_id: str
    stack: str
    split: str
    model_preset: str
    hardware: str
    precision: str
    layout: str
    arch: Architecture
    run: TrainingRun
    device: Device
    network: Network
    measured_step_s: float
    published_mfu: float | None


@dataclass(frozen=True)
class Summary:
    split: str
    runs: int
    mape: float
    bias: float
    mfu_runs: int
    mfu_max_points: float  # largest |predicted − published| MFU, in points

    def as_json(self) -> dict[str, Any]:
        return {
            "split": self.split,
            "runs": self.runs,
            "mape": self.mape,
            "bias": self.bias,
            "mfu_runs": self.mfu_runs,
            "mfu_max_abs_error_points": self.mfu_max_points,
        }


@dataclass(frozen=True)
class TrainingBacktest:
    runs: pd.DataFrame  # one row per predicted run
    fitted: Mapping[Key, Efficiency]
    skipped: list[str] = field(default_factory=list)
    stack_fitted: Mapping[StackKey, Efficiency] = field(default_factory=dict)

    def offsets(self) -> OffsetSplit | None:
        """Every predicted run's leave-one-source-out error with each source's own mean offset
        taken out, and the offsets' share of its squared log error (None without errors)."""
        chosen = self.runs.dropna(subset=["loso_error"]) if not self.runs.empty else self.runs
        if chosen.empty:
            return None
        return offset_split(chosen["source_id"], chosen["loso_error"])

    def summary(self, split: str) -> Summary:
        """``fit``, ``holdout`` or ``loso`` (every row, predicted leaving its source out)."""
        if split == "loso":
            errors, points = self.runs["loso_error"], self.runs["loso_mfu_points"]
        else:
            chosen = self.runs["split"] == split
            errors, points = self.runs.loc[chosen, "error"], self.runs.loc[chosen, "mfu_points"]
        points = points.dropna()
        return Summary(
            split=split,
            runs=len(errors),
            mape=float(errors.abs().mean()) if len(errors) else math.nan,
            bias=float(errors.mean()) if len(errors) else math.nan,
            mfu_runs=len(points),
            mfu_max_points=float(points.abs().max()) if len(points) else math.nan,
        )


def measured_step_s(
    metric: str, value: float, run: TrainingRun, model_flops: float, peak: float
) -> float:
    """The published metric as seconds per step (see the module docstring)."""
    tokens = run.global_batch_tokens
    devices = run.layout.devices
    if metric == "step_time_s":
        return value
    if metric == "tokens_per_s":
        return tokens / value
    if metric == "tokens_per_s_per_device":
        return tokens / (value * devices)
    return model_flops / (value * devices * peak)


def prepare(
    runs: pd.DataFrame, catalog: pd.DataFrame, scale_out: pd.DataFrame
) -> tuple[list[Case], list[str]]:
    """The runs memwall can predict, and a line for each it skips (unknown preset or
    hardware, a layout the model or devices refuse)."""
    models = catalog.set_index("accelerator_id", drop=False)
    cases: list[Case] = []
    skipped: list[str] = []
    for r in runs.to_dict("records"):
        try:
            arch = preset(str(r["model_preset"]))
            if r["hardware"] not in models.index:
                raise MemwallError(f"hardware {r['hardware']!r} is not in the catalog")
            row = {str(k): v for k, v in models.loc[r["hardware"]].items()}
            run = TrainingRun(
                layout=parse_layout(str(r["layout"])),
                global_batch=int(r["global_batch"]),
                sequence=int(r["sequence"]),
                micro_batch=int(r["micro_batch"]),
                zero=int(r["zero"]),
                recompute=str(r["recompute"]),
                optimizer=str(r["optimizer"]),
                compute=str(r["compute_precision"]),
                uneven_stages=bool(r["uneven_stages"]),
                tp_comm_overlap=bool(r.get("tp_comm_overlap", False)),
            )
            check_run(arch, run, int(r["devices"]))
            device = device_from_catalog(row, run.compute)
            network = network_for(row, scale_out)
        except MemwallError as exc:
            skipped.append(f"{r['run_id']}: {exc}")
            continue
        flops = step_flops(arch, run).model
        published = r.get("published_mfu")
        cases.append(
            Case(
                run_id=str(r["run_id"]),
                source_id=str(r["source_id"]),
                stack=STACKS.get(str(r["source_id"]), UNSTATED),
                split=str(r["split"]),
                model_preset=arch.name,
                hardware=device.name,
                precision=run.compute,
                layout=run.layout.text(),
                arch=arch,
                run=run,
                device=device,
                network=network,
                measured_step_s=measured_step_s(
                    str(r["metric"]),
                    float(r["measured_value"]),
                    run,
                    flops,
                    device.attention_flops_per_s,
                ),
                published_mfu=None
                if published is None or published != published
                else float(published),
            )
        )
    return cases, skipped


def predict(case: Case, matmul: Efficiency) -> StepTime:
    return step_time(case.arch, case.run, case.device, case.network, matmul, STREAM_BANDWIDTH)


def _log_errors(cases: Sequence[Case], value: float) -> list[float]:
    unit = Efficiency(value, "", 0.0)
    return [math.log(predict(c, unit).step_time_s / c.measured_step_s) for c in cases]


def fit_efficiency(cases: Sequence[Case], label: str) -> Efficiency:
    """The e at which the median log error of ``cases`` is zero, with the log errors' spread."""

    def median_error(value: float) -> float:
        errors = sorted(_log_errors(cases, value))
        mid = len(errors) // 2
        return errors[mid] if len(errors) % 2 else (errors[mid - 1] + errors[mid]) / 2

    low, high = _LOW, _HIGH
    for _ in range(40):
        middle = (low + high) / 2
        if median_error(middle) > 0:  # predicted too slow: more efficiency
            low = middle
        else:
            high = middle
    value = (low + high) / 2
    errors = _log_errors(cases, value)
    mean = sum(errors) / len(errors)
    spread = math.sqrt(sum((e - mean) ** 2 for e in errors) / len(errors))
    return Efficiency(value, f"fitted on {len(cases)} published training run(s), {label}", spread)


def _fit_groups(
    groups: Mapping[Any, list[Case]], label: Callable[[Any], str], everyone: Sequence[Case]
) -> dict[Any, Efficiency]:
    """A fit per group. A fit on fewer than :data:`_FEW` runs cannot show its own spread: it
    takes the spread of the fit over ``everyone`` where that is larger."""
    fitted = {key: fit_efficiency(members, label(key)) for key, members in groups.items()}
    overall = fit_efficiency(everyone, "all") if everyone else None
    for key, members in groups.items():
        if overall is not None and len(members) < _FEW and overall.spread > fitted[key].spread:
            fitted[key] = replace(
                fitted[key],
                spread=overall.spread,
                source=f"{fitted[key].source} (spread of the fit over all runs)",
            )
    return fitted


def fit_table(cases: Sequence[Case]) -> dict[Key, Efficiency]:
    """Fits per (accelerator, precision), per accelerator and over all ``cases``, whatever
    stack ran them (a user's own run names no stack).

    A precision that fewer stacks ran on an accelerator than its most-run precision would
    carry those stacks' own efficiency (torchtitan's FP8 runs on 500 W H100s against
    Megatron's and Meta's BF16 runs: FP8 priced slower than BF16). Where stacks ran both, it
    is the most-run precision's fit times the median, over those stacks, of the stack's ratio
    of the two precisions' fits: what changing precision does within one stack, not which
    stack ran it.
    """
    groups: dict[Key, list[Case]] = {}
    for c in cases:
        for key in ((c.hardware, c.precision), (c.hardware, _ALL), (_ALL, _ALL)):
            groups.setdefault(key, []).append(c)
    fitted = _fit_groups(groups, _label, cases)
    stacks = stack_fit_table(cases)
    ran: dict[Key, set[str]] = {}
    for c in cases:
        if c.stack != UNSTATED:
            ran.setdefault((c.hardware, c.precision), set()).add(c.stack)
    for hardware in {c.hardware for c in cases}:
        mine = {
            p: ran.get((hardware, p), set()) for (h, p) in groups if h == hardware and p != _ALL
        }
        if len(mine) < 2:
            continue
        reference = max(mine, key=lambda p: (len(mine[p]), len(groups[(hardware, p)]), p))
        for precision, stacks_of in mine.items():
            both = sorted(stacks_of & mine[reference])
            if precision == reference or not both or len(stacks_of) >= len(mine[reference]):
                continue
            ratio = statistics.median(
                stacks[(hardware, s, precision)].value / stacks[(hardware, s, reference)].value
                for s in both
            )
            base, own = fitted[(hardware, reference)], fitted[(hardware, precision)]
            fitted[(hardware, precision)] = Efficiency(
                min(1.0, base.value * ratio),
                f"{base.source} x {ratio:.3f}, the {precision} / {reference} ratio within "
                f"{', '.join(both)}",
                max(base.spread, own.spread),
            )
    return fitted


def stack_fit_table(cases: Sequence[Case]) -> dict[StackKey, Efficiency]:
    """Fits per (accelerator, stack, precision) and per (accelerator, stack) over the
    ``cases`` whose source names its stack."""
    groups: dict[StackKey, list[Case]] = {}
    for c in cases:
        if c.stack == UNSTATED:
            continue
        for key in ((c.hardware, c.stack, c.precision), (c.hardware, c.stack, _ALL)):
            groups.setdefault(key, []).append(c)
    named = [c for c in cases if c.stack != UNSTATED]
    return _fit_groups(groups, _label, named)


def _label(key: tuple[str, ...]) -> str:
    return " ".join(k for k in key if k != _ALL) or "all hardware"


def lookup(fitted: Mapping[Key, Efficiency], hardware: str, precision: str) -> Efficiency | None:
    """The most specific fitted efficiency for ``hardware`` at ``precision``."""
    for key in ((hardware, precision), (hardware, _ALL), (_ALL, _ALL)):
        if key in fitted:
            return fitted[key]
    return None


def lookup_case(
    stack_fitted: Mapping[StackKey, Efficiency], fitted: Mapping[Key, Efficiency], case: Case
) -> tuple[Efficiency | None, str]:
    """The most specific fit for ``case`` and its level (one of :data:`LEVELS`): its
    accelerator and stack, then its accelerator, then all runs."""
    tried: list[tuple[Mapping[Any, Efficiency], Any]] = [
        (stack_fitted, (case.hardware, case.stack, case.precision)),
        (stack_fitted, (case.hardware, case.stack, _ALL)),
        (fitted, (case.hardware, case.precision)),
        (fitted, (case.hardware, _ALL)),
        (fitted, (_ALL, _ALL)),
    ]
    for (table, key), level in zip(tried, LEVELS, strict=True):
        if key in table:
            return table[key], level
    return None, "none"


def _predicted(case: Case, efficiency: Efficiency | None) -> tuple[float, float, StepTime | None]:
    if efficiency is None:
        return math.nan, math.nan, None
    result = predict(case, efficiency)
    error = result.step_time_s / case.measured_step_s - 1
    points = math.nan if case.published_mfu is None else 100 * (result.mfu - case.published_mfu)
    return error, points, result


def backtest(
    runs: pd.DataFrame, catalog: pd.DataFrame, scale_out: pd.DataFrame
) -> TrainingBacktest:
    """Fit on the ``fit`` rows, predict every row with it, and every row again leaving its
    source out of the fit."""
    cases, skipped = prepare(runs, catalog, scale_out)
    chosen = [c for c in cases if c.split == "fit"]
    fitted, stack_fitted = fit_table(chosen), stack_fit_table(chosen)
    by_source: dict[str, tuple[dict[StackKey, Efficiency], dict[Key, Efficiency]]] = {}
    rows = []
    for c in cases:
        efficiency, level = lookup_case(stack_fitted, fitted, c)
        error, points, result = _predicted(c, efficiency)
        if c.source_id not in by_source:
            others = [o for o in cases if o.source_id != c.source_id]
            by_source[c.source_id] = (stack_fit_table(others), fit_table(others))
        loso_efficiency, loso_level = lookup_case(*by_source[c.source_id], c)
        loso_error, loso_points, _ = _predicted(c, loso_efficiency)
        rows.append(
            {
                "run_id": c.run_id,
                "source_id": c.source_id,
                "stack": c.stack,
                "split": c.split,
                "model_preset": c.model_preset,
                "hardware": c.hardware,
                "devices": c.run.layout.devices,
                "layout": c.layout,
                "precision": c.precision,
                "recompute": c.run.recompute,
                "measured_step_s": c.measured_step_s,
                "predicted_step_s": math.nan if result is None else result.step_time_s,
                "error": error,
                "published_mfu": math.nan if c.published_mfu is None else c.published_mfu,
                "predicted_mfu": math.nan if result is None else result.mfu,
                "mfu_points": points,
                "loso_error": loso_error,
                "loso_mfu_points": loso_points,
                "wall": None if result is None else result.wall,
                "fits": None if result is None else result.fits,
                "efficiency": math.nan if efficiency is None else efficiency.value,
                "efficiency_level": level,
                "efficiency_source": None if efficiency is None else efficiency.source,
                "loso_efficiency": math.nan if loso_efficiency is None else loso_efficiency.value,
                "loso_efficiency_level": loso_level,
            }
        )
    return TrainingBacktest(pd.DataFrame(rows), fitted, skipped, stack_fitted)


def builtin_fit(catalog: pd.DataFrame, scale_out: pd.DataFrame) -> dict[Key, Efficiency]:
    """The GEMM efficiencies fitted on the ``fit`` rows of the runs memwall ships."""
    cases, _ = prepare(read_published_training_runs(), catalog, scale_out)
    return fit_table([c for c in cases if c.split == "fit"])

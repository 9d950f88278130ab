"""Workload probes: a model's real decode step or prefill on this device, timed like STREAM, with
three views of it side by side: the workload model's bytes and FLOPs, XLA's own count of the
compiled step (``cost_analysis``), and the measured time.

Discipline as in the bandwidth probes: the step is compiled ahead of time, warmed up, each call
timed to ``block_until_ready``; the KV cache is donated (``donate_argnums`` with
``keep_unused=True``) so each call updates it in place; best, median and CV, ``unstable`` past
the same limits. The probe runs as many of the model's layers as fit the device's free memory
(``max_free_fraction`` of it, at least one layer) and the full model's step time is scaled from
it by the model's work (bytes in decode, FLOPs in prefill) of the layers it could not hold.

Where XLA and the model disagree, and which is right (checked on the CPU backend, XLA from
jaxlib 0.10, one layer of every preset at decode batch 1 and 16 and a 256-token prefill):

- float32 decode: XLA's bytes are within 3 % of the model's for every preset (GQA, sliding
  window, biases, MoE, MLA absorbed), FLOPs within 1 %, once one XLA error is taken out: its
  cost model charges a gather of two or more rows its whole table (the embedding gather is
  charged ``vocab x hidden`` though it reads ``tokens x hidden``; one row becomes a dynamic
  slice, charged right). ``gather_charge_bytes`` measures that charge on the gather alone, so
  ``xla_bytes`` can be read with and without it. The model is right there.
- prefill: XLA counts 5-15 % more than the model: XLA's attention is not fused, it writes and
  reads the S x S scores several times; the model counts a fused (flash) attention, as serving
  engines run it. Both are right about different kernels; prefill rows are FLOP rates, and the
  FLOPs agree within 1 %.
- bfloat16 and weight-only int8 on the CPU: XLA's bytes are 5x and 9x the model's, because the
  CPU backend converts the weights to a float32 copy before each matmul (read narrow, write and
  read wide). XLA is right about what this CPU does, which no engine does; this is why the CPU
  cases run in float32. Accelerators fuse the conversion into the matmul.
- A program that both reads a donated cache and updates it in place made XLA's CPU backend
  copy the cache (twice); the cache is therefore written by a program of its own (see
  ``workload.step_function``), as engines write it with a kernel of its own.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
from jax.sharding import SingleDeviceSharding

from tasks.analysis.supply.calibration import DTYPE_PRECISION
from tasks.analysis.supply.validation import (
    Gemm,
    HostCeilings,
    Part,
    PartsPrediction,
    StepCost,
    cut,
    predict_parts,
    ratio,
    step_cost,
    step_parts,
)
from tasks.analysis.workload.workload_model import Architecture
from tasks.discovery import free_memory_bytes
from tasks.probes import workload, workload_weights
from tasks.probes.runner import ProbePlan, unsupported_reason
from tasks.probes.statistics import Summary, summarize
from tasks.probes.targets import Row, Rows, Target, failure_reason, is_out_of_memory, status_of
from tasks.probes.workload_ceilings import TRIAD, gemm_calls, time_in_turns, triad_call

PROBES = {"decode": "workload-decode", "prefill": "workload-prefill"}


@dataclass(frozen=True)
class Case:
    """One workload shape to probe; ``max_layers`` caps the layers run (time), memory may cap
    them further."""

    name: str
    arch: Architecture
    phase: str
    batch: int
    context: int
    weights: str = "bf16"
    kv: str = "bf16"
    compute: str = "bf16"
    max_layers: int | None = None

    def shape(self, layers: int) -> workload_weights.Shape:
        return workload_weights.Shape(
            cut(self.arch, layers),
            self.phase,
            self.batch,
            self.context,
            self.weights,
            self.kv,
            self.compute,
        )

    def _step(self) -> dict[str, Any]:
        """The step's shape as the workload model's step functions take it."""
        return {
            "phase": self.phase,
            "batch": self.batch,
            "context": self.context,
            "weights": self.weights,
            "kv": self.kv,
            "compute": self.compute,
        }

    def cost(self, layers: int | None = None) -> StepCost:
        arch = self.arch if layers is None else cut(self.arch, layers)
        return step_cost(arch, **self._step())

    def parts(self, layers: int) -> tuple[Part, ...]:
        """The step of ``layers`` layers split as the prediction adds it up."""
        return step_parts(cut(self.arch, layers), **self._step())

    @property
    def compute_dtype(self) -> str:
        return workload_weights.PRECISION_DTYPES.get(self.compute, self.compute)


@dataclass(frozen=True)
class CaseResult:
    """The three views of one case, and its measurement row."""

    case: Case
    layers_run: int
    layers_fit: int
    model: StepCost  # the layers run and the head
    full_model: StepCost
    xla_bytes: float
    xla_flops: float
    xla_gather_bytes: float
    measured_step_s: float
    predicted_step_s: float
    row: Row
    reason: str = ""  # why it was waived or failed
    # Per part, on the ceilings and this case's GEMM rates.
    prediction: PartsPrediction | None = None
    # The single roofline on the run's best triad and best square GEMM, for comparison.
    roofline_step_s: float = math.nan

    @property
    def ratio(self) -> float:
        return ratio(self.measured_step_s, self.predicted_step_s)

    @property
    def full_model_step_s(self) -> float:
        """The measured step scaled to all layers by the model's work."""
        if self.case.phase == "decode":
            return self.measured_step_s * self.full_model.bytes / self.model.bytes
        return self.measured_step_s * self.full_model.flops / self.model.flops


def storage_unsupported_reason(dtype: str, device: Any) -> str | None:
    """Why ``device`` cannot hold and convert ``dtype``, or None: tried on a tiny array."""
    reason = unsupported_reason(dtype)
    if reason:
        return reason
    try:
        x = jax.device_put(jnp.zeros((8,), dtype), device)
        jax.jit(lambda a: a.astype(jnp.float32) + 1).lower(x).compile()(x).block_until_ready()
    except Exception as exc:
        return f"{dtype} on {device.platform}: {failure_reason(exc)}"
    return None


Capability = Callable[[str, Any], str | None]


def waived_reason(case: Case, target: Target, supports: Capability) -> str | None:
    """Why ``case`` cannot run on ``target``: a precision not built, a storage type the device
    cannot hold, or a compute type the catalog says the device has no units for."""
    if case.phase not in PROBES:
        return f"no workload probe for phase {case.phase!r}; valid: {', '.join(PROBES)}"
    if case.compute not in workload_weights.COMPUTE_PRECISIONS:
        return (
            f"compute precision {case.compute} is not built (weight-only quantization is); "
            f"valid: {', '.join(workload_weights.COMPUTE_PRECISIONS)}"
        )
    for role, precision in (("weights", case.weights), ("kv", case.kv)):
        if precision not in workload_weights.PRECISION_DTYPES:
            valid = ", ".join(workload_weights.PRECISION_DTYPES)
            return f"{role} precision {precision} not built; valid: {valid}"
    for precision in {case.weights, case.kv, case.compute}:
        reason = supports(workload_weights.PRECISION_DTYPES[precision], target.first)
        if reason:
            return reason
    peak = DTYPE_PRECISION.get(case.compute_dtype)
    if target.accelerator_id and peak and f"peak_flops_per_s_{case.compute}" not in target.specs:
        return f"the catalog lists no {case.compute} peak for {target.accelerator_id}: no units"
    return None


def layers_that_fit(case: Case, free_bytes: int | None, max_free_fraction: float) -> int:
    """Layers whose weights and cache, with the head and working memory, fit in
    ``max_free_fraction`` of ``free_bytes`` (all of them where the free memory is unknown);
    0 where not even one does (the case is then waived: on a CPU an allocation past the
    host's memory is not an error JAX can catch, the kernel kills the process)."""
    total = case.arch.layers
    if free_bytes is None:
        return total
    return max(0, min(total, int(_room(case, free_bytes, max_free_fraction)[0])))


def _room(case: Case, free_bytes: int, max_free_fraction: float) -> tuple[float, float, float]:
    """(layers that fit, bytes one layer takes, bytes the step takes besides its layers)."""
    full = case.shape(case.arch.layers)
    per_layer = max(workload_weights.layer_bytes(full, i) for i in {0, case.arch.layers - 1})
    fixed = workload_weights.fixed_bytes(full)
    return (free_bytes * max_free_fraction - fixed) // per_layer, per_layer, fixed


def _cost_analysis(compiled: Any) -> dict[str, float]:
    """``compiled.cost_analysis()`` as one dict (older JAX returns a list of one)."""
    found = compiled.cost_analysis()
    if isinstance(found, list):
        found = found[0] if found else {}
    return {k: float(v) for k, v in (found or {}).items()}


def gather_charge_bytes(s: workload_weights.Shape, device: Any) -> float:
    """Bytes XLA's cost model charges the embedding gather alone (see the module doc)."""
    here = SingleDeviceSharding(device)
    table = jax.eval_shape(lambda: workload_weights.head_params(jax.random.PRNGKey(0), s))["table"][
        "w"
    ]
    table = jax.ShapeDtypeStruct(table.shape, table.dtype, sharding=here)  # type: ignore[no-untyped-call]
    ids = jax.ShapeDtypeStruct(workload_weights.tokens(s).shape, jnp.int32, sharding=here)  # type: ignore[no-untyped-call]
    compiled = jax.jit(lambda t, i: t[:, i]).lower(table, ids).compile()
    return _cost_analysis(compiled).get("bytes accessed", math.nan)


def _detail(**fields: Any) -> str:
    def text(value: Any) -> str:
        return f"{value:.6g}" if isinstance(value, float) else str(value)

    return "; ".join(f"{key}={text(value)}" for key, value in fields.items())


def measure_case(
    case: Case,
    rows: Rows,
    plan: ProbePlan,
    ceilings: HostCeilings | None,
    supports: Capability = storage_unsupported_reason,
    free_bytes: Callable[[Any], int | None] = free_memory_bytes,
) -> CaseResult:
    """Probe ``case`` on ``rows.target``'s first device: a ``waived`` row (with the reason)
    where it cannot run, ``failed`` where its logits are not finite."""
    target = rows.target
    probe, dtype = PROBES.get(case.phase, f"workload-{case.phase}"), case.compute_dtype
    decode = case.phase == "decode"
    unit = "bytes_per_s" if decode else "flops_per_s"
    spec = target.specs.get(
        "mem_bandwidth_bytes_per_s" if decode else f"peak_flops_per_s_{case.compute}"
    )
    free = free_bytes(target.first)
    fit = layers_that_fit(case, free, plan.max_free_fraction)
    layers = max(1, min(fit, case.max_layers or fit))
    full = case.cost()
    model = case.cost(layers)
    fields: dict[str, Any] = {
        "case": case.name,
        "preset": case.arch.name,
        "phase": case.phase,
        "batch": case.batch,
        "context": case.context,
        "weights": case.weights,
        "kv": case.kv,
        "compute": case.compute,
        "layers": f"{layers} of {case.arch.layers}",
        "layers_fit": fit,
        "model_bytes": model.bytes,
        "model_flops": model.flops,
    }
    if layers < case.arch.layers:
        fields["note"] = (
            f"ran {layers} of {case.arch.layers} layers ({'memory' if fit == layers else 'time'}"
            " limit); full-model time scaled by the model's work of the layers not run"
        )

    def result(
        seconds: list[float] | None,
        xla: dict[str, float],
        gather: float,
        status: str,
        why: str,
        in_turns: tuple[float, dict[Gemm, float]] | None = None,
    ) -> CaseResult:
        """The case's result; ``in_turns``: the triad's bandwidth and the GEMM rates timed in
        turns with the step, which replace the run's triad and add the parts' shapes."""
        summary: Summary | None = None
        measured = predicted = roofline = math.nan
        prediction = None
        if ceilings is not None:
            roofline = predict_parts([Part("step", model.bytes, model.flops)], ceilings).step_s
            found = ceilings
            if in_turns is not None:
                found = HostCeilings(in_turns[0], ceilings.flops_per_s, in_turns[1])
            prediction = predict_parts(case.parts(layers), found)
            predicted = prediction.step_s
            for part in prediction.parts:
                fields[f"predicted_{part.name}_s"] = part.step_s
        if seconds:
            work = model.bytes if decode else model.flops
            summary = summarize(work, seconds)
            measured = work / summary.median
        fields.update(
            predicted_step_s=predicted,
            measured_step_s=measured,
            xla_bytes=xla.get("bytes accessed", math.nan),
            xla_gather_bytes=gather,
            xla_flops=xla.get("flops", math.nan),
        )
        if seconds:
            fields["full_model_step_s"] = measured * (
                full.bytes / model.bytes if decode else full.flops / model.flops
            )
        if why:
            fields["reason"] = why
        working_set = sum(
            workload_weights.layer_bytes(case.shape(layers), i) for i in range(layers)
        )
        row = rows.row(probe, dtype, unit, working_set, summary, spec, status, _detail(**fields))
        row["efficiency"] = summary.median / spec if summary and spec else None
        return CaseResult(
            case,
            layers,
            fit,
            model,
            full,
            fields["xla_bytes"],
            fields["xla_flops"],
            gather,
            measured,
            predicted,
            row,
            why,
            prediction,
            roofline,
        )

    reason = waived_reason(case, target, supports)
    if not reason and fit == 0 and free is not None:
        _, per_layer, fixed = _room(case, free, plan.max_free_fraction)
        reason = (
            f"one layer and the head need {(per_layer + fixed) / 1e9:.2f} GB; the cap is "
            f"{free * plan.max_free_fraction / 1e9:.2f} GB ({plan.max_free_fraction:.0%} of "
            "free memory)"
        )
    if reason:
        return result(None, {}, math.nan, "waived", reason)
    try:
        return _run(case, layers, plan, target, result)
    except Exception as exc:
        why = "out of memory" if is_out_of_memory(exc) else "could not run"
        return result(None, {}, math.nan, "waived", f"{why}: {failure_reason(exc)}")


def _run(
    case: Case, layers: int, plan: ProbePlan, target: Target, result: Callable[..., CaseResult]
) -> CaseResult:
    s = case.shape(layers)
    device = target.first
    # The GEMMs at the parts' shapes, timed in turns with the step (workload_ceilings).
    calls: dict[Any, Callable[[], Any]] = {}
    calls[TRIAD], triad_bytes = triad_call(device, plan.turn_triad_bytes)
    parts = [p.gemm for p in case.parts(layers) if p.gemm]
    gemms = gemm_calls(s, parts, device, plan.turn_gemm_weight_bytes)
    calls.update({shape: call for shape, (call, _) in gemms.items()})
    with jax.default_device(device):
        # One compiled program draws every weight: drawn op by op, each new shape compiled
        # its own random kernel (half of a one-layer case's set-up on a CPU).
        weights = jax.jit(workload_weights.params, static_argnums=1)(jax.random.PRNGKey(0), s)
        state = {"caches": workload_weights.caches(jax.random.PRNGKey(1), s)}
        ids, pos = workload_weights.tokens(s), workload_weights.position(s)
    step = jax.jit(workload.step_function(s)).lower(state["caches"], weights, ids, pos).compile()
    entries = jax.eval_shape(workload.step_function(s), state["caches"], weights, ids, pos)[0]
    write = jax.jit(workload.write_function(s), donate_argnums=(0,), keep_unused=True)
    stored = write.lower(state["caches"], entries, pos).compile()
    costs = [_cost_analysis(step), _cost_analysis(stored)]
    xla = {key: sum(c.get(key, 0.0) for c in costs) for key in ("bytes accessed", "flops")}
    gather = gather_charge_bytes(s, device)

    def call() -> Any:
        new, logits = step(state["caches"], weights, ids, pos)
        state["caches"] = stored(state["caches"], new, pos)
        jax.block_until_ready(state["caches"])  # type: ignore[no-untyped-call]
        return logits.block_until_ready()

    turns, seconds, last = time_in_turns(
        calls, call, warmup=plan.warmup, repetitions=plan.repetitions, budget_s=plan.budget_s
    )
    triad_s = turns.pop(TRIAD)
    rates = {shape: gemms[shape][1] / statistics.median(t) for shape, t in turns.items()}
    finite = bool(jnp.isfinite(last).all())
    status = status_of(summarize(1.0, seconds), 0.0 if finite else math.inf, 1.0)
    bandwidth = triad_bytes / min(triad_s)  # a ceiling: its best call (workload_ceilings)
    why = "" if finite else "non-finite logits"
    return result(seconds, xla, gather, status, why, (bandwidth, rates))

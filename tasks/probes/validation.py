"""``memwall validate``'s built-in cases and their run: this host's ceilings (a triad and a GEMM
at each compute dtype, measured in the same run), then each workload case, predicted from the
workload model and ceilings measured in turns with it (the triad again and the GEMM at each of
its parts' shapes: ``tasks.probes.workload_ceilings``), and measured. The run's square GEMM
stands in for a shape not measured; the run's triad and square GEMM also give the single
roofline each record keeps for comparison (``roofline_step_s``).

The cases are real presets at sizes fitted to the platform. A CPU runs them in float32: XLA's CPU
backend runs a bfloat16 matmul by converting its operands to float32 first (measured on a 2-core
host: a bfloat16 GEMV reaches 1.3 GB/s where float32 reaches 28 GB/s), which is no serving
engine's decode and no roofline's either. Accelerators run bfloat16. ``quick`` caps the layers
run to keep a CPU's run short; memory caps them further where the device's free memory is small.

A quick audit whose history holds no validation of this host and software runs one small case
(:func:`small_cases`: the quick set's first, a dense model's decode at batch 1, with fewer
repetitions): the model's decode error on this host, in seconds rather than a minute.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from hardware_profiles.schema import Accelerator, MiB
from hardware_profiles.strict_json import strict
from tasks.analysis.supply.validation import PartTime, ceilings
from tasks.analysis.workload.presets import preset
from tasks.discovery import free_memory_bytes, last_level_cache_bytes
from tasks.probes.runner import ProbePlan, device_steps, run_steps
from tasks.probes.software import software_versions
from tasks.probes.targets import Row, Rows, Step, single_target
from tasks.probes.workload_probe import (
    Capability,
    Case,
    CaseResult,
    measure_case,
    storage_unsupported_reason,
)

# The MoE cases run each touched expert over its few tokens at decode, the grouped GEMM the
# fit gives its own efficiency: Mixtral's 2 of 8 wide experts, and Qwen3-30B-A3B's 8 of 128
# narrow ones (Qwen3-235B's and DeepSeek-V3's kind; its layer fits a CPU's quick run).
QUICK_PRESETS = ("mistral-7b", "mixtral-8x7b", "qwen3-30b-a3b")
FULL_PRESETS = ("mistral-7b", "llama-3.1-8b", "mixtral-8x7b", "qwen3-30b-a3b", "deepseek-v3")


@dataclass(frozen=True)
class Sizes:
    """How big the built-in cases are on one kind of platform."""

    precision: str
    context: int
    large_batch: int
    prompt: int
    max_layers: int | None
    gemm_sizes: tuple[int, ...]


def sizes(platform: str, quick: bool) -> Sizes:
    if platform == "cpu":
        if quick:
            return Sizes("fp32", 1024, 16, 128, 1, (1024,))
        return Sizes("fp32", 2048, 32, 256, 4, (1024, 2048))
    if quick:
        return Sizes("bf16", 4096, 32, 1024, 4, (4096, 8192))
    return Sizes("bf16", 8192, 64, 2048, None, (4096, 8192))


def cases(presets: Sequence[str] | None, platform: str, quick: bool) -> list[Case]:
    """Per preset: decode at batch 1 and at a larger batch, and a prefill; in ``quick`` mode an
    MoE preset only decodes at batch 1 (a prefill touches every expert: minutes on a CPU).
    Unknown presets raise the error that lists the valid ones."""
    names = list(presets) if presets else list(QUICK_PRESETS if quick else FULL_PRESETS)
    archs = [preset(name) for name in names]
    z = sizes(platform, quick)
    found: list[Case] = []
    p = z.precision
    for arch in archs:
        shapes = [("decode b1", "decode", 1, z.context)]
        if not (quick and arch.is_moe and not presets):
            shapes.append((f"decode b{z.large_batch}", "decode", z.large_batch, z.context))
        if not (quick and arch.is_moe):
            shapes.append((f"prefill {z.prompt}", "prefill", 1, z.prompt))
        found += [
            Case(f"{arch.name} {name}", arch, phase, batch, ctx, p, p, p, z.max_layers)
            for name, phase, batch, ctx in shapes
        ]
    return found


def small_cases(platform: str) -> list[Case]:
    """The one case a quick audit runs when it has no validation to reuse: the quick set's
    decode at batch 1 of a dense model (the memory-bound step every projection leans on)."""
    return cases([QUICK_PRESETS[0]], platform, True)[:1]


def ceiling_plan(
    platform: str, quick: bool, dtypes: Sequence[str], small: bool = False
) -> ProbePlan:
    """A triad and GEMMs at ``dtypes``: the ceilings a prediction divides by. ``small``: one
    warm-up and at most 7 turns (a second of timed steps), for :func:`small_cases`."""
    z = sizes(platform, quick)
    plan = dataclasses.replace(
        ProbePlan.quick() if quick else ProbePlan(),
        bandwidth_kernels=("triad",),
        bandwidth_dtypes=("float32",),
        matmul_dtypes=tuple(dict.fromkeys(dtypes)),
        matmul_sizes=z.gemm_sizes,
        min_working_set_bytes=256 * MiB,
        transfers=False,
        all_devices=False,
        # Each case's step and its ceilings take turns this many times (workload_ceilings):
        # enough calls for a median that a shared host's load spikes do not move.
        warmup=2,
        repetitions=15,
        budget_s=3.0,
    )
    if not small:
        return plan
    # The small case's own ceilings at 4x the last-level cache (at least 128 MiB) instead of
    # 256 and 512 MiB: on a CPU they sit beside a 7B layer and its LM head (1.4 GB in float32),
    # and a quick audit's peak memory is that sum (3.0 GB at the full sizes, 2.2 GB at these).
    turn_bytes = max(128 * MiB, plan.cache_multiple * last_level_cache_bytes(platform))
    return dataclasses.replace(
        plan,
        warmup=1,
        repetitions=7,
        budget_s=1.0,
        turn_triad_bytes=turn_bytes,
        turn_gemm_weight_bytes=turn_bytes,
    )


def validation_steps(
    accelerator: Accelerator,
    catalog: pd.DataFrame,
    chosen: Sequence[Case],
    quick: bool,
    run_id: str,
    measurements: pd.DataFrame | None = None,
    supports: Capability = storage_unsupported_reason,
    free_bytes: Callable[[Any], int | None] = free_memory_bytes,
    small: bool = False,
) -> tuple[list[Step], list[CaseResult]]:
    """The ceiling probes (none where ``measurements`` of this run already hold them), then
    one step per case; each case's result is appended to the returned list as its step runs.
    ``small``: fewer turns per case (:func:`ceiling_plan`)."""
    target = single_target(accelerator, catalog)
    plan = ceiling_plan(accelerator.platform, quick, [c.compute_dtype for c in chosen], small)
    measured: list[Row] = (
        []
        if measurements is None
        else [{str(k): v for k, v in r.items()} for r in measurements.to_dict("records")]
    )
    results: list[CaseResult] = []

    def keep(run: Callable[[], list[Row]]) -> Callable[[], list[Row]]:
        def kept() -> list[Row]:
            rows = run()
            measured.extend(rows)
            return rows

        return kept

    ceiling_steps = [] if measurements is not None else device_steps(target, plan, run_id)
    steps = [Step(s.label, keep(s.run)) for s in ceiling_steps]
    rows = Rows(target, run_id, software_versions())

    def run_case(case: Case) -> Callable[[], list[Row]]:
        def run() -> list[Row]:
            frame = pd.DataFrame(measured)
            found = (
                None if frame.empty else ceilings(frame, case.compute_dtype, target.device_index)
            )
            result = measure_case(case, rows, plan, found, supports, free_bytes)
            results.append(result)
            return [result.row]

        return run

    steps += [Step(f"{target.label}: {case.name}", run_case(case)) for case in chosen]
    return steps, results


def validate_host(
    accelerators: Sequence[Accelerator],
    catalog: pd.DataFrame,
    run_id: str,
    quick: bool = True,
    measurements: pd.DataFrame | None = None,
    progress: Callable[[str], None] | None = None,
    small: bool = False,
) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    """The built-in cases on the first device of each kind: measurement rows (the ceiling
    probes' too, where ``measurements`` does not hold them) and one record per case;
    ``small``: :func:`small_cases` only."""
    first = {a.device_kind: a for a in reversed(accelerators)}
    steps: list[Step] = []
    results: list[list[CaseResult]] = []
    for accelerator in first.values():
        platform = accelerator.platform
        chosen = small_cases(platform) if small else cases(None, platform, quick)
        more, found = validation_steps(
            accelerator, catalog, chosen, quick, run_id, measurements, small=small
        )
        steps += more
        results.append(found)
    frame = run_steps(steps, f"validation on {accelerators[0].host}", progress)
    return frame, [record(r) for found in results for r in found]


def record(result: CaseResult) -> dict[str, Any]:
    """One case as plain JSON values (null, never NaN)."""
    c, p = result.case, result.prediction
    plain: dict[str, Any] = strict(
        {
            "case": c.name,
            "phase": c.phase,
            "batch": c.batch,
            "context": c.context,
            "predicted_step_s": result.predicted_step_s,
            "measured_step_s": result.measured_step_s,
            "ratio": result.ratio,
            "model_bytes": result.model.bytes,
            "xla_bytes": result.xla_bytes,
            "model_flops": result.model.flops,
            "xla_flops": result.xla_flops,
            "xla_gather_bytes": result.xla_gather_bytes,
            "layers_run": result.layers_run,
            "layers_total": c.arch.layers,
            "full_model_step_s": result.full_model_step_s,
            "dtype": c.compute_dtype,
            "status": str(result.row["status"]),
            "reason": result.reason or None,
            "device_kind": str(result.row["device_kind"]),
            "roofline_step_s": result.roofline_step_s,
            "bandwidth_bytes_per_s": p.bandwidth_bytes_per_s if p else None,
            "predicted_memory_s": p.memory_s if p else None,
            "predicted_compute_s": p.compute_s if p else None,
            "predicted_parts": [_part(t) for t in p.parts] if p else [],
        }
    )
    return plain


def _part(t: PartTime) -> dict[str, Any]:
    """One part of the prediction: its time, memory and compute times, and the GEMM shape and
    rate (measured here) its FLOPs ran at."""
    rows, k, n = t.gemm or (None, None, None)
    return {
        "part": t.name,
        "step_s": t.step_s,
        "memory_s": t.memory_s,
        "compute_s": t.compute_s,
        "bound": t.bound,
        "gemm_rows": rows,
        "gemm_in_features": k,
        "gemm_out_features": n,
        "gemm_flops_per_s": t.flops_per_s,
    }

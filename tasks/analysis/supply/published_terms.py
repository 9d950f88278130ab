"""The published runs as a fit and a backtest read them: each run's time terms at efficiency 1
(memory, matmuls, attention, communication; the routed experts', the prompts riding on its
steps and the static batch's prefill apart) and its measured step time.

The measured step time is the metric itself (``tpot_s``, ``ttft_s``) or the step's tokens
over the metric (``output_tokens_per_s``: batch / value; ``prefill_tokens_per_s``: batch ·
prompt / value); all of a run's devices are one replica, laid out as its ``layout`` cell
says, else as the engine would by default
(:func:`tasks.analysis.workload.layout.engine_layout`). A decode run is predicted at its mean
context, prompt plus half the generated tokens (the prompt alone where the source does not
state how many it generated).

How a run was measured counts as much as what ran:

- ``output_tokens_per_s`` with a stated output length is generated tokens over the whole run
  (``published_runs.md``), which includes the batch's prefill: the prediction adds that
  prefill step, spread over the generated tokens.
- ``tpot_s`` at a batch above 1 with stated prompt and output lengths is a serving run's mean
  time per output token at that concurrency: its steps carry the prompts that arrive
  (:mod:`tasks.analysis.supply.mixed_step`), and it is predicted as that mixed step.
- A decode run's routed-expert matmuls run at its class's fitted share of the dense
  efficiencies (:mod:`tasks.analysis.supply.published_fit`).
- A blank ``kv_precision`` is the model's dtype, unless the run's batch at its final context
  would not fit its devices' memory with that cache while it fits with a cache at the weights'
  precision: the engine that ran it must have stored it so (the run's notes say so).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Final

import pandas as pd

from hardware_profiles.errors import MemwallError
from hardware_profiles.published_runs import source_page
from hardware_profiles.schema import peak_column
from tasks.analysis.supply.efficiency import Efficiency
from tasks.analysis.supply.engine_generation import run_generation
from tasks.analysis.supply.mixed_step import mixed_step
from tasks.analysis.supply.predict import predict
from tasks.analysis.workload.layout import LayoutError, parse_layout
from tasks.analysis.workload.presets import PRESETS
from tasks.analysis.workload.workload_model import Architecture, Estimate, estimate

_UNIT: Final = Efficiency(1.0, "", 0.0)


def measured_step_s(metric: str, value: float, batch: int, input_tokens: int) -> float:
    """A run's step time from its metric. The map is its own inverse: given a step time it
    returns the metric, which is how a prediction is stated in the run's own terms."""
    if metric in ("tpot_s", "ttft_s"):
        return value
    if metric == "output_tokens_per_s":
        return batch / value
    return batch * input_tokens / value


def _kv_precision(
    arch: Architecture, run: Any, accelerator: dict[str, Any], generated: int
) -> tuple[str | None, str | None]:
    """The run's KV precision, and a note where it was deduced (the module docstring)."""
    if run.kv_precision:
        return str(run.kv_precision), None
    if run.phase != "decode" or run.weight_precision == arch.dtype:
        return None, None
    final = int(run.input_tokens) + generated
    memory = float(accelerator["memory_bytes"])

    def fits(kv: str | None) -> bool:
        at_end = estimate(
            arch, phase="decode", batch=int(run.batch), context=final,
            weights=run.weight_precision, kv=kv, activations=run.compute_precision,
        )  # fmt: skip
        return at_end.fits(memory, int(run.devices), 1.0)

    if fits(None) or not fits(run.weight_precision):
        return None, None
    return run.weight_precision, (
        f"KV precision not stated: {run.weight_precision}, since batch {run.batch} at "
        f"{final} tokens fits {run.devices} x {run.hardware} only with a "
        f"{run.weight_precision} cache"
    )


def under_load(run: Any) -> bool:
    """Whether a run is a serving run's time per output token at a concurrency above 1 with
    its prompt and output lengths stated: its steps carry arriving prompts."""
    return bool(
        run.phase == "decode"
        and run.metric == "tpot_s"
        and int(run.batch) > 1
        and not pd.isna(run.output_tokens)
        and not pd.isna(run.input_tokens)
    )


def _text(value: Any) -> str:
    """A text cell, empty where the file left it empty."""
    return "" if value is None or pd.isna(value) else str(value)


def _prefill_of(
    arch: Architecture, run: Any, accelerator: dict[str, Any], kv: str | None
) -> Estimate | None:
    """The batch's prefill a static-batching run's throughput includes (None for others)."""
    if run.phase != "decode" or run.metric != "output_tokens_per_s" or pd.isna(run.output_tokens):
        return None
    return estimate(
        arch, phase="prefill", batch=int(run.batch), context=int(run.input_tokens),
        weights=run.weight_precision, kv=kv, activations=run.compute_precision,
    )  # fmt: skip


def prepare(runs: pd.DataFrame, catalog: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """Each run's time terms at efficiency 1 (memory, compute, communication, and those of
    the prefill its metric includes, per generated token) and its measured step time; rows
    whose preset, hardware or precision this memwall cannot use are skipped."""
    known = catalog.set_index("accelerator_id", drop=False)
    rows: list[dict[str, object]] = []
    skipped: list[str] = []
    each: Iterator[Any] = runs.itertuples(index=False)  # typed loosely: columns of mixed types
    for number, run in enumerate(each, start=1):
        where = f"row {number} ({run.run_id})"
        if run.model_preset not in PRESETS:
            skipped.append(f"{where}: preset {run.model_preset!r} is unknown to this memwall")
            continue
        if run.hardware not in known.index:
            skipped.append(f"{where}: accelerator {run.hardware!r} is not in the catalog")
            continue
        unstated = [c for c in ("batch", "input_tokens") if pd.isna(getattr(run, c))]
        if unstated:
            skipped.append(
                f"{where}: the source does not state its {' or '.join(unstated)}, which a "
                "prediction needs"
            )
            continue
        generated = 0 if pd.isna(run.output_tokens) else int(run.output_tokens)
        batch, prompt = int(run.batch), int(run.input_tokens)
        context = prompt + (generated // 2 if run.phase == "decode" else 0)
        arch = PRESETS[run.model_preset]
        accelerator = known.loc[run.hardware].to_dict()
        stated = str(getattr(run, "layout", "") or "")
        try:
            layout = parse_layout(stated) if stated else None
            kv, deduced = _kv_precision(arch, run, accelerator, generated)
            est = estimate(
                arch,
                phase=run.phase,
                batch=batch,
                context=context,
                weights=run.weight_precision,
                kv=kv,
                activations=run.compute_precision,
            )
            devices = int(run.devices)
            unit = predict(arch, est, accelerator, _UNIT, _UNIT, devices, layout=layout)
            prefill = _prefill_of(arch, run, accelerator, kv)
            prefill_unit = (
                None
                if prefill is None
                else predict(arch, prefill, accelerator, _UNIT, _UNIT, devices, layout=layout)
            )
        except LayoutError as exc:
            skipped.append(f"{where}, column 'layout': {exc}")
            continue
        except MemwallError as exc:
            skipped.append(f"{where}: {exc}")
            continue
        share = 0.0 if prefill_unit is None else 1.0 / generated
        loaded = (
            mixed_step(arch, unit, est, accelerator, _UNIT, prompt, generated)
            if under_load(run)
            else None
        )
        expert_memory_s, expert_compute_s = 0.0, 0.0
        if run.phase == "decode":
            figures = unit.figures
            expert_memory_s = figures.expert_read_bytes_per_device / float(
                accelerator["mem_bandwidth_bytes_per_s"]
            )
            expert_compute_s = figures.expert_flops_per_device / float(
                accelerator[peak_column(est.precision)]
            )
        rows.append(
            {
                **run._asdict(),
                "vendor": str(accelerator["vendor"]),
                "source": source_page(str(run.source_url)),
                "architecture_class": arch.architecture_class,
                "engine_generation": run_generation(
                    _text(run.engine), _text(run.engine_version), _text(run.note)
                ),
                "context": context,
                "layers": arch.layers,
                # Under load, the chunk's bytes beyond the weights ride with the step's own.
                "memory_s_at_1": (loaded.memory_time_s if loaded else unit.memory_time_s)
                - expert_memory_s,
                # Matmuls at efficiency 1; a prefill's attention at its own, not fitted.
                "compute_s_at_1": unit.compute_time_s - unit.attention_time_s - expert_compute_s,
                "attention_s": unit.attention_time_s,
                "communication_s": unit.communication_time_s
                + (loaded.chunk_link_time_s if loaded else 0.0),
                "expert_memory_s_at_1": expert_memory_s,
                "expert_compute_s_at_1": expert_compute_s,
                "load_compute_s_at_1": loaded.chunk_matmul_time_s if loaded else 0.0,
                "load_attention_s": loaded.chunk_attention_time_s if loaded else 0.0,
                "prefill_memory_s_at_1": share
                * (prefill_unit.memory_time_s if prefill_unit else 0),
                "prefill_compute_s_at_1": share
                * (
                    prefill_unit.compute_time_s - prefill_unit.attention_time_s
                    if prefill_unit
                    else 0
                ),
                "prefill_attention_s": share
                * (prefill_unit.attention_time_s if prefill_unit else 0),
                "prefill_communication_s": share
                * (prefill_unit.communication_time_s if prefill_unit else 0),
                "prefill_steps": share,
                "measured_step_s": measured_step_s(run.metric, run.measured_value, batch, prompt),
                "_notes": [] if deduced is None else [deduced],
                "_arch": arch,
                "_layout": unit.layout,
                "_estimate": est,
                "_prefill": prefill,
                "_under_load": loaded is not None,
                "_accelerator": accelerator,
            }
        )
    return pd.DataFrame(rows), skipped

"""``memwall workloads estimate|list|explain``: describe the workloads an audit projects, in
minutes (``add`` and ``import`` write them: ``flows.cli_workloads_add``). Library imports
happen inside the commands to keep ``memwall --help`` instant.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from flows.cli_common import (
    CatalogOption,
    WorkloadsOption,
    print_json,
    require_positive,
    warn,
)
from flows.timings import STARTED, Stopwatch
from hardware_profiles.errors import MemwallError
from hardware_profiles.prefixes import si

if TYPE_CHECKING:
    import pandas as pd

    from tasks.analysis.workload.workload_model import Architecture, Estimate

stdout = Console(highlight=False)

workloads_app = typer.Typer(
    help="Estimate, add, list, import and explain workloads (the workloads Parquet table).",
    no_args_is_help=True,
)

DEFAULT_FIT_ACCELERATORS = ("nvidia-h100-sxm", "nvidia-h200-sxm", "nvidia-b200")


# --- model options shared by estimate and add ----------------------------------------------

PresetOption = Annotated[
    str | None,
    typer.Option("--preset", help="Model preset, e.g. llama-3.1-70b (see --list-presets)."),
]
ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config", help="A Hugging Face config.json on disk, instead of --preset.", dir_okay=False
    ),
]
PhaseOption = Annotated[
    str, typer.Option("--phase", help="decode, prefill or training (add: also other).")
]
BatchOption = Annotated[
    int, typer.Option("--batch", help="Sequences per step (decode/prefill/training).")
]
ContextOption = Annotated[
    int,
    typer.Option(
        "--context",
        help="Tokens per sequence: KV cache length (decode), prompt (prefill), sequence "
        "length (training).",
    ),
]
WeightsOption = Annotated[
    str,
    typer.Option(
        "--weights",
        help="Weight storage: fp32 bf16 fp16 fp8 fp6 (MXFP6) fp4 (NVFP4) int8 int4 (groups "
        "of 128); scales counted.",
    ),
]
KvOption = Annotated[
    str | None, typer.Option("--kv", help="KV cache precision (default: the model's dtype).")
]
HeadOption = Annotated[
    str | None,
    typer.Option(
        "--head",
        help="Embedding and LM head precision (default: the model's dtype, as quantized "
        "checkpoints ship).",
    ),
]
ActivationsOption = Annotated[
    str,
    typer.Option(
        "--activations",
        "--precision",
        help="Activation precision, the one the matmuls run at (the workload's precision).",
    ),
]
RecomputeOption = Annotated[
    bool, typer.Option("--recompute", help="Training with full activation recomputation.")
]


def architecture_from_options(preset: str | None, config: Path | None) -> Architecture:
    from tasks.analysis.workload.hf_config import import_hf_config
    from tasks.analysis.workload.presets import preset as find_preset

    if (preset is None) == (config is None):
        raise MemwallError("give exactly one of --preset NAME or --config config.json")
    if config is not None:
        imported = import_hf_config(config)
        for warning in imported.warnings:
            warn(warning)
        return imported.architecture
    assert preset is not None
    return find_preset(preset)


def estimate_from_options(
    arch: Architecture,
    phase: str,
    batch: int,
    context: int,
    weights: str,
    kv: str | None,
    activations: str,
    recompute: bool,
    head: str | None = None,
) -> Estimate:
    from tasks.analysis.workload.workload_model import estimate

    require_positive("--batch", batch)
    require_positive("--context", context)
    result = estimate(
        arch,
        phase=phase,
        batch=batch,
        context=context,
        weights=weights,
        kv=kv,
        activations=activations,
        head=head,
        recompute=recompute,
    )
    for warning in result.warnings:
        warn(warning)
    return result


def _fit(result: Estimate, catalog: pd.DataFrame, accelerators: list[str]) -> dict[str, int]:
    import pandas as pd

    from hardware_profiles.catalog import require_known

    require_known(catalog, pd.Series(accelerators), "--fit")
    memory = catalog.set_index("accelerator_id")["memory_bytes"]
    return {a: result.devices_needed(float(memory[a])) for a in accelerators}


def _quantized_bytes_per_parameter(result: Estimate) -> float:
    """Bytes per parameter of the blocks' weights alone, the ones ``--weights`` quantizes:
    their format's bytes per element, scales included (0.5625 for NVFP4). The whole-model
    figure is higher where the embedding and LM head stay 16-bit."""
    from tasks.analysis.workload.workload_model import bytes_per_element

    return bytes_per_element(result.weights)


def _estimate_json(result: Estimate, fits: dict[str, int]) -> dict[str, Any]:
    return {
        **result.workload_columns(),
        "arithmetic_intensity_flops_per_byte": result.arithmetic_intensity,
        "components": {
            name: {"flops": c.flops, "bytes": c.bytes} for name, c in result.components.items()
        },
        "kv_bytes_per_token": result.kv_bytes_per_token,
        "kv_cache_bytes": result.kv_cache_bytes,
        "weight_bytes": result.weight_bytes,
        "weight_bytes_per_parameter": result.weight_bytes / result.parameters_total,
        "quantized_bytes_per_parameter": _quantized_bytes_per_parameter(result),
        "head_precision": result.head,
        "parameters_total": result.parameters_total,
        "parameters_active": result.parameters_active,
        "distinct_experts_per_layer": result.distinct_experts_per_layer,
        "devices_needed": fits,
        "warnings": list(result.warnings),
    }


def _print_estimate(result: Estimate, fits: dict[str, int]) -> None:
    from hardware_profiles.schema import GB

    unit = result.unit
    stdout.print(
        f"{result.model} {result.phase}, batch {result.batch}, context {result.context}; "
        f"weights {result.weights} (embedding and LM head {result.head}), KV {result.kv}, "
        f"activations {result.activations}",
        markup=False,
    )
    table = Table(title=f"per {unit}")
    for header in ("component", "FLOPs", "bytes", "share of bytes"):
        table.add_column(header, justify="left" if header == "component" else "right")
    total_bytes = result.bytes_per_unit
    for name, cost in result.components.items():
        if cost.flops == 0 and cost.bytes == 0:
            continue
        table.add_row(
            name,
            si(cost.flops, "FLOP") if cost.flops else "-",
            si(cost.bytes, "B") if cost.bytes else "-",
            f"{cost.bytes / total_bytes:.1%}",
        )
    table.add_row(
        "total", si(result.flops_per_unit, "FLOP"), si(total_bytes, "B"), "100%", style="bold"
    )
    stdout.print(table)
    stdout.print(
        f"arithmetic intensity {result.arithmetic_intensity:.3g} FLOP/byte; KV cache "
        f"{result.kv_bytes_per_token:,.0f} bytes per token",
        markup=False,
    )
    stdout.print(
        f"memory: {result.memory_footprint_bytes / GB:,.1f} GB (weights "
        f"{result.weight_bytes / GB:,.1f} GB, KV cache {result.kv_cache_bytes / GB:,.1f} GB); "
        f"{result.parameters_total / 1e9:,.1f}B parameters, "
        f"{result.parameters_active / 1e9:,.1f}B active per token",
        markup=False,
    )
    stdout.print(
        f"weights: {result.weight_bytes / result.parameters_total:.4g} bytes per parameter "
        f"over the whole model, {_quantized_bytes_per_parameter(result):.4g} over the "
        f"{result.weights} block weights (embedding and LM head {result.head})",
        markup=False,
    )
    if fits:
        needed = ", ".join(f"{a} x{n}" for a, n in fits.items())
        stdout.print(f"devices needed (90% of memory usable): {needed}", markup=False)


@workloads_app.command("estimate")
def estimate_command(
    preset: PresetOption = None,
    config: ConfigOption = None,
    phase: PhaseOption = "decode",
    batch: BatchOption = 1,
    context: ContextOption = 4096,
    weights: WeightsOption = "bf16",
    kv: KvOption = None,
    activations: ActivationsOption = "bf16",
    head: HeadOption = None,
    recompute: RecomputeOption = False,
    fit: Annotated[
        list[str] | None,
        typer.Option(
            "--fit",
            help="Accelerator id to size the deployment for (repeatable; default H100, "
            "H200, B200).",
        ),
    ] = None,
    catalog: CatalogOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the figures as JSON.")] = False,
    list_presets: Annotated[
        bool, typer.Option("--list-presets", help="List the model presets and exit.")
    ] = False,
) -> None:
    """FLOPs and bytes per unit of a model in a phase, by component, and where it fits."""
    if list_presets:
        from tasks.analysis.workload.presets import PRESETS

        for name, arch in PRESETS.items():
            print(f"{name}\t{arch.source}")
        return
    from hardware_profiles.catalog import load_catalog

    watch = Stopwatch(STARTED)
    watch.lap("start-up")
    result = estimate_from_options(
        architecture_from_options(preset, config),
        phase,
        batch,
        context,
        weights,
        kv,
        activations,
        recompute,
        head,
    )
    models = load_catalog(catalog)
    if not fit:
        fit = [a for a in DEFAULT_FIT_ACCELERATORS if a in set(models["accelerator_id"])]
    fits = _fit(result, models, list(fit))
    watch.lap("estimate")
    if as_json:
        print_json(_estimate_json(result, fits), timings=watch.timings())
    else:
        _print_estimate(result, fits)


def _load_workloads(path: Path | None) -> tuple[pd.DataFrame, str]:
    from hardware_profiles.parquet import read_table
    from hardware_profiles.schema import WORKLOADS
    from tasks.analysis.workload.examples import SOURCE, example_workloads

    if path is None:
        return example_workloads(), SOURCE
    return read_table(path, WORKLOADS), str(path)


@workloads_app.command("list")
def list_command(
    workloads: WorkloadsOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the rows as JSON.")] = False,
) -> None:
    """The workloads of a file (default: the built-in examples) with their intensity."""
    watch = Stopwatch(STARTED)
    frame, _ = _load_workloads(workloads)
    frame = frame.assign(
        arithmetic_intensity_flops_per_byte=frame["flops_per_unit"] / frame["bytes_per_unit"]
    )
    watch.lap("load")
    if as_json:
        print_json(frame, timings=watch.timings())
        return
    table = Table()
    for header in (
        "id",
        "pool",
        "phase",
        "precision",
        "FLOPs/unit",
        "bytes/unit",
        "AI",
        "demand",
        "growth/yr",
        "owner",
    ):
        table.add_column(header)
    records: list[dict[str, Any]] = frame.to_dict("records")  # type: ignore[assignment]
    for r in records:
        table.add_row(
            r["workload_id"],
            r["pool"],
            r["phase"],
            r["precision"],
            si(float(r["flops_per_unit"]), "FLOP"),
            si(float(r["bytes_per_unit"]), "B"),
            f"{float(r['arithmetic_intensity_flops_per_byte']):.3g}",
            f"{si(float(r['demand_units_per_s']), '')}{r['unit']}/s",
            f"{float(r['demand_growth_per_year']):+.0%}",
            r["owner"],
        )
    stdout.print(table)


@workloads_app.command("explain")
def explain_command(
    workload_id: Annotated[str, typer.Argument(help="The workload_id to explain.")],
    workloads: WorkloadsOption = None,
) -> None:
    """Where a workload's figures come from: its row, and the model's breakdown if it has one."""
    import pandas as pd

    from hardware_profiles.errors import ProfileError
    from tasks.analysis.workload.presets import estimate_workload

    frame, source = _load_workloads(workloads)
    match = frame[frame["workload_id"] == workload_id]
    if match.empty:
        raise ProfileError(
            source,
            f"has no workload {workload_id!r}; its workloads are {', '.join(frame['workload_id'])}",
            column="workload_id",
        )
    row = match.iloc[0]
    for column, value in row.items():
        if pd.notna(value):
            stdout.print(f"{column}: {value}", markup=False)
    ai = row["flops_per_unit"] / row["bytes_per_unit"]
    stdout.print(f"arithmetic intensity: {ai:.3g} FLOP/byte", markup=False)
    result = estimate_workload({str(k): v for k, v in row.items()})
    if result is None:
        stdout.print("figures given by hand (no model preset, batch and context to derive them)")
        return
    _print_estimate(result, {})
    for column, derived in (
        ("flops_per_unit", result.flops_per_unit),
        ("bytes_per_unit", result.bytes_per_unit),
    ):
        stored = row[column]
        if abs(float(stored) - derived) > 1e-6 * derived:
            warn(
                f"{column} in the file ({float(stored):.4g}) differs from the model's "
                f"({derived:.4g}); the file's figure is the one the audit uses"
            )

"""``memwall workloads add|import``: write workloads into a workloads file.

Every write validates the whole resulting table first and replaces the file atomically, so a
bad row leaves the file as it was. Library imports happen inside the commands to keep
``memwall --help`` instant.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from flows.cli_common import (
    CatalogOption,
    RoadmapOption,
    require_positive,
    stderr,
    warn,
)
from flows.cli_training_options import (
    GlobalBatchTokensOption,
    OptimizerOption,
    training_columns,
)
from hardware_profiles.errors import MemwallError
from hardware_profiles.months import add_months, parse_month, this_month

if TYPE_CHECKING:
    import pandas as pd

    from tasks.analysis.workload.architecture import Architecture


from flows.cli_workloads import (
    ActivationsOption,
    BatchOption,
    ConfigOption,
    ContextOption,
    KvOption,
    PhaseOption,
    PresetOption,
    RecomputeOption,
    WeightsOption,
    architecture_from_options,
    estimate_from_options,
    workloads_app,
)


def _append_workloads(new: pd.DataFrame, to: Path, source: str) -> pd.DataFrame:
    """Validate existing + new rows as one table and write it atomically, one writer at a
    time (two ``workloads add --to`` on one file at once keep both rows).

    A bad new row is reported against ``source`` with its row number in the new rows; a
    clash with the existing file (a duplicate id) against the file, with the combined row.
    """
    import pandas as pd

    from hardware_profiles.parquet import one_writer, read_table, validate_frame, write_table
    from hardware_profiles.schema import WORKLOADS
    from tasks.profiles import require_known_engines

    validated = validate_frame(new, WORKLOADS, source)
    require_known_engines(validated, source)
    with one_writer(to):
        existing = read_table(to, WORKLOADS) if to.exists() else None
        combined = (
            validated if existing is None else pd.concat([existing, validated], ignore_index=True)
        )
        combined = validate_frame(combined, WORKLOADS, to)
        write_table(combined, to, WORKLOADS)
    return combined


def _check_pools(
    workloads: pd.DataFrame,
    roadmap_path: Path | None,
    catalog_path: Path | None,
    source: str,
) -> None:
    """Each workload's precision needs a peak on its pool's hardware; a pool the roadmap lacks
    is only warned about (its roadmap may not be written yet)."""
    from hardware_profiles.catalog import load_catalog, require_peak
    from hardware_profiles.examples import example_roadmap
    from hardware_profiles.parquet import read_table
    from hardware_profiles.schema import ROADMAP

    roadmap = example_roadmap() if roadmap_path is None else read_table(roadmap_path, ROADMAP)
    catalog = load_catalog(catalog_path)
    pools = set(roadmap["pool"])
    where = "the built-in example roadmap" if roadmap_path is None else str(roadmap_path)
    for position, (workload, pool, precision) in enumerate(
        zip(workloads["workload_id"], workloads["pool"], workloads["precision"], strict=True)
    ):
        if pool not in pools:
            known = ", ".join(sorted(pools))
            warn(f"pool {pool!r} has no hardware in {where}; its pools are {known}")
            continue
        require_peak(catalog, roadmap, pool, precision, source, row=position + 1, workload=workload)


def _fill_from_model(frame: pd.DataFrame, source: str) -> pd.DataFrame:
    """Rows naming a model_preset but no FLOPs/bytes get them from the workload model."""
    import pandas as pd

    from hardware_profiles.errors import ProfileError
    from tasks.analysis.workload.presets import UnknownPresetError, preset
    from tasks.analysis.workload.workload_model import WorkloadModelError, estimate

    figures = ("flops_per_unit", "bytes_per_unit", "memory_footprint_bytes")
    if "model_preset" not in frame:
        return frame
    derived_columns = (*figures, "weight_precision", "kv_precision", "layers", "unit")
    columns = [*frame.columns, *(c for c in derived_columns if c not in frame)]
    records: list[dict[str, Any]] = frame.to_dict("records")  # type: ignore[assignment]
    for position, values in enumerate(records):
        values = {c: values.get(c) for c in columns}
        records[position] = values
        if pd.isna(values["model_preset"]) or all(pd.notna(values[c]) for c in figures):
            continue
        try:
            arch = preset(str(values["model_preset"]))
        except UnknownPresetError as exc:
            raise ProfileError(source, str(exc), row=position + 1, column="model_preset") from None
        for needed in ("phase", "precision", "batch", "context_tokens"):
            if needed not in values or pd.isna(values[needed]):
                raise ProfileError(
                    source,
                    f"needs {needed} to derive its figures from model_preset",
                    row=position + 1,
                    column=needed,
                )
        weight, kv = values["weight_precision"], values["kv_precision"]
        try:
            result = estimate(
                arch,
                phase=str(values["phase"]),
                batch=int(values["batch"]),
                context=int(values["context_tokens"]),
                weights=str(weight) if pd.notna(weight) else str(values["precision"]),
                kv=str(kv) if pd.notna(kv) else None,
                activations=str(values["precision"]),
            )
        except (WorkloadModelError, TypeError, ValueError) as exc:
            raise ProfileError(
                source, f"cannot derive figures from model_preset: {exc}", row=position + 1
            ) from None
        for warning in result.warnings:
            warn(f"{source}, row {position + 1}: {warning}")
        derived = result.workload_columns()
        values.update({c: derived[c] for c in derived_columns if c != "unit"})
        if pd.isna(values["unit"]):
            values["unit"] = result.unit
    return pd.DataFrame(records, columns=columns)


def _start_month(value: str) -> dt.date:
    """``YYYY-MM`` as the first day of that month, from this month to the longest horizon."""
    from tasks.analysis.projection.horizon import MAX_HORIZON_MONTHS

    month = parse_month(value, "--start-month")
    first = this_month()
    last = add_months(first, MAX_HORIZON_MONTHS - 1)
    if not first <= month <= last:
        raise MemwallError(
            f"--start-month {value} is outside {first:%Y-%m} to {last:%Y-%m} (this "
            f"month to {MAX_HORIZON_MONTHS} months ahead, the longest horizon memwall projects)"
        )
    return month


def _check_load(phase: str, prompt: int | None, output: int | None) -> None:
    """--prompt and --output: both or neither, positive, on a decode workload."""
    if (prompt is None) != (output is None):
        raise MemwallError("--prompt and --output go together (decode under load)")
    if prompt is None or output is None:
        return
    require_positive("--prompt", prompt)
    require_positive("--output", output)
    if phase != "decode":
        raise MemwallError(f"--prompt/--output describe decode under load, not {phase}")


def _check_layout(arch: Architecture, text: str) -> None:
    """A layout that splits the model, else its one-line refusal listing the valid ones."""
    from tasks.analysis.workload.layout import check_layout, parse_layout

    check_layout(arch, parse_layout(text))


@workloads_app.command("add")
def add_command(
    owner: Annotated[str, typer.Option("--owner", help="Who runs it (team or person).")],
    pool: Annotated[str, typer.Option("--pool", help="Roadmap pool it runs on.")],
    demand: Annotated[float, typer.Option("--demand", help="Units per second needed today.")],
    to: Annotated[
        Path,
        typer.Option(
            "--to", help="Workloads Parquet file to append to (created if absent).", dir_okay=False
        ),
    ],
    workload_id: Annotated[
        str | None,
        typer.Option(
            "--id", help="Unique workload id (default: MODEL-PHASE, e.g. llama-3.1-8b-decode)."
        ),
    ] = None,
    name: Annotated[str | None, typer.Option("--name", help="Readable name.")] = None,
    growth: Annotated[
        float, typer.Option("--growth", help="Demand growth per year: 0.8 = +80 %/year.")
    ] = 0.0,
    share: Annotated[
        float | None,
        typer.Option("--share", help="Fraction of the pool it gets (default: by demand)."),
    ] = None,
    unit: Annotated[
        str | None,
        typer.Option("--unit", help="token, step, request or sample (default: the phase's)."),
    ] = None,
    preset: PresetOption = None,
    config: ConfigOption = None,
    phase: PhaseOption = "decode",
    batch: BatchOption = 1,
    context: ContextOption = 4096,
    weights: WeightsOption = "bf16",
    kv: KvOption = None,
    activations: ActivationsOption = "bf16",
    recompute: RecomputeOption = False,
    flops_per_unit: Annotated[
        float | None,
        typer.Option("--flops-per-unit", help="Your own figure, instead of a model."),
    ] = None,
    bytes_per_unit: Annotated[
        float | None,
        typer.Option("--bytes-per-unit", help="Your own figure, instead of a model."),
    ] = None,
    memory_bytes: Annotated[
        float | None,
        typer.Option("--memory-bytes", help="Your own memory footprint, instead of a model."),
    ] = None,
    tpot_slo: Annotated[
        float | None,
        typer.Option("--tpot-slo", help="Decode target: seconds per output token (e.g. 0.05)."),
    ] = None,
    ttft_slo: Annotated[
        float | None,
        typer.Option("--ttft-slo", help="Prefill target: seconds to the first token."),
    ] = None,
    max_devices_per_replica: Annotated[
        int | None,
        typer.Option(
            "--max-devices-per-replica",
            help="Most devices one replica may span (tensor parallel; default 8, one node).",
        ),
    ] = None,
    layout: Annotated[
        str | None,
        typer.Option(
            "--layout",
            help="Serving layout of a replica, e.g. tp=8 or dp_attention=8,ep=8 (default: the "
            "one an engine launches the model with); with --phase training, the training "
            "layout, e.g. dp=64,tp=8,pp=16.",
        ),
    ] = None,
    prompt: Annotated[
        int | None,
        typer.Option(
            "--prompt",
            help="Decode under load: prompt tokens of each request (with --output).",
        ),
    ] = None,
    output: Annotated[
        int | None,
        typer.Option("--output", help="Decode under load: output tokens of each request."),
    ] = None,
    engine: Annotated[
        str | None,
        typer.Option(
            "--engine",
            help="Serving engine, NAME or 'NAME VERSION' (e.g. 'SGLang 0.4.3'): the projection "
            "takes its generation's fitted routed-expert share. Default: a current engine.",
        ),
    ] = None,
    start_month: Annotated[
        str | None,
        typer.Option(
            "--start-month",
            help="YYYY-MM the workload starts: no demand before it; --demand is its demand then.",
        ),
    ] = None,
    roadmap: RoadmapOption = None,
    catalog: CatalogOption = None,
    global_batch_tokens: GlobalBatchTokensOption = None,
    micro_batch: Annotated[
        int | None,
        typer.Option("--micro-batch", help="Training: sequences per data-parallel rank."),
    ] = None,
    zero: Annotated[
        int | None, typer.Option("--zero", help="Training: ZeRO stage 0-3 (FSDP is 3).")
    ] = None,
    optimizer: OptimizerOption = None,
) -> None:
    """Append one validated workload to a workloads file, from a model or your own figures.

    --tpot-slo/--ttft-slo set a latency target (a latency wall when batch 1 misses it on the
    pool's hardware), --max-devices-per-replica caps a replica (a capacity wall when the batch
    does not fit), --layout says how a replica is split (checked against the model),
    --prompt/--output give a decode workload's request shape (its steps then carry the
    arriving prompts), --engine names the engine that serves it (a MoE model's routed experts
    then run at that engine generation's fitted share), --start-month starts its demand later.
    A training workload from a model may state its training layout (--layout,
    --global-batch-tokens, --micro-batch, --zero, --optimizer; --recompute then means full
    recomputation, else selective): the audit's training page times it."""
    import pandas as pd

    from hardware_profiles.schema import WORK_UNITS

    require_positive("--demand", demand)
    starts = None if start_month is None else _start_month(start_month)
    _check_load(phase, prompt, output)
    if unit is not None and unit not in WORK_UNITS:
        raise MemwallError(f"--unit {unit!r} is not a unit; valid: {', '.join(WORK_UNITS)}")
    own = (flops_per_unit, bytes_per_unit, memory_bytes)
    row: dict[str, object]
    if preset is None and config is None:
        if any(v is None for v in own):
            raise MemwallError(
                "give --preset NAME or --config config.json, or all of --flops-per-unit, "
                "--bytes-per-unit and --memory-bytes"
            )
        row = {
            "phase": phase,
            "precision": activations,
            "unit": unit or "request",
            "flops_per_unit": flops_per_unit,
            "bytes_per_unit": bytes_per_unit,
            "memory_footprint_bytes": memory_bytes,
        }
    else:
        if any(v is not None for v in own):
            raise MemwallError(
                "--flops-per-unit/--bytes-per-unit/--memory-bytes replace a model; give either"
            )
        result = estimate_from_options(
            architecture_from_options(preset, config),
            phase,
            batch,
            context,
            weights,
            kv,
            activations,
            recompute,
        )
        if unit is not None and unit != result.unit:
            raise MemwallError(
                f"--unit {unit!r} does not match phase {phase}, whose figures are per {result.unit}"
            )
        row = result.workload_columns()
        workload_id = workload_id or f"{result.model}-{phase}"
        if phase == "training" or global_batch_tokens is not None:
            row.update(
                training_columns(
                    architecture_from_options(preset, config), phase, context, activations,
                    layout, global_batch_tokens, micro_batch, zero, optimizer, recompute,
                )
            )  # fmt: skip
        elif layout is not None:
            _check_layout(architecture_from_options(preset, config), layout)
    if workload_id is None:
        raise MemwallError("give --id for a workload with your own figures")
    if layout is not None and preset is None and config is None:
        raise MemwallError("--layout needs the model (--preset or --config) it splits")
    row.update(
        workload_id=workload_id,
        name=name or workload_id,
        owner=owner,
        pool=pool,
        demand_units_per_s=demand,
        demand_growth_per_year=growth,
        pool_share=share,
        tpot_slo_s=tpot_slo,
        ttft_slo_s=ttft_slo,
        max_devices_per_replica=max_devices_per_replica,
        start_month=starts,
        layout=layout,
        prompt_tokens=prompt,
        output_tokens=output,
        engine=engine,
    )
    new = pd.DataFrame([row])
    _check_pools(new, roadmap, catalog, "the new workload")
    combined = _append_workloads(new, to, "the new workload")
    stderr.print(f"added {workload_id} to {to} ({len(combined)} workloads)", markup=False)


@workloads_app.command("import")
def import_command(
    csv: Annotated[
        Path, typer.Argument(help="CSV with the workloads table's columns.", dir_okay=False)
    ],
    to: Annotated[
        Path,
        typer.Option(
            "--to", help="Workloads Parquet file to append to (created if absent).", dir_okay=False
        ),
    ],
    roadmap: RoadmapOption = None,
    catalog: CatalogOption = None,
) -> None:
    """Append the rows of a CSV; rows with a model_preset may leave the figures blank."""
    import pandas as pd

    from hardware_profiles.errors import ProfileError, first_line

    if not csv.is_file():
        raise ProfileError(csv, "no such CSV file")
    try:
        frame = pd.read_csv(csv, skipinitialspace=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise ProfileError(csv, f"is not a readable CSV file ({first_line(exc)})") from None
    frame = _fill_from_model(frame, str(csv))
    from hardware_profiles.parquet import validate_frame
    from hardware_profiles.schema import WORKLOADS

    validated = validate_frame(frame, WORKLOADS, csv)
    _check_pools(validated, roadmap, catalog, str(csv))
    combined = _append_workloads(validated, to, str(csv))
    stderr.print(
        f"imported {len(validated)} workloads into {to} ({len(combined)} in all)", markup=False
    )

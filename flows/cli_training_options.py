"""The training options ``memwall predict``, ``plan training``, ``backtest --phase training``
and ``workloads add`` share, and what they parse to: a token count, a global batch of whole
sequences, and the workloads table's training columns checked against the model.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Final

import typer

from hardware_profiles.errors import MemwallError

if TYPE_CHECKING:
    from tasks.analysis.workload.architecture import Architecture

# Token counts as batch sizes are quoted: binary multiples (Llama 3's "16M" is 2,048 x 8,192).
_TOKEN_SUFFIX: Final = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30}
_TOKENS: Final = re.compile(r"^\s*(\d+)\s*([KMG]?)\s*$", re.IGNORECASE)

GlobalBatchTokensOption = Annotated[
    str | None,
    typer.Option(
        "--global-batch-tokens",
        help="Tokens per optimizer step: a count, or with K/M/G as binary multiples (16M = "
        "16,777,216); a whole number of --context sequences.",
    ),
]
MicroBatchOption = Annotated[
    int, typer.Option("--micro-batch", help="Sequences per data-parallel rank per micro-step.")
]
TrainingRecomputeOption = Annotated[
    str,
    typer.Option(
        "--recompute",
        help="Activation recompute: none, selective (the attention core), full, "
        "selective-layer (every second layer whole, torchtitan's per-layer checkpointing) or "
        "selective-op (every second matmul, torchtitan's per-op checkpointing).",
    ),
]
ZeroOption = Annotated[
    int, typer.Option("--zero", help="ZeRO stage of the data-parallel ranks: 0-3 (FSDP is 3).")
]
OptimizerOption = Annotated[
    str | None,
    typer.Option(
        "--optimizer",
        help="Optimizer recipe: adam (16 B/param), adam-fp32-grads (18), adam-fp32 (16, fp32 "
        "weights); default adam, adam-fp32 with --weights fp32.",
    ),
]
UnevenOption = Annotated[
    bool,
    typer.Option(
        "--uneven-stages", help="Let pipeline stages differ by a layer (126 layers over 16)."
    ),
]
ScaleOutOption = Annotated[
    Path | None,
    typer.Option(
        "--scale-out",
        help="Scale-out network CSV (default: the built-in hardware_profiles/data/scale_out.csv).",
        dir_okay=False,
    ),
]
ScaleOutRateOption = Annotated[
    float | None,
    typer.Option(
        "--scale-out-gb-s",
        help="Your fleet's scale-out bandwidth per device, GB/s per direction (400 Gb/s is 50).",
    ),
]
TrainingRunsOption = Annotated[
    Path | None,
    typer.Option(
        "--training-runs",
        help="Published training runs CSV (default: the built-in "
        "hardware_profiles/data/published_training_runs.csv).",
        dir_okay=False,
    ),
]


def parse_tokens(text: str) -> int:
    """``16M`` -> 16,777,216; a plain count as given."""
    match = _TOKENS.match(text)
    if match is None or int(match.group(1)) < 1:
        raise MemwallError(
            f"--global-batch-tokens {text!r} is not a token count; e.g. 4194304, 4096K or 16M"
        )
    return int(match.group(1)) * _TOKEN_SUFFIX[match.group(2).upper()]


def global_batch(tokens: int, sequence: int) -> int:
    """Sequences per step; a token count that is not a whole number of them is refused."""
    if tokens % sequence:
        low = max(tokens // sequence, 1)
        raise MemwallError(
            f"--global-batch-tokens {tokens:,} is not a whole number of {sequence}-token "
            f"sequences; valid near it: {low * sequence:,} ({low} sequences) or "
            f"{(low + 1) * sequence:,} ({low + 1})"
        )
    return tokens // sequence


def training_columns(
    arch: Architecture,
    phase: str,
    context: int,
    compute: str,
    layout: str | None,
    global_batch_tokens: str | None,
    micro_batch: int | None,
    zero: int | None,
    optimizer: str | None,
    full_recompute: bool,
) -> dict[str, object]:
    """The workloads table's training columns, the layout checked against the model."""
    from tasks.analysis.training.layout import TrainingRun, check_run, parse_layout

    if phase != "training":
        raise MemwallError(
            f"--layout and --global-batch-tokens are for --phase training, not {phase}"
        )
    if layout is None or global_batch_tokens is None:
        raise MemwallError("a training layout needs both --layout and --global-batch-tokens")
    run = TrainingRun(
        layout=parse_layout(layout),
        global_batch=global_batch(parse_tokens(global_batch_tokens), context),
        sequence=context,
        micro_batch=micro_batch or 1,
        zero=1 if zero is None else zero,
        recompute="full" if full_recompute else "selective",
        optimizer=optimizer or "adam",
        compute=compute,
    )
    check_run(arch, run)
    return {
        "layout": run.layout.text(),
        "global_batch_tokens": run.global_batch_tokens,
        "micro_batch": run.micro_batch,
        "recompute": run.recompute,
        "zero_stage": run.zero,
        "optimizer": run.optimizer,
    }

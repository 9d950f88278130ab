"""A training run's parallel layout, and the checks that refuse one no engine could run.

A layout is the Megatron-LM grid (Narayanan et al. 2021, "Efficient Large-Scale Language Model
Training on GPU Clusters Using Megatron-LM", arXiv 2104.04473, section 3): ``dp·tp·pp·cp``
devices, tensor parallel (``tp``, with sequence parallelism: Korthikanti et al. 2022, arXiv
2205.05198, section 4.2.2) innermost, then context parallel (``cp``), data parallel (``dp``)
and pipeline parallel (``pp``, ``vp`` virtual stages per device for the interleaved schedule)
outermost. Expert parallelism (``ep``) is carved out of ``dp × cp`` as Megatron-Core does: the
experts of an MoE layer are split over ``ep`` ranks of the data- and context-parallel group,
so it adds no devices. ``zero`` says how the data-parallel ranks shard the training state
(Rajbhandari et al. 2020, "ZeRO", arXiv 1910.02054, section 5): 1 the optimizer state, 2 also
the gradients, 3 also the weights (FSDP's full sharding).

A step trains ``global_batch`` sequences of ``sequence`` tokens; each data-parallel rank runs
``micro_batch`` sequences at a time, ``micro_batches`` = global / (dp · micro) times (gradient
accumulation, and the pipeline's micro-batches).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from hardware_profiles.errors import MemwallError
from hardware_profiles.layouts import RECOMPUTE_POLICIES as RECOMPUTE
from tasks.analysis.training.recipe import OPTIMIZERS
from tasks.analysis.workload.architecture import Architecture

LAYOUT_KEYS: Final = ("dp", "tp", "pp", "cp", "ep", "vp")


@dataclass(frozen=True)
class RecomputePolicy:
    """What a recompute policy runs again before backward, as shares of the forward: the
    weight matmuls' FLOPs, attention's FLOPs, and the layers recomputed whole (their
    element-wise kernels and their tensor- and expert-parallel collectives again)."""

    matmul: float
    attention: float
    whole_layers: float


# none and full: Korthikanti et al. 2022; selective: their attention-core recompute (Megatron);
# selective-layer and selective-op: torchtitan's per-layer and per-op selective checkpointing
# (torchtitan/models/llama3/infra/parallelize.py, ``selective_ac_option``): "2" wraps every
# second layer in full checkpointing; "op" saves the output of every compute op "except every
# second mm", counted afresh in each layer, so half the weight matmuls run again.
RECOMPUTE_POLICIES: Final = dict(
    zip(
        RECOMPUTE,
        (
            RecomputePolicy(0.0, 0.0, 0.0),  # none
            RecomputePolicy(0.0, 1.0, 0.0),  # selective
            RecomputePolicy(1.0, 1.0, 1.0),  # full
            RecomputePolicy(0.5, 0.5, 0.5),  # selective-layer
            RecomputePolicy(0.5, 0.0, 0.0),  # selective-op
        ),
        strict=True,
    )
)
ZERO_STAGES: Final = (0, 1, 2, 3)
_TOKEN: Final = re.compile(r"^\s*([a-z]+)\s*=\s*(\d+)\s*$")


class LayoutError(MemwallError):
    """A training layout that does not divide the devices, the model or the batch."""


@dataclass(frozen=True)
class Layout:
    """Degrees of parallelism; their product ``dp·tp·pp·cp`` is the device count."""

    dp: int = 1
    tp: int = 1
    pp: int = 1
    cp: int = 1
    ep: int = 1
    vp: int = 1

    @property
    def devices(self) -> int:
        return self.dp * self.tp * self.pp * self.cp

    def text(self) -> str:
        """The layout as ``parse_layout`` reads it, degrees of 1 left out (dp always shown)."""
        parts = [f"dp={self.dp}"]
        parts += [f"{k}={getattr(self, k)}" for k in LAYOUT_KEYS[1:] if getattr(self, k) > 1]
        return ",".join(parts)


@dataclass(frozen=True)
class TrainingRun:
    """What a training step is: the layout, the batch, and the recipe's knobs."""

    layout: Layout
    global_batch: int  # sequences per optimizer step
    sequence: int  # tokens per sequence
    micro_batch: int = 1  # sequences per data-parallel rank per micro-step
    zero: int = 1
    recompute: str = "selective"
    optimizer: str = "adam"
    compute: str = "bf16"  # the matmuls' precision
    flash_attention: bool = True
    uneven_stages: bool = False  # pipeline stages may differ by a layer (Llama 3's 126 over 16)
    tp_comm_overlap: bool = False  # tensor-parallel collectives pipelined with the GEMMs

    @property
    def global_batch_tokens(self) -> int:
        return self.global_batch * self.sequence

    @property
    def micro_batches(self) -> int:
        """Micro-batches each data-parallel rank (and pipeline) runs per step."""
        return self.global_batch // (self.layout.dp * self.micro_batch)

    @property
    def tokens_per_device(self) -> float:
        """Tokens each device's share of the step holds: the whole step over dp·cp ranks."""
        return self.global_batch_tokens / (self.layout.dp * self.layout.cp)


def chunk_layers(arch: Architecture, run: TrainingRun) -> list[int]:
    """Layers of each of the ``p·v`` pipeline chunks, in model order (chunk j runs on pipeline
    rank ``j mod p``: Megatron's interleaved assignment, Narayanan et al. 2021, section
    2.2.2). Even stages hold ``L/(p·v)`` each. Uneven stages hold ``c = ⌈L/(p·v)⌉`` each but
    for the ``p·v·c − L`` layers short, taken one apiece from the first chunk, the last, the
    second, the second to last, ...: Llama 3 (arXiv 2407.21783, section 3.3.2) "reduce[s] one
    Transformer layer each from the first and the last stages", so that the first chunk holds
    only the embedding and the last only the output projection and loss (126 layers in 16·8
    chunks of one layer: 0 in the first chunk and the last)."""
    lay = run.layout
    chunks = lay.pp * lay.vp
    size = -(-arch.layers // chunks)
    sizes = [size] * chunks
    ends = [i // 2 if i % 2 == 0 else chunks - 1 - i // 2 for i in range(chunks)]
    for i in range(size * chunks - arch.layers):
        sizes[ends[i]] -= 1
    return sizes


def rank_layers(arch: Architecture, run: TrainingRun, rank: int) -> list[int]:
    """Layers of the chunks pipeline rank ``rank`` holds, in the order it runs them."""
    return chunk_layers(arch, run)[rank :: run.layout.pp]


def stage_layers(arch: Architecture, run: TrainingRun) -> float:
    """Layers the fullest pipeline rank holds: ``L/p`` on even stages; with uneven ones the
    most any rank's chunks add up to (the rank that sets the pipeline's pace)."""
    lay = run.layout
    if arch.layers % (lay.pp * lay.vp) == 0:
        return arch.layers / lay.pp
    return float(max(sum(rank_layers(arch, run, r)) for r in range(lay.pp)))


def parse_layout(text: str) -> Layout:
    """``dp=64,tp=8,pp=16[,cp=..][,ep=..][,vp=..]`` as a Layout; a missing key is 1."""
    given: dict[str, int] = {}
    for token in filter(None, (t.strip() for t in text.split(","))):
        match = _TOKEN.match(token)
        if match is None or match.group(1) not in LAYOUT_KEYS:
            raise LayoutError(
                f"layout {text!r}: {token!r} is not key=N with a key of {', '.join(LAYOUT_KEYS)}"
                " (e.g. dp=64,tp=8,pp=16)"
            )
        key, value = match.group(1), int(match.group(2))
        if value < 1:
            raise LayoutError(f"layout {text!r}: {key} must be >= 1, got {value}")
        if key in given:
            raise LayoutError(f"layout {text!r}: {key} given twice")
        given[key] = value
    if not given:
        raise LayoutError(f"layout {text!r} is empty; expected e.g. dp=64,tp=8,pp=16")
    return Layout(**given)


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def _listed(values: list[int], limit: int = 12) -> str:
    shown = ", ".join(map(str, values[:limit]))
    return shown + (", ..." if len(values) > limit else "")


def dp_for(devices: int, layout: Layout) -> list[int]:
    """The data-parallel degrees that, with the layout's tp, pp and cp, make ``devices``."""
    rest = layout.tp * layout.pp * layout.cp
    return [devices // rest] if devices % rest == 0 else []


def check_run(arch: Architecture, run: TrainingRun, devices: int | None = None) -> None:
    """Refuse, in one line listing what would be valid, a run no engine could lay out."""
    lay = run.layout
    if devices is not None and lay.devices != devices:
        fits = dp_for(devices, lay)
        hint = (
            f"with tp={lay.tp}, pp={lay.pp}, cp={lay.cp} use dp={fits[0]}"
            if fits
            else f"tp·pp·cp must divide {devices}; valid tp·pp·cp products: "
            f"{_listed(_divisors(devices))}"
        )
        raise LayoutError(
            f"layout {lay.text()} uses dp·tp·pp·cp = {lay.devices} devices, not {devices}: {hint}"
        )
    tp_valid = [
        t for t in _divisors(arch.heads) if arch.kv_heads % t == 0 or t % arch.kv_heads == 0
    ]
    if lay.tp not in tp_valid:
        raise LayoutError(
            f"tp={lay.tp} does not divide {arch.name}'s {arch.heads} query / {arch.kv_heads} KV "
            f"heads; valid tp: {_listed(tp_valid)}"
        )
    stages = lay.pp * lay.vp
    # Uneven stages may leave the first and last chunk with no layer (only the embedding,
    # only the output): Llama 3's 126 layers in 128 chunks.
    if arch.layers % stages and not (run.uneven_stages and stages <= arch.layers + 2):
        raise LayoutError(
            f"pp·vp = {stages} does not divide {arch.name}'s {arch.layers} layers; valid pp·vp: "
            f"{_listed(_divisors(arch.layers))} (or allow uneven stages, as Llama 3 ran 126 "
            "layers over 16)"
        )
    if lay.vp > 1 and lay.pp == 1:
        raise LayoutError(f"vp={lay.vp} needs pp > 1 (virtual stages interleave a pipeline)")
    if lay.ep > 1:
        group = lay.dp * lay.cp
        if not arch.is_moe:
            raise LayoutError(f"ep={lay.ep} needs an MoE model; {arch.name} is dense: use ep=1")
        valid = [e for e in _divisors(group) if arch.experts % e == 0]
        if lay.ep not in valid:
            raise LayoutError(
                f"ep={lay.ep} must divide dp·cp = {group} and {arch.name}'s {arch.experts} "
                f"experts; valid ep: {_listed(valid)}"
            )
    if run.sequence % (lay.cp * lay.tp):
        raise LayoutError(
            f"sequence {run.sequence} must divide by cp·tp = {lay.cp * lay.tp} (context and "
            "sequence parallelism split it)"
        )
    if run.micro_batch > run.global_batch:
        raise LayoutError(
            f"micro-batch {run.micro_batch} exceeds the global batch of {run.global_batch} "
            f"sequences; valid micro-batches: {_listed(_micro_batches(run))}"
        )
    if run.global_batch % (lay.dp * run.micro_batch):
        raise LayoutError(
            f"the global batch of {run.global_batch} sequences does not split into dp={lay.dp} "
            f"ranks of micro-batch {run.micro_batch}; valid micro-batches: "
            f"{_listed(_micro_batches(run)) or 'none (the global batch must divide by dp)'}"
        )
    if run.zero not in ZERO_STAGES:
        raise LayoutError(f"zero {run.zero} is not a ZeRO stage; valid: 0, 1, 2, 3 (FSDP is 3)")
    if run.recompute not in RECOMPUTE:
        raise LayoutError(
            f"recompute {run.recompute!r} is not valid; valid: {', '.join(RECOMPUTE)}"
        )
    if run.optimizer not in OPTIMIZERS:
        raise LayoutError(
            f"optimizer {run.optimizer!r} is not a known recipe; valid: {', '.join(OPTIMIZERS)}"
        )


def _micro_batches(run: TrainingRun) -> list[int]:
    dp = run.layout.dp
    if run.global_batch % dp:
        return []
    return _divisors(run.global_batch // dp)

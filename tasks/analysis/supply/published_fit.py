"""The defaults fitted on published runs: efficiencies and step overheads, one robust fit.

A run's step, at efficiencies e and overheads o (see ``tasks.analysis.supply.predict``;
computed by :func:`tasks.analysis.supply.step_terms.step_s`):

    decode   max((M + X_m / r[class]) / e_bw[vendor],
                 (C + X_c / r[class]) / e_f,decode + C_load / e_f,prefill[vendor] + A_load)
             + comm + o_decode · L  (+ its prefill share)
    prefill  max(M / 0.85, C / e_f,prefill[vendor] + A) + comm + o_prefill · L

M, C and comm are the run's memory, matmul and communication times at efficiency 1 (comm with
each collective's latency per call); A is a prefill's attention time at attention's own
efficiency, which is not fitted. X_m and X_c are a decode step's routed-expert weight reads
and matmuls at efficiency 1 (taken out of M and C), and r[class] the share of the dense
efficiencies they reach, one per MoE architecture class (``MoE``, ``MLA-MoE``; 1 for dense):
at decode each touched expert multiplies a handful of tokens, a grouped GEMM that reaches
neither the GEMV's share of the bandwidth nor the GEMM's share of the peak, and how far it
falls short depends on the experts' size and count (Mixtral's 8 wide experts against
DeepSeek's 256 narrow ones), not on the dense layers around them. Fitting r per class keeps
a dense fit from ever being applied to a fine-grained MoE, and keeps the MoE runs from
pulling the dense efficiencies (they did, fitted with one efficiency for every class).
How close a grouped GEMM at few tokens per expert comes is also the engine's doing (fused-MoE
and grouped-GEMM kernels, DeepEP): r is fitted per (class, engine generation)
(:mod:`tasks.analysis.supply.engine_generation`: engines released before or from mid-2025)
where that generation's fit rows of the class come from at least :data:`MIN_CLASS_SOURCES`
sources; the class's other rows (other generations, unknown ones) share the class's r, and
the r reported for the class, the fallback for a generation without its own, is refitted on
all its rows with the other parameters held (leave-one-source-out 47.0 % to 45.9 %). Under
the robust loss below, MLA-MoE's r is 0.23 on early engines, 0.62 on current ones (0.31 over
both). The decode overhead per layer fitted per generation came out alike (99 and 109 us),
swung in the folds that leave out one early page, and raised leave-one-source-out to 47.4 %.
A run served under load (``tasks.analysis.supply.mixed_step``: a concurrency run's time per
output token) carries c·P/O prompt tokens on each step: their bytes beyond the weights are in
M and comm, their matmuls are C_load (at the prefill efficiency) and their attention A_load;
both are 0 for other runs. A run whose metric is output tokens over the whole run (static
batching: TensorRT-LLM's
gptSessionBenchmark, vLLM's benchmark_latency) also pays the batch's prefill once, spread over
its generated tokens: its prefill step / output tokens is its prefill share.

Parameters: e_bw per vendor with at least :data:`MIN_FIT_RUNS` decode fit rows (the others'
rows share one), e_f,prefill likewise per vendor, e_f,decode and both overheads across vendors
(too few runs to split them; with the Gaudi rows ``published_runs.md`` keeps out, neither
split helped either), r per MoE class with at least :data:`MIN_FIT_RUNS` decode fit
rows from at least :data:`MIN_CLASS_SOURCES` sources (a class with fewer keeps r = 1, as
dense, and the backtest says its class has no fit of its own: fitted on one source, r would be
that source's engine and harness). A per-class decode overhead per layer beside r (a MoE layer
launches more kernels) was tried and set aside: it lowered leave-one-out (21.7 % to 17.6 %)
but raised leave-one-source-out (23.2 % to 24.8 %), the two DeepSeek sources disagreeing on it.
They minimise the log error of the step time over the ``fit`` rows
under a robust loss: first the squared log error from a few starting points (the max() makes
the surface piecewise), then, from that fit, the Cauchy loss ``ln(1 + (e/s)²)`` with s the
squared fit's residual scale (1.4826 × the median absolute log residual, a normal
distribution's sigma; about 0.27 on the built-in runs), every sub-fit below under the same
loss. Pages differ in what they do not state (the SGLang cookbook's DeepSeek runs on MI300X are
slower at concurrency 1 than InferenceX's at 4 on engines of one generation): the errors are
heavy-tailed, a squared loss lets one such page pull every parameter it touches, and the
Cauchy loss lets a run that far off weigh little instead. Leave-one-source-out went from
45.9 % (bias +8.7 %) to 38.8 % (−4.7 %): dense 19.1 % to 18.0 %, MLA-MoE 55.9 % to 45.5 %, MoE
34.3 % to 34.0 %; the held-out rows from 22.8 % (−2.9 %) to 21.4 % (−9.3 %). Tried beside
it, scored by the same leave-one-source-out (so the loss is not itself held out): soft-L1
42-43 %, Huber 41 %, Cauchy at fixed scales 0.1-0.5 33-41 %; the scale is the data's, not
that sweep's. A spread is still the RMS of every row's residual, outliers included. The structure
was chosen by leave-one-out error on the fit rows (``benchmarks/backtest.py --loo``; the held-out
error was printed beside it, see ``published_runs.md``) among variants that keep the roofline's
max(memory, compute), on which the projection's memory-bound starvation rests: dropping either
overhead or e_f,decode raises it, an all-reduce latency term does not lower it. The prefill
overhead is per layer, as decode's (a prefill's forward pass launches the same kernels per
layer): leave-one-out is the same either way (20.8 %), and where no prefill run is fitted (the
fold that leaves out the one page with prefill runs) a prefill then pays decode's per-layer
figure instead of nothing, which lowered leave-one-source-out from 21.4 % to 20.5 % (prefill
30.0 % to 21.7 %; in-sample prefill 9.7 % to 13.6 %: the pages' 7B and 70B runs fit a per-step
overhead a little better). (Adding memory and compute time instead of taking their max was set
aside: worse on the holdout.)
A parameter no fit row's step depends on (every decode run memory-bound whatever e_f,decode)
is reported as not fitted: the STREAM default stands, and an overhead nothing depends on is
not charged (without a prefill run, prefill takes decode's, see above).

A compute efficiency shared by several vendors (e_f,decode; e_f,prefill of the vendors without
their own) is NVIDIA's share of the peak and is carried to each run's vendor by the ratio of
their large-GEMM shares (:data:`~tasks.analysis.supply.efficiency.GEMM_SHARE`: an MI300X reaches
about 51 % of its peak in a BF16 GEMM where an H100 reaches 80 %), so the AMD runs neither pull
it down for NVIDIA nor get NVIDIA's share of a peak they do not reach. This lowered
leave-one-source-out from 22.6 % to 21.4 % (AMD 21.9 % to 19.7 %, dense 23.2 % to 20.3 %).

Then, for vendors with no fit rows of a phase, the phase's efficiency is fitted once more on all
vendors' rows together, the shared parameters held at their fitted values. Spread of a fitted
efficiency: the RMS log residual of its rows, one degree of freedom taken by its own parameter.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Final

import numpy as np
import pandas as pd
from scipy.optimize import least_squares

from tasks.analysis.supply.efficiency import Efficiency, FittedDefaults, Overhead, gemm_ratio
from tasks.analysis.supply.engine_generation import GENERATIONS
from tasks.analysis.supply.step_terms import (
    STREAM_BANDWIDTH_VALUE,
    STREAM_FLOPS_VALUE,
    Parameters,
    Terms,
    step_s,
)

MIN_FIT_RUNS: Final = 2
# A class's own parameters need fit rows from this many sources: fitted on one source only,
# they would be that source's engine and harness, not the class (no other source checks them).
MIN_CLASS_SOURCES: Final = 2
ROBUST_LOSS: Final = "cauchy"
ROBUST_SCALE_PER_MAD: Final = 1.4826  # a normal distribution's sigma per median |deviation|
_MIN_ROBUST_SCALE: Final = 1e-3  # a fit through every row exactly still needs a scale
_EFFICIENCY_BOUNDS: Final = (np.log(0.02), 0.0)
# Overhead bounds, seconds: per decode layer, per prefill step.
_OVERHEAD_BOUNDS: Final = {"decode": 1e-3, "prefill": 1e-2}
# Least squares needs a lower bound strictly below the upper one: a parameter held at 0.
_HELD_AT_ZERO: Final = 1e-12
_STARTS: Final = ((0.5, 0.5, 1e-5, 1e-3), (0.8, 0.2, 5e-5, 1e-2), (0.3, 0.7, 0.0, 0.0))
_ALL: Final = "all vendors"
_EVERY: Final = "every engine generation"
_OTHERS: Final = "other vendors"


def _groups(t: Terms, decode: bool) -> list[str]:
    """Vendors with enough fit rows of the phase for their own parameter, then one shared by
    the others (used in the fit only: they are reported under the all-vendors fit)."""
    mine = t.vendor[t.decode == decode]
    vendors, counts = np.unique(mine, return_counts=True)
    own = [str(v) for v, c in zip(vendors, counts, strict=True) if c >= MIN_FIT_RUNS]
    return [*own, _OTHERS] if len(own) < len(vendors) else own


def _class_groups(t: Terms) -> list[str]:
    """MoE classes with enough decode fit rows (that move any expert bytes), from at least
    :data:`MIN_CLASS_SOURCES` sources, for parameters of their own."""
    chosen = t.decode & (t.expert_memory_s + t.expert_compute_s > 0)
    classes = sorted(set(t.architecture_class[chosen]))
    return [str(name) for name in classes if _own(chosen & (t.architecture_class == name), t)]


def _own(chosen: np.ndarray, t: Terms) -> bool:
    """Whether ``chosen`` fit rows may fit a parameter of their own: at least
    :data:`MIN_FIT_RUNS` of them, from at least :data:`MIN_CLASS_SOURCES` sources."""
    return bool(chosen.sum() >= MIN_FIT_RUNS and len(set(t.source[chosen])) >= MIN_CLASS_SOURCES)


def _class_generation_groups(t: Terms, classes: list[str]) -> list[tuple[str, str]]:
    """(class, generation) pairs whose decode fit rows that move expert bytes allow an r of
    their own; the class's other rows share the class's."""
    moving = t.decode & (t.expert_memory_s + t.expert_compute_s > 0)
    return [
        (c, g)
        for c in classes
        for g in GENERATIONS
        if _own(moving & (t.architecture_class == c) & (t.generation == g), t)
    ]


def _index(t: Terms, groups: list[str]) -> np.ndarray:
    """Each run's group; a vendor with no rows of the phase takes the others' or the first."""
    position = {g: i for i, g in enumerate(groups)}
    return np.array([position.get(str(v), position.get(_OTHERS, 0)) for v in t.vendor])


@dataclass(frozen=True)
class _Layout:
    """Where each parameter sits in the solver's vector: e_bw per vendor group, e_f,prefill
    per vendor group, e_f,decode, o_decode, o_prefill (per layer), r per class group (of
    the runs whose engine generation has none of its own), then r per (class, generation)
    group (logs but the overheads)."""

    bandwidth_groups: list[str]
    flops_groups: list[str]
    class_groups: list[str] = field(default_factory=list)
    class_generation_groups: list[tuple[str, str]] = field(default_factory=list)

    @property
    def first_class(self) -> int:
        return len(self.bandwidth_groups) + len(self.flops_groups) + 3

    @property
    def first_class_generation(self) -> int:
        return self.first_class + len(self.class_groups)

    def unpack(self, x: np.ndarray, t: Terms) -> Parameters:
        nb, nf = len(self.bandwidth_groups), len(self.flops_groups)
        bandwidth = np.exp(x[:nb]) if nb else np.array([STREAM_BANDWIDTH_VALUE])
        prefill = np.exp(x[nb : nb + nf]) if nf else np.array([STREAM_FLOPS_VALUE])
        return Parameters(
            decode_bandwidth=bandwidth[_index(t, self.bandwidth_groups)] if nb else bandwidth,
            prefill_flops=(prefill[_index(t, self.flops_groups)] if nf else prefill)
            * _carried(t, self.flops_groups),
            decode_flops=np.exp(x[nb + nf]) * _carried(t, []),
            decode_overhead_s=float(x[nb + nf + 1]),
            # No prefill run: a prefill pays decode's per-layer overhead (same kernels).
            prefill_overhead_s=float(x[nb + nf + (2 if _has_prefill_runs(t) else 1)]),
            expert_share=self.shares(x, t.architecture_class, t.generation),
        )

    def shares(self, x: np.ndarray, classes: np.ndarray, generations: np.ndarray) -> np.ndarray:
        """r of each run's class: its (class, generation) group's, else its class group's,
        1 (as dense) for the others."""
        by_class = dict(
            zip(
                self.class_groups,
                np.exp(x[self.first_class : self.first_class_generation]),
                strict=True,
            )
        )
        by_pair = dict(
            zip(self.class_generation_groups, np.exp(x[self.first_class_generation :]), strict=True)
        )
        return np.array(
            [
                by_pair.get((str(c), str(g)), by_class.get(str(c), 1.0))
                for c, g in zip(classes, generations, strict=True)
            ],
            dtype=float,
        )


def _solve(t: Terms, layout: _Layout) -> tuple[np.ndarray, np.ndarray, float]:
    """The least-squares fit from the best of a few starts, then the robust fit from it: the
    parameter vector, the final Jacobian and the robust loss's scale (the module docstring)."""
    nb, nf = len(layout.bandwidth_groups), len(layout.flops_groups)
    nc, npair = len(layout.class_groups), len(layout.class_generation_groups)
    low = [_EFFICIENCY_BOUNDS[0]] * (nb + nf + 1) + [0.0, 0.0] + [_EFFICIENCY_BOUNDS[0]] * nc
    low += [_EFFICIENCY_BOUNDS[0]] * npair
    prefill_high = _OVERHEAD_BOUNDS["prefill"] if _has_prefill_runs(t) else _HELD_AT_ZERO
    high = [_EFFICIENCY_BOUNDS[1]] * (nb + nf + 1) + [_OVERHEAD_BOUNDS["decode"], prefill_high]
    high += [_EFFICIENCY_BOUNDS[1]] * nc
    high += [_EFFICIENCY_BOUNDS[1]] * npair

    def residual(x: np.ndarray) -> np.ndarray:
        return np.asarray(np.log(step_s(t, layout.unpack(x, t)) / t.measured_s))

    best = None
    for bw, flops, decode_o, prefill_o in _STARTS:
        x0 = np.array(
            [np.log(bw)] * nb
            + [np.log(flops)] * nf
            + [np.log(flops), decode_o, prefill_o]
            + [np.log(bw)] * nc
            + [np.log(bw)] * npair
        )
        found = least_squares(residual, np.clip(x0, low, high), bounds=(low, high))
        if best is None or found.cost < best.cost - 1e-12:
            best = found
    assert best is not None
    scale = max(ROBUST_SCALE_PER_MAD * float(np.median(np.abs(best.fun))), _MIN_ROBUST_SCALE)
    robust = least_squares(residual, best.x, bounds=(low, high), loss=ROBUST_LOSS, f_scale=scale)
    return np.asarray(robust.x), np.asarray(robust.jac), scale


def _has_prefill_runs(t: Terms) -> bool:
    """Whether any prefill run is fitted: without one, a prefill overhead would rest on the
    static-batching decode runs' prefill shares alone (one step's overhead spread over
    thousands of generated tokens), too weakly pinned to fit: it is held at 0 and not
    charged (it went to its 1 s bound when the one page with prefill runs was left out)."""
    return bool((~t.decode).any())


def _depends(jac: np.ndarray, column: int) -> bool:
    """Whether any fit row's step depends on parameter ``column``: else it was not fitted."""
    return bool(np.abs(jac[:, column]).max(initial=0.0) > 1e-9)


def _spread(residuals: np.ndarray) -> float:
    return float(np.sqrt((residuals**2).sum() / max(residuals.size - 1, 1)))


def _source(n: int, phase: str, label: str) -> str:
    return f"fitted on {n} published run{'s' if n != 1 else ''} ({phase}, {label})"


def fit(rows: pd.DataFrame) -> FittedDefaults:
    """The defaults fitted on ``rows`` (the backtest's prepared ``fit`` rows)."""
    if rows.empty:
        return FittedDefaults()
    t = Terms.of(rows)
    classes = _class_groups(t)
    layout = _Layout(
        _groups(t, True),
        _groups(t, False),
        classes,
        _class_generation_groups(t, classes),
    )
    x, jac, scale = _solve(t, layout)
    p = layout.unpack(x, t)
    residual = np.log(step_s(t, p) / t.measured_s)
    nb, nf = len(layout.bandwidth_groups), len(layout.flops_groups)
    efficiencies: dict[tuple[str, str | None], Efficiency] = {}
    phases = (("decode", layout.bandwidth_groups, 0), ("prefill", layout.flops_groups, nb))
    for phase, groups, offset in phases:
        in_phase = t.decode == (phase == "decode")
        if not in_phase.any():
            continue
        index = _index(t, groups)
        for g, group in enumerate(groups):
            chosen = in_phase & (index == g)
            if group != _OTHERS:
                efficiencies[(phase, group)] = Efficiency(
                    float(np.exp(x[offset + g])),
                    _source(int(chosen.sum()), phase, group),
                    _spread(residual[chosen]),
                )
        efficiencies[(phase, None)] = _pooled(t, p, phase, scale)
    decode_rows = int(t.decode.sum())
    prefill_rows = int((~t.decode).sum() + (t.prefill_steps > 0).sum())
    other: dict[tuple[str, str], Efficiency] = {}
    if _depends(jac, nb + nf):
        other[("decode", "flops")] = Efficiency(
            float(np.exp(x[nb + nf])),
            _source(decode_rows, "decode", _ALL),
            _spread(residual[t.decode]),
        )
    overheads = {}
    if _depends(jac, nb + nf + 1):
        overheads["decode"] = Overhead(p.decode_overhead_s, _source(decode_rows, "decode", _ALL))
    if _has_prefill_runs(t) and _depends(jac, nb + nf + 2):
        overheads["prefill"] = Overhead(
            p.prefill_overhead_s,
            _source(prefill_rows, "prefill, with static-batching decode runs' prefills", _ALL),
        )
    elif "decode" in overheads:
        overheads["prefill"] = Overhead(
            p.decode_overhead_s,
            "decode's per-layer overhead: no prefill run fitted, and a prefill's forward pass "
            "launches the same kernels per layer",
        )
    stream = step_s(
        t,
        Parameters(
            np.full(len(rows), STREAM_BANDWIDTH_VALUE),
            STREAM_FLOPS_VALUE,
            np.full(len(rows), STREAM_FLOPS_VALUE),
            0.0,
            0.0,
        ),
    )
    stream_spread = float(np.sqrt(np.mean(np.log(stream / t.measured_s) ** 2)))
    experts = _expert_shares(t, layout, x, jac, residual, p, scale)
    return FittedDefaults(
        efficiencies,
        stream_spread,
        other,
        overheads,
        expert_matmuls=experts,
        generation_experts=_generation_shares(t, layout, x, jac, residual),
    )


def _generation_shares(
    t: Terms, layout: _Layout, x: np.ndarray, jac: np.ndarray, residual: np.ndarray
) -> dict[tuple[str, str], Efficiency]:
    """Each (class, generation) group's r, with its rows' spread."""
    out = {}
    for i, (name, generation) in enumerate(layout.class_generation_groups):
        column = layout.first_class_generation + i
        if not _depends(jac, column):
            continue
        chosen = t.decode & (t.architecture_class == name) & (t.generation == generation)
        label = f"{name}, {generation}, {len(set(t.source[chosen]))} sources"
        out[(name, generation)] = Efficiency(
            float(np.exp(x[column])),
            _source(int(chosen.sum()), "decode", label),
            _spread(residual[chosen]),
        )
    return out


def _expert_shares(
    t: Terms,
    layout: _Layout,
    x: np.ndarray,
    jac: np.ndarray,
    residual: np.ndarray,
    p: Parameters,
    scale: float,
) -> dict[str, Efficiency]:
    """Each fitted class's r over every engine generation, with its rows' spread: its class
    group's where no generation of it has its own, else refitted on all its rows with the
    other parameters held (a class no fit row depends on is left out: it stays as dense)."""
    out: dict[str, Efficiency] = {}
    split = {name for name, _ in layout.class_generation_groups}
    for i, name in enumerate(layout.class_groups):
        chosen = t.decode & (t.architecture_class == name)
        sources = f"{len(set(t.source[chosen]))} sources"
        label = f"{name}, {_EVERY}, {sources}" if name in split else f"{name}, {sources}"
        if name in split:
            value, spread = _pooled_share(t, p, chosen, scale)
        elif _depends(jac, layout.first_class + i):
            value, spread = float(np.exp(x[layout.first_class + i])), _spread(residual[chosen])
        else:
            continue
        out[name] = Efficiency(value, _source(int(chosen.sum()), "decode", label), spread)
    return out


def _pooled_share(t: Terms, p: Parameters, chosen: np.ndarray, scale: float) -> tuple[float, float]:
    """One r for the ``chosen`` runs (a class's, every generation), the other parameters
    held, with the whole fit's robust loss; and its rows' spread."""
    shares = np.broadcast_to(np.asarray(p.expert_share, dtype=float), t.decode.shape)

    def residual_at(x: np.ndarray) -> np.ndarray:
        held = replace(p, expert_share=np.where(chosen, np.exp(x[0]), shares))
        return np.asarray(np.log(step_s(t, held) / t.measured_s)[chosen])

    start = np.array([np.log(np.clip(shares[chosen].mean(), 0.03, 1.0))])
    found = least_squares(
        residual_at, start, bounds=_EFFICIENCY_BOUNDS, loss=ROBUST_LOSS, f_scale=scale
    )
    return float(np.exp(found.x[0])), _spread(found.fun)


def _carried(t: Terms, own: list[str]) -> np.ndarray:
    """Each run's GEMM ratio (:func:`~tasks.analysis.supply.efficiency.gemm_ratio`) where its
    compute efficiency is shared with other vendors (its vendor not among ``own``), else 1:
    the shared parameter is NVIDIA's share of the peak, carried to each vendor."""
    return np.array([1.0 if v in own else gemm_ratio(str(v)) for v in t.vendor])


def _pooled(t: Terms, p: Parameters, phase: str, scale: float) -> Efficiency:
    """The phase's efficiency fitted on every vendor's rows, the other parameters held, with
    the whole fit's robust loss."""
    decode = phase == "decode"
    chosen = t.decode == decode

    def residual_at(x: np.ndarray) -> np.ndarray:
        value = np.full(len(t.decode), np.exp(x[0]))
        held = (
            replace(p, decode_bandwidth=value)
            if decode
            else replace(p, prefill_flops=value * _carried(t, []))
        )
        return np.asarray(np.log(step_s(t, held) / t.measured_s)[chosen])

    found = least_squares(
        residual_at,
        np.array([np.log(0.5)]),
        bounds=_EFFICIENCY_BOUNDS,
        loss=ROBUST_LOSS,
        f_scale=scale,
    )
    n = int(chosen.sum())
    return Efficiency(float(np.exp(found.x[0])), _source(n, phase, _ALL), _spread(found.fun))

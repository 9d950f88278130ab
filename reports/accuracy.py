"""How far to trust the audit's dates: where every efficiency came from, how wrong memwall's
predictions were on published measured runs, and each starvation month's P10-P90 band.

The story (``reports.story``) calls :func:`likely` wherever it prints a starvation month and
:func:`accuracy_section` on the method page.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any
from xml.sax.saxutils import escape

import pandas as pd
from reportlab.lib.units import cm
from reportlab.platypus import Flowable, Paragraph, Spacer, Table

from reports.cells import missing, month
from reports.styles import stylesheet, table_style
from tasks.analysis.supply.backtest import Backtest, Summary
from tasks.analysis.supply.engine_generation import NEWEST


def likely(starve: Any, p10: Any, p90: Any) -> str:
    """'2027-06 (likely 2027-03 to 2027-10)': the central month and its P10-P90 band."""
    if missing(starve):
        return "never" if missing(p10) else f"not in the horizon (possibly from {month(p10)})"
    late = "beyond the horizon" if missing(p90) else month(p90)
    early = month(starve) if missing(p10) else month(p10)
    return f"{month(starve)} (likely {early} to {late})"


def row_likely(r: Any) -> str:
    """:func:`likely` of a ranking row."""
    return likely(r.starve_month, r.starve_month_p10, r.starve_month_p90)


def _percent(value: float, signed: bool = False) -> str:
    if math.isnan(value):
        return "–"
    shown = round(100 * value, 1) + 0.0  # + 0.0 turns -0.0 into 0.0
    return f"{shown:+.1f} %" if signed else f"{shown:.1f} %"


def _summary(s: Summary) -> str:
    return f"MAPE {_percent(s.mape)}, bias {_percent(s.bias, signed=True)} ({s.runs} runs)"


def backtest_lines(backtest: Backtest | None, ranking: pd.DataFrame | None = None) -> list[str]:
    """The backtest's error, leave-one-source-out first (overall, then per architecture
    class, vendor and phase), then the fit/holdout figures: what the method page prints;
    with the ``ranking``, the routed-expert share of each workload on an older engine."""
    if backtest is None or backtest.runs.empty:
        return [
            "Backtest: no published measured runs were available, so no efficiency is fitted "
            "and the model's error on real runs is unknown; the date bands then show the "
            "demand-growth spread only."
        ]
    holdout, fit = backtest.summary("holdout"), backtest.summary("fit")

    def parts(grouping: str) -> str:
        return "; ".join(f"{s.split} {_summary(s)}" for s in backtest.loso_by(grouping))

    spreads = ", ".join(
        f"{name} ±{100 * spread:.0f} %" for name, spread in backtest.fitted.class_spread.items()
    )
    sources = f"{backtest.sources} source{'s' if backtest.sources != 1 else ''}"
    lines = [
        f"Backtest on {len(backtest.runs)} published measured runs from {sources} (error = "
        "predicted / measured step time − 1; negative means memwall predicted the step too "
        "fast). Headline, leave-one-source-out (each source's runs — one engine's blog, one "
        "vendor page, one benchmark table — predicted by defaults fitted on the other "
        f"sources only): {_summary(backtest.loso_summary())}. Per architecture class: "
        f"{parts('class')}. Per vendor: {parts('vendor')}. Per phase: {parts('phase')}.",
        "The date bands take, where an efficiency is a fitted default, the leave-one-source-"
        f"out spread of the workload's class (RMS log error: {spreads}).",
        *_disagreement_line(backtest),
        _expert_line(backtest, ranking),
        "Secondary, with rows of one source on both sides of the split: held-out runs "
        f"{_summary(holdout)}; runs the defaults were fitted on {_summary(fit)}.",
    ]
    loo = backtest.loo_summary()
    if loo.runs:
        lines.append(
            "Leave-one-out on the fit rows (each predicted by defaults fitted on the others): "
            f"{_summary(loo)}. The model's terms (which efficiencies and overheads to fit) were "
            "chosen by this figure."
        )
    stream = backtest.summary("holdout", stream=True)
    if stream.runs:
        lines.append(
            "With the STREAM-based defaults instead of the fitted ones, the held-out error "
            f"would be {_summary(stream)}."
        )
    if backtest.skipped:
        lines.append(
            f"{len(backtest.skipped)} published run(s) skipped: "
            + "; ".join(backtest.skipped[:3])
            + ("; …" if len(backtest.skipped) > 3 else "")
        )
    return lines


def _disagreement_line(backtest: Backtest) -> list[str]:
    """How much of each class's headline is the sources disagreeing rather than the model:
    the error with each source's own offset taken out, and the pairs of runs that contradict
    each other whatever the model (none where the backtest left no source out)."""
    parts = []
    for d in backtest.disagreement:
        part = (
            f"{d.architecture_class} {_percent(d.offsets.within_source_mape)} "
            f"(offsets {100 * d.offsets.offset_share:.0f} % of its squared log error"
        )
        if d.contradictions:
            part += f"; {len(d.contradictions)} contradicting pairs"
        parts.append(part + ")")
    if not parts:
        return []
    return [
        "Published pages differ in what they do not state (engine build and tuning, harness): "
        "with each source's own mean offset taken out, the leave-one-source-out error is "
        + "; ".join(parts)
        + ". A contradicting pair is two runs from different sources on the same model, "
        "hardware, layout, precision and engine in which the one with less work was measured "
        "slower: one of them is off whatever the model. A fleet's own serving telemetry sets "
        "that offset for its engine as deployed (memwall predict --prometheus)."
    ]


def _expert_line(backtest: Backtest, ranking: pd.DataFrame | None = None) -> str:
    """How decode's routed-expert matmuls are priced: each MoE class's fitted share of the
    dense efficiencies on a current engine (what the projection takes for a workload that
    names no older engine), with its source, or as dense where the class has no fit; then
    each ranked workload whose engine is older, with the share it took and why."""
    fitted = backtest.fitted
    shares = {name: fitted.experts("decode", name, NEWEST) for name in fitted.expert_matmuls}
    said = "; ".join(
        f"{name} {e.value:.2f} ± {100 * e.spread:.0f} %, {e.source}" for name, e in shares.items()
    )
    return (
        "At decode each touched expert multiplies a few tokens (a grouped GEMM): a MoE "
        "workload's routed-expert bytes and FLOPs run at its class's share of the dense "
        f"efficiencies, fitted with them, on a current engine: {said or 'none fitted'}; a "
        "class without one runs its experts as dense matmuls." + _older_engines(ranking)
    )


def _older_engines(ranking: pd.DataFrame | None, shown: int = 5) -> str:
    """The ranked MoE workloads whose row names an engine older than the newest generation,
    each with the routed-expert share it was projected at and that share's source (the first
    ``shown`` by rank, then how many more)."""
    if ranking is None or "expert_share" not in ranking:
        return ""
    older = ranking[ranking["expert_share"].notna() & (ranking["engine_generation"] != NEWEST)]
    if older.empty:
        return ""
    listed = "; ".join(
        f"{r.name} {r.expert_share:.2f}, {r.expert_share_source}"
        for r in older.head(shown).itertuples(index=False)
    )
    more = f"; and {len(older) - shown} more" if len(older) > shown else ""
    return (
        f" {len(older)} workload(s) name an older engine and take its generation's share "
        f"instead: {listed}{more}."
    )


def efficiency_table(sources: pd.DataFrame) -> Table:
    s = stylesheet()

    def cell(value: object) -> Paragraph:
        return Paragraph(escape(str(value)), s["cell"])

    def efficiency(value: float, spread: float) -> str:
        return f"{value:.2f} ± {100 * spread:.0f} %"

    def overhead(seconds: float, per: str) -> str:
        if not per or seconds <= 0:
            return "–"
        shown = f"{seconds * 1e3:.3g} ms" if seconds >= 1e-3 else f"{seconds * 1e6:.3g} µs"
        return f"{shown} per {per}"

    header = ["model", "phase", "bandwidth eff.", "source", "compute eff.", "source", "overhead"]
    rows = [[cell(h) for h in header]]
    each: Iterator[Any] = sources.itertuples(index=False)
    for r in each:
        rows.append(
            [
                cell(r.accelerator_id),
                cell(r.phase),
                cell(efficiency(r.bandwidth_efficiency, r.bandwidth_spread)),
                cell(r.bandwidth_source),
                cell(efficiency(r.flops_efficiency, r.flops_spread)),
                cell(r.flops_source),
                cell(overhead(r.step_overhead_s, r.step_overhead_per)),
            ]
        )
    table = Table(
        rows,
        colWidths=[3.5 * cm, 1.3 * cm, 1.9 * cm, 3.6 * cm, 1.9 * cm, 3.6 * cm, 2.2 * cm],
        repeatRows=1,
    )
    table.setStyle(table_style())
    return table


def accuracy_section(
    sources: pd.DataFrame | None, backtest: Backtest | None, ranking: pd.DataFrame | None = None
) -> list[Flowable]:
    """Method-page section: efficiency sources, backtest error (with the ``ranking``: the
    routed-expert share of each workload on an older engine), and how the bands are made."""
    s = stylesheet()
    flow: list[Flowable] = [
        Paragraph("Efficiencies, their sources and the model's error", s["h2"]),
        Paragraph(
            "Each phase uses its own efficiency: what workload-shaped probes measured on that "
            "model (this run, else the history), else a default fitted on published measured "
            "runs (decode on bandwidth, prefill on compute; per vendor where it has enough "
            "runs; decode's compute efficiency too, across vendors), else the STREAM-based "
            "calibration. With a fitted efficiency comes the step overhead fitted alongside it "
            "(kernel launches, synchronisation, scheduling: per layer of a decode step, once "
            "per prefill step), charged to workloads made from a model (preset or "
            "config.json); a measured efficiency already holds its own. ± is the spread "
            "(standard deviation of "
            "the log): a measurement's CV, a fitted default's residuals, or the STREAM "
            "defaults' error on the published runs.",
            s["small"],
        ),
        Spacer(1, 3),
    ]
    if sources is not None and not sources.empty:
        flow += [efficiency_table(sources), Spacer(1, 4)]
    flow += [Paragraph(escape(line), s["body"]) for line in backtest_lines(backtest, ranking)]
    flow.append(
        Paragraph(
            "Date bands: 'starves 2027-06 (likely 2027-03 to 2027-10)' gives the P10 and P90 "
            "starvation months. Supply scales with the binding ceiling's efficiency, so its "
            "spread shifts the headroom by exp(±1.28·s); demand_growth_sigma adds "
            "sigma·(t/12)/(1+g) at month t, in quadrature.",
            s["body"],
        )
    )
    return flow

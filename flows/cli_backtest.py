"""``memwall backtest``: every published measured run predicted with ``memwall predict``'s
maths, and the error printed per run, per grouping and left-one-source-out."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from flows.cli_common import CatalogOption, print_json
from flows.cli_prediction import JsonOption, RunsOption, efficiency_text, seconds, stdout
from flows.cli_training_backtest import backtest_training
from flows.cli_training_options import ScaleOutOption, TrainingRunsOption
from flows.timings import STARTED, Stopwatch
from hardware_profiles.errors import MemwallError

if TYPE_CHECKING:
    from tasks.analysis.supply.backtest import Backtest, Summary


def _percent(value: float) -> str:
    return "-" if math.isnan(value) else f"{round(100 * value, 1) + 0.0:+.1f} %"


def summary_line(s: Summary) -> str:
    if s.runs == 0:
        return f"{s.split}: no runs"
    return f"{s.split}: {s.runs} runs, MAPE {100 * s.mape:.1f} %, bias {_percent(s.bias)}"


def backtest_json(result: Backtest) -> dict[str, Any]:
    from tasks.analysis.supply.backtest import GROUPINGS
    from tasks.analysis.supply.collectives import LINK_KINDS
    from tasks.analysis.workload.step_overhead import OVERHEAD_PER

    return {
        "runs": result.runs.to_dict("records"),
        "leave_one_source_out": {
            "sources": result.sources,
            "overall": result.loso_summary().as_json(),
            **{
                f"by_{grouping}": {s.split: s.as_json() for s in result.loso_by(grouping)}
                for grouping in GROUPINGS
            },
            "class_spread": dict(result.fitted.class_spread),
            "disagreement_by_class": {
                d.architecture_class: d.as_json() for d in result.disagreement
            },
        },
        "summary": {s: result.summary(s).as_json() for s in ("fit", "holdout")},
        "summary_by_phase": {
            s: {p: result.summary(s, phase=p).as_json() for p in ("decode", "prefill")}
            for s in ("fit", "holdout")
        },
        "leave_one_out_summary": result.loo_summary().as_json(),
        "stream_defaults_summary": {
            s: result.summary(s, stream=True).as_json() for s in ("fit", "holdout")
        },
        "fitted": [
            {
                "phase": phase,
                "ceiling": "bandwidth" if phase == "decode" else "flops",
                "vendor": vendor,
                "efficiency": e.value,
                "spread": e.spread,
                "source": e.source,
            }
            for (phase, vendor), e in result.fitted.efficiencies.items()
        ]
        + [
            {
                "phase": phase,
                "ceiling": ceiling,
                "vendor": None,
                "efficiency": e.value,
                "spread": e.spread,
                "source": e.source,
            }
            for (phase, ceiling), e in result.fitted.other_ceiling.items()
        ],
        "expert_matmuls": [
            {
                "phase": "decode",
                "architecture_class": name,
                "share_of_dense": e.value,
                "spread": e.spread,
                "source": e.source,
            }
            for name, e in result.fitted.expert_matmuls.items()
        ],
        "overheads": [
            {
                "phase": phase,
                "seconds": o.seconds,
                "per": OVERHEAD_PER[phase],
                "source": o.source,
            }
            for phase, o in result.fitted.overheads.items()
        ],
        "collective_latency_per_call": [
            {"link": k.name, "seconds": k.latency_s, "source": k.source} for k in LINK_KINDS
        ],
        "skipped": result.skipped,
    }


def backtest(
    runs: RunsOption = None,
    catalog: CatalogOption = None,
    as_json: JsonOption = False,
    phase: Annotated[
        str, typer.Option("--phase", help="serving (decode and prefill) or training.")
    ] = "serving",
    training_runs: TrainingRunsOption = None,
    scale_out: ScaleOutOption = None,
) -> None:
    """Predict every published measured run with `memwall predict`'s maths and print the
    signed error per run (predicted / measured step time - 1), then the leave-one-source-out
    MAPE and bias (each source's rows predicted by defaults fitted on the other sources),
    overall and per architecture class, vendor, phase and source; then, as before, MAPE and bias for
    the rows the defaults were fitted on and, apart, for the held-out rows. --phase training: the
    published training runs (flows.cli_training_backtest)."""
    if phase not in ("serving", "training"):
        raise MemwallError(f"--phase {phase!r} is not valid; valid: serving, training")
    if phase == "training":
        backtest_training(training_runs, catalog, scale_out, as_json)
        return
    from hardware_profiles.catalog import load_catalog
    from tasks.published_backtest import published_backtest

    watch = Stopwatch(STARTED)
    watch.lap("start-up")
    result = published_backtest(load_catalog(catalog), runs)
    watch.lap("backtest")
    if as_json:
        print_json(backtest_json(result), timings=watch.timings())
        return
    print_backtest(result, stdout)


def disagreement_lines(result: Backtest) -> list[str]:
    """Per class, the leave-one-source-out error with each source's own offset taken out,
    that offset's share, and the pairs of runs the sources contradict each other on."""
    lines = []
    for d in result.disagreement:
        split = d.offsets
        line = (
            f"{d.architecture_class}: {split.runs} runs from {split.sources} sources; with each "
            f"source's mean offset taken out {100 * split.within_source_mape:.1f} % "
            f"(offsets: {100 * split.offset_share:.0f} % of the squared log error)"
        )
        worst = d.worst
        if worst is not None:
            line += (
                f"; {len(d.contradictions)} pair{'s' if len(d.contradictions) != 1 else ''} of "
                "runs from different sources contradict each other (less work measured slower "
                "on the same model, hardware, layout, precision and engine), the widest "
                f"{worst.gap:.2f}x ({worst.less_work} against "
                f"{worst.more_work}: one is off by at least {100 * worst.least_error:.0f} % "
                "whatever the model)"
            )
        lines.append(line)
    return lines


def print_backtest(result: Backtest, out: Console) -> None:
    """The backtest as ``memwall backtest`` and ``benchmarks/backtest.py`` print it."""

    from tasks.analysis.supply.backtest import GROUPINGS
    from tasks.analysis.supply.collectives import LINK_KINDS
    from tasks.analysis.supply.published_fit import MIN_CLASS_SOURCES
    from tasks.analysis.workload.step_overhead import OVERHEAD_PER

    def say(line: str) -> None:
        out.print(line, markup=False, soft_wrap=True)

    if result.runs.empty:
        say("no published runs to backtest")
    else:
        say("run / split / model on hardware / phase, batch / metric: measured, predicted")
    for r in result.runs.to_dict("records"):
        say(
            f"{r['run_id']:<12} {r['split']:<7} {r['model_preset']} on {r['devices']} x "
            f"{r['hardware']} ({r['layout']}), {r['phase']} batch {r['batch']}, "
            f"{r['metric']}: measured {r['measured_value']:.4g}, predicted "
            f"{r['predicted_value']:.4g}, error {_percent(float(r['error']))} ({r['bound']}-bound)",
        )
    for (phase, vendor), e in result.fitted.efficiencies.items():
        ceiling = "bandwidth" if phase == "decode" else "compute"
        say(
            f"default {phase} {ceiling} efficiency ({vendor or 'all vendors'}): "
            f"{efficiency_text(e)}",
        )
    for (phase, ceiling), e in result.fitted.other_ceiling.items():
        name = "compute" if ceiling == "flops" else ceiling
        say(f"default {phase} {name} efficiency (all vendors): {efficiency_text(e)}")
    for name, e in result.fitted.expert_matmuls.items():
        say(f"default decode routed-expert matmul share ({name}): {efficiency_text(e)}")
    unfitted = sorted(
        set(result.runs["architecture_class"]) - {"dense", *result.fitted.expert_matmuls}
    ) if not result.runs.empty else []  # fmt: skip
    for name in unfitted:
        say(
            f"decode routed-expert matmuls ({name}): as the dense ones, no fit of their own "
            f"(the class's fit rows come from fewer than {MIN_CLASS_SOURCES} sources)"
        )
    for phase, o in result.fitted.overheads.items():
        say(f"{phase} step overhead: {seconds(o.seconds)} per {OVERHEAD_PER[phase]}  {o.source}")
    say(
        "collectives' latency per call, counted apart from the step overhead: "
        + ", ".join(f"{k.name} {seconds(k.latency_s)}" for k in LINK_KINDS)
    )
    say("error = predicted / measured step time - 1 (negative: predicted too fast)")
    if not result.runs.empty:
        say(
            f"{summary_line(result.loso_summary())} from {result.sources} "
            f"source{'s' if result.sources != 1 else ''} (headline: "
            "each source's rows predicted by defaults fitted on the other sources)"
        )
        for grouping in GROUPINGS:
            for part in result.loso_by(grouping):
                say(f"  {grouping} {summary_line(part)}")
        spreads = ", ".join(f"{k} {v:.2f}" for k, v in result.fitted.class_spread.items())
        say(f"  date bands' supply spread (RMS log error, leave-one-source-out): {spreads}")
        for line in disagreement_lines(result):
            say(f"  {line}")
        say(
            "fit/holdout split and leave-one-out on fit rows (secondary: rows of one source "
            "fall on both sides)"
        )
    for split in ("fit", "holdout"):
        say(summary_line(result.summary(split)))
        for phase in ("decode", "prefill"):
            part = result.summary(split, phase=phase)
            if part.runs:
                say(f"  {phase}: {summary_line(part).split(': ', 1)[1]}")
        stream = result.summary(split, stream=True)
        if stream.runs:
            say(f"  with the STREAM defaults instead: {summary_line(stream)}")
    loo = result.loo_summary()
    if loo.runs:
        say(f"{summary_line(loo)} (fit rows, each predicted by defaults fitted on the others)")
    noted: dict[str, list[str]] = {}
    for run_id, notes in zip(result.runs["run_id"], result.runs["notes"], strict=True):
        for note in notes:
            noted.setdefault(note, []).append(str(run_id))
    for note, run_ids in noted.items():
        say(f"note ({', '.join(run_ids)}): {note}")
    for note in result.skipped:
        say(f"skipped {note}")

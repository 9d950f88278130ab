"""Accuracy against published measured runs: the same figures as ``memwall backtest``.

Predicts every run of the published-runs file (default: the built-in one) with
``tasks.analysis.supply.predict``, fitting the per-phase defaults on the ``fit`` rows, and prints
the signed error per run; then the headline, the leave-one-source-out error (each source's rows
predicted by defaults fitted on the other sources) overall and per architecture class, vendor
and phase, against its targets (MAPE <= 15 % overall and <= 20 % in every class and vendor with
at least 5 rows, |bias| <= 5 %; a class that misses says how much of its error is each source's
own offset, :mod:`tasks.analysis.supply.source_disagreement`), and per engine generation the
fitted routed-expert shares; then, secondary, MAPE and bias for the fit rows and the
held-out rows, and what the STREAM defaults would have scored. With
``--loo`` it also prints each fit row's leave-one-out error (the summary line is always printed):
each fit row predicted by defaults fitted on the others, the figure the model's structure (which
efficiencies and overheads to fit) was chosen by. Last, side by side with NVIDIA's aiconfigurator
where ``.venv-peers`` holds it (``make peers``; :mod:`benchmarks.peers.side_by_side`): both
tools' MAPE and bias on exactly the rows both express, memwall alone on the rest, and the
target, memwall closer overall and in every class with at least 5 common rows. It never fails a
build.

    .venv/bin/python -m benchmarks.backtest [--runs FILE] [--loo] [--peers-venv DIR]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rich.console import Console

from benchmarks.peers.side_by_side import PEERS_VENV, print_side_by_side
from flows.cli_backtest import print_backtest
from hardware_profiles.catalog import builtin_catalog
from hardware_profiles.published_runs import builtin_published_runs, read_published_runs
from tasks.analysis.supply.backtest import MIN_CLASS_RUNS, Backtest, backtest
from tasks.analysis.supply.engine_generation import GENERATIONS, UNKNOWN


def print_generations(result: Backtest) -> None:
    """The engine-dependent fits per engine generation (tasks.analysis.supply.engine_generation):
    each class's routed-expert share r where the generation's fit rows of the class come
    from enough sources (else the class's r over every generation stands), and the runs of
    each generation."""
    fitted = result.fitted
    for generation in (*GENERATIONS, UNKNOWN):
        runs = int((result.runs["engine_generation"] == generation).sum())
        print(f"engine generation {generation}: {runs} runs")
        for name in fitted.expert_matmuls:
            share = fitted.experts("decode", name, generation)
            print(f"  decode routed-expert share r ({name}): {share.value:.3f}  {share.source}")
    overhead = fitted.overhead("decode")
    print(
        f"decode overhead per layer, every generation: {1e6 * overhead.seconds:.1f} us  "
        f"{overhead.source}"
    )


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", default=None, help="published-runs CSV")
    parser.add_argument("--loo", action="store_true", help="leave-one-out error on fit rows")
    parser.add_argument("--peers-venv", type=Path, default=PEERS_VENV, help="aiconfigurator's venv")
    args = parser.parse_args(argv)
    rows = builtin_published_runs() if args.runs is None else read_published_runs(args.runs)
    result = backtest(rows, builtin_catalog())
    print_backtest(result, Console(highlight=False, soft_wrap=True))
    print_generations(result)
    overall = result.loso_summary()
    if overall.runs:
        print(
            f"target: leave-one-source-out MAPE <= 15 %: {overall.mape / 0.15:.2f} of it; "
            f"|bias| <= 5 %: {abs(overall.bias) / 0.05:.2f} of it"
        )
        within = {d.architecture_class: d.offsets for d in result.disagreement}
        for grouping in ("class", "vendor"):
            for part in result.loso_by(grouping):
                if part.runs >= MIN_CLASS_RUNS:
                    verdict = "met" if part.mape <= 0.20 else "missed"
                    limit = within.get(part.split) if grouping == "class" else None
                    why = (
                        f" (each source's own offset is {100 * limit.offset_share:.0f} % of its "
                        f"squared log error; taken out, {100 * limit.within_source_mape:.1f} %)"
                        if limit is not None and verdict == "missed"
                        else ""
                    )
                    print(
                        f"target: {grouping} {part.split} ({part.runs} runs) MAPE <= 20 %: "
                        f"{100 * part.mape:.1f} %, {verdict}{why}"
                    )
    holdout = result.summary("holdout")
    if holdout.runs:
        print(
            f"secondary: held-out MAPE {100 * holdout.mape:.1f} %, bias "
            f"{100 * holdout.bias:+.1f} % (rows of one source on both sides of the split)"
        )
    if args.loo:
        for run_id, error in result.leave_one_out.items():
            print(f"leave-one-out {run_id}: {100 * error:+.1f} %")
    print_side_by_side(result, rows, args.peers_venv)


if __name__ == "__main__":
    main(sys.argv[1:])

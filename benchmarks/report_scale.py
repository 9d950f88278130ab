"""The audit PDF for 10,000 workloads: build time and file size.

Prints the time to lay out and write the PDF (projection and ranking excluded), its pages
and size, each against its target (30 s, 5 MB), and the time as a ratio to a reference
measured in the same run (the same PDF for the 100 highest-ranked workloads only), which
shows how the build scales with the number of workloads. It never fails.

    .venv/bin/python -m benchmarks.report_scale [--workloads N]
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import tempfile
import time
from pathlib import Path

from pypdf import PdfReader

from benchmarks.analysis_scale import START, roadmap, workloads
from hardware_profiles.catalog import builtin_catalog
from reports.build import write_pdf
from reports.content import AuditReport
from tasks.analysis.findings import gather
from tasks.analysis.projection.projector import project
from tasks.analysis.ranking.ranking import rank
from tasks.analysis.supply.calibration import calibrate


def build(n: int, folder: Path) -> tuple[float, Path]:
    table = workloads(n)
    plan = roadmap()
    catalog = builtin_catalog()
    calibrated = calibrate(catalog)
    projection = project(table, plan, calibrated, START, 18)
    ranked = rank(projection, catalog=catalog)
    report = AuditReport(
        run_id=f"benchmark-{n}",
        generated_at=dt.datetime.now(dt.UTC),
        host="benchmark",
        findings=gather(projection, ranked, calibrated, catalog, plan),
        calibration_defaults={"bandwidth": 0.85, "flops": 0.70},
        sources={"Workloads": f"{n} synthetic workloads"},
    )
    start = time.perf_counter()
    path = write_pdf(report, folder / f"audit-{n}.pdf")
    return time.perf_counter() - start, path


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workloads", type=int, default=10_000)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        reference, _ = build(100, Path(tmp))
        seconds, path = build(args.workloads, Path(tmp))
        size_mb = path.stat().st_size / 1e6
        pages = len(PdfReader(str(path)).pages)
    print(f"reference: 100 workloads  {reference:7.2f} s")
    print(
        f"{args.workloads:,} workloads       {seconds:7.2f} s  ({seconds / reference:5.1f}x "
        f"reference)  target <= 30 s: {seconds / 30:5.2f} of it"
    )
    print(f"pages                     {pages:7d}")
    print(f"file size                 {size_mb:7.2f} MB target <= 5 MB: {size_mb / 5:5.2f} of it")


if __name__ == "__main__":
    main(sys.argv[1:])

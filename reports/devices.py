"""Measured against spec: per accelerator model the calibrated ceilings beside the catalog's,
and every probe result with its status."""

from __future__ import annotations

import pandas as pd
from reportlab.lib.units import cm
from reportlab.platypus import (
    Flowable,
    PageBreak,
    Paragraph,
    Spacer,
    Table,
)

from hardware_profiles.prefixes import si
from reports.cells import data_table, missing, percent, text
from reports.content import AuditReport
from reports.styles import STATUS_COLOURS, stylesheet
from tasks.analysis.ranking.ranking import records


def _status_cell(status: str) -> Paragraph:
    colour = STATUS_COLOURS.get(status)
    hex_colour = colour.hexval()[2:] if colour is not None else "616e7c"
    return Paragraph(f'<font color="#{hex_colour}">{text(status)}</font>', stylesheet()["cell"])


def devices_table(devices: pd.DataFrame, precision: str) -> Table:
    rows = [
        [
            d.name,
            si(d.spec_bandwidth_bytes_per_s, "B/s"),
            si(d.bandwidth_bytes_per_s, "B/s"),
            f"{percent(d.bandwidth_efficiency)} ({d.bandwidth_from})",
            si(d.spec_flops_per_s, "FLOP/s"),
            si(d.flops_per_s, "FLOP/s"),
            f"{percent(d.flops_efficiency)} ({d.flops_from})",
            f"{d.spec_ridge_flops_per_byte:.0f} / {d.ridge_flops_per_byte:.0f}"
            if not missing(d.ridge_flops_per_byte)
            else "–",
            _status_cell(str(d.status)),
        ]
        for d in records(devices)
    ]
    return data_table(
        [
            "model",
            "spec BW",
            "usable BW",
            "BW efficiency",
            f"spec {precision}",
            f"usable {precision}",
            "compute eff.",
            "ridge spec / usable",
            "probes",
        ],
        rows,
        [3.0 * cm, 1.7 * cm, 1.7 * cm, 2.2 * cm, 1.9 * cm, 1.9 * cm, 2.2 * cm, 1.8 * cm, 1.6 * cm],
    )


def measurements_table(measurements: pd.DataFrame) -> Table:
    rows = []
    for m in records(measurements):
        unit = "B/s" if m.unit == "bytes_per_s" else "FLOP/s"
        rows.append(
            [
                f"{m.device_kind} #{m.device_index}",
                m.probe,
                m.dtype,
                si(m.working_set_bytes, "B"),
                si(m.best, unit),
                si(m.median, unit),
                percent(m.cv),
                si(m.spec, unit),
                percent(m.efficiency),
                _status_cell(str(m.status)),
            ]
        )
    return data_table(
        [
            "device",
            "probe",
            "dtype",
            "working set",
            "best",
            "median",
            "CV",
            "spec",
            "eff.",
            "status",
        ],
        rows,
        [
            3.2 * cm,
            1.4 * cm,
            1.5 * cm,
            1.6 * cm,
            1.8 * cm,
            1.8 * cm,
            1.2 * cm,
            1.8 * cm,
            1.5 * cm,
            1.4 * cm,
        ],
    )


def _measured_vs_spec(report: AuditReport) -> list[Flowable]:
    s = stylesheet()
    f = report.findings
    flow: list[Flowable] = [
        PageBreak(),
        Paragraph("Measured vs spec", s["h1"]),
        Paragraph(
            "Usable = spec × efficiency: measured on this run where memwall measured that model "
            "(triad bandwidth, matmul at the precision shown), else the default. Ridge = usable "
            f"{f.roofline_precision} FLOP/s over usable bandwidth (FLOP/byte): a workload below "
            "it is memory-bound on that model.",
            s["small"],
        ),
        Spacer(1, 4),
        devices_table(f.devices, f.roofline_precision),
    ]
    if report.accelerators:
        flow += [
            Paragraph("Accelerators on this host", s["h2"]),
            data_table(
                ["#", "platform", "device kind", "memory", "catalog entry", "note"],
                [
                    [
                        a.device_index,
                        a.platform,
                        a.device_kind,
                        si(a.memory_bytes, "B"),
                        a.accelerator_id or "–",
                        a.note,
                    ]
                    for a in report.accelerators
                ],
                [0.7 * cm, 1.6 * cm, 4.2 * cm, 1.8 * cm, 3.4 * cm, 6.3 * cm],
            ),
        ]
    if report.measurements is not None and not report.measurements.empty:
        flow += [
            Paragraph("Probe results", s["h2"]),
            Paragraph(
                "Best and median of the timed repetitions; CV is the coefficient of variation "
                "of the times; efficiency is best over the catalog's dense spec. A result is "
                "<i>unstable</i> when CV &gt; 5 % or best/median &gt; 1.1, <i>failed</i> when its "
                "output does not match the value derived by hand.",
                s["small"],
            ),
            Spacer(1, 4),
            measurements_table(report.measurements),
        ]
    return flow

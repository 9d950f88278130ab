"""The fleet's part of the PDF: which hosts answered, failed or were skipped, which devices
drifted, and each device's trend. Pure: tables in, flowables out.

It goes in front of the audit story, so a reader sees on page one that the ranking rests on
some hosts only, and which.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final
from xml.sax.saxutils import escape

import pandas as pd
from reportlab.lib.units import cm
from reportlab.platypus import Flowable, Paragraph, Spacer, Table

from hardware_profiles.prefixes import PREFIXES, si
from reports.health import health_section
from reports.styles import ACCENT, MUTED, STATUS_COLOURS, stylesheet, table_style
from tasks.analysis.health import DEFAULT_STRAGGLER_FRACTION, health

ANSWERED: Final = "answered"
FAILED: Final = "failed"
TIMED_OUT: Final = "timed out"
SKIPPED: Final = "skipped"
_COLOURS: Final = {
    ANSWERED: STATUS_COLOURS["ok"],
    FAILED: ACCENT,
    TIMED_OUT: ACCENT,
    SKIPPED: MUTED,
}
TREND_RUNS: Final = 6


@dataclass(frozen=True)
class HostResult:
    """One host of a fleet audit and what became of its probe run."""

    host: str
    status: str
    detail: str
    devices: int = 0


def _escape(value: object) -> str:
    return escape(str(value), {'"': "&quot;", "'": "&#39;"})


def _cell(value: object, colour: object = None) -> Paragraph:
    body = _escape(value)
    if colour is not None:
        body = f'<font color="#{colour.hexval()[2:]}">{body}</font>'  # type: ignore[attr-defined]
    return Paragraph(body, stylesheet()["cell"])


def _table(header: list[str], rows: list[list[Paragraph]], widths: list[float]) -> Table:
    table = Table([[_cell(h) for h in header], *rows], colWidths=widths, repeatRows=1)
    table.setStyle(table_style())
    return table


def fleet_headline(hosts: Sequence[HostResult]) -> str:
    answered = sum(h.status == ANSWERED for h in hosts)
    missing = [h for h in hosts if h.status != ANSWERED]
    if not missing:
        return f"All {len(hosts)} hosts answered."
    names = ", ".join(f"{h.host} ({h.status})" for h in missing)
    return (
        f"{answered} of {len(hosts)} hosts answered; this report leaves out {names}: their "
        "devices are not in the measurements below."
    )


def _figure(value: float, unit: str) -> str:
    """A device's measured figure in its unit's words (``bytes_per_s`` -> ``B/s``), from M up."""
    return si(value, "B/s" if unit == "bytes_per_s" else "FLOP/s", prefixes=PREFIXES[1:])


def trend_table(trend_rows: pd.DataFrame, run_id: str) -> Table | None:
    """Each device figure measured in ``run_id``: its last runs, oldest first, and verdict."""
    now = trend_rows[trend_rows["run_id"] == run_id]
    if now.empty:
        return None
    keys = ["host", "device_index", "device_kind", "figure"]
    rows = []
    for _, current in now.sort_values(keys).iterrows():
        same = (trend_rows[keys] == current[keys]).all(axis=1)
        series = trend_rows[same].tail(TREND_RUNS)
        history = ", ".join(_figure(v, current["unit"]) for v in series["value"])
        change = current["change"]
        flags = []
        if bool(current["straggler"]):
            flags.append(f"straggler ({100 * float(current['vs_model']):+.1f} % vs its model)")
        if bool(current["degraded"]):
            flags.append(f"degraded ({100 * change:+.1f} %)")
        if flags:
            verdict = _cell("; ".join(flags), ACCENT)
        elif pd.isna(change):
            verdict = _cell("too few runs", MUTED)
        else:
            verdict = _cell(f"steady ({100 * change:+.1f} %)", STATUS_COLOURS["ok"])
        rows.append(
            [
                _cell(f"{current['host']} · {current['device_kind']} #{current['device_index']}"),
                _cell(current["figure"]),
                _cell(history),
                _cell(_figure(current["trailing_median"], current["unit"])),
                verdict,
            ]
        )
    return _table(
        ["device", "figure", f"last {TREND_RUNS} runs, oldest first", "trailing median", "verdict"],
        rows,
        [4.4 * cm, 2.4 * cm, 6.0 * cm, 2.2 * cm, 3.0 * cm],
    )


def fleet_section(
    title: str,
    hosts: Sequence[HostResult],
    trend_rows: pd.DataFrame,
    run_id: str,
    notes: Sequence[str] = (),
    straggler_fraction: float = DEFAULT_STRAGGLER_FRACTION,
) -> list[Flowable]:
    """Page one of a fleet audit: hosts and their status, the fleet's health against each
    model's median, degraded devices, the trend."""
    s = stylesheet()
    flow: list[Flowable] = [
        Paragraph(_escape(title), s["title"]),
        Paragraph(_escape(fleet_headline(hosts)), s["headline"]),
        Paragraph("Hosts", s["h1"]),
        _table(
            ["host", "status", "devices", "detail"],
            [
                [
                    _cell(h.host),
                    _cell(h.status, _COLOURS.get(h.status)),
                    _cell(h.devices if h.status == ANSWERED else "–"),
                    _cell(h.detail),
                ]
                for h in hosts
            ],
            [4.0 * cm, 2.0 * cm, 1.5 * cm, 10.5 * cm],
        ),
    ]
    found = health(trend_rows, run_id, straggler_fraction)
    flow[2:2] = health_section(found, trend_rows, run_id)
    return [*flow, *drift_section(trend_rows, run_id, notes)]


def drift_section(
    trend_rows: pd.DataFrame, run_id: str, notes: Sequence[str] | None = ()
) -> list[Flowable]:
    """What the history itself needs a reader to know (files set aside, a run not recorded),
    degraded devices, and each device figure's trend over its last runs."""
    s = stylesheet()
    flow: list[Flowable] = []
    if notes:
        flow.append(Paragraph("History", s["h1"]))
        flow += [Paragraph(_escape(f"History: {n}"), s["body"]) for n in notes]
    degraded = trend_rows[(trend_rows["run_id"] == run_id) & trend_rows["degraded"].astype(bool)]
    flow.append(Paragraph("Drift", s["h1"]))
    if degraded.empty:
        flow.append(
            Paragraph(
                "No device measured more than 10 % below the median of its earlier runs "
                "(a verdict needs at least 3 of them).",
                s["body"],
            )
        )
    else:
        names = ", ".join(
            f"{r.host} {r.device_kind} #{r.device_index} {r.figure}" for r in degraded.itertuples()
        )
        flow.append(
            Paragraph(
                _escape(f"Degraded: {names}: more than 10 % below the median of the earlier runs."),
                s["headline"],
            )
        )
    table = trend_table(trend_rows, run_id)
    if table is not None:
        flow += [Spacer(1, 4), table]
    return flow

"""What the Prefect UI shows of a run, formatted the way the PDF is.

The UI renders markdown artifacts, so user text (workload names, owners, hosts, scenario names)
is escaped before it goes in: a workload named ``<img src=x>`` or ``*x*`` must read as
written, not as markup. Table artifacts carry display strings (``12.3 %``, ``2027-05``,
``0.87x``, ``+4 months``), not raw floats. A PDF written to shared storage (a path every host
mounts, or an object-store URL) gets a link artifact pointing at it; a PDF left on the worker
that wrote it is named with its host, since a bare path means nothing to someone at the UI.
"""

from __future__ import annotations

import datetime as dt
import re
import socket
from pathlib import Path
from typing import Any, cast

import pandas as pd
from prefect.artifacts import (
    create_link_artifact,
    create_markdown_artifact,
    create_table_artifact,
)

from tasks.analysis.findings import Findings
from tasks.analysis.ranking.ranking import records
from tasks.analysis.supply.production import Observation, row_line

ARTIFACT_ROWS = 1000  # rows of the ranking table artifact; the PDF has them all
SUMMARY_ROWS = 10
_MARKDOWN = re.compile(r"([\\`*_{}\[\]()#+\-.!|~])")


def md(value: object) -> str:
    """User text made inert in markdown: HTML's specials as entities, markdown's escaped."""
    escaped = str(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _MARKDOWN.sub(r"\\\1", escaped).replace("\n", " ")


def _missing(value: Any) -> bool:
    return value is None or bool(pd.isna(value))


def month(value: Any) -> str:
    if _missing(value):
        return "never"
    return f"{pd.Timestamp(value):%Y-%m}" if not isinstance(value, dt.date) else f"{value:%Y-%m}"


def percent(value: Any) -> str:
    return "–" if _missing(value) else f"{100 * float(value):.1f} %"


def times(value: Any) -> str:
    return "–" if _missing(value) else f"{float(value):.2f}x"


def months(value: Any) -> str:
    if _missing(value) or int(value) == 0:
        return "–"
    return f"{int(value):+d} month{'s' if abs(int(value)) != 1 else ''}"


def band(r: Any) -> str:
    """P10-P90 of the starvation month, where the ranking carries it."""
    low, high = getattr(r, "starve_month_p10", None), getattr(r, "starve_month_p90", None)
    if _missing(low) and _missing(high):
        return "–"
    return f"{month(low)} to {month(high)}"


def ranking_table_rows(ranking: pd.DataFrame) -> list[dict[str, object]]:
    """The ranking as the PDF prints it; wall and band columns where the ranking has them."""
    has_wall = "wall" in ranking.columns
    has_band = {"starve_month_p10", "starve_month_p90"} & set(ranking.columns)
    rows: list[dict[str, object]] = []
    for r in records(ranking):
        row: dict[str, object] = {
            "rank": int(r.rank),
            "workload": str(r.workload_id),
            "name": str(r.name),
            "pool": str(r.pool),
            "bound": str(r.bound),
            "utilisation now": percent(r.utilization_now),
            "headroom now": times(r.headroom_now),
            "min headroom": f"{times(r.min_headroom)} ({month(r.min_headroom_month)})",
            "starves": month(r.starve_month),
        }
        if has_band:
            row["starves P10-P90"] = band(r)
        if has_wall:
            row["wall"] = "–" if _missing(r.wall) else str(r.wall)
        row["best fix"] = "–" if _missing(r.best_mitigation) else str(r.best_mitigation)
        row["months gained"] = months(r.months_gained)
        rows.append(row)
    return rows


def pdf_location(pdf_path: Path) -> str:
    """The PDF named so a reader at the UI can tell where it is: absolute, with its host.
    Not in a code span: backslash escapes do not apply there, and the path is user text."""
    return f"{md(pdf_path.resolve())} on host {md(socket.gethostname())}"


def production_lines(production: Observation | None) -> list[str]:
    """Each production row's verdict (or why none) and its time to first token, where the
    engine exports it (nothing without telemetry)."""
    if production is None or production.rows.empty:
        return []
    lines = ["", "Production efficiency, measured where it is served:"]
    for r in records(production.rows):
        name = r.workload_id if isinstance(r.workload_id, str) else r.model_name
        who = f"{name} on {r.accelerator_id}"
        lines.append(f"- {md(who)}: {md(row_line(r.verdict, r.notes, r.ttft_s, r.ttft_spread))}")
    if production.findings:
        lines.append(f"- {len(production.findings)} telemetry finding(s) set aside: see the PDF")
    return lines


def summary_markdown(
    found: Findings,
    headline: str,
    pdf_path: Path,
    run_id: str,
    production: Observation | None = None,
) -> str:
    """Headline, the first workloads with their dates (and bands and walls, where the ranking
    has them), what production measured (where read), and where the PDF is."""
    ranking = found.ranking
    has_band = {"starve_month_p10", "starve_month_p90"} <= set(ranking.columns)
    has_wall = "wall" in ranking.columns
    lines = [f"# memwall audit {md(run_id)}", "", f"**{md(headline)}**", ""]
    for r in records(ranking.head(SUMMARY_ROWS)):
        line = f"{int(r.rank)}. {md(r.name)} ({md(r.pool)}): starves {month(r.starve_month)}"
        if has_band and not _missing(r.starve_month):
            line += f" (P10-P90 {band(r)})"
        if has_wall and not _missing(r.wall):
            line += f", {md(r.wall)} wall"
        line += f"; min headroom {times(r.min_headroom)}"
        lines.append(line)
    if has_wall:
        walls = ranking["wall"].dropna().astype(str).value_counts()
        if not walls.empty:
            lines += ["", "Walls hit: " + ", ".join(f"{md(w)} {n}" for w, n in walls.items())]
    lines += production_lines(production)
    lines += ["", f"PDF: {pdf_location(pdf_path)}"]
    return "\n".join(lines)


def publish_audit(
    found: Findings,
    headline: str,
    pdf_path: Path,
    run_id: str,
    production: Observation | None = None,
) -> None:
    """The audit's markdown summary and ranking table."""
    create_markdown_artifact(
        key="memwall-summary",
        markdown=summary_markdown(found, headline, pdf_path, run_id, production),
        description="Which workloads starve first",
    )
    ranking = found.ranking
    create_table_artifact(
        key="memwall-ranking",
        table=ranking_table_rows(ranking.head(ARTIFACT_ROWS)),
        description=f"Ranking, first {min(ARTIFACT_ROWS, len(ranking))} of {len(ranking)}",
    )


def link(location: str) -> str:
    """A URL for a PDF on shared storage: object-store and web URLs as they are, a mounted
    path as ``file://`` (absolute)."""
    return location if "://" in location else Path(location).resolve().as_uri()


def publish_pdf_link(location: str) -> None:
    """A link artifact to the PDF where it lies on shared storage."""
    create_link_artifact(
        key="memwall-pdf",
        link=link(location),
        link_text=Path(location.rsplit("/", 1)[-1]).name,
        description="The report, on shared storage",
    )


def usd(value: Any) -> str:
    if _missing(value):
        return "unknown"
    return f"{'-' if float(value) < 0 else ''}${abs(float(value)):,.0f}"


def whatif_markdown(headline: str, pdf_path: Path) -> str:
    return f"# memwall what-if\n\n**{md(headline)}**\n\nPDF: {pdf_location(pdf_path)}"


def whatif_table_rows(comparison: list[dict[str, object]]) -> list[dict[str, object]]:
    """One row per scenario, money in dollars and months signed, as the PDF prints them."""
    rows: list[dict[str, object]] = []
    for r in comparison:
        gained = r.get("months_gained")
        rescued = cast("list[object]", r.get("rescued") or [])
        newly = cast("list[object]", r.get("newly_starving") or [])
        rows.append(
            {
                "scenario": str(r["scenario"]),
                "starving": int(str(r["starving"])),
                "rescued": ", ".join(str(x) for x in rescued) or "–",
                "newly starving": ", ".join(str(x) for x in newly) or "–",
                "months gained": months(gained),
                "cost": usd(r.get("cost_usd")),
                "extra cost": usd(r.get("extra_cost_usd")),
                "per month gained": usd(r.get("cost_per_month_gained_usd"))
                if not _missing(gained) and int(str(gained)) > 0
                else "–",
            }
        )
    return rows

"""The what-if PDF's cost-and-energy table: per scenario, the walls left, what the added
capacity costs per token/s, tokens per joule, and months gained per $1M."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd
from reportlab.lib.units import cm
from reportlab.platypus import Flowable, Paragraph, Spacer

from hardware_profiles.prefixes import si
from reports.cells import data_table
from reports.styles import stylesheet
from tasks.analysis.ranking.ranking import records


def _known(value: Any, show: Callable[[float], str]) -> str:
    return "unknown" if value is None or pd.isna(value) else show(float(value))


def scenario_figures_section(comparison: pd.DataFrame) -> list[Flowable]:
    if "walls" not in comparison:
        return []
    s = stylesheet()
    rows = [
        [
            r.scenario,
            r.walls,
            si(r.token_capacity_per_s, "token/s"),
            si(r.added_tokens_per_s, "token/s") if r.added_tokens_per_s > 0 else "–",
            _known(r.usd_per_added_token_per_s, lambda v: f"${v:.3g}"),
            _known(r.tokens_per_joule, lambda v: si(v, "token/J")),
            _known(r.months_gained_per_million_usd, lambda v: f"{v:.3g}"),
        ]
        for r in records(comparison)
    ]
    return [
        Paragraph("Cost, energy and walls", s["h2"]),
        Paragraph(
            "At the horizon's last month. Token capacity: the sum over workloads counted in "
            "tokens of share × attainable FLOP/s / FLOPs per token. $ per token/s added: extra "
            "cost over "
            "the baseline / capacity added. Tokens per joule: capacity / the TDP of the devices "
            "serving it (share-weighted; devices at TDP, so a lower bound; unknown where the "
            "catalog has no tdp_watts). Months per $1M: months gained / extra cost in $1M. "
            "Walls: workloads per first wall hit in the horizon.",
            s["small"],
        ),
        Spacer(1, 4),
        data_table(
            [
                "scenario",
                "walls",
                "token/s",
                "added",
                "$ per token/s added",
                "tokens per J",
                "months per $1M",
            ],
            rows,
            [3.0 * cm, 4.0 * cm, 2.2 * cm, 2.2 * cm, 2.2 * cm, 2.2 * cm, 2.2 * cm],
        ),
    ]

"""Which models a projection leans on, and how firm their figures are.

A starvation date computed on a part that is only announced, or on figures that are not even
the vendor's own, is as uncertain as those figures; the reports say so in words, naming the
models, their status and when the roadmap brings them in.
"""

from __future__ import annotations

import datetime as dt
from typing import Final

import pandas as pd

from hardware_profiles.roadmaps import fleet_by_month

UNCONFIRMED: Final = ("announced", "preliminary")


def models_in_window(
    roadmap: pd.DataFrame, catalog: pd.DataFrame, start: dt.date, months: int
) -> pd.DataFrame:
    """The catalog rows of every model some pool holds in the window, in order of arrival.

    Added columns: ``first_month`` (the first month of the window a pool holds it) and
    ``pools`` (the pools that hold it, comma-separated). A catalog without the optional
    ``status`` column reads as status unknown (null).
    """
    fleet = fleet_by_month(roadmap, start, months)
    held = fleet[fleet["count"] > 0]
    first = held.groupby("accelerator_id")["month"].min()
    pools = held.groupby("accelerator_id")["pool"].agg(lambda s: ", ".join(sorted(set(s))))
    rows = catalog[catalog["accelerator_id"].isin(first.index)].copy()
    if "status" not in rows:
        rows["status"] = None
    rows["first_month"] = rows["accelerator_id"].map(first)
    rows["pools"] = rows["accelerator_id"].map(pools)
    return rows.sort_values(["first_month", "accelerator_id"], kind="stable").reset_index(drop=True)


def bought_in_window(
    roadmap: pd.DataFrame, catalog: pd.DataFrame, start: dt.date, months: int
) -> pd.DataFrame:
    """``models_in_window`` restricted to the models a purchase in the window brings in."""
    models = models_in_window(roadmap, catalog, start, months)
    fleet = fleet_by_month(roadmap, start, months)
    bought = set(fleet.loc[fleet["delta"] > 0, "accelerator_id"])
    return models[models["accelerator_id"].isin(bought)].reset_index(drop=True)


def unconfirmed_models(models: pd.DataFrame) -> pd.DataFrame:
    """The rows of ``models_in_window`` whose status is announced or preliminary."""
    return models[models["status"].isin(UNCONFIRMED)].reset_index(drop=True)


def named_models(models: pd.DataFrame) -> str:
    """``Name (id: status, from YYYY-MM in pools); ...`` for each row."""
    return "; ".join(
        f"{r['name']} ({r['accelerator_id']}: {r['status']}, from {r['first_month']:%Y-%m} "
        f"in {r['pools']})"
        for r in models.to_dict("records")
    )


CAVEAT: Final = (
    "Announced figures are the vendor's own for a part not yet on sale; preliminary figures are "
    "not the vendor's own (derived from rack totals or pre-release), so every date that depends "
    "on them is as uncertain as they are; the catalog's note on each model says what could not "
    "be confirmed."
)


def status_sentence(models: pd.DataFrame) -> str | None:
    """One sentence naming each announced or preliminary model, its status, when and where it
    arrives, and what that means; None when every model is shipping (or of unknown status)."""
    unsure = unconfirmed_models(models)
    if unsure.empty:
        return None
    return f"This projection uses hardware that is not shipping: {named_models(unsure)}. {CAVEAT}"

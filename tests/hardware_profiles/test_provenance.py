"""Which models a projection leans on, and the sentence that says how firm they are."""

from __future__ import annotations

import datetime as dt

import pandas as pd

from hardware_profiles.catalog import builtin_catalog
from hardware_profiles.examples import example_roadmap, example_scenarios
from hardware_profiles.provenance import (
    bought_in_window,
    models_in_window,
    status_sentence,
    unconfirmed_models,
)
from hardware_profiles.roadmaps import split_scenarios

START = dt.date(2026, 11, 1)


def test_models_in_the_window_arrive_in_order_with_their_pools() -> None:
    models = models_in_window(example_roadmap(), builtin_catalog(), START, 18)
    first = dict(zip(models["accelerator_id"], models["first_month"], strict=True))
    # Installed base from the first month; the roadmap's purchases from their month.
    assert first["nvidia-h100-sxm"] == START
    assert first["nvidia-b300"] == dt.date(2027, 2, 1)
    assert first["nvidia-rubin"] == dt.date(2027, 9, 1)
    pools = dict(zip(models["accelerator_id"], models["pools"], strict=True))
    assert pools["nvidia-b300"] == "inference, training"
    assert list(models["first_month"]) == sorted(models["first_month"])
    # A model the window ends before is not in it.
    assert "nvidia-rubin" not in set(
        models_in_window(example_roadmap(), builtin_catalog(), START, 6)["accelerator_id"]
    )


def test_bought_excludes_the_installed_base() -> None:
    bought = bought_in_window(example_roadmap(), builtin_catalog(), START, 18)
    assert set(bought["accelerator_id"]) == {"nvidia-b300", "nvidia-h200-sxm", "nvidia-rubin"}


def test_the_sentence_names_each_unconfirmed_model_its_status_month_and_pool() -> None:
    models = models_in_window(example_roadmap(), builtin_catalog(), START, 18)
    assert list(unconfirmed_models(models)["accelerator_id"]) == ["nvidia-rubin"]
    sentence = status_sentence(models)
    assert sentence is not None
    assert "(nvidia-rubin: preliminary, from 2027-09 in inference)" in sentence
    assert "nvidia-b300" not in sentence  # shipping


def test_no_sentence_when_everything_is_shipping_or_status_is_unknown() -> None:
    roadmap = example_roadmap()
    shipping_only = roadmap[roadmap["accelerator_id"] != "nvidia-rubin"]
    assert status_sentence(models_in_window(shipping_only, builtin_catalog(), START, 18)) is None
    # A user catalog written before the status column existed: nothing is claimed.
    old = builtin_catalog().drop(columns=["status"])
    assert status_sentence(models_in_window(roadmap, old, START, 18)) is None


def test_an_announced_model_bought_by_one_scenario_only() -> None:
    catalog = builtin_catalog()
    scenarios = split_scenarios(example_scenarios())
    extra = pd.DataFrame(
        [("edge", dt.date(2027, 1, 1), "aws-trainium3", 16, 20_000.0, "trn3", "trn3")],
        columns=[*scenarios["baseline"].columns[:6], "scenario"],
    )
    trn3 = pd.concat([scenarios["baseline"], extra], ignore_index=True)
    unsure = unconfirmed_models(bought_in_window(trn3, catalog, START, 18))
    assert dict(zip(unsure["accelerator_id"], unsure["status"], strict=True)) == {
        "aws-trainium3": "announced",
        "nvidia-rubin": "preliminary",
    }

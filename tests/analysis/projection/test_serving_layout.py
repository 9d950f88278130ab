"""A workload's stated serving layout sizes its replica, by hand.

Built-in catalog: H100 SXM, 81,559 MiB as the device reports it (85.52e9 B), usable memory
0.9 x 85.52e9 = 76.97e9 B per device. Pool "h100": 16 H100s. Llama 3.1 70B decode, bf16,
batch 1, 4,096-token context: footprint 142.45e9 B.

- No layout: the fewest devices that hold it, ceil(142.45e9 / 76.97e9) = 2, laid out as an engine
  launches a model on 2 devices: tp=2.
- ``tp=8``: 8 devices, though 2 would hold it (the row says how it is served).
- ``tp=1``: 142.45e9 B on one 76.97e9 B device: a capacity wall, where the engine's layout has
  none.

Llama 3.1 8B decode, bf16, batch 8, 4,096-token context: 8 KV heads x 128 x 2 (K and V) x 32
layers x 2 B = 131,072 B of KV cache per token. Under ``tp=16`` each KV head sits on 16/8 = 2
devices (vLLM copies a KV head when tp exceeds them), so a device reads 1/8 of a sequence's
cache, not 1/16: in the sizing's "whole step over n devices" form (n = 16 x the busiest
device's), each sequence's step bytes grow by (16/8 − 1) x its KV traffic, 4,096 tokens read +
1 written: 4,097 x 131,072 = 537,001,984 B. The weights (read once a step) split 16 ways, so
the fixed bytes are the engine layout's.
"""

from __future__ import annotations

import datetime as dt
import math

import pandas as pd
import pytest

from hardware_profiles.catalog import builtin_catalog
from hardware_profiles.errors import ProfileError
from hardware_profiles.parquet import validate_frame
from hardware_profiles.schema import WORKLOADS, MiB
from tasks.analysis.projection.projector import Projection, project
from tasks.analysis.projection.serving import STATED
from tasks.analysis.ranking.ranking import rank
from tasks.analysis.supply.calibration import calibrate
from tasks.analysis.workload.presets import preset
from tasks.analysis.workload.step_model import step_model
from tasks.analysis.workload.workload_model import estimate
from tests.analysis.projection.test_projector import _roadmap

START = dt.date(2027, 1, 1)


def _row(model: str, batch: int, layout: str | None, **extra: object) -> dict[str, object]:
    e = estimate(preset(model), phase="decode", batch=batch, context=4096)
    return {
        "workload_id": f"{model}-{layout}",
        "name": model,
        "owner": "o",
        "pool": "h100",
        **e.workload_columns(),
        "layout": layout,
        "demand_units_per_s": 10.0,
        "demand_growth_per_year": 0.0,
        **extra,
    }


def _project(rows: list[dict[str, object]]) -> tuple[Projection, pd.DataFrame]:
    catalog = builtin_catalog()
    workloads = validate_frame(pd.DataFrame(rows), WORKLOADS, "w")
    roadmap = _roadmap([("h100", "2026-01-01", "nvidia-h100-sxm", 16)])
    projection = project(workloads, roadmap, calibrate(catalog), START, 6, catalog=catalog)
    ranking = rank(projection, with_mitigations=False, catalog=catalog).ranking
    return projection, ranking.set_index("workload_id")


def test_a_stated_layout_sets_the_devices_and_its_walls() -> None:
    e = estimate(preset("llama-3.1-70b"), phase="decode", batch=1, context=4096)
    assert e.memory_footprint_bytes == pytest.approx(142.45e9, rel=1e-3)
    assert math.ceil(e.memory_footprint_bytes / (0.9 * 81_559 * MiB)) == 2
    rows = [_row("llama-3.1-70b", 1, layout) for layout in (None, "tp=8", "tp=1")]
    projection, ranking = _project(rows)
    serving = projection.serving
    assert serving is not None
    assert list(serving.devices[:2]) == [2, 8] and math.isnan(serving.devices[2])
    assert list(serving.layout) == ["tp=2", "tp=8", None]
    assert serving.layout_reason[0].startswith("tensor parallel over all 2 devices")
    assert serving.layout_reason[1] == STATED
    assert ranking.loc["llama-3.1-70b-tp=8", "devices_per_replica"] == 8
    layouts = ranking["replica_layout"]
    assert (layouts["llama-3.1-70b-None"], layouts["llama-3.1-70b-tp=8"]) == ("tp=2", "tp=8")
    assert layouts.isna()["llama-3.1-70b-tp=1"]  # no replica forms: no layout
    assert ranking["wall"].isna()["llama-3.1-70b-None"]
    assert ranking.loc["llama-3.1-70b-tp=1", "wall"] == "capacity"


def test_a_layout_that_copies_kv_heads_reads_more_per_device() -> None:
    rows = [_row("llama-3.1-8b", 8, layout) for layout in (None, "tp=16")]
    workloads = validate_frame(pd.DataFrame(rows), WORKLOADS, "w")
    step = step_model(workloads)
    extra = step.step_bytes_per_sequence[1] - step.step_bytes_per_sequence[0]
    assert extra == pytest.approx(4097 * 131_072, rel=1e-6)
    assert step.step_fixed_bytes[1] == pytest.approx(step.step_fixed_bytes[0], rel=1e-9)
    assert step.fixed_devices[1] == 16 and math.isnan(step.fixed_devices[0])
    projection, _ = _project(rows)
    assert projection.serving is not None
    assert list(projection.serving.devices) == [1, 16]
    # The supply reads the layout's bytes: at batch 8 each token costs the extra KV traffic.
    served = projection.served_workloads["bytes_per_unit"].to_numpy()
    assert served[1] - served[0] == pytest.approx(4097 * 131_072, rel=1e-6)


def test_a_layout_that_cannot_split_the_model_is_refused_naming_the_cell() -> None:
    with pytest.raises(ProfileError) as caught:
        _project([_row("llama-3.1-8b", 8, None), _row("llama-3.1-8b", 8, "tp=3")])
    message = str(caught.value)
    assert message.startswith(
        "workloads, row 2, column 'layout': llama-3.1-8b cannot be served as tp=3"
    )
    # 32 query heads, 32 layers: nothing splits over 3 devices; what would is listed.
    assert message.endswith("tensor-parallel device counts: 1, 2, 4, 8, 16, 32")
    assert "\n" not in message


def test_a_layout_on_a_row_without_a_model_is_not_claimed() -> None:
    """A hand-typed decode row (14 GB of weights, 0.5 GB of KV cache a token, batch 4: 16 GB,
    one H100 holds it) that states tp=8 cannot be laid out without a model: it is sized as a
    whole, tp=1, and the reason says its layout was not used."""
    row = {
        "workload_id": "hand", "name": "hand", "owner": "o", "pool": "h100", "phase": "decode",
        "precision": "bf16", "unit": "token", "batch": 4, "context_tokens": 4096,
        "flops_per_unit": 14e9, "bytes_per_unit": 14e9 / 4 + 0.5e9,
        "memory_footprint_bytes": 14e9 + 4 * 0.5e9, "layout": "tp=8",
        "demand_units_per_s": 10.0, "demand_growth_per_year": 0.0,
    }  # fmt: skip
    projection, _ = _project([row])
    assert projection.serving is not None
    assert projection.serving.layout[0] == "tp=1"
    assert "its layout tp=8 needs a model to lay out" in projection.serving.layout_reason[0]

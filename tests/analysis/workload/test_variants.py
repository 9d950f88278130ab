"""Storage precision is not compute precision: weight-only quantization runs anywhere, fp8/fp4
and int4 compute only on devices with those units, and a mitigation says why it does not apply.

Catalog (``_catalog``): "old" has 1e12 B/s, bf16 100e12 and int8 200e12 FLOP/s and nothing
narrower (an A100-like device: no fp8, no fp4, no int4 units); "new" has 2e12 B/s, bf16 100e12,
fp8 200e12, fp4 400e12 and int4 400e12 FLOP/s.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pandas as pd
import pytest

from hardware_profiles.catalog import require_peak
from hardware_profiles.errors import ProfileError
from hardware_profiles.parquet import validate_frame
from hardware_profiles.schema import CATALOG, ROADMAP, WORKLOADS, peak_column
from tasks.analysis.projection.projector import project
from tasks.analysis.ranking.mitigations import mitigate
from tasks.analysis.ranking.ranking import records
from tasks.analysis.supply.calibration import calibrate
from tasks.analysis.workload.figures import Figures
from tasks.analysis.workload.presets import preset
from tasks.analysis.workload.variants import PRECISION_CHANGES, precision_variant
from tasks.analysis.workload.workload_model import estimate

START = dt.date(2027, 1, 1)


def _catalog() -> pd.DataFrame:
    common = {"vendor": "Acme", "device_kind_patterns": [], "memory_bytes": 10**11}
    common |= {"release_date": None, "list_price_usd": None, "source": "test"}
    old = {"accelerator_id": "old", "name": "Old", "mem_bandwidth_bytes_per_s": 1e12}
    old |= {"peak_flops_per_s_bf16": 100e12, "peak_flops_per_s_int8": 200e12}
    new = {"accelerator_id": "new", "name": "New", "mem_bandwidth_bytes_per_s": 2e12}
    new |= {"peak_flops_per_s_bf16": 100e12, "peak_flops_per_s_fp8": 200e12}
    new |= {"peak_flops_per_s_fp4": 400e12, "peak_flops_per_s_int4": 400e12}
    frame = pd.DataFrame([common | old, common | new])
    for column in CATALOG.columns:
        if column not in frame:
            frame[column] = None  # no such units
    return validate_frame(frame, CATALOG, "test catalog")


def _roadmap(rows: list[tuple[str, str]]) -> pd.DataFrame:
    frame = pd.DataFrame(
        [(pool, "2026-01-01", model, 4) for pool, model in rows],
        columns=["pool", "effective_date", "accelerator_id", "count_delta"],
    )
    frame["effective_date"] = pd.to_datetime(frame["effective_date"]).dt.date
    frame["unit_cost_usd"] = np.nan
    return validate_frame(frame, ROADMAP, "test roadmap")


def _row(name: str, pool: str, compute: str = "bf16", weights: str = "bf16") -> dict[str, Any]:
    figures = estimate(
        preset("llama-3.1-8b"),
        phase="decode",
        batch=8,
        context=8192,
        weights=weights,
        activations=compute,
    ).workload_columns()
    return figures | {
        "workload_id": name,
        "name": name,
        "owner": "o",
        "pool": pool,
        "demand_units_per_s": 100.0,
        "demand_growth_per_year": 1.0,
        "pool_share": 0.5,
    }


def _workloads(*rows: dict[str, Any]) -> pd.DataFrame:
    return validate_frame(pd.DataFrame(list(rows)), WORKLOADS, "w.parquet")


def test_int4_compute_has_its_own_peak() -> None:
    assert peak_column("int4") == "peak_flops_per_s_int4"
    assert peak_column("fp4") == "peak_flops_per_s_fp4"


def test_weight_only_int4_runs_on_hardware_without_int4_units() -> None:
    workloads = _workloads(_row("w4a16", "a", weights="int4"))
    projection = project(workloads, _roadmap([("a", "old")]), calibrate(_catalog()), START, 6)
    assert projection.outcome.supported.all()
    # bf16 compute: the ceiling is the bf16 peak x the default compute efficiency (0.70).
    assert projection.outcome.peak_flops_per_s[0, 0] == pytest.approx(4 * 100e12 * 0.70)


@pytest.mark.parametrize("compute", ["int4", "fp4", "fp8"])
def test_narrow_compute_without_units_names_workload_and_accelerator(compute: str) -> None:
    # "old" has int8 units, but int4 compute is never priced at the int8 peak.
    workloads = _workloads(_row("ok", "a"), _row("quantized", "a", compute, compute))
    with pytest.raises(ProfileError) as caught:
        project(workloads, _roadmap([("a", "old")]), calibrate(_catalog()), START, 6)
    message = str(caught.value)
    assert (caught.value.row, caught.value.column) == (2, "precision")
    assert f"precision '{compute}' has no peak on old in pool 'a' for workload 'quantized'" in (
        message
    )
    assert f"(no {compute} units)" in message and "weight-only" in message


def test_int4_compute_runs_at_the_int4_peak_where_the_units_exist() -> None:
    workloads = _workloads(_row("w4a4", "b", "int4", "int4"))
    projection = project(workloads, _roadmap([("b", "new")]), calibrate(_catalog()), START, 6)
    assert projection.outcome.peak_flops_per_s[0, 0] == pytest.approx(4 * 400e12 * 0.70)


def test_adding_a_workload_checks_its_compute_units() -> None:
    roadmap = _roadmap([("a", "old"), ("b", "new")])
    require_peak(_catalog(), roadmap, "b", "fp4", "w.csv", row=1, workload="x")
    with pytest.raises(ProfileError, match="'fp4' has no peak on old in pool 'a' for workload"):
        require_peak(_catalog(), roadmap, "a", "fp4", "w.csv", row=1, workload="x")


def _mitigations(
    pool_models: list[tuple[str, str]], rows: list[dict[str, Any]]
) -> dict[tuple[str, str], Any]:
    projection = project(_workloads(*rows), _roadmap(pool_models), calibrate(_catalog()), START, 6)
    return {(m.workload_id, m.mitigation): m for m in records(mitigate(projection))}


def test_each_precision_mitigation_applies_or_says_why_not() -> None:
    table = _mitigations(
        [("a", "old"), ("b", "new"), ("c", "old"), ("c", "new")],
        [
            _row("on-old", "a"),
            _row("on-new", "b"),
            _row("mixed", "c"),
            _row("w4", "b", weights="int4"),
        ],
    )
    for workload in ("on-old", "on-new", "mixed"):
        for key in ("weights:int8", "weights:int4", "kv:fp8"):
            assert table[(workload, key)].applicable, (workload, key)  # runs anywhere
    assert table[("on-old", "compute:fp8")].reason == "old: no fp8 units"
    assert table[("on-old", "compute:fp4")].reason == "old: no fp4 units"
    assert table[("mixed", "compute:fp4")].reason == "old: no fp4 units (new has them)"
    assert table[("on-new", "compute:fp8")].applicable
    assert table[("on-new", "compute:fp4")].applicable
    assert table[("w4", "weights:int4")].reason == "weights already int4 or narrower"
    assert table[("w4", "weights:int8")].reason == "weights already int8 or narrower"
    # Moving the A100-like pool's workload to the fp4 pool keeps its bf16 compute: it applies.
    assert table[("on-old", "pool:b")].applicable


def test_weight_only_keeps_the_flops_and_compute_precision() -> None:
    workloads = _workloads(_row("w", "a"))
    figures = Figures.of(workloads)
    changes = {c.key: c for c in PRECISION_CHANGES}
    int4, applies, _ = precision_variant(figures, workloads, changes["weights:int4"])
    expected = estimate(
        preset("llama-3.1-8b"), phase="decode", batch=8, context=8192, weights="int4"
    )
    assert applies.all() and int4.precision[0] == "bf16"
    assert int4.bytes_per_unit[0] == pytest.approx(expected.bytes_per_unit)
    assert int4.flops_per_unit[0] == figures.flops_per_unit[0]
    fp4, applies, _ = precision_variant(figures, workloads, changes["compute:fp4"])
    nvfp4 = estimate(
        preset("llama-3.1-8b"),
        phase="decode",
        batch=8,
        context=8192,
        weights="fp4",
        kv="fp8",
        activations="fp4",
    )
    assert applies.all() and fp4.precision[0] == "fp4"
    assert fp4.bytes_per_unit[0] == pytest.approx(nvfp4.bytes_per_unit)


def test_training_is_not_offered_weight_only_quantization() -> None:
    row = _row("train", "b") | {"phase": "training", "unit": "step"}
    workloads = _workloads(row)
    changes = {c.key: c for c in PRECISION_CHANGES}
    _, applies, reason = precision_variant(Figures.of(workloads), workloads, changes["kv:fp8"])
    assert not applies[0] and reason[0] == "training: an inference change"


def test_compute_changes_never_widen_what_is_stored_narrower() -> None:
    # int4 weights under fp8 compute stay int4 (4.125 bits), the cache goes to fp8.
    workloads = _workloads(_row("w4", "b", weights="int4"))
    changes = {c.key: c for c in PRECISION_CHANGES}
    fp8, applies, _ = precision_variant(Figures.of(workloads), workloads, changes["compute:fp8"])
    expected = estimate(
        preset("llama-3.1-8b"),
        phase="decode",
        batch=8,
        context=8192,
        weights="int4",
        kv="fp8",
        activations="fp8",
    )
    assert applies[0] and fp8.bytes_per_unit[0] == pytest.approx(expected.bytes_per_unit)


def test_fp8_compute_applies_to_fp8_weights_computed_in_bf16() -> None:
    # Storage already fp8 (weights and cache), compute bf16: fp8 compute still narrows the
    # activations and runs at the fp8 peak; a row computing at fp4 is not offered fp8.
    stored = _row("w8a16", "b", weights="fp8") | {"kv_precision": "fp8"}
    w4a4 = _row("w4a4", "b", "fp4", "fp4")
    workloads = _workloads(stored, w4a4)
    changes = {c.key: c for c in PRECISION_CHANGES}
    fp8, applies, reason = precision_variant(
        Figures.of(workloads), workloads, changes["compute:fp8"]
    )
    assert applies.tolist() == [True, False]
    assert fp8.precision.tolist() == ["fp8", "fp4"]
    assert reason[1] == "computes at fp8 or narrower already"

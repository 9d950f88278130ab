"""Source disagreement worked by hand on small tables (the backtest's columns, as
``Backtest.disagreement`` joins them).

Contradicting pairs. Run ``a`` (source s1: batch 1, context 1000, no prompts riding, predicted
10 ms, measured 20 ms) against ``b`` (source s2, same model, hardware, layout, precision,
metric and engine: batch 4, context 1536, 4 prompt tokens per step, predicted 12 ms, measured
10 ms): a has no more work and no longer a prediction, yet ran 20 / 10 = 2.0 times slower. The
errors of a and b are 10/20 = 0.5 and 12/10 = 1.2 (ratio 2.4 ≥ 2.0), so one is off by at least
√2 − 1 = 41.4 % whatever the model. Not pairs: ``c`` (as a, on another accelerator), ``d`` (as
a, but from b's own source s2), ``e`` (s2, batch 2 but context 800: more work than a on one
measure, less on another), ``f`` (s2, b's work but predicted 9 ms, below a's 10: memwall's own
model does not order them) and ``g`` (s2, b's work, measured 19 ms: 20 / 19 = 1.05, under the
1.10 gap).

Offsets. Class "dense", two sources: s1's rows at leave-one-source-out log errors 0.2 and 0.4
(offset 0.3, within ∓0.1), s2's at −0.1 and −0.1 (offset −0.1, within 0). Squared log error
0.04 + 0.16 + 0.01 + 0.01 = 0.22, offsets' part 2·0.09 + 2·0.01 = 0.20: share 0.20 / 0.22 =
0.90909. Within-source MAPE (|e^−0.1 − 1| + |e^0.1 − 1| + 0 + 0) / 4 = (0.095163 + 0.105171)
/ 4 = 0.050083; leave-one-source-out MAPE (|e^0.2 − 1| + |e^0.4 − 1| + 2 |e^−0.1 − 1|) / 4 =
(0.221403 + 0.491825 + 0.190325) / 4 = 0.225888.
"""

from __future__ import annotations

import math

import pandas as pd
import pytest

from tasks.analysis.supply.source_disagreement import by_class, contradictions

SAME = {
    "architecture_class": "MLA-MoE",
    "model_shape": "deepseek",
    "hardware": "amd-mi300x",
    "devices": 8,
    "layout": "tp=8",
    "weight_precision": "fp8",
    "phase": "decode",
    "metric": "tpot_s",
    "engine": "SGLang",
    "engine_generation": "engines from 2025-07",
    "loso_error": 0.0,
}


def _run(run_id: str, source: str, batch: int, context: int, load: float, predicted_ms: float,
         measured_ms: float, **other: object) -> dict[str, object]:  # fmt: skip
    return {
        **SAME,
        "run_id": run_id,
        "source": source,
        "batch": batch,
        "context": context,
        "prompt_tokens_per_step": load,
        "predicted_step_s": predicted_ms / 1e3,
        "measured_step_s": measured_ms / 1e3,
        **other,
    }


def _pairs_table() -> pd.DataFrame:
    return pd.DataFrame(
        [
            _run("a", "s1", 1, 1000, 0.0, 10, 20),
            _run("b", "s2", 4, 1536, 4.0, 12, 10),
            _run("c", "s1", 1, 1000, 0.0, 10, 20, hardware="nvidia-h200-sxm"),
            _run("d", "s2", 1, 1000, 0.0, 10, 20),
            _run("e", "s2", 2, 800, 0.0, 8, 5),
            _run("f", "s2", 4, 1536, 4.0, 9, 10),
            _run("g", "s2", 4, 1536, 4.0, 12, 19),
        ]
    )


def test_a_run_with_less_work_measured_slower_in_another_source_is_a_contradiction() -> None:
    found = contradictions(_pairs_table())
    assert [(c.less_work, c.more_work) for c in found] == [("a", "b")]
    (pair,) = found
    assert pair.gap == pytest.approx(2.0)
    assert pair.least_error == pytest.approx(math.sqrt(2.0) - 1.0)
    assert (pair.less_work_source, pair.more_work_source) == ("s1", "s2")


def test_the_engine_family_not_its_build_decides_a_pair() -> None:
    """``SGLang (ROCm)`` is the SGLang family: still a pair; vLLM is not."""
    rocm = _pairs_table().assign(engine=["SGLang (ROCm)", "SGLang", "", "", "", "", ""])
    assert [(c.less_work, c.more_work) for c in contradictions(rocm)] == [("a", "b")]
    other = _pairs_table().assign(engine=["vLLM", "SGLang", "", "", "", "", ""])
    assert contradictions(other) == []


def test_offsets_share_and_within_source_error() -> None:
    logs = {"p": ("s1", 0.2), "q": ("s1", 0.4), "r": ("s2", -0.1), "s": ("s2", -0.1)}
    rows = [
        _run(k, s, 1, 1000, 0.0, 10, 10, architecture_class="dense", loso_error=math.expm1(v))
        for k, (s, v) in logs.items()
    ]
    (dense,) = by_class(pd.DataFrame(rows))
    split = dense.offsets
    assert dense.architecture_class == "dense" and (split.runs, split.sources) == (4, 2)
    assert split.offset_share == pytest.approx(0.20 / 0.22)
    assert split.within_source_mape == pytest.approx(0.050083, abs=1e-6)
    assert split.loso_mape == pytest.approx(0.225888, abs=1e-6)
    assert dense.contradictions == () and dense.worst is None


def test_pairs_are_reported_under_the_class_of_their_runs() -> None:
    table = _pairs_table()
    table.loc[table["run_id"] == "a", "loso_error"] = math.expm1(-0.5)
    (mla,) = by_class(table)
    assert mla.architecture_class == "MLA-MoE"
    assert mla.worst is not None and mla.worst.less_work == "a"
    assert mla.as_json()["contradicting_pairs"] == 1
    assert mla.as_json()["contradicting_runs"] == 2

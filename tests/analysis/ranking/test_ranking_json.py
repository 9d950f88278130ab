"""``memwall rank --json``'s rows: built column by column and written by orjson, they are the
bytes the row-by-row build and the standard library's encoder wrote before, NaN and all."""

from __future__ import annotations

import datetime as dt
import math

import pandas as pd

from hardware_profiles.strict_json import dumps
from tasks.analysis.ranking.ranking import ranking_rows


def ranking() -> pd.DataFrame:
    """Two ranked workloads, the second never served: NaN headroom and utilisation, no months."""
    return pd.DataFrame(
        {
            "rank": [1, 2],
            "workload_id": ["chat-70b-decode", "new-pool-prefill"],
            "starve_month": [dt.date(2027, 3, 1), None],
            "starve_month_p10": [dt.date(2027, 1, 1), None],
            "starve_month_p90": [dt.date(2027, 6, 1), None],
            "bound": ["memory", "compute"],
            "utilization_now": [0.4375, math.nan],
            "min_headroom": [0.8125, math.nan],
            "best_mitigation": ["fp8 KV cache", None],
            "months_gained": [4, 0],
            "served_from": [dt.date(2027, 1, 1), None],
            "wall": pd.Categorical(["bandwidth", None], categories=["bandwidth", "capacity"]),
            "wall_month": [dt.date(2027, 3, 1), None],
            "wall_month_p10": [dt.date(2027, 1, 1), None],
            "wall_month_p90": [dt.date(2027, 6, 1), None],
            "devices_per_replica": pd.array([8, None], dtype="Int64"),
            "max_batch": pd.array([64, None], dtype="Int64"),
            "served_batch": pd.array([None, None], dtype="Int64"),
            "wall_remedy": pd.Categorical(["bandwidth: fp8 KV cache", None]),
            "replica_layout": ["tp=8", None],
            "tpot_under_load_s": [0.0189, math.nan],
            "output_tokens_per_s_under_load": [1323.0, math.nan],
            "step_time_s": [math.nan, math.nan],
            "engine_generation": ["engines before 2025-07", "engines from 2025-07"],
            "expert_share": [0.22, math.nan],
            "expert_share_source": ["fitted; engine 'SGLang 0.4.3' released 2025-02", None],
        }
    )


# json.dumps(strict(ranking_rows(ranking())), indent=2) before the rows were built by column
# (with the under-load, wall band, training step and expert-share columns added since).
BEFORE = (
    "[\n"
    "  {\n"
    '    "workload_id": "chat-70b-decode",\n'
    '    "rank": 1,\n'
    '    "starve_month": "2027-03",\n'
    '    "starve_month_p10": "2027-01",\n'
    '    "starve_month_p90": "2027-06",\n'
    '    "bound": "memory",\n'
    '    "utilization_now": 0.4375,\n'
    '    "min_headroom": 0.8125,\n'
    '    "best_mitigation": "fp8 KV cache",\n'
    '    "months_gained": 4,\n'
    '    "served_from": "2027-01",\n'
    '    "wall": "bandwidth",\n'
    '    "wall_month": "2027-03",\n'
    '    "wall_month_p10": "2027-01",\n'
    '    "wall_month_p90": "2027-06",\n'
    '    "devices_per_replica": 8,\n'
    '    "max_batch": 64,\n'
    '    "served_batch": null,\n'
    '    "wall_remedy": "bandwidth: fp8 KV cache",\n'
    '    "replica_layout": "tp=8",\n'
    '    "tpot_under_load_s": 0.0189,\n'
    '    "output_tokens_per_s_under_load": 1323.0,\n'
    '    "step_time_s": null,\n'
    '    "engine_generation": "engines before 2025-07",\n'
    '    "expert_share": 0.22,\n'
    '    "expert_share_source": "fitted; engine \'SGLang 0.4.3\' released 2025-02"\n'
    "  },\n"
    "  {\n"
    '    "workload_id": "new-pool-prefill",\n'
    '    "rank": 2,\n'
    '    "starve_month": null,\n'
    '    "starve_month_p10": null,\n'
    '    "starve_month_p90": null,\n'
    '    "bound": "compute",\n'
    '    "utilization_now": null,\n'
    '    "min_headroom": null,\n'
    '    "best_mitigation": null,\n'
    '    "months_gained": 0,\n'
    '    "served_from": null,\n'
    '    "wall": null,\n'
    '    "wall_month": null,\n'
    '    "wall_month_p10": null,\n'
    '    "wall_month_p90": null,\n'
    '    "devices_per_replica": null,\n'
    '    "max_batch": null,\n'
    '    "served_batch": null,\n'
    '    "wall_remedy": null,\n'
    '    "replica_layout": null,\n'
    '    "tpot_under_load_s": null,\n'
    '    "output_tokens_per_s_under_load": null,\n'
    '    "step_time_s": null,\n'
    '    "engine_generation": "engines from 2025-07",\n'
    '    "expert_share": null,\n'
    '    "expert_share_source": null\n'
    "  }\n"
    "]"
)


def test_a_ranking_holding_nan_prints_strict_json_equal_to_before() -> None:
    text = dumps(ranking_rows(ranking())).decode()
    assert text == BEFORE
    assert "NaN" not in text and "Infinity" not in text

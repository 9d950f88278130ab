"""The calendar's records by hand: the fleet's running sum and the pool mixes mitigations read.

Roadmap over 2027-01 to 2027-03: pool "a" gets 4 x h100 in 2026-06 (before the start: counted
from month 0) and 2 x b200 on 2027-02-15 (counted from 2027-02); pool "b" gets 3 x b200 in
2027-03 and 5 more in 2027-09 (after the horizon: not counted). Models sorted: b200, h100.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from tasks.analysis.projection.horizon import (
    NEVER,
    HorizonError,
    first_month,
    fleet_by_month,
    horizon_months,
)

MONTHS = [dt.date(2027, 1, 1), dt.date(2027, 2, 1), dt.date(2027, 3, 1)]


def test_the_fleet_is_the_running_sum_of_the_roadmap_within_the_horizon() -> None:
    fleet = fleet_by_month(
        pd.DataFrame(
            {
                "pool": ["a", "a", "b", "b"],
                "effective_date": [
                    dt.date(2026, 6, 1),
                    dt.date(2027, 2, 15),
                    dt.date(2027, 3, 1),
                    dt.date(2027, 9, 1),
                ],
                "accelerator_id": ["h100", "b200", "b200", "b200"],
                "count_delta": [4, 2, 3, 5],
            }
        ),
        MONTHS,
    )
    assert fleet.pools == ["a", "b"]
    assert fleet.models == ["b200", "h100"]
    assert fleet.counts[0].tolist() == [[0, 2, 2], [4, 4, 4]]
    assert fleet.counts[1].tolist() == [[0, 0, 3], [0, 0, 0]]
    assert fleet.pool_total().tolist() == [[4, 6, 6], [0, 0, 3]]
    assert fleet.held().tolist() == [[True, True], [True, False]]
    # Every pool's devices, each month, all b200 (model 0): what precision needs evaluate on.
    assert fleet.all_of(0)[:, 0, :].tolist() == [[4, 6, 6], [0, 0, 3]]
    assert fleet.all_of(0)[:, 1, :].sum() == 0
    # Pool b is empty in 2027-01: no pool can move to its mix. Pool a's mix in 2027-02 is
    # 2/6 b200 and 4/6 h100: pool b's 0 devices stay 0, pool a's 6 split 2 + 4.
    assert fleet.on_pool_mix(1) is None
    mix = fleet.on_pool_mix(0)
    assert mix is not None
    assert mix[0, :, 1].tolist() == pytest.approx([2, 4])
    assert mix[1, :, 2].tolist() == pytest.approx([3 * 2 / 6, 3 * 4 / 6])


def test_the_first_month_a_mask_holds() -> None:
    mask = np.array([[False, True, True], [False, False, False], [True, False, False]])
    assert first_month(mask).tolist() == [1, NEVER, 0]


def test_a_horizon_out_of_range_lists_the_valid_one() -> None:
    assert horizon_months(dt.date(2027, 11, 1), 3)[-1] == dt.date(2028, 1, 1)
    with pytest.raises(HorizonError, match="valid: 1 to 120"):
        horizon_months(dt.date(2027, 1, 1), 0)

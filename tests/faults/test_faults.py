"""Faults, tried on purpose (tests/faults/scenarios.py): each must be survived with nothing
lost. benchmarks/faults.py runs the same scenarios and prints the tally."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.faults.scenarios import SCENARIOS, Bench

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.mark.parametrize("fault", list(SCENARIOS))
def test_the_audit_survives(fault: str, prefect_api_url: str, tmp_path: Path) -> None:
    outcome = SCENARIOS[fault](Bench(tmp_path, prefect_api_url))
    assert outcome.survived, f"{outcome.fault}: " + "; ".join(outcome.problems)
    assert outcome.lost == 0, f"{outcome.fault}: {outcome.lost} run(s) of measurements lost"

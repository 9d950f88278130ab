"""On a GPU: the quick plan measures every link and dtype the device has, with sane figures.
Skipped where JAX sees no GPU."""

from __future__ import annotations

import pytest

from hardware_profiles.catalog import builtin_catalog
from tasks.discovery import discover
from tasks.probes.runner import ProbePlan, probe_accelerator


@pytest.mark.gpu
@pytest.mark.slow
def test_quick_plan_on_the_first_gpu() -> None:
    catalog = builtin_catalog()
    gpu = next(a for a in discover(catalog) if a.platform == "gpu")
    rows = probe_accelerator(gpu, catalog, ProbePlan.for_platform("gpu", quick=True), "run-1")
    assert "failed" not in set(rows["status"])
    links = rows[rows["probe"].isin(["host-to-device", "device-to-host"])]
    assert len(links) == 2 and set(links["status"]) <= {"ok", "unstable"}
    triad = rows[(rows["probe"] == "triad") & (rows["dtype"] == "float32")]
    if gpu.accelerator_id is not None:
        # Public results put HBM triad at 85-90 % of spec; anything outside 30-100 % is wrong.
        assert 0.3 < float(triad["efficiency"].iloc[0]) <= 1.0

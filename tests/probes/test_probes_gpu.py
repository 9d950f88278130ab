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
    by_probe = rows.set_index(["probe", "dtype"])
    assert "failed" not in set(rows["status"])
    for link in ("host-to-device", "device-to-host"):
        assert by_probe.loc[(link, "float32"), "status"] in ("ok", "unstable")
    triad = by_probe.loc[("triad", "float32")]
    if gpu.accelerator_id is not None:
        # Public results put HBM triad at 85-90 % of spec; anything outside 30-100 % is wrong.
        assert 0.3 < float(triad["efficiency"]) <= 1.0

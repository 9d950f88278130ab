"""The audit flow end to end on this host, under the session's Prefect test harness."""

from __future__ import annotations

from pathlib import Path

import jax
import pytest

from hardware_profiles.parquet import read_table
from hardware_profiles.schema import MEASUREMENTS
from tests.pdf import pdf_text


@pytest.mark.slow
def test_audit_flow_writes_a_pdf_naming_this_host_and_the_top_workload(
    prefect_api_url: str, tmp_path: Path
) -> None:
    from flows.audit import audit

    outcome = audit(out_dir=str(tmp_path), quick=True)
    assert outcome.pdf_path.is_file()
    text = pdf_text(outcome.pdf_path)
    assert jax.devices()[0].device_kind in text
    assert outcome.top_workload in text
    assert "Measured vs spec" in text
    measurements = read_table(outcome.measurements_path, MEASUREMENTS)
    assert {"triad", "matmul"} <= set(measurements["probe"])
    assert (measurements["best"] > 0).all()
    # Nothing half-written is left beside the outputs.
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]

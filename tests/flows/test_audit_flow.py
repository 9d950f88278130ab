"""The audit flow end to end on this host, under the session's Prefect test harness."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import httpx
import jax
import pytest

from flows.artifacts import md
from hardware_profiles.parquet import read_table
from hardware_profiles.schema import MEASUREMENTS
from tests.pdf import pdf_text


@pytest.mark.slow
def test_audit_flow_writes_a_pdf_naming_this_host_and_the_top_workload(
    prefect_api_url: str, tmp_path: Path
) -> None:
    from flows.audit import audit

    outcome = audit(out_dir=str(tmp_path), quick=True, today=dt.date(2026, 11, 23))
    assert outcome.pdf_path.is_file()
    text = pdf_text(outcome.pdf_path)
    assert jax.devices()[0].device_kind in text
    assert outcome.top_workload in text
    assert " ".join(outcome.headline.split()) in text
    assert "before 2028-05" in outcome.headline
    assert "Measured vs spec" in text
    # The top workloads come from presets: their bytes are broken down by the workload model.
    # The run was recorded before the PDF was written: its last page has each device's trend.
    assert "Drift" in text and "too few runs" in text
    assert "(workload model)" in text and "kv read" in text and "optimizer state" in text
    measurements = read_table(outcome.measurements_path, MEASUREMENTS)
    assert {"triad", "matmul"} <= set(measurements["probe"])
    assert (measurements["best"] > 0).all()
    # Nothing half-written is left beside the outputs.
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    run = md(outcome.run_id)  # markdown artifacts escape user text (flows/artifacts.py)
    (summary,) = [s for s in _artifacts(prefect_api_url, "memwall-summary") if run in s]
    assert md(" ".join(outcome.headline.split())) in " ".join(summary.split())
    assert any("agent-8b-decode" in t for t in _artifacts(prefect_api_url, "memwall-ranking"))


def _artifacts(api_url: str, key: str) -> list[str]:
    """The data of every artifact under ``key`` (other tests' runs share the server)."""
    response = httpx.post(
        f"{api_url}/artifacts/filter",
        json={"artifacts": {"key": {"any_": [key]}}, "limit": 100, "offset": 0},
    )
    response.raise_for_status()
    return [str(artifact["data"]) for artifact in response.json()]


@pytest.mark.slow
def test_a_bad_horizon_fails_before_probing(prefect_api_url: str, tmp_path: Path) -> None:
    from flows.audit import audit
    from tasks.analysis.projection.horizon import HorizonError

    with pytest.raises(HorizonError):
        audit(out_dir=str(tmp_path / "out"), quick=True, horizon_months=0)
    assert not (tmp_path / "out").exists()

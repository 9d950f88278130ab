"""A quick audit measures the probes and reuses the last validation of this host and software
from the history, saying from when; with none to reuse it runs one small case. The cases are
faked here (their run is ``memwall validate``'s, tested in tests/probes); the probes are real."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from flows.progress import listening
from tests.pdf import pdf_text


def _record() -> dict[str, Any]:
    return {
        "case": "mistral-7b decode b1",
        "phase": "decode",
        "batch": 1,
        "layers_run": 1,
        "layers_total": 32,
        "predicted_step_s": 0.050,
        "measured_step_s": 0.055,
        "ratio": 1.1,
        "model_bytes": 1.4e9,
        "xla_bytes": 1.41e9,
        "xla_gather_bytes": None,
        "roofline_step_s": 0.045,
        "status": "ok",
        "device_kind": "cpu",
        "predicted_parts": [],
    }


@pytest.mark.slow
def test_a_quick_audit_runs_one_small_case_then_reuses_it_and_says_from_when(
    prefect_api_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import flows.audit

    calls: list[bool] = []

    def validate_host(
        accelerators: Any,
        catalog: Any,
        run_id: str,
        quick: bool,
        measurements: pd.DataFrame,
        progress: Any = None,
        small: bool = False,
    ) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
        calls.append(small)
        return measurements.iloc[:0], [_record()]

    monkeypatch.setattr(flows.audit, "validate_host", validate_host)
    history = str(tmp_path / "history")
    today = dt.date(2026, 11, 23)

    first = flows.audit.audit(out_dir=str(tmp_path), quick=True, today=today, history=history)

    assert calls == [True]  # nothing to reuse: the one small case
    assert "one small case (no earlier validation" in " ".join(pdf_text(first.pdf_path).split())
    assert (tmp_path / "history" / "validation" / f"{first.run_id}.parquet").is_file()

    said: list[str] = []
    with listening(said.append):
        second = flows.audit.audit(out_dir=str(tmp_path), quick=True, today=today, history=history)

    assert calls == [True]  # reused, not run again
    reused = [m for m in said if "reusing the validation" in m]
    assert reused and first.run_id in reused[0] and "UTC" in reused[0]
    text = " ".join(pdf_text(second.pdf_path).split())
    assert f"run {first.run_id} of" in text and "reused from the history" in text
    assert "Time per stage" in text and "probes" in text
    # A reused validation is not recorded again as this run's.
    assert not (tmp_path / "history" / "validation" / f"{second.run_id}.parquet").exists()

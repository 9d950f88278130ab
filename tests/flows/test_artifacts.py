"""The Prefect UI's view of a run, read back from the Prefect API: formatted like the PDF,
user text inert, a link where the PDF lies on shared storage."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
import uuid
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
from prefect import flow

from flows.artifacts import md
from reports.story import headline
from tasks.analysis.findings import Findings, gather
from tasks.analysis.projection.projector import project_profiles
from tasks.analysis.ranking.ranking import rank
from tasks.analysis.supply.calibration import calibrate
from tasks.profiles import load_profiles

EVIL = "<img src=x onerror=alert(1)> *bold* [click](http://evil.example) `code` # not a title"
START = dt.date(2026, 11, 1)


def _found(name: str) -> Findings:
    profiles = load_profiles()
    workloads = profiles.workloads.copy()
    workloads["name"] = workloads["name"].astype(object)
    workloads.loc[workloads.index, "name"] = [name] * len(workloads)
    profiles = dataclasses.replace(profiles, workloads=workloads)
    calibrated = calibrate(profiles.catalog)
    projection = project_profiles(profiles, calibrated, START, 18)
    return gather(projection, rank(projection), calibrated, profiles.catalog, profiles.roadmap)


def _artifacts(api_url: str, key: str) -> list[dict[str, Any]]:
    response = httpx.post(
        f"{api_url}/artifacts/filter",
        json={"artifacts": {"key": {"any_": [key]}}, "limit": 200, "offset": 0},
        timeout=30,
    )
    response.raise_for_status()
    return list(response.json())


@flow
def publish(found: Findings, pdf: Path, run_id: str) -> None:
    from flows.artifacts import publish_audit

    publish_audit(found, headline(found), pdf, run_id)


def _of_run(api_url: str, key: str, flow_run_id: str) -> Any:
    (artifact,) = [a for a in _artifacts(api_url, key) if a["flow_run_id"] == flow_run_id]
    return artifact["data"]


def _table(api_url: str, flow_run_id: str, key: str) -> list[dict[str, Any]]:
    data = _of_run(api_url, key, flow_run_id)
    return list(json.loads(data) if isinstance(data, str) else data)


def test_ranking_and_summary_artifacts_are_formatted_and_escaped(
    prefect_api_url: str, tmp_path: Path
) -> None:
    found = _found(EVIL)
    run_id = f"test-{uuid.uuid4().hex[:8]}"
    state = publish(found, tmp_path / "report.pdf", run_id, return_state=True)
    flow_run_id = str(state.state_details.flow_run_id)

    text = _of_run(prefect_api_url, "memwall-summary", flow_run_id)
    assert f"# memwall audit {md(run_id)}" in text
    assert "<img" not in text and "&lt;img src=x onerror=alert\\(1\\)&gt;" in text
    assert "\\*bold\\*" in text and "\\[click\\]\\(http://evil\\.example\\)" in text
    assert "\\`code\\`" in text and "\\# not a title" in text
    assert "#" not in text.split("\n", 1)[1].replace("\\#", "")  # one heading only: the title
    assert md(str((tmp_path / "report.pdf").resolve())) in text
    assert "on host" in text

    rows = _table(prefect_api_url, flow_run_id, "memwall-ranking")
    assert len(rows) == len(found.ranking)
    for row in rows:
        assert row["name"] == EVIL  # a table cell is text, not markdown: shown as written
        assert re.fullmatch(r"\d+\.\d %", row["utilisation now"])
        assert re.fullmatch(r"\d+\.\d\dx", row["headroom now"])
        assert re.fullmatch(r"\d+\.\d\dx \((\d{4}-\d\d|never)\)", row["min headroom"])
        assert re.fullmatch(r"\d{4}-\d\d|never", row["starves"])
        assert re.fullmatch(r"[+-]\d+ months?|–", row["months gained"])
        assert row["wall"] in {"–", "bandwidth", "capacity", "latency", "compute"}
    assert any(re.fullmatch(r"\d{4}-\d\d", row["starves"]) for row in rows)


def test_walls_and_bands_appear_where_the_ranking_has_them(
    prefect_api_url: str, tmp_path: Path
) -> None:
    found = _found("chat")
    ranking = found.ranking
    starving = ranking["starve_month"].notna()
    ranking = ranking.assign(
        wall=pd.Series(["bandwidth" if s else None for s in starving], dtype=object),
        starve_month_p10=ranking["starve_month"].where(starving, None),
        starve_month_p90=pd.Series([dt.date(2028, 1, 1) if s else None for s in starving]),
    )
    found = dataclasses.replace(found, ranking=ranking)
    run_id = f"test-{uuid.uuid4().hex[:8]}"
    state = publish(found, tmp_path / "report.pdf", run_id, return_state=True)
    text = _of_run(prefect_api_url, "memwall-summary", str(state.state_details.flow_run_id))
    first = ranking[starving].iloc[0]
    assert f"P10-P90 {first['starve_month']:%Y-%m} to 2028-01" in text
    assert f"Walls hit: bandwidth {int(starving.sum())}" in text
    rows = _table(prefect_api_url, str(state.state_details.flow_run_id), "memwall-ranking")
    assert rows[0]["wall"] == "bandwidth"
    assert rows[0]["starves P10-P90"] == f"{first['starve_month']:%Y-%m} to 2028-01"


@flow
def deliver_to(pdf: Path, folder: str) -> None:
    from flows.finish import DeliverySettings, deliver_task

    deliver_task(pdf, DeliverySettings(drop_to=[folder]), "subject", "headline")


def test_a_pdf_dropped_on_shared_storage_gets_a_link(prefect_api_url: str, tmp_path: Path) -> None:
    pdf = tmp_path / f"memwall-audit-{uuid.uuid4().hex[:8]}.pdf"
    pdf.write_bytes(b"%PDF-1.4\n%%EOF\n")
    shared = tmp_path / "shared"
    state = deliver_to(pdf, str(shared), return_state=True)
    links = [
        a
        for a in _artifacts(prefect_api_url, "memwall-pdf")
        if a["flow_run_id"] == str(state.state_details.flow_run_id)
    ]
    (artifact,) = links
    assert artifact["type"] == "markdown" or artifact["type"] == "link"
    assert (shared / pdf.name).resolve().as_uri() in str(artifact["data"])


@pytest.mark.slow
def test_whatif_artifacts_print_dollars_and_months(prefect_api_url: str, tmp_path: Path) -> None:
    from flows.whatif import whatif

    state = whatif(start=START, out_dir=str(tmp_path), return_state=True)
    outcome = state.result()
    rows = _table(
        prefect_api_url, str(state.state_details.flow_run_id), "memwall-whatif-comparison"
    )
    assert [r["scenario"] for r in rows] == [r["scenario"] for r in outcome.comparison]
    for row in rows:
        assert re.fullmatch(r"\$[\d,]+|unknown", row["cost"])
        assert re.fullmatch(r"-?\$[\d,]+|unknown", row["extra cost"])
        assert re.fullmatch(r"[+-]\d+ months?|–", row["months gained"])
    text = _of_run(prefect_api_url, "memwall-whatif", str(state.state_details.flow_run_id))
    assert md(str(outcome.pdf_path.resolve())) in text


def test_the_summary_says_what_production_measured(tmp_path: Path) -> None:
    from flows.artifacts import summary_markdown
    from tasks.analysis.supply.production import ROW_COLUMNS, Observation

    row = dict.fromkeys(ROW_COLUMNS)
    row.update(
        workload_id="agent-8b-decode",
        accelerator_id="nvidia-h100-sxm",
        verdict="bandwidth-bound: 40 % of spec bandwidth",
        ttft_s=0.35,
        ttft_spread=0.12,
    )
    seen = Observation(pd.DataFrame([row]), ("GPU GPU-a3 on host-a is shared by 2 pods",))
    found = _found("chat")
    text = summary_markdown(found, headline(found), tmp_path / "r.pdf", "run-1", seen)
    assert "Production efficiency, measured where it is served:" in text
    assert "- agent\\-8b\\-decode on nvidia\\-h100\\-sxm: bandwidth\\-bound: 40 % of spec" in text
    assert "bandwidth; time to first token 350 ms ±12 %" in text
    assert "1 telemetry finding(s) set aside: see the PDF" in text
    assert "Production" not in summary_markdown(found, headline(found), tmp_path / "r.pdf", "r")

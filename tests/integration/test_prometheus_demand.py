"""Demand from a real Prometheus: 90 days of a vLLM token counter with a known growth,
backfilled into its TSDB with promtool, served on loopback, read back by ``workloads sync``."""

from __future__ import annotations

import datetime as dt
import json
import math
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from hardware_profiles.parquet import read_table, write_table
from hardware_profiles.schema import WORKLOADS
from tasks.analysis.workload.examples import example_workloads
from tasks.prometheus import engine_query
from tests.integration.conftest import (
    LOOPBACK,
    backfilled_prometheus,
    free_port,
    memwall,
)
from tests.pdf import pdf_text

pytestmark = pytest.mark.integration

PLANTED_GROWTH = 0.8  # +80 % a year
PLANTED_RATE = 1500.0  # generated tokens/s at the window's end, before the diurnal swing
DIURNAL = 0.4  # the rate swings ±40 % over each day
NOISE = 0.05  # per-sample multiplicative noise of the counter's increments
SCRAPE_S = 60
DAYS = 90
MODEL = "meta-llama/Llama-3.1-8B-Instruct"

_missing = [tool for tool in ("prometheus", "promtool") if shutil.which(tool) is None]
if _missing:
    pytest.skip(
        f"{' and '.join(_missing)} not installed (Debian package prometheus; `make system-tools` "
        "installs it as root): the demand sync cannot be tested against a real Prometheus",
        allow_module_level=True,
    )


def planted_rate(t: np.ndarray, end_s: float) -> np.ndarray:
    """The true tokens/s at Unix time ``t``: exponential growth times a daily swing."""
    years = (t - end_s) / (365.25 * 86400)
    swing = 1 + DIURNAL * np.sin(2 * np.pi * (t % 86400) / 86400)
    return PLANTED_RATE * (1 + PLANTED_GROWTH) ** years * swing


def expected_demand(end_s: float) -> float:
    """The stated statistic on the planted rate itself: the mean over the last 7 days of each
    day's busiest clock hour (hourly means integrated on a 1 minute grid)."""
    hours = end_s - 3600 * np.arange(7 * 24)  # each hour's end
    grid = hours[:, None] - np.arange(0, 3600, 60)[None, :] - 30
    means = planted_rate(grid, end_s).mean(axis=1)
    return float(means.reshape(7, 24).max(axis=1).mean())


@dataclass(frozen=True)
class Planted:
    url: str
    end: dt.datetime
    query: str


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Planted]:
    root = tmp_path_factory.mktemp("prometheus")
    end_s = float(int(dt.datetime.now(dt.UTC).timestamp()) // 3600 * 3600)
    times = np.arange(end_s - (DAYS + 1) * 86400, end_s + SCRAPE_S, SCRAPE_S)
    rng = np.random.default_rng(13)
    noise = np.clip(1 + NOISE * rng.standard_normal(times.size), 0.5, 1.5)
    counter = np.cumsum(planted_rate(times, end_s) * SCRAPE_S * noise)
    series = f'vllm:generation_tokens_total{{model_name="{MODEL}"}}'
    lines = ["# TYPE vllm:generation_tokens counter"]
    lines += [f"{series} {c:.1f} {int(t)}" for t, c in zip(times, counter, strict=True)]
    with backfilled_prometheus(root, "\n".join([*lines, "# EOF", ""])) as url:
        yield Planted(
            url, dt.datetime.fromtimestamp(end_s, dt.UTC), engine_query("vllm", "decode", MODEL)
        )


def _workloads(tmp_path: Path, queries: dict[str, str]) -> Path:
    frame = example_workloads()
    frame["demand_query"] = frame["workload_id"].map(queries).astype(object)
    frame["demand_query"] = frame["demand_query"].where(frame["demand_query"].notna(), None)
    return write_table(frame, tmp_path / "workloads.parquet", WORKLOADS)


def test_sync_fits_the_planted_growth_and_demand(prometheus: Planted, tmp_path: Path) -> None:
    from tasks.demand import sync_demand

    workloads = read_table(_workloads(tmp_path, {}), WORKLOADS)
    workload = str(workloads["workload_id"].iloc[0])
    workloads.loc[0, "demand_query"] = prometheus.query
    synced, provenance = sync_demand(
        workloads, prometheus.url, "workloads.parquet", days=DAYS, end=prometheus.end
    )
    fitted = synced.iloc[0]
    expected = expected_demand(prometheus.end.timestamp())
    growth_error = fitted["demand_growth_per_year"] / PLANTED_GROWTH - 1
    demand_error = fitted["demand_units_per_s"] / expected - 1
    print(
        f"\nplanted growth {PLANTED_GROWTH:.3f}/year, fitted {fitted['demand_growth_per_year']:.4f}"
        f" ± {fitted['demand_growth_sigma']:.4f} ({100 * growth_error:+.2f} %); demand expected "
        f"{expected:.1f}/s, fitted {fitted['demand_units_per_s']:.1f}/s "
        f"({100 * demand_error:+.2f} %)"
    )
    assert abs(growth_error) <= 0.05
    assert abs(demand_error) <= 0.02
    assert 0 < fitted["demand_growth_sigma"] < 0.05
    row = provenance.set_index("workload_id").loc[workload]
    assert row["source"] == "prometheus" and row["query"] == prometheus.query
    assert (row["window_end"] - row["window_start"]).days == DAYS
    # Every other workload keeps the figures its file states.
    assert (synced.iloc[1:]["demand_units_per_s"] == workloads.iloc[1:]["demand_units_per_s"]).all()
    assert set(provenance.iloc[1:]["source"]) == {"file"}


def test_cli_sync_writes_the_file_and_names_bad_queries(
    prometheus: Planted, tmp_path: Path
) -> None:
    from tests.integration.conftest import REPO

    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO), "COLUMNS": "200"}
    first = str(example_workloads()["workload_id"].iloc[0])
    second = str(example_workloads()["workload_id"].iloc[1])
    source = _workloads(tmp_path, {first: prometheus.query})
    out = tmp_path / "synced.parquet"
    done = memwall(
        [
            "workloads",
            "sync",
            "--prometheus",
            prometheus.url,
            "--workloads",
            str(source),
            "--to",
            str(out),
        ],
        env,
        tmp_path,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    synced = read_table(out, WORKLOADS).set_index("workload_id")
    growth = float(str(synced.loc[first, "demand_growth_per_year"]))
    assert abs(growth / PLANTED_GROWTH - 1) <= 0.05
    assert math.isfinite(float(str(synced.loc[first, "demand_growth_sigma"])))
    assert first in done.stdout and "prometheus" in done.stdout

    # No series, several series: one line naming the workload and the query; no file written.
    for query, says in (
        ('sum(rate(vllm:generation_tokens_total{model_name="nobody"}[5m]))', "no series"),
        ("rate(vllm:generation_tokens_total[5m]) or vector(1)", "2 series"),
    ):
        bad = _workloads(tmp_path, {second: query})
        target = tmp_path / "bad.parquet"
        failed = memwall(
            [
                "workloads",
                "sync",
                "--prometheus",
                prometheus.url,
                "--workloads",
                str(bad),
                "--to",
                str(target),
            ],
            env,
            tmp_path,
            timeout=300,
        )
        assert failed.returncode == 2
        lines = failed.stderr.strip().splitlines()
        assert len(lines) == 1, failed.stderr
        assert second in lines[0] and query in lines[0] and says in lines[0]
        assert not target.exists()


def test_a_negative_rate_is_refused(prometheus: Planted, tmp_path: Path) -> None:
    from tasks.analysis.demand import DemandError
    from tasks.demand import sync_demand

    workloads = read_table(_workloads(tmp_path, {}), WORKLOADS)
    workloads.loc[0, "demand_query"] = f"-1 * {prometheus.query}"
    with pytest.raises(DemandError, match="negative rate"):
        sync_demand(workloads, prometheus.url, "w.parquet", days=DAYS, end=prometheus.end)


@pytest.mark.slow
def test_the_audit_reads_demand_says_where_from_and_records_it(
    prometheus: Planted, prefect_api_url: str, tmp_path: Path
) -> None:
    from flows.audit import audit
    from flows.cli_demand import demand_trend
    from tasks.history import read_demand

    first = str(example_workloads()["workload_id"].iloc[0])
    source = _workloads(tmp_path, {first: prometheus.query})
    outcome = audit(
        workloads=str(source),
        out_dir=str(tmp_path / "out"),
        quick=True,
        today=dt.date(2026, 11, 1),
        prometheus=prometheus.url,
    )
    text = pdf_text(outcome.pdf_path)
    assert "Demand: where it came from" in text
    assert "1 workload(s) fitted on Prometheus" in text
    assert f"4 workload(s) as written in {source}" in " ".join(text.split())
    recorded = read_demand(str(tmp_path / "out" / "history")).set_index("workload_id")
    row = recorded.loc[first].to_dict()
    assert row["source"] == "prometheus" and row["query"] == prometheus.query
    assert abs(float(row["demand_growth_per_year"]) / PLANTED_GROWTH - 1) <= 0.05
    window = f"{row['window_start']:%Y-%m-%d} to {row['window_end']:%Y-%m-%d}"
    assert window in text
    assert set(recorded.drop(index=first)["source"]) == {"file"}
    assert len(demand_trend(str(tmp_path / "out" / "history"))) == len(recorded)


@pytest.mark.slow
def test_an_audit_with_prometheus_unreachable_goes_on_and_says_so(
    prefect_api_url: str, tmp_path: Path
) -> None:
    from tests.integration.conftest import REPO

    first = str(example_workloads()["workload_id"].iloc[0])
    source = _workloads(tmp_path, {first: engine_query("vllm", "decode", MODEL)})
    url = f"http://{LOOPBACK}:{free_port()}"  # nothing listens there
    env = {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": str(REPO),
        "COLUMNS": "400",
        "PREFECT_API_URL": prefect_api_url,
        "PREFECT_HOME": str(tmp_path / "prefect-home"),
        "JAX_PLATFORMS": "cpu",
    }
    out = tmp_path / "out"
    args = ["audit", "--quick", "--start", "2026-11", "--workloads", str(source)]
    done = memwall([*args, "--prometheus", url, "--out", str(out)], env, tmp_path, timeout=600)
    assert done.returncode == 0, done.stderr
    warnings = [line for line in done.stderr.splitlines() if "unreachable" in line]
    assert len(warnings) == 1, done.stderr
    assert url in warnings[0] and f"using the demand written in {source}" in warnings[0]
    pdf = Path(done.stdout.strip().splitlines()[-1])
    text = " ".join(pdf_text(pdf).split())
    assert "unreachable" in text and "Demand: where it came from" in text
    history = memwall(
        ["history", "--history", str(out / "history"), "--demand", "--json"], env, tmp_path
    )
    assert history.returncode == 0, history.stderr
    rows = json.loads(history.stdout)
    assert {r["source"] for r in rows} == {"file"} and len(rows) == len(example_workloads())


def test_a_query_prometheus_cannot_parse_is_refused_with_its_reason(
    prometheus: Planted, tmp_path: Path
) -> None:
    from tasks.demand import sync_demand
    from tasks.prometheus import PrometheusError

    workloads = read_table(_workloads(tmp_path, {}), WORKLOADS)
    workloads.loc[0, "demand_query"] = "sum(rate(vllm:generation_tokens_total[5m]"
    with pytest.raises(PrometheusError, match=r"^workload '.*': demand_query .* refused the query"):
        sync_demand(workloads, prometheus.url, "w.parquet", days=DAYS, end=prometheus.end)

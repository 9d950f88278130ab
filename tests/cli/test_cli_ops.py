"""`memwall history`, `deploy`, `serve` and the delivery options: bad input fails fast with one
line and writes nothing; no server is needed for any of these."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import httpx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from flows.cli_common import refused_for_credentials
from tasks.analysis.workload.examples import example_workloads
from tasks.history import record_run
from tests.cli.test_cli import memwall
from tests.tasks.test_history import T0, measurements, ranking


def one_error(stderr: str) -> str:
    errors = [line for line in stderr.splitlines() if line.startswith("memwall: error:")]
    assert len(errors) == 1, stderr
    assert "Traceback" not in stderr
    return errors[0]


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (["--email-to", "nobody"], "not an email address: nobody"),
        (["--email-to", "a@x.org", "--smtp-port", "0"], "SMTP port must be 1..65535, got 0"),
        (
            ["--email-to", "a@x.org", "--smtp-security", "tls"],
            "unknown SMTP security 'tls'; valid: auto, plain, starttls, ssl",
        ),
        (["--webhook"], "webhook delivery needs its URL in MEMWALL_WEBHOOK_URL"),
    ],
)
def test_bad_delivery_options_stop_before_anything_runs(
    tmp_path: Path, options: list[str], expected: str
) -> None:
    out = tmp_path / "out"
    result = memwall(["audit", "--quick", "--out", str(out), *options], None, tmp_path)
    assert result.returncode == 2
    assert expected in one_error(result.stderr)
    assert not out.exists()


def test_history_json_shows_the_trend_and_flags_a_degraded_device(tmp_path: Path) -> None:
    history = tmp_path / "history"
    for week, bandwidth in enumerate([3.0e12, 3.05e12, 2.95e12, 2.5e12]):
        at = T0 + dt.timedelta(days=7 * week)
        record_run(str(history), f"r{week}", measurements(f"r{week}", at, bandwidth), ranking(), at)
    result = memwall(["history", "--history", str(history), "--json"], None, tmp_path)
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    triad = [r for r in rows if r["figure"] == "triad float32"]
    assert [r["run_id"] for r in triad] == ["r0", "r1", "r2", "r3"]
    assert [r["degraded"] for r in triad] == [False, False, False, True]
    assert triad[3]["trailing_median"] == 3.0e12 and triad[3]["value"] == 2.5e12

    table = memwall(["history", "--history", str(history)], None, tmp_path)
    assert table.returncode == 0 and "degraded" in table.stdout


def test_history_of_nothing_says_so(tmp_path: Path) -> None:
    result = memwall(["history", "--history", str(tmp_path / "none")], None, tmp_path)
    assert result.returncode == 0
    assert "no runs recorded in" in result.stderr
    as_json = memwall(["history", "--history", str(tmp_path / "none"), "--json"], None, tmp_path)
    assert json.loads(as_json.stdout) == []


def test_serve_refuses_a_workloads_file_that_rank_refuses(tmp_path: Path) -> None:
    """Four workloads each given 90 % of one pool: rank refuses the file, and so does serve,
    before it registers or schedules anything (no server is needed to hear it)."""

    path = tmp_path / "w.parquet"
    frame = example_workloads().head(4).assign(pool="inference", pool_share=0.9)
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path)
    for command in (["rank"], ["serve"]):
        result = memwall([*command, "--workloads", str(path)], None, tmp_path)
        assert result.returncode == 2, result.stderr
        assert "pool_share of pool 'inference' adds up to 3.6" in one_error(result.stderr)


def test_serve_rejects_a_bad_cron(tmp_path: Path) -> None:
    result = memwall(["serve", "--cron", "every monday"], None, tmp_path)
    assert result.returncode == 2
    assert "--cron 'every monday' is not a cron expression" in one_error(result.stderr)


@pytest.mark.parametrize(
    ("yaml_text", "expected"),
    [
        ("deployments: []\n", "has no 'deployments' list"),
        ("deployments:\n  - name: x\n", "deployment 1: missing entrypoint, work_pool"),
        (
            "deployments:\n  - name: x\n    entrypoint: flows.fleet.probe_host\n"
            "    work_pool: {name: p}\n    parameters: {storage: '{{ $MEMWALL_NOPE }}'}\n",
            "deployment 'x', parameter 'storage' needs the environment variable MEMWALL_NOPE",
        ),
        ("deployments: [\n", "not valid YAML"),
        (
            "deployments:\n  - name: x\n    entrypoint: flows.fleet.probe_host\n"
            "    work_pool: {name: p}\n    schedules: [{cron: 'every monday'}]\n",
            "deployment 'x': schedule 'every monday' is not a cron expression",
        ),
        (
            "deployments:\n  - name: x\n    entrypoint: flows.whatif.whatif\n"
            "    work_pool: {name: p}\n    parameters: {workloads: /nowhere/w.parquet}\n",
            "/nowhere/w.parquet: no such workloads file",
        ),
    ],
)
def test_deploy_names_what_is_wrong_with_the_file(
    tmp_path: Path, yaml_text: str, expected: str
) -> None:
    path = tmp_path / "prefect.yaml"
    path.write_text(yaml_text)
    result = memwall(["deploy", "--file", str(path)], None, tmp_path)
    assert result.returncode == 2
    assert expected in one_error(result.stderr)
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr  # no parser's dump


def test_deploy_of_an_unknown_name_lists_the_known_ones(tmp_path: Path) -> None:
    repo_file = Path(__file__).resolve().parents[2] / "prefect.yaml"
    result = memwall(["deploy", "--file", str(repo_file), "--name", "nope"], None, tmp_path)
    assert result.returncode == 2
    assert "no deployment named nope; it has probe-host, fleet-audit, whatif" in one_error(
        result.stderr
    )


def test_help_of_the_operating_commands() -> None:
    for command, options in {
        "audit": ["--email-to", "--smtp-host", "--smtp-port", "--drop-to", "--webhook"],
        "fleet": ["--pool", "--host", "--storage", "--timeout"],
        "serve": ["--cron"],
        "history": ["--json", "--history"],
        "deploy": ["--file", "--name"],
    }.items():
        result = memwall([command, "--help"], None, Path.cwd())
        assert result.returncode == 0
        for option in options:
            assert option in result.stdout, (command, option)


def test_every_command_that_reads_the_history_names_what_it_set_aside(tmp_path: Path) -> None:
    """A corrupt measurements file and a corrupt demand file beside a good run: `history`,
    `history --demand` and `predict --history` each read on, and each names both files."""
    history = tmp_path / "history"
    record_run(str(history), "r0", measurements("r0", T0, 3.0e12), ranking(), T0)
    (history / "measurements" / "broken.parquet").write_bytes(b"not parquet")
    (history / "demand").mkdir(exist_ok=True)
    (history / "demand" / "broken.parquet").write_bytes(b"not parquet")
    for args in (
        ["history", "--history", str(history)],
        ["history", "--history", str(history), "--demand"],
        ["predict", "--preset", "llama-3.1-8b", "--history", str(history), "--json"],
    ):
        result = memwall(args, None, tmp_path)
        assert result.returncode == 0, result.stderr
        named = [line for line in result.stderr.splitlines() if "set aside, not read" in line]
        assert len(named) == 2, (args, result.stderr)
        assert any("measurements" in line and "broken.parquet" in line for line in named)
        assert any("demand" in line and "broken.parquet" in line for line in named)


@pytest.mark.parametrize("command", [["deploy", "--file"], ["serve", "--cron", "0 6 * * 1"]])
def test_a_prefect_server_off_this_host_needs_an_auth_string(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: list[str]
) -> None:
    """Off this host and without PREFECT_API_AUTH_STRING: refused in one line that never shows
    the URL's user:password. With the auth string, or --insecure (said loudly), the command
    goes on to its next check (here: a deployments file that is not YAML, or a workloads file
    that is not there), which needs no server."""
    bad = tmp_path / "prefect.yaml"
    bad.write_text("deployments: [\n")
    args = [*command, str(bad)] if command[0] == "deploy" else [*command, "--workloads", "/no/w"]
    monkeypatch.setenv("PREFECT_API_URL", "http://user:pw@192.0.2.9:4200/api")
    monkeypatch.delenv("PREFECT_API_AUTH_STRING", raising=False)
    refused = memwall(args, None, tmp_path)
    assert refused.returncode == 2
    line = one_error(refused.stderr)
    assert "http://192.0.2.9:4200/api is not on this host" in line and "pw" not in line
    loud = memwall([*args, "--insecure"], None, tmp_path)
    assert "--insecure: talking to the Prefect server at http://192.0.2.9:4200/api" in loud.stderr
    assert "is not on this host" not in loud.stderr
    monkeypatch.setenv("PREFECT_API_AUTH_STRING", "memwall:s3cret-auth")
    authenticated = memwall(args, None, tmp_path)
    assert authenticated.returncode == 2
    assert "is not on this host" not in authenticated.stderr
    assert "s3cret-auth" not in authenticated.stderr + authenticated.stdout


def _answered(status: int, url: str) -> httpx.HTTPStatusError:
    request = httpx.Request("POST", url)
    response = httpx.Response(status, request=request)
    return httpx.HTTPStatusError(f"{status}", request=request, response=response)


def test_a_server_that_says_401_is_named_without_the_urls_credentials() -> None:
    """A 401 (the auth string unset, or not the server's) becomes one line naming the API, not
    the call, and never the URL's user:password; any other error is left to the traceback."""
    line = refused_for_credentials(_answered(401, "http://u:pw@10.0.0.5:4200/api/flow_runs/"))
    assert line is not None and line.startswith(
        "the Prefect server at http://10.0.0.5:4200/api refused the request (401 Unauthorized)"
    )
    assert "pw" not in line and "flow_runs" not in line
    assert refused_for_credentials(_answered(403, "http://10.0.0.5:4200/api/flows/")) is None
    assert refused_for_credentials(ValueError("401")) is None

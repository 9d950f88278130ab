"""Real servers on loopback: a `prefect server`, process workers, the `memwall` CLI.

Every process starts in a session of its own and is stopped by its fixture's finalizer, the
whole process group at once (SIGTERM, then SIGKILL after a grace period), so nothing outlives
the tests even when one fails.
"""

from __future__ import annotations

import base64
import contextlib
import os
import pwd
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import httpx
import pytest

LOOPBACK = "127.0.0.1"
REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])


def wait_for(what: str, ready: Callable[[], bool], timeout_s: float, log: Path | None) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if ready():
                return
        time.sleep(0.5)
    tail = log.read_text()[-3000:] if log and log.exists() else ""
    raise AssertionError(f"{what} not ready within {timeout_s:g} s\n{tail}")


def as_owner(owner: pwd.struct_passwd | None) -> dict[str, Any]:
    """`subprocess` arguments that run a command as `owner` (None: as this process)."""
    if owner is None:
        return {}
    return {"user": owner.pw_uid, "group": owner.pw_gid, "extra_groups": []}


class Processes:
    """Processes started by a fixture, each the leader of its own process group."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.running: list[tuple[subprocess.Popen[bytes], TextIO]] = []

    def start(
        self,
        name: str,
        command: list[str],
        env: dict[str, str],
        *,
        cwd: Path | None = None,
        owner: pwd.struct_passwd | None = None,
    ) -> Path:
        """Start `command`, its output in `<logs>/<name>.log`; as `owner` where given (a root
        test session runs PostgreSQL as another user: it refuses root)."""
        log = self.logs / f"{name}.log"
        handle = log.open("w")
        process = subprocess.Popen(
            command,
            env=env,
            cwd=cwd or self.logs,
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            **as_owner(owner),
        )
        self.running.append((process, handle))
        return log

    def stop_all(self) -> None:
        for process, _ in self.running:
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGTERM)
        for process, handle in self.running:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
            # Children that left the group (a worker's flow runs) go too.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            handle.close()
        self.running.clear()


# The server answers 503 when SQLite is busy ("clients can retry on" it, says Prefect's own
# handler) and Prefect's client retries 429/502/503 with backoff; the tests' raw calls do the
# same, or a busy moment on a loaded CI machine fails a test that has nothing wrong with it.
RETRYABLE = frozenset({429, 502, 503})
RETRY_DELAYS_S = (0.5, 1.0, 2.0, 4.0, 8.0)


@dataclass(frozen=True)
class Server:
    api_url: str
    client_env: dict[str, str]
    log: Path
    pid: int  # the leader of the server's process group (it runs uvicorn in a child)
    # The server's PREFECT_SERVER_API_AUTH_STRING (clients' PREFECT_API_AUTH_STRING), if any.
    auth_string: str | None = None

    def headers(self) -> dict[str, str]:
        """Basic authentication as Prefect's client sends it: the auth string, base64."""
        if self.auth_string is None:
            return {}
        token = base64.b64encode(self.auth_string.encode()).decode()
        return {"Authorization": f"Basic {token}"}

    def _request(self, method: str, path: str, body: dict[str, Any] | None) -> Any:
        for delay_s in (*RETRY_DELAYS_S, None):
            response = httpx.request(
                method, f"{self.api_url}{path}", json=body, headers=self.headers(), timeout=30
            )
            if response.status_code not in RETRYABLE or delay_s is None:
                break
            time.sleep(delay_s)
        response.raise_for_status()
        return response.json()

    def get(self, path: str) -> Any:
        return self._request("GET", path, None)

    def post(self, path: str, body: dict[str, Any]) -> Any:
        return self._request("POST", path, body)


def _base_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(
        PREFECT_HOME=str(home),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_LOGGING_LEVEL="WARNING",
    )
    return env


def start_server(
    processes: Processes, settings: dict[str, str] | None = None, auth_string: str | None = None
) -> Server:
    """A real `prefect server start` on loopback under `processes`, with `settings` (its
    database, say; SQLite in its PREFECT_HOME beside its log otherwise); the scheduler loops
    every 2 s so a new cron deployment gets its runs at once. With an auth string, the server
    asks every API call for it and the clients' environment carries it. Needs no pytest
    fixture: benchmarks/fleet_load.py starts one too."""
    port = free_port()
    home = processes.logs / "server-home"
    home.mkdir(exist_ok=True)
    env = _base_env(home)
    env.update(
        PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS="2",
        PREFECT_SERVER_UI_ENABLED="false",
        **(settings or {}),
    )
    if auth_string is not None:
        env["PREFECT_SERVER_API_AUTH_STRING"] = auth_string
    log = processes.start(
        "server",
        [str(BIN / "prefect"), "server", "start", "--host", LOOPBACK, "--port", str(port)],
        env,
    )
    pid = processes.running[-1][0].pid
    api_url = f"http://{LOOPBACK}:{port}/api"
    # /health answers without credentials (Prefect leaves it open to probes).
    wait_for(
        "prefect server",
        lambda: httpx.get(f"{api_url}/health", timeout=5).status_code == 200,
        180,
        log,
    )
    client_home = processes.logs / "client-home"
    client_home.mkdir(exist_ok=True)
    client_env = _base_env(client_home)
    client_env.update(PREFECT_API_URL=api_url, PREFECT_WORKER_QUERY_SECONDS="1")
    if auth_string is not None:
        client_env["PREFECT_API_AUTH_STRING"] = auth_string
    return Server(api_url, client_env, log, pid, auth_string)


@pytest.fixture(scope="session")
def prefect_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A real Prefect server on loopback, SQLite, no authentication: the one the
    SHARED_SERVERS' files share (tests/conftest.py)."""
    processes = Processes(tmp_path_factory.mktemp("server"))
    try:
        yield start_server(processes)
    finally:
        processes.stop_all()


@pytest.fixture(scope="session")
def processes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Processes]:
    started = Processes(tmp_path_factory.mktemp("processes"))
    try:
        yield started
    finally:
        started.stop_all()


def run(
    command: list[str], env: dict[str, str], cwd: Path, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
    )


def memwall(
    args: list[str], env: dict[str, str], cwd: Path, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    return run([sys.executable, "-m", "flows.cli", *args], env, cwd, timeout)


def prefect(args: list[str], env: dict[str, str]) -> None:
    result = run([str(BIN / "prefect"), *args], env, REPO, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


@contextlib.contextmanager
def backfilled_prometheus(root: Path, openmetrics: str) -> Iterator[str]:
    """A real Prometheus on loopback serving ``openmetrics`` (samples with their timestamps),
    backfilled into its TSDB by ``promtool tsdb create-blocks-from openmetrics``; yields its
    URL and stops it (and its process group) on the way out."""
    metrics = root / "metrics.om"
    metrics.write_text(openmetrics)
    data = root / "data"
    made = subprocess.run(
        # Long blocks: the default 2 h blocks would make hundreds of them and take minutes.
        [
            "promtool",
            "tsdb",
            "create-blocks-from",
            "openmetrics",
            "--max-block-duration=2400h",
            str(metrics),
            str(data),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert made.returncode == 0, made.stdout + made.stderr
    config = root / "prometheus.yml"
    config.write_text("global:\n  evaluation_interval: 1m\n")
    port = free_port()
    processes = Processes(root)
    try:
        log = processes.start(
            "prometheus",
            [
                "prometheus",
                f"--config.file={config}",
                f"--storage.tsdb.path={data}",
                "--storage.tsdb.retention.time=10y",
                f"--web.listen-address={LOOPBACK}:{port}",
            ],
            {"PATH": "/usr/bin:/bin"},
        )
        url = f"http://{LOOPBACK}:{port}"
        wait_for(
            "prometheus", lambda: httpx.get(f"{url}/-/ready", timeout=5).status_code == 200, 60, log
        )
        yield url
    finally:
        processes.stop_all()

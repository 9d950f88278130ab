"""Real servers on loopback: a `prefect server`, process workers, the `memwall` CLI.

Every process starts in a session of its own and is stopped by its fixture's finalizer, the
whole process group at once (SIGTERM, then SIGKILL after a grace period), so nothing outlives
the tests even when one fails.
"""

from __future__ import annotations

import contextlib
import os
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


class Processes:
    """Processes started by a fixture, each the leader of its own process group."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.running: list[tuple[subprocess.Popen[bytes], TextIO]] = []

    def start(self, name: str, command: list[str], env: dict[str, str]) -> Path:
        log = self.logs / f"{name}.log"
        handle = log.open("w")
        process = subprocess.Popen(
            command,
            env=env,
            cwd=self.logs,
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
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

    def _request(self, method: str, path: str, body: dict[str, Any] | None) -> Any:
        for delay_s in (*RETRY_DELAYS_S, None):
            response = httpx.request(method, f"{self.api_url}{path}", json=body, timeout=30)
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


def start_server(processes: Processes, home: Path, database_url: str | None = None) -> Server:
    """A real `prefect server start` on loopback, SQLite in ``home`` unless ``database_url``
    names another database; the scheduler loops every 2 s so a new cron deployment gets its
    runs at once. ``processes`` stops it."""
    port = free_port()
    env = _base_env(home)
    env.update(
        PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS="2",
        PREFECT_SERVER_UI_ENABLED="false",
    )
    if database_url is not None:
        env["PREFECT_API_DATABASE_CONNECTION_URL"] = database_url
    log = processes.start(
        "server",
        [str(BIN / "prefect"), "server", "start", "--host", LOOPBACK, "--port", str(port)],
        env,
    )
    pid = processes.running[-1][0].pid
    api_url = f"http://{LOOPBACK}:{port}/api"
    wait_for(
        "prefect server",
        lambda: httpx.get(f"{api_url}/health", timeout=5).status_code == 200,
        180,
        log,
    )
    client_home = home / "client-home"
    client_home.mkdir()
    client_env = _base_env(client_home)
    client_env.update(PREFECT_API_URL=api_url, PREFECT_WORKER_QUERY_SECONDS="1")
    return Server(api_url, client_env, log, pid)


@pytest.fixture(scope="session")
def prefect_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The server the SHARED_SERVER_FILES share (tests/conftest.py)."""
    processes = Processes(tmp_path_factory.mktemp("server-home"))
    try:
        yield start_server(processes, processes.logs)
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

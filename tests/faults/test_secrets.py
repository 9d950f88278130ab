"""Secrets stay secret: an audit that logs in to an SMTP server and posts to a webhook leaves
neither the login nor the webhook's URL in anything it writes or Prefect stores: stdout,
stderr, the Prefect database (logs, parameters, artifacts), the PDF, the history. Nor does a
fleet audit leave the Prefect server's auth string (its clients' and workers' credentials)
anywhere: the same places, the PostgreSQL database's files and every process's log too."""

from __future__ import annotations

import base64
import contextlib
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from tests.faults.scenarios import Bench, pdf_of, pdf_text
from tests.integration.authenticated import AuthenticatedServer, FleetAudit
from tests.tasks.test_delivery import LOOPBACK, Hook, Inbox, _hook_server, free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow]

USERNAME = "memwall-user-7f3a9c"
PASSWORD = "pw-2b8e41d0-secret"
HOOK_PATH = "/services/T0/B0/hook-secret-5d2b77"


class Login:
    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []

    def __call__(self, server: Any, session: Any, envelope: Any, mechanism: str, auth: Any) -> Any:
        assert isinstance(auth, LoginPassword)
        self.seen.append((auth.login.decode(), auth.password.decode()))
        return AuthResult(success=auth.password == PASSWORD.encode(), handled=False)


def _forms(secret: str) -> list[bytes]:
    """The secret as text and base64-encoded (as an SMTP LOGIN sends it)."""
    raw = secret.encode()
    return [raw, base64.b64encode(raw)]


def test_no_secret_is_written_anywhere(prefect_api_url: str, tmp_path: Path) -> None:
    login, inbox, hook = Login(), Inbox(), Hook([200])
    smtp = Controller(
        inbox,
        hostname=LOOPBACK,
        port=free_port(),
        authenticator=login,
        auth_require_tls=False,
    )
    smtp.start()
    server = _hook_server(hook)
    bench = Bench(tmp_path, prefect_api_url)
    out = bench.folder("out")
    url = f"http://{LOOPBACK}:{server.server_address[1]}{HOOK_PATH}"
    try:
        result = bench.audit(
            out,
            "--verbose",
            "--email-to",
            "lead@example.org",
            "--smtp-host",
            LOOPBACK,
            "--smtp-port",
            str(smtp.port),
            "--webhook",
            env={
                "MEMWALL_SMTP_USERNAME": USERNAME,
                "MEMWALL_SMTP_PASSWORD": PASSWORD,
                "MEMWALL_WEBHOOK_URL": url,
            },
        )
    finally:
        smtp.stop()
        server.shutdown()
        server.server_close()
    assert result.returncode == 0, result.stderr[-2000:]
    # The secrets were used: the login was accepted and the hook was posted to.
    assert login.seen == [(USERNAME, PASSWORD)] and len(inbox.messages) == 1
    assert len(hook.bodies) == 1

    pdf = pdf_of(result)
    assert pdf is not None
    api = httpx.Client(base_url=prefect_api_url, timeout=30)
    page = {"limit": 200, "offset": 0}
    stored = {
        "stdout": result.stdout.encode(),
        "stderr": result.stderr.encode(),
        "PDF text": pdf_text(pdf).encode(),
        "Prefect logs": api.post("/logs/filter", json=page).content,
        "Prefect artifacts": api.post("/artifacts/filter", json=page).content,
        "Prefect flow runs": api.post("/flow_runs/filter", json=page).content,
        "Prefect task runs": api.post("/task_runs/filter", json=page).content,
    }
    for path in out.rglob("*"):  # the PDF, the measurements, the history
        if path.is_file():
            stored[str(path)] = path.read_bytes()
    from prefect.settings import PREFECT_HOME, PREFECT_SERVER_DATABASE_CONNECTION_URL

    # The test server's database (with its write-ahead log) and the Prefect home.
    database = Path(str(PREFECT_SERVER_DATABASE_CONNECTION_URL.value()).split(":///", 1)[1])
    for folder in (database.parent, Path(str(PREFECT_HOME.value()))):
        for path in folder.rglob("*"):
            if path.is_file():
                stored[str(path)] = path.read_bytes()
    assert str(database) in stored, f"the Prefect database {database} was not read"
    leaks = _leaks((USERNAME, PASSWORD, HOOK_PATH, "hook-secret-5d2b77"), stored)
    assert not leaks, leaks


def _leaks(secrets: tuple[str, ...], stored: dict[str, bytes]) -> list[str]:
    return [
        f"{secret!r} in {where}"
        for secret in secrets
        for form in _forms(secret)
        for where, content in stored.items()
        if form in content
    ]


def _files(*folders: Path) -> dict[str, bytes]:
    """Every file under `folders`, but those a running server removed while they were read
    (PostgreSQL's temporary files)."""
    found = {}
    for folder in folders:
        for path in folder.rglob("*"):
            with contextlib.suppress(FileNotFoundError):
                if path.is_file():
                    found[str(path)] = path.read_bytes()
    return found


def test_the_prefect_auth_string_is_written_nowhere(
    authenticated_server: AuthenticatedServer, authenticated_fleet_audit: FleetAudit
) -> None:
    server = authenticated_server.server
    fleet, result = authenticated_fleet_audit.fleet, authenticated_fleet_audit.result
    assert server.auth_string is not None
    # The auth string was used: the audit's runs went through the server that asks for it.
    assert result.returncode == 0, result.stderr[-2000:]
    pdf = pdf_of(result)
    assert pdf is not None
    api = httpx.Client(base_url=server.api_url, headers=server.headers(), timeout=30)
    page = {"limit": 200, "offset": 0}
    stored = {
        "stdout": result.stdout.encode(),
        "stderr": result.stderr.encode(),
        "PDF text": pdf_text(pdf).encode(),
    }
    for kind in ("logs", "artifacts", "flow_runs", "task_runs", "deployments", "work_pools"):
        found = api.post(f"/{kind}/filter", json=page)
        assert found.status_code == 200, found.text
        stored[f"Prefect {kind}"] = found.content
    assert b"probe-alpha-" in stored["Prefect flow_runs"]  # the fleet's runs were read
    # The fleet's storage (PDF, runs, history), the Prefect homes, the PostgreSQL cluster's
    # files (tables, write-ahead log) and the logs of PostgreSQL, the server and the workers.
    client_home = Path(server.client_env["PREFECT_HOME"])
    stored.update(_files(fleet.storage, client_home, authenticated_server.postgres.data))
    stored.update(_files(authenticated_server.logs))  # the server's PREFECT_HOME is in there
    assert any("/pg_wal/" in where for where in stored), "the database's files were not read"
    token = base64.b64encode(server.auth_string.encode()).decode()
    leaks = _leaks((server.auth_string, server.auth_string.split(":", 1)[1], token), stored)
    assert not leaks, leaks

"""Secrets stay secret: an audit that logs in to an SMTP server and posts to a webhook leaves
neither the login nor the webhook's URL in anything it writes or Prefect stores: stdout,
stderr, the Prefect database (logs, parameters, artifacts), the PDF, the history."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from tests.faults.scenarios import Bench, pdf_of, pdf_text
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
    leaks = [
        f"{secret!r} in {where}"
        for secret in (USERNAME, PASSWORD, HOOK_PATH, "hook-secret-5d2b77")
        for form in _forms(secret)
        for where, content in stored.items()
        if form in content
    ]
    assert not leaks, leaks

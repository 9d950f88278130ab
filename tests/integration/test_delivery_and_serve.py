"""`memwall audit` delivering by email to a real SMTP server on loopback, the same with the
server down, and `memwall serve` registering a cron deployment on a real Prefect server."""

from __future__ import annotations

import email
import time
from collections.abc import Iterator
from email.message import EmailMessage
from email.policy import default
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from tests.integration.conftest import (
    BIN,
    LOOPBACK,
    Processes,
    Server,
    free_port,
    memwall,
    wait_for,
)

pytestmark = pytest.mark.integration
PASSWORD = "hunter2-never-printed"


class Inbox:
    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.logins: list[str] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=default)
        assert isinstance(message, EmailMessage)
        self.messages.append(message)
        return "250 OK"

    def authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, auth: Any
    ) -> AuthResult:
        assert isinstance(auth, LoginPassword)
        self.logins.append(auth.login.decode())
        return AuthResult(success=auth.password.decode() == PASSWORD, handled=False)


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()
    controller = Controller(
        inbox,
        hostname=LOOPBACK,
        port=free_port(),
        authenticator=inbox.authenticate,
        auth_require_tls=False,
    )
    controller.start()
    try:
        yield inbox, controller.port
    finally:
        controller.stop()


def test_audit_emails_the_pdf_it_wrote(
    prefect_server: Server, smtp: tuple[Inbox, int], tmp_path: Path
) -> None:
    inbox, port = smtp
    env = {
        **prefect_server.client_env,
        "MEMWALL_SMTP_USERNAME": "memwall",
        "MEMWALL_SMTP_PASSWORD": PASSWORD,
    }
    args = ["audit", "--quick", "--out", str(tmp_path / "out"), "--email-to", "lead@example.org"]
    result = memwall([*args, "--smtp-host", LOOPBACK, "--smtp-port", str(port)], env, tmp_path)
    assert result.returncode == 0, result.stderr
    pdf = Path(result.stdout.strip().splitlines()[-1])
    assert inbox.logins == ["memwall"]
    assert len(inbox.messages) == 1
    message = inbox.messages[0]
    assert message["To"] == "lead@example.org"
    assert str(message["Subject"]).startswith("memwall audit of ")
    (part,) = list(message.iter_attachments())
    assert part.get_content_type() == "application/pdf" and part.get_filename() == pdf.name
    assert part.get_payload(decode=True) == pdf.read_bytes()
    assert PASSWORD not in result.stdout + result.stderr


def test_smtp_down_retries_keeps_the_pdf_and_fails_the_run(
    prefect_server: Server, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    port = free_port()  # nothing listens there
    started = time.monotonic()
    result = memwall(
        [
            "audit",
            "--quick",
            "--out",
            str(out),
            "--email-to",
            "lead@example.org",
            "--smtp-host",
            LOOPBACK,
            "--smtp-port",
            str(port),
        ],
        prefect_server.client_env,
        tmp_path,
    )
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("memwall: error:")]
    assert len(errors) == 1, result.stderr
    (pdf,) = out.glob("memwall-audit-*.pdf")
    assert f"email to lead@example.org via {LOOPBACK}:{port} (plain) failed" in errors[0]
    assert "ConnectionRefusedError" in errors[0] and "after 3 attempts" in errors[0]
    assert errors[0].endswith(f"the PDF is kept at {pdf}")
    assert "Traceback" not in result.stderr
    assert time.monotonic() - started > 3  # it waited 1 s, then 2 s, between attempts
    # The run is marked: it failed, and says why.
    runs = prefect_server.post(
        "/flow_runs/filter",
        {
            "sort": "START_TIME_DESC",
            "limit": 5,
            "offset": 0,
            "flows": {"name": {"any_": ["audit"]}},
        },
    )
    failed = [r for r in runs if r["state"]["type"] == "FAILED"]
    assert failed and "delivery failed" in failed[0]["state"]["message"]


def test_serve_registers_a_cron_deployment_that_gets_scheduled_runs(
    prefect_server: Server, tmp_path: Path
) -> None:
    processes = Processes(tmp_path)
    try:
        log = processes.start(
            "serve",
            [
                str(BIN / "python"),
                "-m",
                "flows.cli",
                "serve",
                "--cron",
                "30 7 * * *",
                "--quick",
                "--name",
                "served",
                "--out",
                str(tmp_path / "out"),
            ],
            prefect_server.client_env,
        )

        def deployment() -> Any:
            return prefect_server.get("/deployments/name/audit/served")

        wait_for("the served deployment", lambda: deployment() is not None, 120, log)
        served = deployment()
        schedule = served["schedules"][0]["schedule"]
        assert schedule["cron"] == "30 7 * * *" and schedule["timezone"] == "UTC"
        assert served["parameters"]["quick"] is True

        def scheduled() -> list[Any]:
            found: list[Any] = prefect_server.post(
                "/flow_runs/filter",
                {
                    "deployments": {"id": {"any_": [served["id"]]}},
                    "flow_runs": {"state": {"type": {"any_": ["SCHEDULED"]}}},
                    "limit": 5,
                    "offset": 0,
                },
            )
            return found

        wait_for("scheduled runs of the served audit", lambda: len(scheduled()) > 0, 60, log)
        assert all("07:30:00" in run["expected_start_time"] for run in scheduled())
    finally:
        processes.stop_all()

"""Delivery settings resolved under the Prefect test harness: the SMTP login from a Secret
block, and a missing block named in one line; the drift artifact's table escaped."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from flows.finish import drift_markdown
from tasks.analysis.supply.selfcheck import accuracy
from tasks.delivery import DeliveryError
from tasks.history import trend
from tests.analysis.supply.test_selfcheck import frame, two_audits
from tests.tasks.test_delivery import LOOPBACK, PDF_BYTES, Authenticator, Inbox, free_port
from tests.tasks.test_history import _history


def test_smtp_login_comes_from_a_prefect_secret_block(
    prefect_api_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from prefect.blocks.system import Secret

    from flows.finish import DeliverySettings, deliver_task

    monkeypatch.delenv("MEMWALL_SMTP_USERNAME", raising=False)
    login: Any = {"username": "memwall", "password": "s3cret"}
    Secret(value=login).save("memwall-smtp-test", overwrite=True)
    authenticator = Authenticator()
    inbox = Inbox()
    controller = Controller(
        inbox,
        hostname=LOOPBACK,
        port=free_port(),
        authenticator=authenticator,
        auth_require_tls=False,
    )
    controller.start()
    pdf = tmp_path / "r.pdf"
    pdf.write_bytes(PDF_BYTES)
    try:
        settings = DeliverySettings(
            email_to=["lead@example.org"],
            smtp_host=LOOPBACK,
            smtp_port=controller.port,
            smtp_secret_block="memwall-smtp-test",
        )
        (result,) = deliver_task.fn(pdf, settings, "subject", "headline")
    finally:
        controller.stop()
    assert result.ok, result
    assert authenticator.seen == [("memwall", "s3cret")]
    assert len(inbox.messages) == 1


def test_a_missing_secret_block_is_named(prefect_api_url: str, tmp_path: Path) -> None:
    from flows.finish import DeliverySettings, deliver_task

    pdf = tmp_path / "r.pdf"
    pdf.write_bytes(PDF_BYTES)
    settings = DeliverySettings(
        email_to=["lead@example.org"], smtp_port=free_port(), smtp_secret_block="no-such-block"
    )
    with pytest.raises(DeliveryError, match="no Prefect Secret block named 'no-such-block'"):
        deliver_task.fn(pdf, settings, "subject", "headline")


def test_the_webhook_url_comes_from_a_secret_block_never_a_parameter(
    prefect_api_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from prefect.blocks.system import Secret
    from pydantic import ValidationError

    from flows.finish import DeliverySettings, deliver_task
    from tests.tasks.test_delivery import Hook, _hook_server

    with pytest.raises(ValidationError, match="webhook_url is no longer a parameter"):
        DeliverySettings.model_validate({"webhook_url": "https://hooks.example.org/T/B/x"})
    monkeypatch.delenv("MEMWALL_WEBHOOK_URL", raising=False)
    hook = Hook([200])
    server = _hook_server(hook)
    url = f"http://{LOOPBACK}:{server.server_address[1]}/hooks/T0/B0/secret-path"
    value: Any = url
    Secret(value=value).save("memwall-webhook-test", overwrite=True)
    pdf = tmp_path / "r.pdf"
    pdf.write_bytes(PDF_BYTES)
    settings = DeliverySettings(webhook=True, webhook_secret_block="memwall-webhook-test")
    assert "secret-path" not in settings.model_dump_json()
    try:
        (result,) = deliver_task.fn(pdf, settings, "subject", "headline")
    finally:
        server.shutdown()
        server.server_close()
    assert result.ok and len(hook.bodies) == 1 and "secret-path" not in result.target


def test_a_webhook_url_in_the_environment_is_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    from flows.finish import DeliverySettings, check_delivery

    monkeypatch.setenv("MEMWALL_WEBHOOK_URL", "ftp://hooks")
    with pytest.raises(DeliveryError, match="must start with http:// or https://"):
        check_delivery(DeliverySettings(webhook=True))


def test_a_host_named_with_a_pipe_keeps_the_drift_tables_columns() -> None:
    """A queue (host) name with '|' or markdown in it is escaped in the drift artifact's
    table, as Prefect's own table artifacts escape cells: each row keeps six cells."""
    history = _history([3.0e12, 3.1e12, 2.9e12, 2.6e12])
    history["host"] = "gpu|a*b"
    text = drift_markdown(trend(history), "r3")
    rows = [line for line in text.splitlines() if line.startswith("| gpu")]
    assert rows and all(re.split(r"(?<!\\)\|", row).count("") == 2 for row in rows)
    assert all(len(re.split(r"(?<!\\)\|", row)) == 8 for row in rows)
    assert "gpu\\|a\\*b" in rows[0]


def test_the_drift_artifact_carries_memwalls_own_error_and_the_flag() -> None:
    """Two recorded audits (tests.analysis.supply.test_selfcheck): chat +25 %, past its band;
    code -5 %, within; 15 % overall. The artifact says so below the devices' drift, and says
    there is nothing to compare where nothing was predicted."""
    history = _history([3.0e12, 3.1e12, 2.9e12, 3.0e12])
    text = drift_markdown(trend(history), "r3", checked=accuracy(two_audits()))
    assert text.index("No device of run `r3`") < text.index("**Self-check:**")
    # Markdown escaped, as every artifact's text is (flows.artifacts.md).
    assert "15\\.0 % mean absolute over 2 check\\(s\\)" in text
    assert "band: chat" in text
    chat = "| chat | h100\\-sxm | 1 | 25.0 % | +25.0 % | +25.0 % | **past its P10-P90 band** |"
    assert chat in text
    assert "| code | h100\\-sxm | 1 | 5.0 % | -5.0 % | -5.0 % | within |" in text
    empty = drift_markdown(trend(history), "r3", checked=accuracy(frame([])))
    assert empty.endswith("**Self-check:** no predictions recorded yet: nothing to compare")

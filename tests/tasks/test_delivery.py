"""Delivery over real loopback servers: an aiosmtpd SMTP server and a small HTTP server."""

from __future__ import annotations

import email
import json
import socket
import threading
from collections.abc import Iterator
from email.message import EmailMessage
from email.policy import default
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from tasks.delivery import (
    Credentials,
    DeliveryError,
    SmtpSettings,
    credentials_from_env,
    credentials_from_secret,
    drop,
    post_webhook,
    security_for,
    send_email,
)

LOOPBACK = "127.0.0.1"
PDF_BYTES = b"%PDF-1.4\n" + bytes(range(256)) * 40 + b"\n%%EOF\n"


def free_port() -> int:
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])


class Inbox:
    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.envelopes: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.envelopes.append(envelope)
        parsed = email.message_from_bytes(envelope.content, policy=default)
        assert isinstance(parsed, EmailMessage)
        self.messages.append(parsed)
        return "250 OK"


@pytest.fixture
def smtp_server() -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()
    controller = Controller(inbox, hostname=LOOPBACK, port=free_port())
    controller.start()
    try:
        yield inbox, controller.port
    finally:
        controller.stop()


@pytest.fixture
def pdf(tmp_path: Path) -> Path:
    path = tmp_path / "memwall-audit-r1.pdf"
    path.write_bytes(PDF_BYTES)
    return path


def attachment(message: EmailMessage) -> tuple[str, bytes]:
    parts = list(message.iter_attachments())
    assert len(parts) == 1
    part = parts[0]
    assert part.get_content_type() == "application/pdf"
    payload = part.get_payload(decode=True)
    assert isinstance(payload, bytes)
    return str(part.get_filename()), payload


def test_email_arrives_with_the_pdf_attached_byte_for_byte(
    smtp_server: tuple[Inbox, int], pdf: Path
) -> None:
    inbox, port = smtp_server
    settings = SmtpSettings(LOOPBACK, port, ("lead@example.org", "ops@example.org"))
    result = send_email(pdf, settings, "memwall: 3 of 5 memory-bound", "headline\npath")
    assert result.ok and result.attempts == 1, result
    assert len(inbox.messages) == 1
    message = inbox.messages[0]
    assert message["Subject"] == "memwall: 3 of 5 memory-bound"
    assert sorted(inbox.envelopes[0].rcpt_tos) == ["lead@example.org", "ops@example.org"]
    name, data = attachment(message)
    assert name == pdf.name and data == pdf.read_bytes()


class Authenticator:
    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []

    def __call__(self, server: Any, session: Any, envelope: Any, mechanism: str, auth: Any) -> Any:
        assert isinstance(auth, LoginPassword)
        self.seen.append((auth.login.decode(), auth.password.decode()))
        return AuthResult(success=auth.password == b"s3cret", handled=False)


def _auth_server(authenticator: Authenticator) -> tuple[Controller, Inbox]:
    inbox = Inbox()
    controller = Controller(
        inbox,
        hostname=LOOPBACK,
        port=free_port(),
        authenticator=authenticator,
        auth_require_tls=False,
    )
    controller.start()
    return controller, inbox


def test_credentials_from_the_environment_log_in_and_are_never_shown(pdf: Path) -> None:
    authenticator = Authenticator()
    controller, inbox = _auth_server(authenticator)
    try:
        creds = credentials_from_env(
            {"MEMWALL_SMTP_USERNAME": "memwall", "MEMWALL_SMTP_PASSWORD": "s3cret"}
        )
        assert creds is not None and "s3cret" not in repr(creds)
        settings = SmtpSettings(LOOPBACK, controller.port, ("a@x.org",), credentials=creds)
        assert "s3cret" not in repr(settings)
        assert send_email(pdf, settings, "s", "b").ok
        assert authenticator.seen == [("memwall", "s3cret")]

        wrong = SmtpSettings(
            LOOPBACK, controller.port, ("a@x.org",), credentials=Credentials("memwall", "nope")
        )
        sleeps: list[float] = []
        result = send_email(pdf, wrong, "s", "b", sleep=sleeps.append)
        assert not result.ok and result.attempts == 1 and not sleeps  # no retry on bad login
        assert "refused the login for 'memwall'" in result.detail and "nope" not in result.detail
        assert len(inbox.messages) == 1
    finally:
        controller.stop()


def test_smtp_down_retries_then_reports(pdf: Path) -> None:
    sleeps: list[float] = []
    settings = SmtpSettings(LOOPBACK, free_port(), ("a@x.org",))
    result = send_email(pdf, settings, "s", "b", attempts=3, delay_s=0.5, sleep=sleeps.append)
    assert not result.ok and result.attempts == 3
    assert sleeps == [0.5, 1.0]
    assert "ConnectionRefusedError" in result.detail and "after 3 attempts" in result.detail
    assert pdf.read_bytes() == PDF_BYTES


@pytest.mark.parametrize(
    ("recipients", "port", "expected"),
    [
        ((), 25, "at least one recipient"),
        (("not-an-address",), 25, "not an email address: not-an-address"),
        (("a@x.org",), 0, "SMTP port must be 1..65535, got 0"),
    ],
)
def test_bad_smtp_settings_say_what_is_valid(
    recipients: tuple[str, ...], port: int, expected: str
) -> None:
    with pytest.raises(DeliveryError, match=expected):
        SmtpSettings(LOOPBACK, port, recipients)


def test_security_modes() -> None:
    assert security_for("auto", 465) == "ssl"
    assert security_for("auto", 587) == "starttls"
    assert security_for("auto", 2525) == "plain"
    assert security_for("starttls", 2525) == "starttls"
    with pytest.raises(DeliveryError, match="valid: auto, plain, starttls, ssl"):
        security_for("tls", 25)


def test_secret_block_values() -> None:
    assert credentials_from_secret('{"username": "u", "password": "p"}') == Credentials("u", "p")
    assert credentials_from_secret({"username": "u", "password": "p"}) == Credentials("u", "p")
    assert credentials_from_secret("u:p:q") == Credentials("u", "p:q")
    with pytest.raises(DeliveryError, match="must hold"):
        credentials_from_secret("no-separator")


def test_drop_into_a_folder_and_an_fsspec_url(pdf: Path, tmp_path: Path) -> None:
    result = drop(pdf, str(tmp_path / "shared" / "reports"))
    assert result.ok
    assert (tmp_path / "shared" / "reports" / pdf.name).read_bytes() == PDF_BYTES
    assert drop(pdf, (tmp_path / "via-url").as_uri()).ok
    assert (tmp_path / "via-url" / pdf.name).read_bytes() == PDF_BYTES


def test_drop_onto_a_file_fails_and_keeps_the_pdf(pdf: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    result = drop(pdf, str(blocker), sleep=lambda _: None)
    assert not result.ok and "after 3 attempts" in result.detail
    assert pdf.read_bytes() == PDF_BYTES


class Hook:
    def __init__(self, statuses: list[int]) -> None:
        self.statuses = statuses
        self.bodies: list[Any] = []


def _hook_server(hook: Hook) -> HTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers["Content-Length"])
            hook.bodies.append(json.loads(self.rfile.read(length)))
            self.send_response(hook.statuses.pop(0) if hook.statuses else 200)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = HTTPServer((LOOPBACK, 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def test_webhook_posts_slack_json_and_retries_a_server_error() -> None:
    hook = Hook([503])
    server = _hook_server(hook)
    try:
        url = f"http://{LOOPBACK}:{server.server_address[1]}/hooks/T0/B0/abc"
        result = post_webhook(url, "3 of 5 memory-bound", "file:///r.pdf", sleep=lambda _: None)
    finally:
        server.shutdown()
        server.server_close()
    assert result.ok and result.attempts == 2
    assert "abc" not in result.target  # the hook's path is its secret
    assert hook.bodies[-1] == {
        "text": "3 of 5 memory-bound\n<file:///r.pdf|Open the memwall report>"
    }


def test_webhook_client_error_is_not_retried() -> None:
    hook = Hook([404])
    server = _hook_server(hook)
    try:
        url = f"http://{LOOPBACK}:{server.server_address[1]}/hook"
        result = post_webhook(url, "h", "l", sleep=lambda _: None)
    finally:
        server.shutdown()
        server.server_close()
    assert not result.ok and result.attempts == 1 and "HTTP 404" in result.detail


def test_webhook_url_must_be_http() -> None:
    with pytest.raises(DeliveryError, match="must start with http:// or https://"):
        post_webhook("ftp://x", "h", "l")


@pytest.fixture
def tls_files(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1, and its key."""
    import datetime as dt
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, LOOPBACK)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(LOOPBACK))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@pytest.mark.parametrize("security", ["starttls", "ssl"])
def test_email_over_starttls_and_ssl_verifies_the_server(
    tls_files: tuple[Path, Path], pdf: Path, monkeypatch: pytest.MonkeyPatch, security: str
) -> None:
    import ssl

    cert, key = tls_files
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert, key)
    inbox = Inbox()
    tls = (
        {"tls_context": server_context, "require_starttls": True}
        if security == "starttls"
        else {"server_hostname": LOOPBACK, "ssl_context": server_context}
    )
    controller = Controller(inbox, hostname=LOOPBACK, port=free_port(), **tls)  # type: ignore[arg-type]
    controller.start()
    try:
        settings = SmtpSettings(LOOPBACK, controller.port, ("a@x.org",), security=security)  # type: ignore[arg-type]
        # Untrusted: the certificate is self-signed, and verification is never turned off.
        refused = send_email(pdf, settings, "s", "b", attempts=1)
        assert not refused.ok and "CERTIFICATE_VERIFY_FAILED" in refused.detail
        assert not inbox.messages
        # Trusted through the standard variable: the message goes through, encrypted.
        monkeypatch.setenv("SSL_CERT_FILE", str(cert))
        result = send_email(pdf, settings, "s", "b", attempts=1)
    finally:
        controller.stop()
    assert result.ok, result
    assert attachment(inbox.messages[0]) == (pdf.name, PDF_BYTES)

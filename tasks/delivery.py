"""Getting the PDF to the people who read it: email, a folder or object-store drop, a webhook.

Every channel retries what may pass (a refused connection, a 4xx SMTP reply, an HTTP 5xx or
429) and gives up at once on what will not (bad credentials, a rejected recipient). A channel
that still fails is reported, not raised: the PDF is already written and stays where it is, and
the caller decides how to mark the run. Credentials are never part of a message or a log line.
"""

from __future__ import annotations

import json
import os
import shutil
import smtplib
import socket
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path
from typing import Final, Literal

from hardware_profiles.errors import MemwallError
from hardware_profiles.parquet import WriteError, atomic_path

Security = Literal["plain", "starttls", "ssl"]
SECURITY_MODES: Final = ("auto", "plain", "starttls", "ssl")
USERNAME_ENV: Final = "MEMWALL_SMTP_USERNAME"
PASSWORD_ENV: Final = "MEMWALL_SMTP_PASSWORD"
# A webhook's URL is its credential (whoever has it can post): it lives here or in a Secret
# block, never in a flow's parameters, which Prefect stores and shows.
WEBHOOK_ENV: Final = "MEMWALL_WEBHOOK_URL"
DEFAULT_ATTEMPTS: Final = 3
DEFAULT_RETRY_DELAY_S: Final = 1.0
# Each network call (connect, every SMTP reply, the HTTP response) waits at most this long, so a
# server that accepts and never answers costs attempts x this, not a hung weekly audit.
DEFAULT_TIMEOUT_S: Final = 30.0


class DeliveryError(MemwallError):
    """A delivery that failed after its retries; the PDF it carried is kept."""


class _Permanent(Exception):
    """A failure that retrying cannot fix."""


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str = field(repr=False)


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int
    recipients: tuple[str, ...]
    security: Security = "plain"
    sender: str = ""
    credentials: Credentials | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not self.recipients:
            raise DeliveryError("email delivery needs at least one recipient (--email-to)")
        bad = [r for r in self.recipients if "@" not in r or r.strip() != r]
        if bad:
            raise DeliveryError(
                f"not an email address: {', '.join(bad)} (expected name@domain, one per --email-to)"
            )
        if not 0 < self.port < 65536:
            raise DeliveryError(f"SMTP port must be 1..65535, got {self.port}")

    @property
    def where(self) -> str:
        return f"{self.host}:{self.port} ({self.security})"


def require_drop_targets(targets: list[str]) -> None:
    """Every drop target names a folder or URL: an empty one would drop the PDF nowhere."""
    blank = [i + 1 for i, target in enumerate(targets) if not target.strip()]
    if blank:
        raise DeliveryError(
            f"--drop-to number {blank[0]} is empty; give a folder or an fsspec URL (s3://...)"
        )


def security_for(mode: str, port: int) -> Security:
    """``auto`` picks by the well-known ports: 465 is SSL, 587 STARTTLS, anything else plain."""
    if mode not in SECURITY_MODES:
        raise DeliveryError(f"unknown SMTP security {mode!r}; valid: {', '.join(SECURITY_MODES)}")
    if mode == "auto":
        return "ssl" if port == 465 else "starttls" if port == 587 else "plain"
    return mode  # type: ignore[return-value]


def credentials_from_env(environ: Mapping[str, str] = os.environ) -> Credentials | None:
    """SMTP login from ``MEMWALL_SMTP_USERNAME`` / ``MEMWALL_SMTP_PASSWORD``, if set."""
    username = environ.get(USERNAME_ENV)
    if not username:
        return None
    return Credentials(username, environ.get(PASSWORD_ENV, ""))


def credentials_from_secret(value: object) -> Credentials:
    """A Prefect Secret's value: ``{"username": ..., "password": ...}`` or ``"user:password"``."""
    if isinstance(value, str):
        text = value
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            username, sep, password = text.partition(":")
            if sep and username:
                return Credentials(username, password)
    if isinstance(value, dict) and isinstance(value.get("username"), str):
        return Credentials(value["username"], str(value.get("password", "")))
    raise DeliveryError(
        'the SMTP Secret block must hold {"username": ..., "password": ...} or "user:password"'
    )


@dataclass(frozen=True)
class Delivered:
    """What one channel did: ``ok`` or not, and a line a person can act on."""

    channel: str
    target: str
    ok: bool
    detail: str
    attempts: int


Sleep = Callable[[float], None]


def _retrying(
    channel: str,
    target: str,
    send: Callable[[], str],
    attempts: int,
    delay_s: float,
    sleep: Sleep,
) -> Delivered:
    last = ""
    for attempt in range(1, attempts + 1):
        try:
            return Delivered(channel, target, True, send(), attempt)
        except _Permanent as exc:
            return Delivered(channel, target, False, str(exc), attempt)
        except WriteError as exc:  # a drop folder that is full, say: it may pass
            last = str(exc)
        except (OSError, smtplib.SMTPException) as exc:
            last = f"{type(exc).__name__}: {exc}".strip()
        if attempt < attempts:
            sleep(delay_s * 2 ** (attempt - 1))
    return Delivered(channel, target, False, f"{last} (after {attempts} attempts)", attempts)


def email_message(pdf: Path, settings: SmtpSettings, subject: str, body: str) -> EmailMessage:
    message = EmailMessage()
    message["Subject"] = subject
    message["From"] = settings.sender or f"memwall@{socket.getfqdn()}"
    message["To"] = ", ".join(settings.recipients)
    message["Date"] = formatdate(localtime=False, usegmt=True)
    message["Message-ID"] = make_msgid(domain="memwall")
    message.set_content(body)
    message.add_attachment(
        pdf.read_bytes(), maintype="application", subtype="pdf", filename=pdf.name
    )
    return message


def _send_smtp(message: EmailMessage, settings: SmtpSettings, timeout_s: float) -> str:
    context = ssl.create_default_context()
    smtp: smtplib.SMTP
    if settings.security == "ssl":
        smtp = smtplib.SMTP_SSL(settings.host, settings.port, timeout=timeout_s, context=context)
    else:
        smtp = smtplib.SMTP(settings.host, settings.port, timeout=timeout_s)
    with smtp:
        if settings.security == "starttls":
            smtp.starttls(context=context)
        if settings.credentials is not None:
            try:
                smtp.login(settings.credentials.username, settings.credentials.password)
            except smtplib.SMTPAuthenticationError as exc:
                raise _Permanent(
                    f"the SMTP server refused the login for {settings.credentials.username!r} "
                    f"({exc.smtp_code})"
                ) from None
        try:
            refused = smtp.send_message(message)
        except smtplib.SMTPRecipientsRefused as exc:
            raise _Permanent(f"every recipient was refused: {', '.join(exc.recipients)}") from None
        except smtplib.SMTPResponseException as exc:
            if 400 <= exc.smtp_code < 500:
                raise
            raise _Permanent(f"the SMTP server rejected the message ({exc.smtp_code})") from None
    if refused:
        return f"sent; refused for {', '.join(refused)}"
    return f"sent to {', '.join(settings.recipients)}"


def send_email(
    pdf: Path,
    settings: SmtpSettings,
    subject: str,
    body: str,
    attempts: int = DEFAULT_ATTEMPTS,
    delay_s: float = DEFAULT_RETRY_DELAY_S,
    sleep: Sleep = time.sleep,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> Delivered:
    """Email ``pdf`` as an attachment; the body is the headline and where the PDF lives."""
    message = email_message(pdf, settings, subject, body)
    return _retrying(
        "email",
        f"{', '.join(settings.recipients)} via {settings.where}",
        lambda: _send_smtp(message, settings, timeout_s),
        attempts,
        delay_s,
        sleep,
    )


def drop(
    pdf: Path,
    destination: str,
    attempts: int = DEFAULT_ATTEMPTS,
    delay_s: float = DEFAULT_RETRY_DELAY_S,
    sleep: Sleep = time.sleep,
) -> Delivered:
    """Copy ``pdf`` into a folder or under an fsspec URL, under its own name."""

    def copy() -> str:
        if "://" not in destination:
            target = Path(destination) / pdf.name
            with atomic_path(target) as tmp:
                shutil.copyfile(pdf, tmp)
            return f"copied to {target}"
        import fsspec

        target_url = f"{destination.rstrip('/')}/{pdf.name}"
        try:
            fs, path = fsspec.core.url_to_fs(target_url)
        except (ImportError, ValueError) as exc:
            raise _Permanent(f"cannot open {destination}: {exc}") from None
        fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
        fs.pipe_file(path, pdf.read_bytes())
        return f"copied to {target_url}"

    return _retrying("drop", destination, copy, attempts, delay_s, sleep)


def webhook_payload(headline: str, link: str) -> dict[str, str]:
    """Slack's incoming-webhook shape (Mattermost, Rocket.Chat and Teams' Slack mode read it)."""
    return {"text": f"{headline}\n<{link}|Open the memwall report>"}


def webhook_url_from_env(environ: Mapping[str, str] = os.environ) -> str | None:
    return environ.get(WEBHOOK_ENV) or None


def webhook_url_from_secret(value: object) -> str:
    """A Prefect Secret's value: the URL itself, or ``{"url": ...}``."""
    if isinstance(value, dict):
        value = value.get("url")
    if not isinstance(value, str) or not value:
        raise DeliveryError('the webhook Secret block must hold the URL, or {"url": ...}')
    check_webhook_url(value)
    return value


def check_webhook_url(url: str) -> None:
    if not url.startswith(("http://", "https://")):
        raise DeliveryError("webhook URL must start with http:// or https://")


def post_webhook(
    url: str,
    headline: str,
    link: str,
    attempts: int = DEFAULT_ATTEMPTS,
    delay_s: float = DEFAULT_RETRY_DELAY_S,
    sleep: Sleep = time.sleep,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> Delivered:
    """POST the headline and a link to the PDF as JSON."""
    check_webhook_url(url)
    body = json.dumps(webhook_payload(headline, link)).encode()

    def post() -> str:
        request = urllib.request.Request(
            url, data=body, headers={"Content-Type": "application/json"}, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout_s) as response:
                return f"posted (HTTP {response.status})"
        except urllib.error.HTTPError as exc:
            if exc.code >= 500 or exc.code == 429:
                raise
            raise _Permanent(f"the webhook refused the post (HTTP {exc.code})") from None

    # The URL of a webhook is its secret: report the host only.
    host = urllib.parse.urlparse(url).netloc
    return _retrying("webhook", host, post, attempts, delay_s, sleep)


def summary(results: list[Delivered], pdf: Path) -> str:
    """One line for the failures, saying where the PDF is kept."""
    failed = [r for r in results if not r.ok]
    parts = [f"{r.channel} to {r.target} failed: {r.detail}" for r in failed]
    return f"delivery failed ({'; '.join(parts)}); the PDF is kept at {pdf}"

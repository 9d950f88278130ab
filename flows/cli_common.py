"""What every ``memwall`` command shares: the error console, Prefect's environment, and the
options that name profile files."""

from __future__ import annotations

import ipaddress
import json
import os
import urllib.parse
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from hardware_profiles.errors import MemwallError
from hardware_profiles.strict_json import strict

stderr = Console(stderr=True, highlight=False)


def warn(message: str) -> None:
    stderr.print(f"memwall: warning: {message}", markup=False, soft_wrap=True)


def warn_set_aside(history: str) -> None:
    """Name, on stderr, every history file set aside and not yet dealt with: each command that
    reads the history says what it left out."""
    from tasks.history import quarantined

    for aside in quarantined(history):
        warn(f"set aside, not read: {aside.path}: {aside.reason}")


def require_positive(option: str, value: float) -> None:
    if value <= 0:
        raise MemwallError(f"{option} must be > 0, got {value:g}")


def print_json(value: Any, indent: int | None = 2) -> None:
    """The one way a ``--json`` option prints: strict JSON (``null``, never ``NaN``)."""
    print(json.dumps(strict(value), indent=indent, allow_nan=False))


def prefect_environment(verbose: bool) -> None:
    """Quiet defaults for Prefect when run from a terminal; the user's own settings win.

    Prefect's console log is hidden unless --verbose (the run log still reaches the Prefect
    API and UI); telemetry is off because most accelerator hosts have no way out; the
    ephemeral server gets two minutes to start (Prefect's 20 s default is not enough for a
    busy host migrating a fresh database).
    """
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    if not verbose:
        os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "CRITICAL")


InsecureOption = Annotated[
    bool,
    typer.Option(
        "--insecure",
        help="Use a Prefect server on another host without authentication (anyone who can "
        "reach it can run code on every worker).",
    ),
]


def require_authenticated_api(insecure: bool) -> None:
    """Refuse a Prefect API on another host without an auth string. A Prefect server is a
    remote-execution service: whoever can post to it makes every process worker of the pool
    run code, so memwall talks to one off this host only with PREFECT_API_AUTH_STRING set
    (or --insecure, said loudly). The auth string itself is never printed."""
    from prefect.settings import get_current_settings

    api = get_current_settings().api
    if not api.url:
        return  # this host's own temporary server
    parsed = urllib.parse.urlparse(api.url)
    # Shown without any user:password the URL may carry.
    port = f":{parsed.port}" if parsed.port else ""
    shown = parsed._replace(netloc=f"{parsed.hostname or ''}{port}").geturl()
    if _loopback(parsed.hostname or "") or api.auth_string is not None:
        return
    if insecure:
        warn(
            f"--insecure: talking to the Prefect server at {shown} without authentication; "
            "anyone who can reach it can run code on every memwall worker"
        )
        return
    raise MemwallError(
        f"the Prefect server at {shown} is not on this host and PREFECT_API_AUTH_STRING is not "
        "set; set it from a file, never on the command line: export "
        'PREFECT_API_AUTH_STRING="$(cat /etc/memwall/prefect-auth)" (or pass --insecure)'
    )


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


WorkloadsOption = Annotated[
    Path | None,
    typer.Option(
        "--workloads",
        help="Workloads Parquet file (default: the built-in examples).",
        dir_okay=False,
    ),
]
RoadmapOption = Annotated[
    Path | None,
    typer.Option(
        "--roadmap",
        help="Roadmap Parquet file (default: the built-in example, with two what-if scenarios).",
        dir_okay=False,
    ),
]
CatalogOption = Annotated[
    Path | None,
    typer.Option(
        "--catalog", help="Catalog Parquet file (default: the built-in catalog).", dir_okay=False
    ),
]

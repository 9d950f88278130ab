"""What every ``memwall`` command shares: the error console, Prefect's environment, and the
options that name profile files."""

from __future__ import annotations

import ipaddress
import os
import sys
import threading
import urllib.parse
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from hardware_profiles.errors import MemwallError
from hardware_profiles.strict_json import dumps

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


def print_json(value: Any, indent: bool = True, timings: Mapping[str, float] | None = None) -> None:
    """The one way a ``--json`` option prints: strict JSON (``null``, never ``NaN``).

    ``timings`` (each stage's seconds, :meth:`flows.timings.Stopwatch.timings`) is the last key
    of an object; an output that is a list of rows stays a list (``jq '.[0]'`` keeps working)
    and its timings go to standard error as one JSON line, ``{"timings": {...}}``."""
    if timings is not None and isinstance(value, dict):
        value = {**value, "timings": dict(timings)}
    _write(sys.stdout, dumps(value, indent))
    if timings is not None and not isinstance(value, dict):
        _write(sys.stderr, dumps({"timings": dict(timings)}, indent=False))


def _write(stream: Any, text: bytes) -> None:
    """``text`` and a newline on ``stream``: as bytes where it has a buffer (orjson writes
    UTF-8), else as text (a test's capture)."""
    buffer = getattr(stream, "buffer", None)
    if buffer is None:
        stream.write(text.decode() + "\n")
        return
    stream.flush()
    buffer.write(text + b"\n")
    buffer.flush()


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


def start_prefect_server() -> Callable[[], None]:
    """Start Prefect's temporary server now, in the background, where no server is
    configured; returns what waits until it answers (call it before the first flow run).

    Without ``PREFECT_API_URL`` Prefect starts a temporary server (uvicorn in a subprocess, on
    this user's SQLite database) at the first flow call, and waits for it: 5 to 10 s on a
    loaded 2-core host, after the 4 to 7 s the audit spends importing JAX, pandas, scipy and
    reportlab. Started before those imports, its start-up runs beside them. It is the server
    Prefect would start (``SubprocessASGIServer``, which ``get_client`` reuses): the run is
    recorded in the same database and the server stopped at exit as Prefect stops it. Where
    a server is configured nothing starts, and the runs go to it as before."""
    from prefect.settings import get_current_settings

    settings = get_current_settings()
    if settings.api.url or not settings.server.ephemeral.enabled:
        return lambda: None
    # Imported here, not in the thread: two threads importing Prefect at once can see each
    # other's half-imported modules.
    from prefect.server.api.server import SubprocessASGIServer

    server = SubprocessASGIServer()
    failed: list[BaseException] = []

    def start() -> None:
        try:
            server.start()
        except BaseException as exc:  # raised again by wait(), in the caller's thread
            failed.append(exc)

    thread = threading.Thread(target=start, name="prefect-server-start", daemon=True)
    thread.start()

    def wait() -> None:
        thread.join()
        if failed:
            raise failed[0]

    return wait


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
    shown = _shown(api.url)
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
        f"set; {SET_AUTH_STRING} (or pass --insecure)"
    )


SET_AUTH_STRING = (
    "set it from a file, never on the command line: export "
    'PREFECT_API_AUTH_STRING="$(cat /etc/memwall/prefect-auth)"'
)


def refused_for_credentials(exc: BaseException) -> str | None:
    """The one line for a Prefect API that answered 401 (its auth string unset here, or not
    the server's), or None for any other error. Read off the error's response, so that
    commands that never talk to Prefect do not import its client to tell."""
    response = getattr(exc, "response", None)
    if getattr(response, "status_code", None) != 401:
        return None
    url = str(getattr(getattr(response, "request", None), "url", ""))
    api = url.split("/api/", 1)[0] + "/api" if "/api/" in url else url
    return (
        f"the Prefect server at {_shown(api)} refused the request (401 Unauthorized): "
        f"PREFECT_API_AUTH_STRING is not set or is not the server's; {SET_AUTH_STRING}"
    )


def _shown(url: str) -> str:
    """`url` without any user:password it may carry."""
    parsed = urllib.parse.urlparse(url)
    port = f":{parsed.port}" if parsed.port else ""
    return parsed._replace(netloc=f"{parsed.hostname or ''}{port}").geturl()


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

"""What every ``memwall`` command shares: the error console, Prefect's environment, and the
options that name profile files."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from hardware_profiles.errors import MemwallError
from hardware_profiles.strict_json import strict

stderr = Console(stderr=True, highlight=False)


def warn(message: str) -> None:
    stderr.print(f"memwall: warning: {message}", markup=False, soft_wrap=True)


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

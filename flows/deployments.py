"""memwall's deployments: those declared in ``prefect.yaml``, and the audit served on a schedule.

``prefect deploy --all`` reads the same file, but with the pinned stack (prefect 3.8.8, fastapi
0.154) it stops after the first deployment: it asks the server for the pool's workers with null
paging fields, which the server now rejects. ``memwall deploy`` applies every deployment of the
file through Prefect's Python API instead. Entrypoints are module paths, so a worker imports
the flows from its host's installed memwall: there is no code to push or pull. Every
deployment's runs carry the heartbeat and the tag that the zombie-run automation watches
(``flows.heartbeats``).
"""

from __future__ import annotations

import dataclasses
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast
from uuid import UUID

from flows.heartbeats import WATCHED_TAG, heartbeat_environment
from hardware_profiles.errors import MemwallError, first_line

_ENV = re.compile(r"^\{\{\s*\$([A-Za-z_][A-Za-z0-9_]*)\s*\}\}$")


class DeploymentFileError(MemwallError):
    """A prefect.yaml memwall cannot deploy from."""


@dataclass(frozen=True)
class DeploymentSpec:
    name: str
    entrypoint: str
    work_pool: str
    work_queue: str | None
    description: str = ""
    tags: list[str] = field(default_factory=list)
    parameters: dict[str, Any] = field(default_factory=dict)
    crons: list[tuple[str, str | None]] = field(default_factory=list)


def _resolve(value: Any, where: str) -> Any:
    """``"{{ $NAME }}"`` -> the environment variable NAME, as ``prefect deploy`` does."""
    if isinstance(value, str) and (match := _ENV.match(value.strip())):
        name = match.group(1)
        if name not in os.environ:
            raise DeploymentFileError(f"{where} needs the environment variable {name}")
        return os.environ[name]
    return value


def read_specs(path: Path) -> list[DeploymentSpec]:
    import yaml

    source = str(path)
    if not path.is_file():
        raise DeploymentFileError(
            f"{source}: no such file; run from the memwall checkout or pass --file"
        )
    try:
        document = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise DeploymentFileError(f"{source}: not valid YAML ({first_line(exc)})") from None
    entries = document.get("deployments") if isinstance(document, dict) else None
    if not isinstance(entries, list) or not entries:
        raise DeploymentFileError(f"{source}: has no 'deployments' list")
    specs = []
    for number, entry in enumerate(entries, start=1):
        where = f"{source}: deployment {number}"
        if not isinstance(entry, dict):
            raise DeploymentFileError(f"{where}: must be a mapping")
        missing = [k for k in ("name", "entrypoint", "work_pool") if not entry.get(k)]
        if missing:
            raise DeploymentFileError(f"{where}: missing {', '.join(missing)}")
        pool = entry["work_pool"]
        if not isinstance(pool, dict) or not pool.get("name"):
            raise DeploymentFileError(f"{where}: work_pool needs a name")
        where = f"{source}: deployment {entry['name']!r}"
        crons = []
        for schedule in entry.get("schedules") or []:
            if not isinstance(schedule, dict) or "cron" not in schedule:
                raise DeploymentFileError(f"{where}: memwall deploys cron schedules only")
            crons.append((str(schedule["cron"]), schedule.get("timezone")))
        specs.append(
            DeploymentSpec(
                name=str(entry["name"]),
                entrypoint=str(entry["entrypoint"]),
                work_pool=str(_resolve(pool["name"], f"{where}, work_pool")),
                work_queue=pool.get("work_queue_name"),
                description=" ".join(str(entry.get("description") or "").split()),
                tags=list(entry.get("tags") or []),
                parameters=dict(entry.get("parameters") or {}),
                crons=crons,
            )
        )
    return specs


def resolve_environment(spec: DeploymentSpec, source: str) -> DeploymentSpec:
    """``spec`` with its ``{{ $NAME }}`` parameters read from the environment, and its cron
    schedules checked: what could never run is refused before anything is deployed."""
    from prefect.schedules import Cron

    where = f"{source}: deployment {spec.name!r}"
    parameters = {k: _resolve(v, f"{where}, parameter {k!r}") for k, v in spec.parameters.items()}
    for cron, timezone in spec.crons:
        try:
            Cron(cron, timezone=timezone or "UTC")
        except ValueError:
            raise DeploymentFileError(
                f"{where}: schedule {cron!r} is not a cron expression; expected five fields, "
                "e.g. '0 6 * * 1' (Monday 06:00)"
            ) from None
    return dataclasses.replace(spec, parameters=parameters)


def apply(spec: DeploymentSpec) -> UUID:
    """Create or update one deployment on the Prefect server in PREFECT_API_URL.

    Its runs send heartbeats (job variables, which win over the worker's environment) and
    carry the tag the zombie-run automation watches: a run whose host dies ends Crashed."""
    from prefect import Flow
    from prefect.deployments.runner import RunnerDeployment
    from prefect.schedules import Cron
    from prefect.types.entrypoint import EntrypointType
    from prefect.utilities.importtools import import_object

    try:
        flow = import_object(spec.entrypoint)
    except (ImportError, AttributeError) as exc:
        raise DeploymentFileError(
            f"deployment {spec.name!r}: cannot import {spec.entrypoint!r} ({exc})"
        ) from None
    if not isinstance(flow, Flow):
        raise DeploymentFileError(f"deployment {spec.name!r}: {spec.entrypoint!r} is not a flow")
    deployment = flow.to_deployment(
        name=spec.name,
        description=spec.description or None,
        tags=[*spec.tags, *([] if WATCHED_TAG in spec.tags else [WATCHED_TAG])],
        parameters=spec.parameters,
        schedules=[Cron(cron, timezone=tz) for cron, tz in spec.crons] or None,
        work_pool_name=spec.work_pool,
        work_queue_name=spec.work_queue,
        entrypoint_type=EntrypointType.MODULE_PATH,
        job_variables={"env": heartbeat_environment()},
    )
    # From sync code these return their values, not coroutines.
    return cast(UUID, cast(RunnerDeployment, deployment).apply(work_pool_name=spec.work_pool))

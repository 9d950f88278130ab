"""Operating memwall: ``deploy``, ``serve``, ``fleet``, and the delivery options of ``audit``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from flows.cli_common import (
    CatalogOption,
    InsecureOption,
    RoadmapOption,
    WorkloadsOption,
    prefect_environment,
    require_authenticated_api,
    stderr,
)
from hardware_profiles.errors import MemwallError

if TYPE_CHECKING:
    from flows.finish import DeliverySettings

DEFAULT_HISTORY = Path("memwall-reports") / "history"
WEEKLY = "0 6 * * 1"

EmailToOption = Annotated[
    list[str] | None,
    typer.Option(
        "--email-to",
        help="Email the PDF to this address (repeat for more). Login, if the server needs "
        "one: MEMWALL_SMTP_USERNAME and MEMWALL_SMTP_PASSWORD, or --smtp-secret.",
    ),
]
SmtpHostOption = Annotated[str, typer.Option("--smtp-host", help="SMTP server.")]
SmtpPortOption = Annotated[int, typer.Option("--smtp-port", help="SMTP port.")]
SmtpSecurityOption = Annotated[
    str,
    typer.Option(
        "--smtp-security",
        help="auto (465: SSL, 587: STARTTLS, else plain), plain, starttls or ssl.",
    ),
]
SmtpFromOption = Annotated[
    str, typer.Option("--smtp-from", help="Sender address (default memwall@this host).")
]
SmtpSecretOption = Annotated[
    str | None,
    typer.Option(
        "--smtp-secret",
        help='Prefect Secret block with the SMTP login: {"username": ..., "password": ...}.',
    ),
]
DropToOption = Annotated[
    list[str] | None,
    typer.Option(
        "--drop-to", help="Copy the PDF into this folder or fsspec URL (repeat for more)."
    ),
]
WebhookOption = Annotated[
    bool,
    typer.Option(
        "--webhook",
        help="Post the headline and a link to the Slack-style webhook whose URL is in "
        "MEMWALL_WEBHOOK_URL (or in --webhook-secret): a URL is a secret, never an argument.",
    ),
]
WebhookSecretOption = Annotated[
    str | None,
    typer.Option(
        "--webhook-secret", help="Prefect Secret block with the webhook URL (implies --webhook)."
    ),
]
HistoryOption = Annotated[
    Path | None,
    typer.Option(
        "--history", help="History dataset to append to (default: <out>/history).", file_okay=False
    ),
]


def delivery_settings(
    email_to: list[str] | None,
    smtp_host: str,
    smtp_port: int,
    smtp_security: str,
    smtp_from: str,
    smtp_secret: str | None,
    drop_to: list[str] | None,
    webhook: bool,
    webhook_secret: str | None = None,
) -> DeliverySettings:
    """The delivery options as the flows take them, checked before anything runs."""
    from flows.finish import DeliverySettings, check_delivery

    settings = DeliverySettings(
        email_to=email_to or [],
        smtp_host=smtp_host,
        smtp_port=smtp_port,
        smtp_security=smtp_security,
        smtp_sender=smtp_from,
        smtp_secret_block=smtp_secret,
        drop_to=drop_to or [],
        webhook=webhook or webhook_secret is not None,
        webhook_secret_block=webhook_secret,
    )
    check_delivery(settings)
    return settings


def deploy(
    file: Annotated[
        Path, typer.Option("--file", help="The deployments file.", dir_okay=False)
    ] = Path("prefect.yaml"),
    name: Annotated[
        list[str] | None,
        typer.Option("--name", help="Deploy only this deployment (repeat for more)."),
    ] = None,
    insecure: InsecureOption = False,
) -> None:
    """Create or update the deployments of prefect.yaml on the Prefect server in
    PREFECT_API_URL (what `prefect deploy --all` does; see the README), and the automation
    that marks a run whose heartbeats stop Crashed. A server on another host needs
    PREFECT_API_AUTH_STRING (or --insecure)."""
    prefect_environment(verbose=False)
    require_authenticated_api(insecure)
    from flows.deployments import apply, read_specs, resolve_environment

    specs = read_specs(file)
    known = [s.name for s in specs]
    unknown = [n for n in name or [] if n not in known]
    if unknown:
        raise MemwallError(
            f"{file}: no deployment named {', '.join(unknown)}; it has {', '.join(known)}"
        )
    # Every selected deployment is checked before the first is applied: its parameters'
    # workloads, roadmap and catalog files as an audit would check them.
    selected = [resolve_environment(s, str(file)) for s in specs if not name or s.name in name]
    for spec in selected:
        if any(spec.parameters.get(k) for k in ("workloads", "roadmap", "catalog")):
            _check_profiles(
                spec.parameters.get("workloads"),
                spec.parameters.get("roadmap"),
                spec.parameters.get("catalog"),
            )
    for spec in selected:
        deployment_id = apply(spec)
        schedule = ", ".join(f"cron {c} {tz or 'UTC'}" for c, tz in spec.crons) or "ad hoc"
        stderr.print(
            f"deployed {spec.name} ({spec.entrypoint}) to pool {spec.work_pool}: {schedule}",
            markup=False,
            soft_wrap=True,
        )
        print(deployment_id)
    _watch_for_zombies()


def _watch_for_zombies() -> None:
    """Create or update the zombie-run automation, and say what it promises."""
    from flows.heartbeats import (
        AUTOMATION_NAME,
        CRASH_BOUND_S,
        HEARTBEAT_FREQUENCY_S,
        SILENCE_WINDOW_S,
        apply_zombie_automation,
    )

    _, created = apply_zombie_automation()
    stderr.print(
        f"automation {AUTOMATION_NAME} {'created' if created else 'updated'}: runs send a "
        f"heartbeat every {HEARTBEAT_FREQUENCY_S} s; one silent for {SILENCE_WINDOW_S} s is "
        f"marked Crashed (within {CRASH_BOUND_S} s of its process dying)",
        markup=False,
        soft_wrap=True,
    )


def _check_profiles(workloads: str | None, roadmap: str | None, catalog: str | None) -> None:
    """The files an audit would read, checked as it checks them (the default horizon and
    efficiencies from this month): refused before anything is scheduled or deployed."""
    import datetime as dt

    from flows.audit import checked_profiles
    from tasks.analysis.projection.horizon import DEFAULT_HORIZON_MONTHS
    from tasks.analysis.supply.calibration import (
        DEFAULT_BANDWIDTH_EFFICIENCY,
        DEFAULT_FLOPS_EFFICIENCY,
    )

    checked_profiles(
        workloads,
        roadmap,
        catalog,
        None,
        dt.datetime.now(dt.UTC).date().replace(day=1),
        DEFAULT_HORIZON_MONTHS,
        {"bandwidth": DEFAULT_BANDWIDTH_EFFICIENCY, "flops": DEFAULT_FLOPS_EFFICIENCY},
    )


def fleet(
    pool: Annotated[str, typer.Option("--pool", help="The work pool of the fleet.")] = "memwall",
    host: Annotated[
        list[str] | None,
        typer.Option(
            "--host",
            help="Probe only this host's queue (repeat); default: every queue but 'default'.",
        ),
    ] = None,
    storage: Annotated[
        str,
        typer.Option(
            "--storage", help="Shared storage every host can write: a path or an fsspec URL."
        ),
    ] = "memwall-fleet",
    timeout: Annotated[
        float, typer.Option("--timeout", help="Seconds each host gets before it is cancelled.")
    ] = 1800.0,
    workloads: WorkloadsOption = None,
    roadmap: RoadmapOption = None,
    catalog: CatalogOption = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", help="Folder for the PDF (default: <storage>/reports).", file_okay=False
        ),
    ] = None,
    quick: Annotated[bool, typer.Option("--quick", help="Small probe sizes.")] = False,
    straggler_threshold: Annotated[
        float,
        typer.Option(
            "--straggler-threshold",
            help="A device this fraction below its model's median in the run is a straggler.",
        ),
    ] = 0.05,
    email_to: EmailToOption = None,
    smtp_host: SmtpHostOption = "localhost",
    smtp_port: SmtpPortOption = 25,
    smtp_security: SmtpSecurityOption = "auto",
    smtp_from: SmtpFromOption = "",
    smtp_secret: SmtpSecretOption = None,
    drop_to: DropToOption = None,
    webhook: WebhookOption = False,
    webhook_secret: WebhookSecretOption = None,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Show Prefect's run log.")
    ] = False,
    insecure: InsecureOption = False,
) -> None:
    """Run the fleet audit from here: probe every host's queue of the work pool (the
    probe-host deployment, one worker per host) and report; the last line is the PDF path.
    A server on another host needs PREFECT_API_AUTH_STRING (or --insecure)."""
    prefect_environment(verbose)
    require_authenticated_api(insecure)
    from flows.fleet import fleet_audit
    from flows.progress import listening

    settings = delivery_settings(
        email_to,
        smtp_host,
        smtp_port,
        smtp_security,
        smtp_from,
        smtp_secret,
        drop_to,
        webhook,
        webhook_secret,
    )

    def show(message: str) -> None:
        stderr.print(f"· {message}", style="dim", markup=False, soft_wrap=True)

    with listening(show):
        outcome = fleet_audit(
            work_pool=pool,
            hosts=host or None,
            storage=storage,
            host_timeout_s=timeout,
            quick=quick,
            workloads=str(workloads) if workloads else None,
            roadmap=str(roadmap) if roadmap else None,
            catalog=str(catalog) if catalog else None,
            out_dir=str(out) if out else None,
            delivery=settings,
            straggler_threshold=straggler_threshold,
        )
    for result in outcome.hosts:
        detail = f": {result.detail}" if result.detail else ""
        stderr.print(f"{result.host}: {result.status}{detail}", markup=False, soft_wrap=True)
    print(outcome.pdf_path)


def serve(
    cron: Annotated[
        str, typer.Option("--cron", help="When to audit, as a cron expression in UTC.")
    ] = WEEKLY,
    name: Annotated[str, typer.Option("--name", help="Deployment name.")] = "memwall-audit",
    workloads: WorkloadsOption = None,
    roadmap: RoadmapOption = None,
    catalog: CatalogOption = None,
    out: Annotated[
        Path,
        typer.Option("--out", help="Folder for each run's PDF and measurements.", file_okay=False),
    ] = Path("memwall-reports"),
    quick: Annotated[bool, typer.Option("--quick", help="Small probe sizes.")] = False,
    email_to: EmailToOption = None,
    smtp_host: SmtpHostOption = "localhost",
    smtp_port: SmtpPortOption = 25,
    smtp_security: SmtpSecurityOption = "auto",
    smtp_from: SmtpFromOption = "",
    smtp_secret: SmtpSecretOption = None,
    drop_to: DropToOption = None,
    webhook: WebhookOption = False,
    webhook_secret: WebhookSecretOption = None,
    prometheus: Annotated[
        str | None,
        typer.Option("--prometheus", help="Each run reads the workloads' demand from here."),
    ] = None,
    insecure: InsecureOption = False,
) -> None:
    """Audit this host on a schedule (weekly, Monday 06:00 UTC, by default), without any YAML.

    Registers the `audit` flow as a deployment on the Prefect server in PREFECT_API_URL and
    runs each scheduled audit here until interrupted (Ctrl-C). The workloads, roadmap,
    catalog and delivery settings are checked first, as an audit checks them: what an audit
    would refuse is never scheduled. A server on another host needs PREFECT_API_AUTH_STRING
    (or --insecure).
    """
    prefect_environment(verbose=True)
    require_authenticated_api(insecure)
    from prefect.schedules import Cron

    from flows.audit import audit
    from flows.finish import check_delivery
    from flows.heartbeats import heartbeat_environment

    try:
        schedule = Cron(cron, timezone="UTC")
    except ValueError:
        raise MemwallError(
            f"--cron {cron!r} is not a cron expression; expected five fields, e.g. "
            f"{WEEKLY!r} (Monday 06:00) or '0 * * * *' (hourly)"
        ) from None
    settings = delivery_settings(
        email_to,
        smtp_host,
        smtp_port,
        smtp_security,
        smtp_from,
        smtp_secret,
        drop_to,
        webhook,
        webhook_secret,
    )
    check_delivery(settings)
    _check_profiles(
        str(workloads) if workloads else None,
        str(roadmap) if roadmap else None,
        str(catalog) if catalog else None,
    )
    # The served runs inherit this environment: their heartbeats, at the automation's rate.
    os.environ.update(heartbeat_environment())
    _watch_for_zombies()
    parameters = {
        "workloads": str(workloads.resolve()) if workloads else None,
        "roadmap": str(roadmap.resolve()) if roadmap else None,
        "catalog": str(catalog.resolve()) if catalog else None,
        "out_dir": str(out.resolve()),
        "quick": quick,
        "delivery": settings.model_dump(),
        "prometheus": prometheus,
    }
    audit.serve(name=name, schedules=[schedule], parameters=parameters, tags=["memwall"])

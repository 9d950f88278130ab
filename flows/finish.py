"""What every audit does around its PDF: check the history before probing (moving aside what
cannot be read), record the run and flag drift (before the PDF, which shows the trend), then
deliver it. A history that cannot be written does not cost the run: the PDF is still written,
from this run's measurements, and says the run was not recorded.

Shared by the one-host ``audit`` flow and the ``fleet-audit`` flow. A delivery that still fails
after its retries leaves the PDF where it is and fails the run with a message that says so, so
the Prefect UI and the exit code both show it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import pandas as pd
from prefect import task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from pydantic import BaseModel, Field, model_validator

from flows.artifacts import md, publish_pdf_link
from flows.demand import record_demand_task
from flows.progress import announce
from hardware_profiles.errors import MemwallError
from hardware_profiles.parquet import sweep_debris
from reports.content import AuditReport
from reports.story import headline
from tasks import delivery
from tasks.analysis.health import DEFAULT_STRAGGLER_FRACTION, health
from tasks.analysis.supply.selfcheck import Accuracy, accuracy
from tasks.history import (
    SetAside,
    check_history,
    read_measurements,
    read_predictions,
    record_predictions,
    record_run,
    record_validation,
    trend,
)
from tasks.storage import join


class DeliverySettings(BaseModel):
    """Where the PDF goes. Credentials are not settings: they come from the environment
    (``MEMWALL_SMTP_USERNAME``/``MEMWALL_SMTP_PASSWORD``) or a Prefect Secret block."""

    email_to: list[str] = Field(default_factory=list, description="Recipients of the PDF.")
    smtp_host: str = "localhost"
    smtp_port: int = 25
    smtp_security: str = Field(default="auto", description="auto, plain, starttls or ssl.")
    smtp_sender: str = ""
    smtp_secret_block: str | None = Field(
        default=None, description='Prefect Secret block holding {"username": ..., "password": ...}.'
    )
    drop_to: list[str] = Field(
        default_factory=list, description="Folders or fsspec URLs to copy the PDF into."
    )
    webhook: bool = Field(
        default=False,
        description="Post to the Slack-compatible webhook whose URL is in MEMWALL_WEBHOOK_URL "
        "or in the Secret block webhook_secret_block (a URL is a secret, never a parameter).",
    )
    webhook_secret_block: str | None = Field(
        default=None, description="Prefect Secret block holding the webhook URL."
    )
    attempts: int = Field(default=delivery.DEFAULT_ATTEMPTS, ge=1)
    retry_delay_s: float = Field(default=delivery.DEFAULT_RETRY_DELAY_S, ge=0)
    timeout_s: float = Field(
        default=delivery.DEFAULT_TIMEOUT_S, gt=0, description="Each network call's time-out."
    )

    @property
    def empty(self) -> bool:
        return not (self.email_to or self.drop_to or self.webhook)

    @model_validator(mode="before")
    @classmethod
    def _no_url(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("webhook_url"):
            raise ValueError(
                "webhook_url is no longer a parameter (Prefect stores and shows parameters, and "
                f"a webhook URL is a secret): set {delivery.WEBHOOK_ENV} where the flow runs, or "
                "save it in a Prefect Secret block and pass webhook_secret_block, with webhook=true"
            )
        return data


@task(cache_policy=NO_CACHE)
def check_history_task(history: str, out_dir: str | None = None) -> list[SetAside]:
    """Before any probing: read the history once, moving aside the files that cannot be read,
    so a bad file costs a line in the report, not the run; sweep what writers killed mid-write
    left in ``out_dir``."""
    announce(f"checking the history in {history}")
    if out_dir is not None and "://" not in out_dir:
        sweep_debris(out_dir)
    found = check_history(history)
    for aside in found:
        announce(f"history file set aside: {aside.line()}")
    return found


@task(cache_policy=NO_CACHE)
def record_history_task(
    history: str,
    run_id: str,
    measurements: pd.DataFrame,
    ranking: pd.DataFrame,
    recorded_at: dt.datetime,
    straggler_fraction: float = DEFAULT_STRAGGLER_FRACTION,
) -> tuple[pd.DataFrame, list[SetAside]]:
    """Append this run and return every device's trend, this run included, and any file set
    aside while reading it back."""
    announce(f"recording the run in {history}")
    record_run(history, run_id, measurements, ranking, recorded_at)
    found: list[SetAside] = []
    return trend(read_measurements(history, found), straggler_fraction), found


@dataclass(frozen=True)
class HistoryOutcome:
    """Every device's trend, and what the report must say about the history itself."""

    trend: pd.DataFrame
    notes: list[str] = field(default_factory=list)
    # memwall's own error on this fleet, from the recorded predictions (None: not read, or a
    # history that never had telemetry).
    accuracy: Accuracy | None = None


def accuracy_markdown(checked: Accuracy) -> str:
    """memwall's own error on this fleet, per workload, for the drift artifact."""
    lines = [f"**Self-check:** {md(checked.headline())}"]
    if checked.workloads.empty:
        return lines[0]
    lines += [
        "",
        "| workload | accelerators | checks | mean abs error | bias | last error | band |",
        "|---|---|---|---|---|---|---|",
    ]
    for _, r in checked.workloads.iterrows():
        lines.append(
            f"| {md(r['workload_id'])} | {md(r['accelerators'])} | {int(r['checks'])} | "
            f"{100 * float(r['mean_abs_error']):.1f} % | {100 * float(r['bias']):+.1f} % | "
            f"{100 * float(r['last_error']):+.1f} % | "
            f"{'**past its P10-P90 band**' if r['flagged'] else 'within'} |"
        )
    return "\n".join(lines)


def drift_markdown(
    trend_rows: pd.DataFrame,
    run_id: str,
    notes: list[str] | None = None,
    straggler_fraction: float = DEFAULT_STRAGGLER_FRACTION,
    checked: Accuracy | None = None,
) -> str:
    """The drift artifact: devices below their trend or their peers, then memwall's own
    error on this fleet where predictions were read."""
    selfcheck = "" if checked is None else "\n\n" + accuracy_markdown(checked)
    return _device_drift(trend_rows, run_id, notes, straggler_fraction) + selfcheck


def _device_drift(
    trend_rows: pd.DataFrame,
    run_id: str,
    notes: list[str] | None,
    straggler_fraction: float,
) -> str:
    now = trend_rows[trend_rows["run_id"] == run_id]
    degraded = now[now["degraded"].astype(bool)]
    history = "".join(f"\n\n**History:** {md(n)}" for n in notes or [])
    peers = "\n\n**Peers:** " + md(health(trend_rows, run_id, straggler_fraction).headline)
    if degraded.empty:
        return (
            f"No device of run `{run_id}` measured more than 10 % below its trailing median."
            + peers
            + history
        )
    lines = [
        f"**{len(degraded)} figure(s) degraded** in run `{run_id}` (more than 10 % below the "
        "median of at least 3 earlier runs):",
        "",
        "| host | device | figure | value | trailing median | change |",
        "|---|---|---|---|---|---|",
    ]
    for _, r in degraded.iterrows():
        lines.append(
            f"| {md(r['host'])} | {md(r['device_kind'])} #{r['device_index']} | "
            f"{md(r['figure'])} | "
            f"{float(r['value']):.4g} | {float(r['trailing_median']):.4g} | "
            f"{100 * float(r['change']):+.1f} % |"
        )
    return "\n".join(lines) + peers + history


@task(cache_policy=NO_CACHE)
def drift_artifact_task(
    trend_rows: pd.DataFrame,
    run_id: str,
    notes: list[str] | None = None,
    straggler_fraction: float = DEFAULT_STRAGGLER_FRACTION,
    checked: Accuracy | None = None,
) -> None:
    create_markdown_artifact(
        key="memwall-drift",
        markdown=drift_markdown(trend_rows, run_id, notes, straggler_fraction, checked),
        description="Devices below their trailing median (degraded) or their model's (stragglers)",
    )


def check_delivery(settings: DeliverySettings) -> None:
    """Refuse, before any probing, settings that could never deliver."""
    if settings.email_to:
        delivery.SmtpSettings(
            host=settings.smtp_host,
            port=settings.smtp_port,
            recipients=tuple(settings.email_to),
            security=delivery.security_for(settings.smtp_security, settings.smtp_port),
        )
    delivery.require_drop_targets(settings.drop_to)
    if settings.webhook and not settings.webhook_secret_block:
        url = delivery.webhook_url_from_env()
        if url is None:
            raise delivery.DeliveryError(
                f"webhook delivery needs its URL in {delivery.WEBHOOK_ENV} or a Prefect Secret "
                "block (--webhook-secret NAME)"
            )
        delivery.check_webhook_url(url)


def _secret(name: str) -> object:
    from prefect.blocks.system import Secret

    try:
        secret = cast("Secret[Any]", Secret.load(name))
    except ValueError:
        raise delivery.DeliveryError(f"no Prefect Secret block named {name!r}") from None
    return secret.get()


def _webhook_url(settings: DeliverySettings) -> str:
    if settings.webhook_secret_block:
        return delivery.webhook_url_from_secret(_secret(settings.webhook_secret_block))
    url = delivery.webhook_url_from_env()
    if url is None:
        raise delivery.DeliveryError(f"{delivery.WEBHOOK_ENV} is not set where this run runs")
    return url


def _smtp_settings(settings: DeliverySettings) -> delivery.SmtpSettings:
    credentials = delivery.credentials_from_env()
    if settings.smtp_secret_block:
        credentials = delivery.credentials_from_secret(_secret(settings.smtp_secret_block))
    return delivery.SmtpSettings(
        host=settings.smtp_host,
        port=settings.smtp_port,
        recipients=tuple(settings.email_to),
        security=delivery.security_for(settings.smtp_security, settings.smtp_port),
        sender=settings.smtp_sender,
        credentials=credentials,
    )


@task(cache_policy=NO_CACHE)
def deliver_task(
    pdf: Path, settings: DeliverySettings, subject: str, headline: str
) -> list[delivery.Delivered]:
    """Every channel asked for; a failed one is in the result, never raised from here."""
    attempts, delay_s = settings.attempts, settings.retry_delay_s
    results = [delivery.drop(pdf, where, attempts, delay_s) for where in settings.drop_to]
    copies = [join(r.target, pdf.name) for r in results if r.ok]
    link = copies[0] if copies else pdf.resolve().as_uri()
    if copies:
        publish_pdf_link(copies[0])
    if settings.email_to:
        announce(f"emailing the PDF to {', '.join(settings.email_to)}")
        body = f"{headline}\n\nThe PDF is attached; a copy is kept at {link}.\n"
        smtp = _smtp_settings(settings)
        results.append(
            delivery.send_email(
                pdf, smtp, subject, body, attempts, delay_s, timeout_s=settings.timeout_s
            )
        )
    if settings.webhook:
        url = _webhook_url(settings)
        results.append(
            delivery.post_webhook(
                url, headline, link, attempts, delay_s, timeout_s=settings.timeout_s
            )
        )
    for result in results:
        announce(f"{result.channel} to {result.target}: {'ok' if result.ok else 'FAILED'}")
    return results


def raise_if_undelivered(results: list[delivery.Delivered], pdf: Path) -> None:
    """Fail the run, after everything else is done, when a channel did not deliver."""
    if any(not r.ok for r in results):
        raise delivery.DeliveryError(delivery.summary(results, pdf))


def record(
    report: AuditReport,
    history: str,
    set_aside_before: list[SetAside] | None = None,
    straggler_fraction: float = DEFAULT_STRAGGLER_FRACTION,
) -> HistoryOutcome:
    """Append the run to ``history`` and publish its drift; returns every device's trend and
    what was set aside. A history that cannot be written is said, not raised: the trend is
    then this run's alone."""
    measurements = report.measurements
    if measurements is None:
        raise ValueError("an audit report without measurements has nothing to record")
    set_aside = list(set_aside_before or [])
    notes = []
    checked = None
    try:
        trend_rows, found = record_history_task(
            history,
            report.run_id,
            measurements,
            report.findings.ranking,
            report.generated_at,
            straggler_fraction,
        )
        set_aside += found
        if report.demand is not None:
            record_demand_task(history, report.run_id, report.demand, report.generated_at)
        if report.validation_from is None:  # cases this run ran, not ones it reused
            host = report.accelerators[0].host if report.accelerators else report.host
            record_validation(
                history,
                report.run_id,
                host,
                report.software,
                report.validation,
                report.generated_at,
            )
        checked = selfcheck_task(history, report)
        if checked.runs == 0 and report.production is None:
            checked = None  # no telemetry now or ever: the self-check has nothing to say
        else:
            announce(checked.headline())
    except (MemwallError, OSError) as exc:
        announce(f"the run was not recorded in the history: {exc}")
        notes.append(
            f"This run was NOT recorded in the history {history} ({exc}); its measurements "
            "are in this report and in the run's measurements file."
        )
        trend_rows = trend(measurements, straggler_fraction)
    notes = [f"set aside an unreadable file: {s.line()}" for s in set_aside] + notes
    drift_artifact_task(trend_rows, report.run_id, notes, straggler_fraction, checked)
    return HistoryOutcome(trend_rows, notes, checked)


@task(cache_policy=NO_CACHE)
def selfcheck_task(history: str, report: AuditReport) -> Accuracy:
    """Record this run's predictions, then check every recorded prediction against what
    production measured since (this run's window included)."""
    if report.predictions is not None:
        record_predictions(history, report.run_id, report.predictions, report.generated_at)
    return accuracy(read_predictions(history))


def deliver(report: AuditReport, pdf: Path, settings: DeliverySettings) -> None:
    """Deliver the PDF as ``settings`` say; fail the run, PDF kept, if a channel failed."""
    if settings.empty:
        return
    summary = headline(report.findings)
    results = deliver_task(pdf, settings, f"{report.title}: {summary}", summary)
    raise_if_undelivered(results, pdf)

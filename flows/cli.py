"""The ``memwall`` command line: the one place errors become messages and exit codes.

Heavy imports (JAX, Prefect) happen inside the commands, so ``memwall --help`` is instant and
Prefect's settings can be set from the environment before Prefect first loads.
"""

from __future__ import annotations

# isort: off
import flows.timings  # noqa: F401 (first: its clock starts before the other imports)

# isort: on
import atexit
import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from flows import (
    cli_analysis,
    cli_backtest,
    cli_catalog,
    cli_demand,  # also registers `workloads sync` and `workloads query`
    cli_history,
    cli_observe,
    cli_ops,
    cli_predict,
    cli_probe,
    cli_training,
    cli_validate,
    cli_workloads,
    cli_workloads_add,  # noqa: F401 (imported to register `workloads add` and `import`)
    cli_workloads_discover,  # noqa: F401 (imported to register `workloads discover`)
)
from flows.cli_common import (
    CatalogOption,
    RoadmapOption,
    WorkloadsOption,
    prefect_environment,
    refused_for_credentials,
    start_prefect_server,
    stderr,
)
from flows.timings import STARTED, TimedLines
from hardware_profiles.errors import MemwallError
from tasks.hostlock import HostBusy

EXIT_INPUT_ERROR = 2
# sysexits' EX_TEMPFAIL: another memwall is probing this host (--no-wait); try again later.
EXIT_HOST_BUSY = 75

app = typer.Typer(
    name="memwall",
    help=(
        "Audit accelerators against the memory wall: measure what each device really "
        "delivers, project the workloads you run over the hardware you plan to buy, and "
        "report which will starve of memory bandwidth first, when, and what would fix it."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        print(f"memwall {version('memwall')}")
        raise typer.Exit()


@app.callback()
def memwall(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """Audit accelerators against the memory wall."""


@app.command()
def audit(
    workloads: WorkloadsOption = None,
    roadmap: RoadmapOption = None,
    catalog: CatalogOption = None,
    out: Annotated[
        Path,
        typer.Option("--out", help="Folder for the PDF and the measurements.", file_okay=False),
    ] = Path("memwall-reports"),
    quick: Annotated[
        bool,
        typer.Option("--quick", help="Small probe sizes: seconds, not minutes (tests, demos)."),
    ] = False,
    start: cli_analysis.StartOption = None,
    horizon_months: cli_analysis.HorizonOption = 18,
    scenario: cli_analysis.ScenarioOption = None,
    bandwidth_efficiency: cli_analysis.BandwidthEfficiencyOption = 0.85,
    flops_efficiency: cli_analysis.FlopsEfficiencyOption = 0.70,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Show Prefect's run log.")
    ] = False,
    history: cli_ops.HistoryOption = None,
    email_to: cli_ops.EmailToOption = None,
    smtp_host: cli_ops.SmtpHostOption = "localhost",
    smtp_port: cli_ops.SmtpPortOption = 25,
    smtp_security: cli_ops.SmtpSecurityOption = "auto",
    smtp_from: cli_ops.SmtpFromOption = "",
    smtp_secret: cli_ops.SmtpSecretOption = None,
    drop_to: cli_ops.DropToOption = None,
    webhook: cli_ops.WebhookOption = False,
    webhook_secret: cli_ops.WebhookSecretOption = None,
    no_wait: cli_probe.NoWaitOption = False,
    prometheus: cli_demand.AuditPrometheusOption = None,
) -> None:
    """Measure this host's accelerators, project the workloads over the roadmap and rank which
    starve of memory bandwidth first; the last line printed is the PDF's path."""
    first = cli_analysis.start_month(start)
    from tasks.analysis.projection.horizon import horizon_months as months_of
    from tasks.delivery import require_drop_targets

    # Refused here, before Prefect's server starts.
    months_of(first, horizon_months)
    require_drop_targets(drop_to or [])
    prefect_environment(verbose)
    server_ready = start_prefect_server()
    delivery = cli_ops.delivery_settings(
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
    with stderr.status("starting the audit flow", spinner="dots") as status:
        from flows.audit import audit as audit_flow
        from flows.progress import listening

        def write(line: str) -> None:
            stderr.print(f"[dim]· {line}[/dim]", highlight=False)

        lines = TimedLines("starting: imports, Prefect's server", write, STARTED)

        def show(message: str) -> None:
            status.update(message)
            lines.next(message)

        server_ready()
        with listening(show):
            try:
                outcome = audit_flow(
                    workloads=str(workloads) if workloads else None,
                    roadmap=str(roadmap) if roadmap else None,
                    catalog=str(catalog) if catalog else None,
                    out_dir=str(out),
                    quick=quick,
                    today=first,
                    horizon_months=horizon_months,
                    scenario=scenario,
                    bandwidth_efficiency=bandwidth_efficiency,
                    flops_efficiency=flops_efficiency,
                    history=str(history) if history else None,
                    delivery=delivery,
                    prometheus=prometheus,
                    wait_for_host=not no_wait,
                )
            finally:
                lines.close()
    stderr.print(f"measurements: {outcome.measurements_path}", markup=False, soft_wrap=True)
    stderr.print(outcome.headline, markup=False, soft_wrap=True)
    print(outcome.pdf_path)


# Command groups live in their own modules (flows/cli_<area>.py) and are registered here.
app.command("probe")(cli_probe.probe)
app.command("validate")(cli_validate.validate)
app.add_typer(cli_workloads.workloads_app, name="workloads")
app.add_typer(cli_catalog.catalog_app, name="catalog")
app.add_typer(cli_catalog.roadmap_app, name="roadmap")
app.add_typer(cli_training.plan_app, name="plan")
app.command("rank")(cli_analysis.rank)
app.command("whatif")(cli_analysis.whatif)
app.command("observe")(cli_observe.observe)
app.command("predict")(cli_predict.predict)
app.command("backtest")(cli_backtest.backtest)
app.command("history")(cli_history.history)
for _name in ("fleet", "deploy", "serve"):
    app.command(_name)(getattr(cli_ops, _name))


# The status main() leaves with, for _leave (set as the exception that ends it passes).
_status = [0]


def _leave() -> None:
    """The last exit handler: leave with main()'s status without the interpreter's teardown.

    Registered first, it runs after every other handler (Prefect's: its temporary server
    stopped, its logs flushed) and skips what would follow: freeing each of the thousands of
    modules an audit imports (Prefect's pydantic models, JAX, pandas), 2 to 3 s after the PDF's
    path was printed on a loaded 2-core host, and about 1 s after ``rank --json``. Every file
    memwall writes is closed by then."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(_status[0])


def _is_the_program() -> bool:
    """Whether main() is what this process was started to run (the ``memwall`` script,
    ``python -m flows.cli``), not a call from a test or another program, whose own exit must
    stay as it is."""
    entry = sys.modules.get("__main__")
    spec = getattr(entry, "__spec__", None)
    if spec is not None and spec.name == "flows.cli":
        return True
    return Path(str(getattr(entry, "__file__", ""))).name == "memwall"


def main() -> None:
    """Console-script entry point: user errors print one line and exit 2, never a traceback."""
    if _is_the_program():
        atexit.register(_leave)
    try:
        _run()
    except SystemExit as exc:
        _status[0] = exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 1
        raise
    except BaseException:  # a traceback, printed as usual, then status 1
        _status[0] = 1
        raise


def _run() -> None:
    try:
        app()
    except HostBusy as exc:
        stderr.print(f"memwall: busy: {exc}", markup=False, highlight=False, soft_wrap=True)
        sys.exit(EXIT_HOST_BUSY)
    except MemwallError as exc:
        stderr.print(f"memwall: error: {exc}", markup=False, highlight=False, soft_wrap=True)
        sys.exit(EXIT_INPUT_ERROR)
    except KeyboardInterrupt:
        stderr.print("memwall: interrupted", markup=False)
        sys.exit(130)
    except Exception as exc:
        refused = refused_for_credentials(exc)
        if refused is None:
            raise
        stderr.print(f"memwall: error: {refused}", markup=False, highlight=False, soft_wrap=True)
        sys.exit(EXIT_INPUT_ERROR)


if __name__ == "__main__":
    main()

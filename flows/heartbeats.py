"""Runs that end in a true state: a heartbeat on every memwall run, and the server automation
that marks a run whose heartbeats stop Crashed.

A process worker marks a run Crashed itself when the run's process exits abnormally (``kill
-9``, the out-of-memory killer), but only while the worker lives: a killed worker, a host that
reboots or drops off the network, leave the run ``Running`` on the server forever. Prefect's
answer ("detect zombie flows") has two halves, both set here so that they cannot drift apart:

- every run of a memwall deployment sends a ``prefect.flow-run.heartbeat`` event every
  :data:`HEARTBEAT_FREQUENCY_S` (``PREFECT_FLOWS_HEARTBEAT_FREQUENCY`` in the run's
  environment: ``memwall deploy`` puts it in each deployment's job variables, which win over
  the worker's own environment; ``memwall serve`` in the environment its runs inherit);
- the automation :data:`AUTOMATION_NAME` on the server marks Crashed a run that has sent no
  heartbeat, and reached no final state, for :data:`SILENCE_WINDOW_S` after its last
  heartbeat (or after it started Running, so a run killed before its first heartbeat
  reached the server is caught too).

The bound: a run whose process dies is Crashed on the server at most :data:`CRASH_BOUND_S`
after it died: the silence window, plus the server's proactive evaluation period (every 5 s,
``PREFECT_SERVER_EVENTS_PROACTIVE_GRANULARITY``), plus the time the action takes on a busy
server. ``tests/integration/test_crash_state.py`` kills real runs and holds it to that.

The automation watches only runs tagged :data:`WATCHED_TAG` (every memwall deployment's
runs): Prefect 3.8.8 gives every other run a heartbeat every 180 s by default, which a 90 s
window would call dead.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from uuid import UUID

    from prefect.events.schemas.automations import AutomationCore

# Prefect's floor: its flow engine raises any shorter heartbeat interval to 30 s.
HEARTBEAT_FREQUENCY_S: Final = 30
# Three heartbeats: two late or lost ones in a row never crash a live run.
SILENCE_WINDOW_S: Final = 3 * HEARTBEAT_FREQUENCY_S
# The window, the 5 s proactive evaluation, and 25 s for the action on a loaded server.
CRASH_BOUND_S: Final = SILENCE_WINDOW_S + 30
AUTOMATION_NAME: Final = "memwall-zombie-runs"
WATCHED_TAG: Final = "memwall"
HEARTBEAT_ENV: Final = "PREFECT_FLOWS_HEARTBEAT_FREQUENCY"
HEARTBEAT_EVENT: Final = "prefect.flow-run.heartbeat"
# A run's state events that end the wait for its next heartbeat.
FINAL_EVENTS: Final = tuple(
    f"prefect.flow-run.{state}" for state in ("Completed", "Failed", "Cancelled", "Crashed")
)
CRASH_MESSAGE: Final = (
    f"{AUTOMATION_NAME}: no heartbeat for {SILENCE_WINDOW_S} s (one is sent every "
    f"{HEARTBEAT_FREQUENCY_S} s): the run's process, its worker or its host died"
)


def heartbeat_environment() -> dict[str, str]:
    """The environment that makes a run send its heartbeats at the rate the automation
    expects."""
    return {HEARTBEAT_ENV: str(HEARTBEAT_FREQUENCY_S)}


def zombie_automation() -> AutomationCore:
    """Prefect's documented zombie-run automation, for memwall's runs: after a heartbeat (or
    the Running state), expect another heartbeat or a final state within the window, per
    flow run; when none comes, set the run Crashed."""
    from datetime import timedelta

    from prefect.client.schemas.objects import StateType
    from prefect.events.actions import ChangeFlowRunState
    from prefect.events.schemas.automations import AutomationCore, EventTrigger, Posture
    from prefect.events.schemas.events import ResourceSpecification

    return AutomationCore(
        name=AUTOMATION_NAME,
        description=(
            f"Marks Crashed a memwall run (tag {WATCHED_TAG!r}) that sends no heartbeat for "
            f"{SILENCE_WINDOW_S} s; made by `memwall deploy` and `memwall serve`."
        ),
        trigger=EventTrigger(
            after={HEARTBEAT_EVENT, "prefect.flow-run.Running"},
            expect={HEARTBEAT_EVENT, *FINAL_EVENTS},
            match=ResourceSpecification({"prefect.resource.id": ["prefect.flow-run.*"]}),
            match_related=ResourceSpecification(
                {
                    "prefect.resource.role": "tag",
                    "prefect.resource.id": f"prefect.tag.{WATCHED_TAG}",
                }
            ),
            for_each={"prefect.resource.id"},
            posture=Posture.Proactive,
            threshold=1,
            within=timedelta(seconds=SILENCE_WINDOW_S),
        ),
        actions=[
            ChangeFlowRunState(
                name=None, state=StateType.CRASHED, message=CRASH_MESSAGE, force=False
            )
        ],
        enabled=True,
    )


def apply_zombie_automation() -> tuple[UUID, bool]:
    """Create or update the automation (by name) on the server in PREFECT_API_URL; returns
    its id and whether it was created. Running it twice leaves one automation, as it was;
    copies left by an earlier race are deleted."""
    from prefect import get_client

    wanted = zombie_automation()
    with get_client(sync_client=True) as client:
        found = client.read_automations_by_name(name=AUTOMATION_NAME)
        for extra in found[1:]:
            client.delete_automation(extra.id)
        if found:
            client.update_automation(found[0].id, wanted)
            return found[0].id, False
        return client.create_automation(wanted), True

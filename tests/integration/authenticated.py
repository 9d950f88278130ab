"""The fleet as the README tells one to run: a Prefect server with basic authentication on a
real PostgreSQL, process workers that carry the auth string, and one fleet audit over them.

A pytest plugin (tests/conftest.py loads it), so that both the fleet's tests and the secrets
test (tests/faults) share one PostgreSQL, one server and one audit per session; one xdist
worker runs all their files (AUTHENTICATED_SERVER_FILES in tests/conftest.py).
"""

from __future__ import annotations

import secrets
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.integration.conftest import Processes, Server, start_server
from tests.integration.fleet import Fleet, Worker, start_fleet
from tests.integration.postgres import INSTALL_HINT, Postgres, postgres_bin, running_postgres

HOSTS = ("alpha", "bravo")


@dataclass(frozen=True)
class AuthenticatedServer:
    server: Server
    postgres: Postgres
    logs: Path  # every process's log: PostgreSQL, the server, the workers


@dataclass(frozen=True)
class FleetAudit:
    """One `memwall fleet` over the authenticated fleet, and where it ran."""

    fleet: Fleet
    result: subprocess.CompletedProcess[str]


@pytest.fixture(scope="session")
def authenticated_server(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[AuthenticatedServer]:
    """A Prefect server on PostgreSQL that asks every API call for its auth string (a fresh
    `memwall:<random>` per session, as the README makes one)."""
    if postgres_bin() is None:
        pytest.skip(INSTALL_HINT)
    logs = tmp_path_factory.mktemp("authenticated")
    with running_postgres(logs) as database:
        processes = Processes(logs)
        try:
            auth_string = f"memwall:{secrets.token_hex(24)}"
            server = start_server(processes, database.prefect_env(), auth_string)
            yield AuthenticatedServer(server, database, logs)
        finally:
            processes.stop_all()


@pytest.fixture(scope="session")
def authenticated_fleet_audit(
    authenticated_server: AuthenticatedServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[FleetAudit]:
    """Two hosts' queues with a real process worker each, the deployments of `memwall
    deploy`, and one quick `memwall fleet` over both hosts, all with credentials."""
    processes = Processes(authenticated_server.logs)
    try:
        workers = {host: Worker() for host in HOSTS}
        storage = tmp_path_factory.mktemp("authenticated-storage")
        fleet = start_fleet(authenticated_server.server, processes, storage, workers)
        yield FleetAudit(fleet, fleet.audit(list(HOSTS)))
    finally:
        processes.stop_all()

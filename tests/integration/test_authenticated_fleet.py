"""The fleet as the README sets one up: a Prefect server that asks for basic authentication,
on a real PostgreSQL, and the fleet audit over it with credentials (the server, the database
and the audit: tests/integration/authenticated.py).

A Prefect server is a remote-execution service: whoever can create a deployment or a flow run
on the pool has every process worker run code. Without the auth string, the API says 401.
"""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path

import asyncpg
import httpx
import pytest

from hardware_profiles.parquet import read_table
from hardware_profiles.schema import MEASUREMENTS
from tests.integration.authenticated import HOSTS, AuthenticatedServer, FleetAudit
from tests.integration.conftest import LOOPBACK, memwall
from tests.integration.fleet import POOL
from tests.integration.postgres import DATABASE, ROLE
from tests.pdf import pdf_text

pytestmark = pytest.mark.integration


def _basic(auth_string: str) -> dict[str, str]:
    return {"Authorization": f"Basic {base64.b64encode(auth_string.encode()).decode()}"}


def test_the_api_refuses_deployments_and_flow_runs_without_the_auth_string(
    authenticated_server: AuthenticatedServer,
) -> None:
    server = authenticated_server.server
    assert server.auth_string is not None
    flow = server.post("/flows/", {"name": "refused-without-credentials"})
    deployment = {"name": "anyone-could-run-this", "flow_id": flow["id"]}
    flow_run = {"flow_id": flow["id"]}
    wrong = {
        "none": {},
        "wrong": _basic(f"{server.auth_string}-not"),
        "not basic": {"Authorization": f"Bearer {server.auth_string}"},
    }
    with httpx.Client(base_url=server.api_url, timeout=30) as api:
        for why, headers in wrong.items():
            refused = api.post("/deployments/", json=deployment, headers=headers)
            assert refused.status_code == 401, (why, refused.status_code, refused.text)
            refused = api.post("/flow_runs/", json=flow_run, headers=headers)
            assert refused.status_code == 401, (why, refused.status_code, refused.text)
        # Reading is refused too (runs carry parameters); only the probes' health is open.
        assert api.get(f"/flows/{flow['id']}").status_code == 401
        assert api.get("/health").status_code == 200
        # Nothing was created: with credentials, the flow has no deployment and no run yet.
        right = _basic(server.auth_string)
        listed = api.post("/deployments/filter", json={"flows": {"id": {"any_": [flow["id"]]}}})
        assert listed.status_code == 401
        listed = api.post(
            "/deployments/filter", json={"flows": {"id": {"any_": [flow["id"]]}}}, headers=right
        )
        assert listed.status_code == 200 and listed.json() == []
        created = api.post("/deployments/", json=deployment, headers=right)
        assert created.status_code in (200, 201), created.text
        run = api.post(f"/deployments/{created.json()['id']}/create_flow_run", json={}, headers={})
        assert run.status_code == 401, run.text
        run = api.post("/flow_runs/", json=flow_run, headers=right)
        assert run.status_code in (200, 201), run.text


def test_memwall_without_the_auth_string_says_so_in_one_line(
    authenticated_server: AuthenticatedServer, tmp_path: Path
) -> None:
    server = authenticated_server.server
    assert server.auth_string is not None
    env = {k: v for k, v in server.client_env.items() if k != "PREFECT_API_AUTH_STRING"}
    for name, auth in (("unset", None), ("wrong", f"{server.auth_string}-not")):
        result = memwall(
            ["fleet", "--pool", POOL, "--storage", str(tmp_path), "--host", HOSTS[0]],
            env if auth is None else {**env, "PREFECT_API_AUTH_STRING": auth},
            tmp_path,
            timeout=300,
        )
        assert result.returncode == 2, (name, result.stderr[-2000:])
        assert result.stderr.splitlines()[-1] == (
            f"memwall: error: the Prefect server at {server.api_url} refused the request "
            "(401 Unauthorized): PREFECT_API_AUTH_STRING is not set or is not the server's; "
            "set it from a file, never on the command line: export "
            'PREFECT_API_AUTH_STRING="$(cat /etc/memwall/prefect-auth)"'
        ), (name, result.stderr[-2000:])
        assert "Traceback" not in result.stderr and server.auth_string not in result.stderr


def test_the_fleet_audit_runs_end_to_end_over_postgres_with_credentials(
    authenticated_server: AuthenticatedServer, authenticated_fleet_audit: FleetAudit
) -> None:
    fleet, result = authenticated_fleet_audit.fleet, authenticated_fleet_audit.result
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stderr.splitlines()
    assert all(f"{host}: answered" in lines for host in HOSTS), result.stderr[-3000:]
    pdf = Path(result.stdout.strip().splitlines()[-1])
    assert pdf.parent == fleet.storage / "reports"
    text = pdf_text(pdf)
    assert f"All {len(HOSTS)} hosts answered." in text
    (run_dir,) = (fleet.storage / "runs").iterdir()
    for host in HOSTS:
        rows = read_table(run_dir / f"{host}.parquet", MEASUREMENTS)
        assert set(rows["host"]) == {host} and {"triad", "matmul"} <= set(rows["probe"])
    assert list((fleet.storage / "history" / "measurements").glob("*.parquet"))
    # The runs are in PostgreSQL: one probe-host run per host, each completed.
    database = authenticated_server.postgres

    async def probe_runs() -> list[tuple[str, str]]:
        connection = await asyncpg.connect(
            host=LOOPBACK,
            port=database.port,
            user=ROLE,
            password=database.password,
            database=DATABASE,
        )
        try:
            rows = await connection.fetch(
                "SELECT name, state_type FROM flow_run WHERE name LIKE 'probe-%' ORDER BY name"
            )
        finally:
            await connection.close()
        return [(str(row["name"]), str(row["state_type"])) for row in rows]

    runs = asyncio.run(probe_runs())
    assert [name.split("-")[1] for name, _ in runs] == list(HOSTS), runs
    assert {state for _, state in runs} == {"COMPLETED"}, runs

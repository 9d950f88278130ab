"""A fleet of 50 hosts held: the fleet audit fanned out to fifty real process workers on
loopback, five of them failing or timing out on purpose, and nothing lost.

Each answering host replays one measurements file recorded on this machine instead of
probing (tasks.replay: the only fake, the hardware); the failing ones fail for real, in turn
without a JAX backend, busy past the time-out, or with a corrupt recording
(tests/integration/fleet_load.py). A server of this module's own, on a PostgreSQL of its own
(the database DESIGN.md names for a fleet; skipped where PostgreSQL is not installed): fifty
workers polling the shared SQLite one would slow every other test on it, and on SQLite their
polls were lost for minutes. No figure is asserted here; the wall time,
the server's memory and the slowest step are printed by benchmarks/fleet_load.py.
"""

from __future__ import annotations

from collections.abc import Iterator

import pandas as pd
import pytest

from hardware_profiles.parquet import read_table
from hardware_profiles.schema import MEASUREMENTS
from tests.integration.conftest import Processes
from tests.integration.fleet_load import (
    BUSY,
    CORRUPT,
    NO_BACKEND,
    Audit,
    LoadFleet,
    plan_hosts,
    postgres_missing,
)
from tests.pdf import pdf_text

pytestmark = pytest.mark.integration

HOSTS, FAILING = 50, 5
# Runs beyond this wait on the server: fifty probe-host runs at once would hold fifty Python
# processes of ~250 MB each on a machine other tests share.
CONCURRENCY = 10
# Long enough for all 45 answering hosts on a loaded two-core machine (the slowest took 161 s
# from its run's creation to its end, at a load average of 3 to 14); the busy hosts hold the
# audit this long.
TIMEOUT_S = 300.0
COLUMNS = ["device_index", "probe", "dtype", "working_set_bytes", "best", "median"]


@pytest.fixture(scope="module")
def load_fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoadFleet]:
    missing = postgres_missing()
    if missing:
        pytest.skip(f"the fleet's server runs on PostgreSQL here, and {missing}")
    processes = Processes(tmp_path_factory.mktemp("load-logs"))
    fleet = LoadFleet(
        tmp_path_factory.mktemp("load-fleet"),
        processes,
        plan_hosts(HOSTS, FAILING),
        concurrency=CONCURRENCY,
    )
    try:
        fleet.start()
        yield fleet
    finally:
        fleet.stop()


@pytest.fixture(scope="module")
def audit(load_fleet: LoadFleet) -> Audit:
    return load_fleet.audit(TIMEOUT_S)


def test_every_host_is_named_and_every_failed_one_with_its_reason(
    load_fleet: LoadFleet, audit: Audit
) -> None:
    assert audit.returncode == 0, audit.stderr[-3000:]
    verdicts = audit.verdicts
    assert sorted(verdicts) == [h.name for h in load_fleet.hosts]
    for host in load_fleet.hosts:
        line = verdicts[host.name]
        if host.fault is None:
            assert line == f"{host.name}: answered"
        elif host.fault == NO_BACKEND:
            assert line.startswith(f"{host.name}: failed: "), line
            assert "Unable to initialize backend 'tpu'" in line
        elif host.fault == CORRUPT:
            assert line.startswith(f"{host.name}: failed: "), line
            assert "cannot replay MEMWALL_REPLAY_MEASUREMENTS" in line
            assert "not a readable Parquet file" in line
        else:
            assert host.fault == BUSY
            assert line.startswith(
                f"{host.name}: timed out: no answer within {TIMEOUT_S:g} s; its run was "
            ), line
    faults = {h.fault for h in load_fleet.hosts if h.fault}
    assert faults == {NO_BACKEND, BUSY, CORRUPT}  # the mix: some raise, some time out


def test_the_report_has_every_answering_host_and_names_every_failed_one(
    load_fleet: LoadFleet, audit: Audit
) -> None:
    text = pdf_text(audit.pdf)
    missing = [h for h in load_fleet.hosts if h.fault]
    left_out = ", ".join(
        f"{h.name} ({'timed out' if h.fault == BUSY else 'failed'})" for h in missing
    )
    assert (
        f"{HOSTS - FAILING} of {HOSTS} hosts answered; this report leaves out {left_out}"
    ) in text
    hosts_table = text[text.index("Hosts") : text.index("Drift")]
    trend = text[text.index("Drift") :]
    for host in load_fleet.hosts:
        if host.fault is None:
            assert f"{host.name} answered" in hosts_table
            assert f"{host.name} · " in trend  # its devices' figures, this run and before
        else:
            assert f"{host.name} · " not in trend


def test_every_answering_hosts_rows_are_in_its_file_and_the_history(
    load_fleet: LoadFleet, audit: Audit
) -> None:
    recorded = read_table(load_fleet.recording, MEASUREMENTS)
    history = read_table(
        load_fleet.storage / "history" / "measurements" / f"{audit.run_id}.parquet", MEASUREMENTS
    )
    answering = sorted(h.name for h in load_fleet.hosts if h.fault is None)
    assert sorted(set(history["host"])) == answering
    expected = recorded[COLUMNS].sort_values(COLUMNS).reset_index(drop=True)
    for host in answering:
        own = load_fleet.storage / "runs" / audit.run_id / f"{host}.parquet"
        for rows in (read_table(own, MEASUREMENTS), history[history["host"] == host]):
            assert set(rows["run_id"]) == {audit.run_id}
            got = rows[COLUMNS].sort_values(COLUMNS).reset_index(drop=True)
            pd.testing.assert_frame_equal(got, expected)

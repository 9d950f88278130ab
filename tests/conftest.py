"""Test layers, one marker each, given by the folder a test lives in (`pytest -m pure`, see the
README): pure functions need nothing; JAX tests run on the CPU with small arrays; flow and CLI
tests share one session-wide Prefect test harness (a temporary server and database), so no test
touches the user's own Prefect home; integration tests start real servers and subprocesses.

`make test` runs them with pytest-xdist (`-n auto`, `--dist loadgroup` from pyproject.toml):
every xdist worker is a session of its own, with its own temporary folder, harness, Prefect home
and probe lock, and the tests that share one of the real servers of tests/integration (the
`prefect server` on SQLite; PostgreSQL with an authenticated `prefect server`) run on one
worker, in file order (`SharedServerScheduling`)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from xdist.scheduler import LoadScopeScheduling

from tasks.hostlock import LOCK_ENV
from tasks.published_backtest import CACHE_ENV

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

# The layer of each top-level folder of tests/ (pyproject.toml registers the markers).
LAYERS = {
    "analysis": "pure",
    "hardware_profiles": "pure",
    "reports": "pure",
    "tasks": "pure",
    "probes": "jax",
    "flows": "flows",
    "cli": "cli",
    "integration": "integration",
    "faults": "integration",
}
TESTS = Path(__file__).resolve().parent
# The fixtures of the authenticated fleet on PostgreSQL, for tests/integration and tests/faults.
pytest_plugins = ("tests.integration.authenticated",)
# Session fixtures that start real servers, and the test files that use each: one xdist worker
# runs all of a fixture's files, in file order, so that its servers start once per run.
# `prefect_server` is one real `prefect server` on SQLite (tests/integration/conftest.py;
# test_fleet.py adds a work pool and workers from a module fixture); `authenticated_server` is
# PostgreSQL and a Prefect server with basic authentication (tests/integration/authenticated.py),
# with one fleet audit over it.
SHARED_SERVERS = {
    "prefect_server": (
        "tests/integration/test_delivery_and_serve.py",
        "tests/integration/test_fleet.py",
    ),
    "authenticated_server": (
        "tests/faults/test_secrets.py",
        "tests/integration/test_authenticated_fleet.py",
    ),
}
SHARED_SERVER_GROUPS = {
    file: fixture for fixture, files in SHARED_SERVERS.items() for file in files
}


class SharedServerScheduling(LoadScopeScheduling):  # type: ignore[misc]  # xdist is untyped
    """`--dist loadgroup` with groups given by file: every test is a unit of work of its own,
    but the tests of the files that share one of SHARED_SERVERS are one unit, sent to one
    worker (the largest units go first). pytest-xdist 3.8 groups `xdist_group`-marked tests by
    renaming their test ids, which pytest 9 no longer lets it do, so that mark would group
    nothing here."""

    def _split_scope(self, nodeid: str) -> str:
        return SHARED_SERVER_GROUPS.get(nodeid.split("::", 1)[0], nodeid)


@pytest.hookimpl(tryfirst=True, optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object | None:
    if config.getvalue("dist") != "loadgroup":
        return None  # another --dist given on the command line: xdist's own
    return SharedServerScheduling(config, log)


@contextmanager
def _environ(name: str, value: str) -> Iterator[None]:
    """``name`` set to ``value`` for the session, and as it was afterwards."""
    before = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = before


@pytest.fixture(scope="session", autouse=True)
def probe_lock(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """This session's own probe lock (tasks.hostlock), inherited by every memwall it starts.

    A test session's audits neither wait for nor hold up those of another session (the other
    xdist worker, another checkout's tests) or a real audit on this host, as they would on the
    host-wide lock in the temporary folder. The lock's own tests, the fault benches and the
    fleet's hosts set their own lock file, as before."""
    path = tmp_path_factory.getbasetemp() / "probe.lock"
    with _environ(LOCK_ENV, str(path)):
        yield path


@pytest.fixture(scope="session", autouse=True)
def backtest_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """This session's own cache of the published backtest (tasks.published_backtest), inherited
    by every memwall it starts: tests never read or write the user's cache folder."""
    path = tmp_path_factory.getbasetemp() / "memwall-cache"
    with _environ(CACHE_ENV, str(path)):
        yield path


@pytest.fixture(scope="session")
def prefect_api_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A temporary Prefect server for the whole session; yields its API URL so subprocesses
    (the CLI end to end) can use the same server instead of starting their own."""
    os.environ["PREFECT_HOME"] = str(tmp_path_factory.mktemp("prefect-home"))
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        url = PREFECT_API_URL.value()
        assert url, "the Prefect test harness did not set an API URL"
        yield str(url)


def _layer(item: pytest.Item) -> str | None:
    path = Path(str(item.path)).resolve()
    if not path.is_relative_to(TESTS):
        return None
    parts = path.relative_to(TESTS).parts
    return LAYERS.get(parts[0]) if len(parts) > 1 else None


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark each test with its folder's layer, before `-m` selects.

    A test under a pure folder that is marked `integration` (it starts a subprocess or a
    server) is not pure; it runs with `-m integration`."""
    for fixture, files in SHARED_SERVERS.items():
        unlisted = sorted(
            {
                item.nodeid.split("::", 1)[0]
                for item in items
                if fixture in getattr(item, "fixturenames", ())
            }
            - set(files)
        )
        if unlisted:
            raise pytest.UsageError(
                f"{', '.join(unlisted)} use the {fixture} fixture: add them to its files in "
                "SHARED_SERVERS in tests/conftest.py, so that one xdist worker runs them"
            )
    for item in items:
        layer = _layer(item)
        if layer == "pure" and item.get_closest_marker("integration"):
            layer = None
        if layer is not None and not item.get_closest_marker(layer):
            item.add_marker(layer)
    _skip_gpu_tests_without_a_gpu(items)


def _skip_gpu_tests_without_a_gpu(items: list[pytest.Item]) -> None:
    """`gpu` tests run only where JAX sees a GPU."""
    if not any(item.get_closest_marker("gpu") for item in items):
        return
    import jax

    has_gpu = any(d.platform == "gpu" for d in jax.devices())
    skip = pytest.mark.skip(reason="needs a GPU; JAX sees none here")
    for item in items:
        if item.get_closest_marker("gpu") and not has_gpu:
            item.add_marker(skip)

"""Test layers: pure functions need nothing; JAX tests run on the CPU with small arrays; flow
and CLI tests share one session-wide Prefect test harness (a temporary server and database),
so no test touches the user's own Prefect home."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")


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


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """`gpu` tests run only where JAX sees a GPU."""
    if not any(item.get_closest_marker("gpu") for item in items):
        return
    import jax

    has_gpu = any(d.platform == "gpu" for d in jax.devices())
    skip = pytest.mark.skip(reason="needs a GPU; JAX sees none here")
    for item in items:
        if item.get_closest_marker("gpu") and not has_gpu:
            item.add_marker(skip)

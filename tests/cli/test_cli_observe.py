"""``memwall observe``'s arguments: one Prometheus, or one per pool; bad ones are one line."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from flows.cli import app
from flows.cli_observe import pools
from hardware_profiles.errors import MemwallError


def test_one_url_or_one_per_pool() -> None:
    assert pools(["http://prom:9090"]) == {"": "http://prom:9090"}
    assert pools(["inference=http://a:9090", "edge=https://b"]) == {
        "inference": "http://a:9090",
        "edge": "https://b",
    }
    # A URL whose query string holds "=" is still one URL, not a pool.
    assert pools(["http://prom:9090/?x=1"]) == {"": "http://prom:9090/?x=1"}
    with pytest.raises(MemwallError, match="pool 'edge' given twice"):
        pools(["edge=http://a", "edge=http://b"])


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--prometheus", "prom:9090"], "must start with http:// or https://"),
        (["--prometheus", "http://127.0.0.1:9", "--days", "0"], "--days must be > 0"),
        (
            ["--prometheus", "http://127.0.0.1:9", "--amd-sampling-interval-us", "10"],
            "--amd-sampling-interval-us must be at least 1000",
        ),
    ],
)
def test_bad_arguments_are_one_line(args: list[str], says: str) -> None:
    result = CliRunner().invoke(app, ["observe", *args])
    assert result.exit_code != 0
    assert says in str(result.exception)

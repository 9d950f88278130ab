"""``memwall workloads discover``'s arguments: bad ones are one line, and nothing is written."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from flows.cli import app


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--prometheus", "prom:9090"], "must start with http:// or https://"),
        (["--prometheus", "http://127.0.0.1:9", "--days", "3"], "--days must be >= 7"),
        (
            ["--prometheus", "http://a:9090", "--prometheus", "inference=http://b:9090"],
            "pool 'inference' given twice (--pool and POOL=URL)",
        ),
    ],
)
def test_bad_arguments_are_one_line(args: list[str], says: str, tmp_path: Path) -> None:
    to = tmp_path / "w.parquet"
    result = CliRunner().invoke(app, ["workloads", "discover", *args, "--to", str(to)])
    assert result.exit_code != 0
    assert says in str(result.exception)
    assert not to.exists()

"""The ``memwall`` program leaves without the interpreter's teardown, with main()'s status; a
program that calls main() itself (a test, a wrapper) keeps its own exit."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _python(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, env=env, check=False
    )


def test_the_program_exits_with_mains_status() -> None:
    assert _python("-m", "flows.cli", "--version").returncode == 0
    bad = _python("-m", "flows.cli", "rank", "--workloads", "/no/such/workloads.parquet")
    assert bad.returncode == 2 and "no such workloads file" in bad.stderr


def test_a_caller_of_main_keeps_its_own_exit() -> None:
    script = (
        "import sys\n"
        "from flows.cli import main\n"
        "sys.argv = ['memwall', 'rank', '--workloads', '/no/such/workloads.parquet']\n"
        "try:\n"
        "    main()\n"
        "except SystemExit as exc:\n"
        "    print('main exited', exc.code)\n"
        "sys.exit(5)\n"
    )
    done = _python("-c", script)
    assert done.stdout.strip() == "main exited 2"
    assert done.returncode == 5

"""Faults, tried on purpose: how many a weekly audit meets and survives, and what is lost.

Runs every scenario of tests/faults/scenarios.py (kill -9 at four points, a full disk, a silent
SMTP server, a webhook that fails or hangs, a corrupt or unwritable history, two concurrent
audits) against a temporary Prefect server, and prints one line per fault (survived or not,
runs of measurements lost, seconds) and the tally. Target: every fault survived, nothing lost.
It never fails; the tests in tests/faults assert the same verdicts.

    .venv/bin/python -m benchmarks.faults [--only NAME ...]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from tests.faults.scenarios import SCENARIOS, Bench, Outcome


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", choices=list(SCENARIOS), default=list(SCENARIOS))
    args = parser.parse_args(argv)
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    with tempfile.TemporaryDirectory(prefix="memwall-faults-") as folder:
        os.environ["PREFECT_HOME"] = str(Path(folder) / "prefect-home")
        from prefect.settings import PREFECT_API_URL
        from prefect.testing.utilities import prefect_test_harness

        outcomes: list[tuple[Outcome, float]] = []
        with prefect_test_harness(server_startup_timeout=120):
            api_url = str(PREFECT_API_URL.value())
            for name in args.only:
                root = Path(folder) / name
                root.mkdir()
                started = time.monotonic()
                try:
                    outcome = SCENARIOS[name](Bench(root, api_url))
                except Exception as exc:  # the benchmark reports, never stops
                    outcome = Outcome(name, survived=False, problems=[f"crashed: {exc!r}"])
                seconds = time.monotonic() - started
                outcomes.append((outcome, seconds))
                verdict = "survived" if outcome.survived and not outcome.lost else "NOT survived"
                print(
                    f"{name:20} {verdict:13} lost {outcome.lost}  {seconds:6.1f} s  "
                    f"{outcome.fault}" + "".join(f"\n    {p}" for p in outcome.problems),
                    flush=True,
                )
    survived = sum(o.survived and not o.lost for o, _ in outcomes)
    lost = sum(o.lost for o, _ in outcomes)
    print(
        f"faults tried {len(outcomes)}, survived {survived}, runs of measurements lost {lost} "
        f"(target: all survived, nothing lost); measured here, on this host's CPU, "
        f"{sum(s for _, s in outcomes):.0f} s in all"
    )


if __name__ == "__main__":
    main(sys.argv[1:])

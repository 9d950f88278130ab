"""What a user waits for: the wall time and peak memory of each command as a whole process,
against the same command of an earlier checkout, measured in the same run.

Commands: ``predict``, ``workloads estimate``, ``rank --json`` on the built-in examples and on
100,000 generated workloads (``benchmarks.analysis_scale``), ``whatif``, ``backtest``,
``audit --quick`` (first on a fresh history: one small validation case; then again: the
validation reused) and the full ``audit``. Each runs as ``python -m flows.cli`` from an empty
folder, with ``PYTHONPATH`` at this checkout ("after") or at ``--before`` ("before"), taking
turns so a shared host's load falls on both; each version has its own ``PREFECT_HOME``, set up
by one untimed quick audit first (Prefect migrates a new database once). Peak memory is the
command's own process (its maximum resident set), not Prefect's server beside it; this script
imports nothing big (a child's peak counts the parent's pages it was forked from), and writes
the generated workloads from a process of its own.

    git worktree add /tmp/memwall-before <commit before the change>
    .venv/bin/python -m benchmarks.cli_latency --before /tmp/memwall-before [--rounds 3]
        [--only rank] [--million]

Prints one line per command: the median wall seconds and peak MB before and after, and
after/before; then the load average, which says how much the figures can be trusted on a
shared host. ``--million`` adds ``rank --json`` on 1,000,000 workloads, after only. It never
fails a build.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent
START = "2027-01"
PREDICT = ["--preset", "llama-3.1-70b", "--batch", "8", "--devices", "8", "--json"]
ESTIMATE = ["--preset", "llama-3.1-70b", "--batch", "16", "--context", "8192", "--json"]
EXIT_HOST_BUSY = 75  # flows.cli: another memwall holds this host's probe lock
BUSY_TRIES, BUSY_WAIT_S = 60, 5.0


@dataclass
class Figures:
    """Each run's wall seconds and peak MB, and the last failure, if any."""

    seconds: list[float] = field(default_factory=list)
    peak_mb: list[float] = field(default_factory=list)
    failed: str = ""

    def median(self) -> tuple[float, float]:
        if not self.seconds:
            return float("nan"), float("nan")
        return statistics.median(self.seconds), statistics.median(self.peak_mb)


def run(root: Path, args: list[str], folder: Path, home: Path) -> tuple[float, float, str]:
    """One command as a whole process: wall seconds, peak resident MB, and its error (if it
    failed: the last line it wrote on standard error). An audit runs with ``--no-wait`` and
    is tried again while another memwall probes this host (exit 75), so no figure holds the
    time spent waiting for someone else's probes."""
    for _ in range(BUSY_TRIES):
        seconds, peak, failure = _once(root, args, folder, home)
        if not failure.startswith(f"exit {EXIT_HOST_BUSY}:"):
            break
        time.sleep(BUSY_WAIT_S)
    return seconds, peak, failure


def _once(root: Path, args: list[str], folder: Path, home: Path) -> tuple[float, float, str]:
    env = {**os.environ, "PYTHONPATH": str(root), "PREFECT_HOME": str(home)}
    env.pop("PREFECT_API_URL", None)  # each version's own temporary server, as a user has
    start = time.perf_counter()
    with tempfile.TemporaryFile() as err:
        process = subprocess.Popen(
            [sys.executable, "-m", "flows.cli", *args],
            cwd=folder,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - start
        err.seek(0)
        lines = err.read().decode(errors="replace").strip().splitlines()
    code = os.waitstatus_to_exitcode(status)
    failure = "" if code == 0 else f"exit {code}: {lines[-1] if lines else ''}"
    return seconds, usage.ru_maxrss / 1024, failure


def generate(n: int, folder: Path, root: Path = HERE) -> None:
    """``n`` benchmark workloads and the benchmark roadmap as Parquet files in ``folder``
    (``workloads-<n>.parquet``, ``roadmap.parquet``), written by another process with the
    checkout at ``root``: each version reads files of its own schema (a newer one adds
    optional columns an older one refuses)."""
    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "from benchmarks.analysis_scale import roadmap, workloads\n"
        "from hardware_profiles.parquet import write_table\n"
        "from hardware_profiles.schema import ROADMAP, WORKLOADS\n"
        "n, folder = int(sys.argv[1]), Path(sys.argv[2])\n"
        "write_table(workloads(n), folder / f'workloads-{n}.parquet', WORKLOADS)\n"
        "write_table(roadmap(), folder / 'roadmap.parquet', ROADMAP)\n"
    )
    folder.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONPATH": str(root)}
    command = [sys.executable, "-c", script, str(n), str(folder)]
    subprocess.run(command, env=env, cwd=root, check=True)


def commands(data: Path, out: Path) -> dict[str, list[str]]:
    """The commands, by name; ``out`` is the version's own output folder."""
    generated = ["--workloads", str(data / "workloads-100000.parquet"), "--roadmap"]
    generated.append(str(data / "roadmap.parquet"))
    return {
        "predict": ["predict", *PREDICT],
        "workloads estimate": ["workloads", "estimate", *ESTIMATE],
        "rank, examples": ["rank", "--json", "--start", START],
        "rank, 100,000 workloads": ["rank", "--json", "--start", START, *generated],
        "whatif": ["whatif", "--start", START, "--out", str(out / "whatif")],
        "backtest": ["backtest", "--json"],
        "audit --quick, new history": ["audit", "--no-wait", "--quick", "--out", str(out / "1")],
        "audit --quick": ["audit", "--no-wait", "--quick", "--out", str(out / "quick")],
        "audit": ["audit", "--no-wait", "--out", str(out / "full")],
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--before", type=Path, required=True, help="checkout to compare with")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--only", action="append", help="commands whose name contains this")
    parser.add_argument("--million", action="store_true")
    args = parser.parse_args(argv)
    versions = {"before": args.before.resolve(), "after": HERE}
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="memwall-latency-") as tmp:
        work = Path(tmp)
        data = work / "data"
        for version, root in versions.items():
            generate(100_000, data / version, root)
        figures: dict[str, dict[str, Figures]] = {}
        for version, root in versions.items():
            # Prefect's database migrated, and a history holding this host's validation.
            folder, home = work / version, work / version / "prefect-home"
            home.mkdir(parents=True)
            command = commands(data / version, folder)["audit --quick"]
            _, _, failure = run(root, command, folder, home)
            if failure:
                print(f"{version}: set-up audit --quick failed: {failure}")
        for round_ in range(args.rounds):
            for name in commands(data, work):
                if args.only and not any(o in name for o in args.only):
                    continue
                for version, root in versions.items():
                    folder, home = work / version, work / version / "prefect-home"
                    command = commands(data / version, folder)[name]
                    if name.endswith("new history"):  # a fresh history every round
                        command[-1] = str(folder / f"first-{round_}")
                    seconds, peak, failure = run(root, command, folder, home)
                    found = figures.setdefault(name, {}).setdefault(version, Figures())
                    if failure:
                        found.failed = failure
                        continue
                    found.seconds.append(seconds)
                    found.peak_mb.append(peak)
        print(f"{'command':30s} {'before s':>9s} {'after s':>9s} {'ratio':>6s} "
              f"{'before MB':>10s} {'after MB':>9s} {'ratio':>6s}")  # fmt: skip
        for name, by_version in figures.items():
            (b_s, b_mb), (a_s, a_mb) = by_version["before"].median(), by_version["after"].median()
            print(
                f"{name:30s} {b_s:9.2f} {a_s:9.2f} {a_s / b_s:6.2f} "
                f"{b_mb:10,.0f} {a_mb:9,.0f} {a_mb / b_mb:6.2f}"
            )
            for version, found in by_version.items():
                if found.failed:
                    print(f"    {version} failed: {found.failed}")
        if args.million:
            generate(1_000_000, data / "after")
            command = ["rank", "--json", "--start", START, "--workloads"]
            command += [str(data / "after" / "workloads-1000000.parquet"), "--roadmap"]
            command.append(str(data / "after" / "roadmap.parquet"))
            seconds, peak, failure = run(HERE, command, work / "after", work / "after" / "ph")
            print(
                f"{'rank, 1,000,000 workloads':30s} {'':9s} {seconds:9.2f} {'':6s} "
                f"{'':10s} {peak:9,.0f}  (after only) {failure}"
            )
    load_after = os.getloadavg()
    print(
        f"load average (1, 5, 15 min) before {', '.join(f'{x:.1f}' for x in load_before)}; "
        f"after {', '.join(f'{x:.1f}' for x in load_after)} on {os.cpu_count()} cores"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

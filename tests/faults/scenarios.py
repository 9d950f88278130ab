"""Faults, tried on purpose: each scenario breaks something a weekly audit meets in real life
and judges what memwall did, the same way for the tests (tests/faults) and the benchmark
(benchmarks/faults.py).

Every scenario runs the real ``memwall`` in a subprocess (or the real delivery code), against a
real Prefect API, on loopback servers it starts and stops itself. Its verdict: the exit status
and the one line the user reads, nothing half-written under a real name, and what was measured
still on disk ("lost" counts runs whose measurements are nowhere).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import pyarrow.parquet as pq

from flows.cli import EXIT_HOST_BUSY, EXIT_INPUT_ERROR
from hardware_profiles.errors import MemwallError
from hardware_profiles.parquet import read_table
from hardware_profiles.schema import MEASUREMENTS
from tests.faults.servers import LOOPBACK, failing_webhook, silent_server

REPO: Final = Path(__file__).resolve().parents[2]
# Below any audit PDF (about 90 kB) and above a run's Parquet files (about 8 kB).
FILE_SIZE_LIMIT_BYTES: Final = 32 * 1024


@dataclass
class Outcome:
    """What one fault did: survived (every promise kept) or not, and why."""

    fault: str
    survived: bool = True
    lost: int = 0
    problems: list[str] = field(default_factory=list)

    def expect(self, ok: bool, problem: str) -> None:
        if not ok:
            self.survived = False
            self.problems.append(problem)


class Bench:
    """Where the scenarios run: a folder, a Prefect API and a probe lock of their own."""

    def __init__(self, root: Path, api_url: str) -> None:
        self.root = root
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("MEMWALL_")}
        self.env.update(
            PREFECT_API_URL=api_url,
            PYTHONPATH=str(REPO),
            MEMWALL_PROBE_LOCK=str(root / "probe.lock"),
            PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL="CRITICAL",
        )

    def folder(self, name: str) -> Path:
        path = self.root / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    def command(self, out: Path, *extra: str, prefix: Sequence[str] = ()) -> list[str]:
        audit = [sys.executable, "-m", "flows.cli", "audit", "--quick", "--out", str(out)]
        return [*prefix, *audit, *extra]

    def audit(
        self,
        out: Path,
        *extra: str,
        env: dict[str, str] | None = None,
        prefix: Sequence[str] = (),
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.command(out, *extra, prefix=prefix),
            env={**self.env, **(env or {})},
            cwd=self.root,
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )

    def start(self, out: Path, *extra: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            self.command(out, *extra),
            env=self.env,
            cwd=self.root,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("memwall: ")]


def half_written(*folders: Path) -> list[str]:
    """Files under a real name that do not read back whole (Parquet, PDF)."""
    bad = []
    for folder in folders:
        for path in folder.rglob("*"):
            if path.name.startswith(".") or "quarantine" in path.parts:
                continue
            if path.suffix == ".parquet":
                try:
                    pq.read_table(path)
                except Exception:
                    bad.append(str(path))
            elif path.suffix == ".pdf" and not path.read_bytes().rstrip().endswith(b"%%EOF"):
                bad.append(str(path))
    return bad


def debris(*folders: Path) -> list[str]:
    return [str(p) for f in folders for p in f.rglob(".*.tmp")]


def pdf_of(result: subprocess.CompletedProcess[str]) -> Path | None:
    lines = result.stdout.strip().splitlines()
    path = Path(lines[-1]) if lines else None
    return path if path is not None and path.suffix == ".pdf" and path.is_file() else None


def pdf_text(path: Path) -> str:
    found = subprocess.run(
        ["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True, check=True
    )
    return " ".join(found.stdout.split())


def runs_recorded(history: Path) -> set[str]:
    return {p.stem for p in (history / "measurements").glob("*.parquet")}


def _judge_completed(outcome: Outcome, result: subprocess.CompletedProcess[str]) -> Path | None:
    outcome.expect(result.returncode == 0, f"exit {result.returncode}: {result.stderr[-600:]}")
    outcome.expect("Traceback" not in result.stderr, "a traceback on stderr")
    pdf = pdf_of(result)
    outcome.expect(pdf is not None, "no PDF path printed last")
    return pdf


def _judge_failed(
    outcome: Outcome, result: subprocess.CompletedProcess[str], status: int, says: str
) -> str:
    lines = error_lines(result.stderr)
    outcome.expect(result.returncode == status, f"exit {result.returncode}, not {status}")
    outcome.expect(len(lines) == 1, f"{len(lines)} error lines: {result.stderr[-600:]}")
    outcome.expect("Traceback" not in result.stderr, "a traceback on stderr")
    line = lines[0] if lines else ""
    outcome.expect(says in line, f"the line does not say {says!r}: {line!r}")
    return line


# --- the scenarios --------------------------------------------------------------------------

KILL_POINTS: Final = {
    "checking the history": "· checking the history",
    "probing": "· cpu #0: triad",
    "recording the run": "· recording the run",
    "writing the PDF": "· writing the PDF",
}


def kill_nine(bench: Bench) -> Outcome:
    """kill -9 of an audit at several points; then the next audit runs and the history reads."""
    outcome = Outcome("kill -9 of an audit at " + ", ".join(KILL_POINTS))
    out = bench.folder("kill")
    for point, marker in KILL_POINTS.items():
        process = bench.start(out, "--history", str(out / "history"))
        assert process.stderr is not None
        seen = False
        for line in process.stderr:
            if line.startswith(marker):
                os.killpg(process.pid, signal.SIGKILL)
                seen = True
                break
        process.communicate(timeout=120)
        outcome.expect(seen, f"the audit never reached {point!r}")
        outcome.expect(
            not half_written(out), f"half-written after a kill at {point}: {half_written(out)}"
        )
    after = bench.audit(out, "--history", str(out / "history"))
    _judge_completed(outcome, after)
    outcome.expect(not debris(out), f"debris left by the killed audits: {debris(out)}")
    history = subprocess.run(
        [sys.executable, "-m", "flows.cli", "history", "--history", str(out / "history")],
        env=bench.env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    outcome.expect(history.returncode == 0, f"memwall history: {history.stderr[-400:]}")
    return outcome


# The limit is set by util-linux's prlimit in the child, not by a preexec_fn: Python code run
# between fork and exec in a process that holds JAX's threads can deadlock.
LIMIT_FILE_SIZE: Final = ("prlimit", f"--fsize={FILE_SIZE_LIMIT_BYTES}", "--")


def full_disk(bench: Bench) -> Outcome:
    """The disk under --out fills (a file-size limit): one line, nothing half-written, and the
    measurements written before the PDF are kept."""
    outcome = Outcome("a full disk on --out")
    out = bench.folder("full")
    result = bench.audit(out, prefix=LIMIT_FILE_SIZE)
    _judge_failed(outcome, result, EXIT_INPUT_ERROR, "cannot write (File too large)")
    outcome.expect(not half_written(out), f"half-written: {half_written(out)}")
    outcome.expect(not debris(out), f"temporary files left: {debris(out)}")
    kept = list(out.glob("memwall-measurements-*.parquet"))
    if not kept:
        outcome.lost += 1
    else:
        rows = read_table(kept[0], MEASUREMENTS)
        outcome.expect(len(rows) > 0, "the kept measurements are empty")
    return outcome


def _deliver_bounded(outcome: Outcome, bench: Bench, email: bool, port: int) -> None:
    """Deliver a real PDF through the audit's delivery task to a server that never answers:
    bounded by attempts x time-out, reported in one line, the PDF kept."""
    from flows.finish import DeliverySettings, deliver_task, raise_if_undelivered
    from tasks.delivery import DeliveryError

    pdf = bench.folder("deliver") / "memwall-audit-x.pdf"
    pdf.write_bytes(b"%PDF-1.4\n%%EOF\n")
    bounded = DeliverySettings(attempts=2, retry_delay_s=0.0, timeout_s=1.0)
    if email:
        settings = bounded.model_copy(
            update={"email_to": ["lead@example.org"], "smtp_host": LOOPBACK, "smtp_port": port}
        )
    else:
        os.environ["MEMWALL_WEBHOOK_URL"] = f"http://{LOOPBACK}:{port}/hooks/T0/B0/s3cret-path"
        settings = bounded.model_copy(update={"webhook": True})
    started = time.monotonic()
    try:
        results = deliver_task.fn(pdf, settings, "subject", "headline")
        raise_if_undelivered(results, pdf)
        outcome.expect(False, "a server that never answers was reported as delivered")
    except DeliveryError as exc:
        line = str(exc)
        outcome.expect("\n" not in line, f"more than one line: {line!r}")
        outcome.expect(f"the PDF is kept at {pdf}" in line, f"does not say where: {line!r}")
        outcome.expect("s3cret-path" not in line, "the webhook's secret path is in the message")
    finally:
        os.environ.pop("MEMWALL_WEBHOOK_URL", None)
    elapsed = time.monotonic() - started
    outcome.expect(elapsed < 10, f"took {elapsed:.0f} s for 2 attempts of 1 s")
    outcome.expect(pdf.is_file(), "the PDF is gone")


def smtp_never_answers(bench: Bench) -> Outcome:
    outcome = Outcome("an SMTP server that accepts and never answers")
    with silent_server() as port:
        _deliver_bounded(outcome, bench, True, port)
    return outcome


def webhook_hangs(bench: Bench) -> Outcome:
    outcome = Outcome("a webhook that hangs")
    with silent_server() as port:
        _deliver_bounded(outcome, bench, False, port)
    return outcome


def webhook_fails(bench: Bench) -> Outcome:
    """An audit whose webhook answers 500: exit 2, one line, the PDF kept and named."""
    outcome = Outcome("a webhook that returns 500")
    out = bench.folder("webhook500")
    with failing_webhook() as url:
        result = bench.audit(out, "--webhook", env={"MEMWALL_WEBHOOK_URL": url})
    line = _judge_failed(outcome, result, EXIT_INPUT_ERROR, "HTTP Error 500")
    outcome.expect("s3cret-path" not in result.stderr + result.stdout, "the URL's path leaked")
    pdfs = list(out.glob("memwall-audit-*.pdf"))
    outcome.expect(len(pdfs) == 1 and str(pdfs[0]) in line, f"the PDF is not kept: {line!r}")
    outcome.expect(not half_written(out), f"half-written: {half_written(out)}")
    return outcome


def corrupt_history(bench: Bench) -> Outcome:
    """A truncated file in the history: the audit runs, sets it aside, and the PDF says so."""
    outcome = Outcome("a corrupt history file")
    out = bench.folder("corrupt")
    bad = out / "history" / "measurements" / "20260105T060000Z-abcdef.parquet"
    bad.parent.mkdir(parents=True, exist_ok=True)
    bad.write_bytes(b"PAR1\x00\x00 truncated by a full disk")
    result = bench.audit(out)
    pdf = _judge_completed(outcome, result)
    quarantined = out / "history" / "measurements" / "quarantine" / bad.name
    outcome.expect(quarantined.is_file(), "the bad file was not moved to quarantine/")
    outcome.expect(
        Path(f"{quarantined}.reason.txt").is_file(), "no reason written beside the bad file"
    )
    if pdf is not None:
        text = pdf_text(pdf)
        outcome.expect(
            "set aside an unreadable file:" in text and bad.name in text, "the PDF is silent"
        )
    outcome.lost += 0 if runs_recorded(out / "history") else 1
    return outcome


def history_unwritable(bench: Bench) -> Outcome:
    """The history cannot be written after probing: the PDF is still written and says so."""
    outcome = Outcome("a history that cannot be written")
    out = bench.folder("unwritable")
    history = out / "history"
    history.mkdir(parents=True, exist_ok=True)
    (history / "ranking").write_text("a file where the ranking folder should be")
    result = bench.audit(out)
    pdf = _judge_completed(outcome, result)
    if pdf is not None:
        outcome.expect("was NOT recorded in the history" in pdf_text(pdf), "the PDF is silent")
    outcome.lost += 0 if list(out.glob("memwall-measurements-*.parquet")) else 1
    return outcome


def two_audits(bench: Bench) -> Outcome:
    """An audit while another memwall probes the host: with --no-wait it exits at once naming
    the holder; without, it says what it waits for and probes only once the first is done.

    The first prober is ``memwall probe --sustained``, which holds the lock for a known time
    (it repeats the triad and a GEMM for that long), so the overlap does not hang on timing.
    The busy audit and the second start together once it holds the lock: each takes seconds to
    reach the lock (tens of seconds on a loaded machine, with the tests run in parallel), and
    one after the other they could find the first prober already done.
    """
    outcome = Outcome("two concurrent audits")
    lock = Path(bench.env["MEMWALL_PROBE_LOCK"])
    first_rows_path = bench.folder("first") / "rows.parquet"
    first = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "flows.cli",
            "probe",
            "--quick",
            "--sustained",
            "20",
            "--out",
            str(first_rows_path),
        ],
        env=bench.env,
        cwd=bench.root,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    deadline = time.monotonic() + 300
    while not (lock.is_file() and "memwall probe" in lock.read_text()):
        if time.monotonic() > deadline or first.poll() is not None:
            outcome.expect(False, "the first prober never took the lock")
            first.kill()
            return outcome
        time.sleep(0.2)
    second_out = bench.folder("second")
    waiting = bench.start(second_out)
    busy = bench.audit(bench.folder("busy"), "--no-wait")
    _judge_failed(outcome, busy, EXIT_HOST_BUSY, f"pid {first.pid}, memwall probe")
    outcome.expect(not list((bench.root / "busy").glob("*.pdf")), "the busy audit wrote a PDF")
    try:
        stdout, stderr = waiting.communicate(timeout=900)
    except subprocess.TimeoutExpired:
        os.killpg(waiting.pid, signal.SIGKILL)
        stdout, stderr = waiting.communicate()
    second = subprocess.CompletedProcess(waiting.args, waiting.returncode, stdout, stderr)
    _, first_stderr = first.communicate(timeout=900)
    outcome.expect(first.returncode == 0, f"the first prober: {first_stderr[-400:]}")
    _judge_completed(outcome, second)
    outcome.expect(
        "waiting for the host: another memwall is probing this host" in second.stderr,
        "the second did not say what it waited for",
    )
    try:
        (b,) = second_out.glob("memwall-measurements-*.parquet")
        first_rows, second_rows = (
            read_table(first_rows_path, MEASUREMENTS),
            read_table(b, MEASUREMENTS),
        )
    except (ValueError, MemwallError):
        outcome.lost += 1
        return outcome
    outcome.expect(
        second_rows["measured_at"].min() > first_rows["measured_at"].max(),
        "the two probed at the same time",
    )
    return outcome


SCENARIOS: Final[dict[str, Callable[[Bench], Outcome]]] = {
    "kill-9": kill_nine,
    "full-disk": full_disk,
    "smtp-silent": smtp_never_answers,
    "webhook-500": webhook_fails,
    "webhook-hangs": webhook_hangs,
    "corrupt-history": corrupt_history,
    "history-unwritable": history_unwritable,
    "two-audits": two_audits,
}

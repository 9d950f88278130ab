"""One prober per host: the lock is held across processes, says who holds it, and is freed
when its holder dies, however it dies."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tasks.hostlock import LOCK_ENV, HostBusy, probing

REPO = Path(__file__).resolve().parents[2]
HOLD = """
import time
from tasks.hostlock import probing
with probing("test holder"):
    print("held", flush=True)
    time.sleep(60)
"""


@pytest.fixture
def lock(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "probe.lock"
    monkeypatch.setenv(LOCK_ENV, str(path))
    return path


@pytest.fixture
def holder(lock: Path) -> Iterator[subprocess.Popen[str]]:
    """Another process holding the lock until it is killed."""
    process = subprocess.Popen(
        [sys.executable, "-c", HOLD],
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None and process.stdout.readline().strip() == "held"
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)


def test_a_free_lock_is_taken_and_says_who_holds_it(lock: Path) -> None:
    with probing("memwall audit r1") as path:
        assert path == lock
        assert f"pid {os.getpid()}, memwall audit r1" in lock.read_text()
    assert lock.read_text() == ""


def test_without_waiting_a_held_lock_fails_at_once_naming_its_holder(
    lock: Path, holder: subprocess.Popen[str]
) -> None:
    started = time.monotonic()
    with pytest.raises(HostBusy) as caught, probing("second", wait=False):
        pass
    assert time.monotonic() - started < 5
    message = str(caught.value)
    assert f"pid {holder.pid}, test holder" in message and str(lock) in message
    assert "\n" not in message


def test_a_waiter_says_what_it_waits_for_and_gets_the_lock_when_the_holder_is_killed(
    lock: Path, holder: subprocess.Popen[str]
) -> None:
    heard: list[str] = []

    def on_wait(message: str) -> None:
        heard.append(message)
        os.kill(holder.pid, signal.SIGKILL)  # kill -9: the kernel frees its flock

    with probing("second", on_wait=on_wait, timeout_s=30):
        assert "pid" in lock.read_text() and "second" in lock.read_text()
    assert len(heard) == 1 and f"pid {holder.pid}, test holder" in heard[0]


def test_a_wait_can_be_bounded(lock: Path, holder: subprocess.Popen[str]) -> None:
    with pytest.raises(HostBusy, match="gave up after 1 s"), probing("second", timeout_s=1):
        pass


@pytest.mark.integration
def test_memwall_probe_no_wait_exits_75_with_one_line(
    lock: Path, holder: subprocess.Popen[str], tmp_path: Path
) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "flows.cli", "probe", "--quick", "--no-wait"],
        env={**os.environ, "PYTHONPATH": str(REPO)},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 75, result.stderr
    (line,) = [s for s in result.stderr.splitlines() if s.startswith("memwall:")]
    assert line.startswith("memwall: busy: another memwall is probing this host (pid ")
    assert f"pid {holder.pid}, test holder" in line and result.stdout == ""


@pytest.fixture
def protected_regular() -> Iterator[None]:
    """``fs.protected_regular`` on (systemd's default) for the test; root only, restored."""
    knob = Path("/proc/sys/fs/protected_regular")
    try:
        before = knob.read_text()
        knob.write_text("1")
    except OSError:
        pytest.skip("needs root to turn fs.protected_regular on")
    try:
        yield
    finally:
        knob.write_text(before)


def test_another_users_lock_in_a_sticky_folder_is_taken_or_waited_for_not_a_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, protected_regular: None
) -> None:
    """A sticky, world-writable folder (as /tmp is) with the lock file another user made
    (mode 0666): O_CREAT on it is refused under fs.protected_regular, opening it is not."""
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)
    lock = shared / "probe.lock"
    lock.touch()
    lock.chmod(0o666)
    os.chown(lock, 65534, 65534)  # nobody
    with pytest.raises(PermissionError):
        os.open(lock, os.O_RDWR | os.O_CREAT)
    monkeypatch.setenv(LOCK_ENV, str(lock))
    with probing("first", wait=False):
        assert "first" in lock.read_text()
    process = subprocess.Popen(
        [sys.executable, "-c", HOLD],
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None and process.stdout.readline().strip() == "held"
        busy = pytest.raises(HostBusy, match=f"pid {process.pid}, test holder")
        with busy, probing("second", wait=False):
            pass
    finally:
        process.kill()
        process.wait(timeout=10)

"""One prober per host: a host-wide file lock around every measurement.

Two audits measuring one host at once measure each other (the same host's float32 triad came
out 28 and 53 GB/s in the same minute), so ``memwall audit``, ``memwall probe`` and the fleet's
``probe-host`` runs all take this lock before the first probe and free it after the last.

The lock is ``fcntl.flock`` on a file in the system's temporary folder, the one place every
user of a host shares (``$MEMWALL_PROBE_LOCK`` names another file, for tests or a host whose
temporary folder is private). The kernel frees a flock when its holder's process ends, however
it ends (``kill -9`` included), so a crashed audit never leaves a stale lock behind. The holder
writes its pid, command and start time into the file, so whoever waits can say what for.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Final

from hardware_profiles.errors import MemwallError

LOCK_ENV: Final = "MEMWALL_PROBE_LOCK"
LOCK_NAME: Final = "memwall-probe.lock"
# How often a waiter checks the lock; flock itself has no time-out.
_POLL_S: Final = 0.5


class HostBusy(MemwallError):
    """Another memwall is probing this host, and the caller chose not to wait."""


class HostLockError(MemwallError):
    """The host's probe lock cannot be opened at all."""


def lock_path() -> Path:
    """Where this host's probe lock lives: ``$MEMWALL_PROBE_LOCK``, else the temp folder."""
    override = os.environ.get(LOCK_ENV)
    return Path(override) if override else Path(tempfile.gettempdir()) / LOCK_NAME


def _open(path: Path) -> int:
    """The lock file, opened for writing where this user may, else for reading (flock needs
    no more). In a sticky folder such as /tmp, with ``fs.protected_regular`` on (systemd's
    default), O_CREAT on another user's file is refused even where its mode allows writing,
    so the file is opened again without it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    for flags in (os.O_RDWR | os.O_CREAT, os.O_RDWR, os.O_RDONLY):
        try:
            fd = os.open(path, flags, 0o666)
        except PermissionError as exc:
            refused = exc
            continue
        # Every user of the host must be able to take it, whatever their umask.
        with contextlib.suppress(PermissionError):
            os.fchmod(fd, 0o666)
        return fd
    raise HostLockError(
        f"cannot open this host's probe lock {path} ({refused.strerror}); set {LOCK_ENV} to a "
        "file every user of the host can read"
    )


def holder(path: Path) -> str:
    """What the lock file says about who holds it ("pid 123, memwall audit, since ...")."""
    try:
        text = path.read_text().strip()
    except OSError:
        text = ""
    return text or "another process (it wrote no details)"


def _try_lock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


@contextlib.contextmanager
def probing(
    what: str,
    wait: bool = True,
    on_wait: Callable[[str], None] | None = None,
    timeout_s: float | None = None,
) -> Iterator[Path]:
    """Hold this host's probe lock for the ``with`` block.

    ``what`` says who holds it (shown to whoever waits). Without ``wait``, a held lock raises
    :class:`HostBusy` at once; with it, ``on_wait`` hears once what is being waited for, and
    ``timeout_s`` (none by default) bounds the wait.
    """
    path = lock_path()
    fd = _open(path)
    try:
        if not _try_lock(fd):
            busy = (
                f"another memwall is probing this host ({holder(path)}; lock {path}); "
                "two probers on one host measure each other"
            )
            if not wait:
                raise HostBusy(f"{busy}; run again when it is done, or without --no-wait")
            if on_wait is not None:
                on_wait(f"waiting for the host: {busy}")
            deadline = None if timeout_s is None else time.monotonic() + timeout_s
            while not _try_lock(fd):
                if deadline is not None and time.monotonic() > deadline:
                    raise HostBusy(f"{busy}; gave up after {timeout_s:g} s")
                time.sleep(_POLL_S)
        started = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        # The program and its subcommand only: later arguments may carry a secret (a URL).
        command = " ".join([Path(sys.argv[0]).name, *sys.argv[1:2]])
        # A lock opened for reading only (another user's file) holds no details of its holder.
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"pid {os.getpid()}, {what} ({command}), since {started}\n".encode(), 0)
        try:
            yield path
        finally:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)

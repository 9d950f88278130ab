"""A real PostgreSQL on loopback, started and stopped by the tests as the Prefect server is.

Debian's `postgresql` package puts initdb and postgres under /usr/lib/postgresql/<version>/bin,
off the PATH; the newest version there is used, else whatever the PATH has. PostgreSQL refuses
to run as root, so under root the cluster belongs to the `postgres` user the package creates
(`nobody` where there is none), in a folder of /tmp that user can reach (pytest's own folders
are root's alone). It listens on a loopback TCP port, with its unix socket in that folder.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.integration.conftest import LOOPBACK, Processes, as_owner, free_port, wait_for

DEBIAN_BIN = Path("/usr/lib/postgresql")
INSTALL_HINT = (
    "PostgreSQL is not installed: `make system-tools` installs it as root on Debian, or "
    "`apt-get install postgresql`"
)
# Who runs the cluster when the tests run as root: the package's own user, else nobody.
UNPRIVILEGED = ("postgres", "nobody")
DATABASE = "prefect"
ROLE = "memwall"


def postgres_bin() -> Path | None:
    """The folder holding initdb, pg_ctl and postgres, or None where PostgreSQL is absent."""
    versions = [
        path.parent
        for path in DEBIAN_BIN.glob("*/bin/postgres")
        if re.fullmatch(r"\d+(\.\d+)?", path.parent.parent.name)
    ]
    if versions:
        return max(versions, key=lambda bin_dir: float(bin_dir.parent.name))
    found = shutil.which("postgres")
    return Path(found).resolve().parent if found and shutil.which("initdb") else None


@dataclass(frozen=True)
class Postgres:
    port: int
    password: str
    data: Path

    def prefect_env(self) -> dict[str, str]:
        """A Prefect server's database settings, the password apart from the URL (as the
        README's fleet section sets them, the password read from a file)."""
        return {
            "PREFECT_SERVER_DATABASE_DRIVER": "postgresql+asyncpg",
            "PREFECT_SERVER_DATABASE_HOST": LOOPBACK,
            "PREFECT_SERVER_DATABASE_PORT": str(self.port),
            "PREFECT_SERVER_DATABASE_USER": ROLE,
            "PREFECT_SERVER_DATABASE_NAME": DATABASE,
            "PREFECT_SERVER_DATABASE_PASSWORD": self.password,
        }


def _owner() -> pwd.struct_passwd | None:
    """The account the cluster runs as: None (this one) unless this is root."""
    if os.geteuid() != 0:
        return None
    for name in UNPRIVILEGED:
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise AssertionError(f"running as root and none of the users {UNPRIVILEGED} exists")


@contextlib.contextmanager
def running_postgres(logs: Path) -> Iterator[Postgres]:
    """Initialise a cluster, start it (its log in `logs`), create the Prefect database; on
    the way out, stop it and remove its folder."""
    bin_dir = postgres_bin()
    if bin_dir is None:
        raise FileNotFoundError(INSTALL_HINT)
    owner = _owner()
    root = Path(tempfile.mkdtemp(prefix="memwall-pg-"))
    processes = Processes(logs)
    try:
        if owner is not None:
            os.chown(root, owner.pw_uid, owner.pw_gid)
        # Local connections are trusted: the socket's folder is its owner's alone (and root's).
        password = secrets.token_hex(16)
        password_file = root / "password"
        password_file.write_text(password)
        if owner is not None:
            os.chown(password_file, owner.pw_uid, owner.pw_gid)
        data = root / "data"
        initdb = subprocess.run(
            [
                str(bin_dir / "initdb"),
                "--pgdata",
                str(data),
                "--username",
                ROLE,
                "--pwfile",
                str(password_file),
                "--auth-local",
                "trust",
                "--auth-host",
                "scram-sha-256",
                "--encoding",
                "UTF8",
                "--no-sync",
            ],
            cwd=root,
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
            **as_owner(owner),
        )
        assert initdb.returncode == 0, f"initdb failed: {initdb.stderr[-3000:]}"
        password_file.unlink()
        port = free_port()
        log = processes.start(
            "postgres",
            [
                str(bin_dir / "postgres"),
                "-D",
                str(data),
                "-h",
                LOOPBACK,
                "-p",
                str(port),
                "-k",
                str(root),
                # A test database: durability is not what is tested, speed on a busy host is.
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
            ],
            dict(os.environ),
            cwd=root,
            owner=owner,
        )
        client = ["-h", str(root), "-p", str(port), "-U", ROLE]

        def ready() -> bool:
            probe = [str(bin_dir / "pg_isready"), *client, "-d", "postgres"]
            return subprocess.run(probe, capture_output=True, timeout=30).returncode == 0

        wait_for("postgres", ready, 60, log)
        created = subprocess.run(
            [str(bin_dir / "createdb"), *client, DATABASE],
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
        assert created.returncode == 0, f"createdb failed: {created.stderr[-3000:]}"
        yield Postgres(port, password, data)
    finally:
        processes.stop_all()
        shutil.rmtree(root, ignore_errors=True)

"""Shared storage for a fleet: a local path or an fsspec URL (``s3://``, ``gs://``, ``file://``).

Hosts of a fleet write their measurements here, not to Prefect's result store alone, so the
files outlive the server's database and any tool can read them. A local write goes to a
temporary file that is renamed into place (a ``file://`` URL is a local path, written the same
way); an object store's PUT is already all-or-nothing, so a reader never sees half a file
either way.
"""

from __future__ import annotations

import io
import os
import urllib.parse
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from hardware_profiles.columns import Table
from hardware_profiles.errors import MemwallError, first_line
from hardware_profiles.parquet import atomic_path, to_frame, validate_arrow


class StorageError(MemwallError):
    """Shared storage that cannot be reached, read or written."""


def _is_url(location: str) -> bool:
    return "://" in location


def _local(location: str) -> Path | None:
    """The local path a plain path or a ``file://`` URL names; None for a remote store."""
    if not _is_url(location):
        return Path(location)
    parsed = urllib.parse.urlparse(location)
    if parsed.scheme == "file":
        return Path(urllib.parse.unquote(parsed.netloc + parsed.path))
    return None


def join(location: str, *parts: str) -> str:
    """``location`` with ``parts`` appended, keeping a URL a URL."""
    if _is_url(location):
        return "/".join([location.rstrip("/"), *parts])
    return str(Path(location).joinpath(*parts))


def _filesystem(location: str) -> tuple[object, str]:
    import fsspec

    try:
        fs, path = fsspec.core.url_to_fs(location)
    except (ImportError, ValueError) as exc:
        raise StorageError(
            f"{location}: cannot open this storage ({first_line(exc)}); use a local path, "
            "file://, or an fsspec URL whose filesystem package is installed (s3fs for s3://, "
            "gcsfs for gs://)"
        ) from None
    return fs, str(path)


def write_parquet(frame: pd.DataFrame, location: str, table: Table) -> str:
    """Validate ``frame`` as ``table`` and write it to ``location`` all at once."""
    data = validate_arrow(pa.Table.from_pandas(frame, preserve_index=False), table, location)
    local = _local(location)
    if local is not None:
        with atomic_path(local) as tmp:
            pq.write_table(data, tmp)
        return location
    buffer = io.BytesIO()
    pq.write_table(data, buffer)
    fs, path = _filesystem(location)
    try:
        fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)  # type: ignore[attr-defined]
        fs.pipe_file(path, buffer.getvalue())  # type: ignore[attr-defined]
    except OSError as exc:
        raise StorageError(f"{location}: cannot write ({exc})") from None
    return location


def read_parquet(location: str, table: Table) -> pd.DataFrame:
    """Read one file of ``table`` from a path or URL, validated."""
    fs, path = _filesystem(location)
    try:
        data = fs.cat_file(path)  # type: ignore[attr-defined]
    except FileNotFoundError:
        raise StorageError(f"{location}: no such {table.name} file") from None
    except OSError as exc:
        raise StorageError(f"{location}: cannot read ({exc})") from None
    try:
        arrow = pq.read_table(io.BytesIO(data))
    except pa.ArrowException as exc:
        raise StorageError(f"{location}: not a readable Parquet file ({first_line(exc)})") from None
    return to_frame(validate_arrow(arrow, table, location))


def list_parquet(location: str) -> list[str]:
    """Every finished ``*.parquet`` file directly under ``location`` (none if it is absent).

    Temporary files start with a dot and end in ``.tmp``, so a write in progress is never
    listed.
    """
    fs, path = _filesystem(location)
    try:
        names = fs.ls(path, detail=False)  # type: ignore[attr-defined]
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise StorageError(f"{location}: cannot list ({exc})") from None
    found = sorted(str(n).rsplit("/", 1)[-1] for n in names)
    return [join(location, n) for n in found if n.endswith(".parquet") and not n.startswith(".")]


QUARANTINE = "quarantine"
REASON_SUFFIX = ".reason.txt"


def move_aside(location: str, reason: str) -> str:
    """Move an unreadable file into ``quarantine/`` beside it, with ``reason`` in a text file
    next to it; returns where it went. Nothing is deleted: a person decides what to do with it.

    Raises StorageError when the file cannot be moved (a read-only bucket, say); the caller then
    leaves it out of what it reads and says so.
    """
    folder, name = location.rsplit("/", 1) if _is_url(location) else os.path.split(location)
    target = join(folder, QUARANTINE, name)
    note = f"{reason}\n".encode()
    try:
        local, local_target = _local(location), _local(target)
        if local is not None and local_target is not None:
            local_target.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(f"{local_target}{REASON_SUFFIX}") as tmp:
                tmp.write_bytes(note)
            local.replace(local_target)
            return target
        fs, path = _filesystem(location)
        fs_target = _filesystem(target)[1]
        fs.makedirs(fs_target.rsplit("/", 1)[0], exist_ok=True)  # type: ignore[attr-defined]
        fs.pipe_file(fs_target + REASON_SUFFIX, note)  # type: ignore[attr-defined]
        fs.mv(path, fs_target)  # type: ignore[attr-defined]
    except OSError as exc:
        raise StorageError(f"{location}: cannot move it aside ({exc})") from None
    return target


def set_aside(location: str) -> list[tuple[str, str]]:
    """(file, reason) for every file moved into ``location``'s quarantine folder, oldest name
    first."""
    folder = join(location, QUARANTINE)
    fs, path = _filesystem(folder)
    try:
        names = sorted(str(n).rsplit("/", 1)[-1] for n in fs.ls(path, detail=False))  # type: ignore[attr-defined]
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise StorageError(f"{folder}: cannot list ({exc})") from None
    found = []
    for name in names:
        if name.endswith(REASON_SUFFIX) or name.startswith("."):
            continue
        try:
            reason = fs.cat_file(f"{path}/{name}{REASON_SUFFIX}").decode().strip()  # type: ignore[attr-defined]
        except OSError:
            reason = "no reason recorded"
        found.append((join(folder, name), reason))
    return found

"""Reading and writing the declared tables as Parquet, validated on the way in and out.

Every reader goes through :func:`validate_arrow`, so a malformed file fails at load time with a
message naming the file, the row and the column, never deep inside the maths. Numbers must be
finite: NaN and infinity are refused in every numeric column. Writers write a
temporary file beside the target and rename it, so a reader never sees half a file.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from hardware_profiles.columns import (
    METADATA_TABLE_KEY,
    METADATA_VERSION_KEY,
    SCHEMA_VERSION,
    Table,
)
from hardware_profiles.errors import MemwallError, ProfileError, first_line

_TYPE_NAMES = {
    "double": "a number",
    "int64": "a whole number",
    "string": "text",
    "date32[day]": "a date",
    "timestamp[us, tz=UTC]": "a UTC timestamp",
    "list<item: string>": "a list of text",
}


def _describe(arrow_type: pa.DataType) -> str:
    return _TYPE_NAMES.get(str(arrow_type), str(arrow_type))


def _compatible(actual: pa.DataType, target: pa.DataType) -> bool:
    """Whether ``actual`` may be cast to ``target`` without changing what the values mean."""
    if pa.types.is_null(actual):
        return True
    if pa.types.is_dictionary(actual):
        return _compatible(actual.value_type, target)
    if pa.types.is_floating(target):
        return bool(pa.types.is_integer(actual) or pa.types.is_floating(actual))
    if pa.types.is_integer(target):
        # Floats are accepted when every value is whole: pandas stores a nullable int as float.
        return bool(pa.types.is_integer(actual) or pa.types.is_floating(actual))
    if pa.types.is_string(target):
        return bool(pa.types.is_string(actual) or pa.types.is_large_string(actual))
    if pa.types.is_date(target):
        return bool(pa.types.is_date(actual) or pa.types.is_timestamp(actual))
    if pa.types.is_timestamp(target):
        return bool(pa.types.is_timestamp(actual))
    if pa.types.is_list(target):
        return bool(pa.types.is_list(actual) or pa.types.is_large_list(actual)) and _compatible(
            actual.value_type, target.value_type
        )
    return bool(actual.equals(target))


def _plain(value: Any) -> Any:
    """A numpy scalar as the Python value a user would write (-5.0, not np.float64(-5.0))."""
    return value.item() if hasattr(value, "item") else value


def _first_row(mask: pa.ChunkedArray | pa.Array | Any) -> int:
    """1-based number of the first true entry of a boolean array."""
    index = pc.index(mask, pa.scalar(True)).as_py()
    return int(index) + 1


def _cast_column(
    name: str, values: pa.ChunkedArray, target: pa.DataType, source: str
) -> pa.ChunkedArray:
    actual = values.type
    if pa.types.is_dictionary(actual):
        values = values.cast(actual.value_type)
        actual = values.type
    if pa.types.is_integer(target) and pa.types.is_floating(actual):
        whole = pc.equal(pc.floor(values), values)
        bad = pc.fill_null(pc.invert(whole), False)
        if pc.any(bad).as_py():
            row = _first_row(bad)
            value = values[row - 1].as_py()
            raise ProfileError(
                source, f"must be a whole number, got {value!r}", row=row, column=name
            )
    if pa.types.is_timestamp(actual) and pa.types.is_timestamp(target) and actual.tz is None:
        # A naive timestamp is taken as UTC, the only zone memwall writes.
        values = pc.assume_timezone(values, "UTC")
    try:
        cast = values.cast(target)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise ProfileError(
            source, f"cannot be read as {_describe(target)}: {exc}", column=name
        ) from None
    if pa.types.is_floating(target):
        _require_finite(name, cast, source)
    return cast


def _require_finite(name: str, values: pa.ChunkedArray, source: str) -> None:
    """NaN and +/-inf are not measurements: every comparison with them is false, so a NaN
    demand would rank as "never starves" and print as ``nan`` in a report. Empty is null."""
    bad = pc.fill_null(pc.or_(pc.is_nan(values), pc.is_inf(values)), False)
    if pc.any(bad).as_py():
        row = _first_row(bad)
        value = values[row - 1].as_py()
        raise ProfileError(
            source,
            f"must be a finite number, got {value!r} (leave the cell empty for no value)",
            row=row,
            column=name,
        )


def _check_names_once(names: list[str], source: str | Path) -> None:
    twice = next((n for n in names if names.count(n) > 1), None)
    if twice is not None:
        raise ProfileError(
            source,
            f"has the column {twice!r} {names.count(twice)} times; each column appears once",
            column=twice,
        )


def validate_arrow(data: pa.Table, table: Table, source: str | Path) -> pa.Table:
    """Return ``data`` cast to ``table``'s schema, or raise ProfileError naming what is wrong."""
    source = str(source)
    metadata = data.schema.metadata or {}
    declared = metadata.get(METADATA_TABLE_KEY)
    if declared is not None and declared.decode() != table.name:
        raise ProfileError(
            source, f"is a {declared.decode()!r} table, but a {table.name!r} table was expected"
        )
    version = metadata.get(METADATA_VERSION_KEY)
    if version is not None and int(version.decode()) > int(SCHEMA_VERSION):
        raise ProfileError(
            source,
            f"was written with schema version {version.decode()}; this memwall reads up to "
            f"{SCHEMA_VERSION} (upgrade memwall)",
        )
    _check_names_once(data.schema.names, source)
    present = set(data.column_names)
    missing = [c for c in table.required_columns if c not in present]
    if missing:
        raise ProfileError(
            source,
            f"missing required column(s) {', '.join(missing)}; a {table.name} table has "
            f"{', '.join(table.columns)}",
            column=missing[0],
        )
    unknown = [c for c in data.column_names if c not in table.columns]
    if unknown:
        raise ProfileError(
            source,
            f"unknown column(s) {', '.join(unknown)}; valid: {', '.join(table.columns)}",
            column=unknown[0],
        )

    columns: list[pa.ChunkedArray] = []
    for f in table.fields:
        target = f.metadata["arrow_type"]
        if f.name not in present:
            columns.append(pa.chunked_array([pa.nulls(data.num_rows, target)], target))
            continue
        values = data.column(f.name)
        if not _compatible(values.type, target):
            raise ProfileError(
                source,
                f"must be {_describe(target)} ({target}), but the file has {values.type}",
                column=f.name,
            )
        values = _cast_column(f.name, values, target, source)
        if not f.metadata["nullable"] and values.null_count:
            row = _first_row(values.is_null())
            raise ProfileError(source, "must not be empty (null)", row=row, column=f.name)
        check = f.metadata["check"]
        if check is not None and len(values):
            series = values.to_pandas()
            ok = check.ok(series[series.notna()]).reindex(series.index, fill_value=True)
            if not bool(ok.all()):
                position = int((~ok.to_numpy(dtype=bool)).argmax())
                raise ProfileError(
                    source,
                    f"{check.demands}, got {_plain(series.iloc[position])!r}",
                    row=position + 1,
                    column=f.name,
                )
        columns.append(values)
    result = pa.Table.from_arrays(columns, schema=table.arrow_schema)

    for key in table.unique:
        keys = result.column(key).to_pandas()
        duplicated = keys.duplicated()
        if duplicated.any():
            position = int(duplicated.to_numpy().argmax())
            raise ProfileError(
                source,
                f"duplicate {key} {_plain(keys.iloc[position])!r} (each must be unique)",
                row=position + 1,
                column=key,
            )
    for column, group, label in table.shares:
        _check_shares(result, column, group, label, source)
    return result


def _check_shares(data: pa.Table, column: str, group: str, label: str, source: str | Path) -> None:
    """The first group whose ``column`` adds up to more than 1, named with its total and the
    rows that give it away."""
    if column not in data.column_names:
        return
    frame = pd.DataFrame(
        {
            "share": data.column(column).to_pandas(),
            "group": data.column(group).to_pandas(),
            "label": data.column(label).to_pandas(),
        }
    )
    given = frame[frame["share"].notna()]
    totals = given.groupby("group", sort=False)["share"].sum()
    over = totals[totals > 1 + 1e-9]
    if over.empty:
        return
    name = over.index[0]
    rows = given[given["group"] == name]
    listing = ", ".join(f"{r.label} {r.share:g}" for r in rows.itertuples())
    raise ProfileError(
        source,
        f"{column} of {group} {_plain(name)!r} adds up to {over.iloc[0]:g} ({listing}); the "
        f"shares of one {group} add up to at most 1",
        row=int(rows.index[0]) + 1,
        column=column,
    )


def validate_frame(frame: pd.DataFrame, table: Table, source: str | Path) -> pd.DataFrame:
    """Validate an in-memory table (built-in examples, CSV imports) like a file."""
    try:
        data = pa.Table.from_pandas(frame, preserve_index=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError) as exc:
        raise ProfileError(
            source,
            f"cannot be converted to a {table.name} table: {first_line(exc)}",
            column=_unconvertible(frame),
        ) from None
    return to_frame(validate_arrow(data, table, source))


def _unconvertible(frame: pd.DataFrame) -> str | None:
    """The first column Arrow cannot hold (a number beyond 64 bits, mixed types), so that the
    error names it: Arrow's own message does not."""
    for name in frame.columns:
        try:
            pa.array(frame[name], from_pandas=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
            return str(name)
    return None


def to_frame(data: pa.Table) -> pd.DataFrame:
    """The pandas view every stage works on: dates as ``datetime.date``, lists as lists."""
    frame = pd.DataFrame(data.to_pandas(date_as_object=True))
    for f in data.schema:
        if pa.types.is_list(f.type):
            frame[f.name] = [list(v) if v is not None else [] for v in frame[f.name]]
    return frame


def read_table(path: str | Path, table: Table) -> pd.DataFrame:
    """Read and validate one Parquet file of ``table``."""
    path = Path(path)
    if not path.is_file():
        raise ProfileError(path, f"no such {table.name} file")
    try:
        _check_names_once(pq.read_schema(path).names, path)
        data = pq.read_table(path)
    except (pa.ArrowException, OSError) as exc:
        raise ProfileError(path, f"is not a readable Parquet file ({first_line(exc)})") from None
    return to_frame(validate_arrow(data, table, path))


def sweep_debris(folder: str | Path) -> list[Path]:
    """Remove the temporary files left in ``folder`` by writers of this host that are dead;
    returns what was removed. Another host's, or a live writer's, are left alone."""
    host = socket.gethostname().replace(".", "_")
    removed = []
    for path in Path(folder).glob(f".*.{host}-*.tmp"):
        pid = path.name.rsplit(f".{host}-", 1)[-1].split(".", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class WriteError(MemwallError):
    """A file that could not be written (a full disk, a file-size limit, no permission)."""


_CREATE_MODE = 0o666


@contextlib.contextmanager
def one_writer(target: str | Path) -> Iterator[None]:
    """Hold the writer lock of ``target``'s folder for a read-modify-write, so two writers at
    once cannot both read the old file and each drop the other's rows. The lock is a flock on
    the folder itself: nothing is left beside the file, and the kernel frees it however its
    holder ends (writers of other files in the folder wait their turn too)."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(target.parent, os.O_RDONLY | os.O_DIRECTORY)
    except OSError as exc:
        raise WriteError(f"{target}: cannot lock its folder ({exc.strerror})") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _umask() -> int:
    """This process's umask (reading it means setting it: put straight back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(target: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; rename it over ``target`` only on success.

    A write that fails for the host's reasons (a full disk, a size limit, a permission) leaves
    nothing behind and raises WriteError naming ``target``, in one line. The file gets the
    mode a plain ``open`` would give it (0666 less the umask: a shared history or drop folder
    stays readable by the team), and is flushed to disk before the rename, so a crash right
    after cannot leave an empty file under the target's name.
    """
    target = Path(target)
    tmp_path: Path | None = None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        # The temporary file names its writer, so a writer killed mid-write (kill -9) can be
        # told from one still writing, and its debris swept (sweep_debris).
        prefix = f".{target.name}.{socket.gethostname().replace('.', '_')}-{os.getpid()}."
        fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=".tmp", dir=target.parent)
        os.close(fd)
        tmp_path = Path(tmp)
        yield tmp_path
        tmp_path.chmod(_CREATE_MODE & ~_umask())
        with tmp_path.open("rb") as written:
            os.fsync(written.fileno())
        tmp_path.replace(target)
    except OSError as exc:
        why = exc.strerror or str(exc) or type(exc).__name__
        raise WriteError(f"{target}: cannot write ({why}); nothing was written there") from None
    finally:
        if tmp_path is not None:
            tmp_path.unlink(missing_ok=True)


def write_table(frame: pd.DataFrame, path: str | Path, table: Table) -> Path:
    """Validate ``frame`` against ``table`` and write it atomically with schema metadata."""
    path = Path(path)
    data = pa.Table.from_pandas(frame, preserve_index=False)
    data = validate_arrow(data, table, path)
    with atomic_path(path) as tmp:
        pq.write_table(data, tmp)
    return path

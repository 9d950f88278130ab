"""The published runs' backtest, with its leave-one-source-out errors kept on disk.

Leaving each source out refits the defaults once per source: 23 robust fits over the 219
runs, seconds of CPU that every audit, ``rank``, ``whatif``, ``observe`` and ``predict`` would
otherwise pay again for the same answer (the date bands' and step bands' class spreads come
from those errors). The errors
depend only on the runs, the catalog and memwall's model code, so they are kept per digest of
all three, as a small JSON file under the user's cache folder (``MEMWALL_CACHE_DIR``, else
``$XDG_CACHE_HOME/memwall``, else ``~/.cache/memwall``). A file that cannot be read is
recomputed over; a folder that cannot be written costs the recomputation, never an error.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Final

import pandas as pd

from hardware_profiles.published_runs import builtin_published_runs, read_published_runs
from tasks.analysis.supply.backtest import Backtest, backtest

CACHE_ENV: Final = "MEMWALL_CACHE_DIR"
# The code the errors depend on: the analysis and the profiles it reads.
_MODEL_CODE: Final = tuple(
    Path(__file__).resolve().parent.parent / folder
    for folder in ("tasks/analysis", "hardware_profiles")
)


def cache_dir() -> Path:
    """Where the errors are kept (the module docstring says which folder)."""
    if chosen := os.environ.get(CACHE_ENV):
        return Path(chosen)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "memwall"


def digest(runs: pd.DataFrame, catalog: pd.DataFrame) -> str:
    """SHA-256 of the runs, the catalog and every source file of the model."""
    h = hashlib.sha256()
    for frame in (runs, catalog):
        h.update(frame.to_csv(index=False).encode())
    for folder in _MODEL_CODE:
        for path in sorted(folder.rglob("*.py")):
            h.update(str(path.relative_to(folder.parent)).encode())
            h.update(path.read_bytes())
    return h.hexdigest()


def _read(path: Path) -> dict[str, float] | None:
    try:
        found = json.loads(path.read_text())
        return {str(k): float(v) for k, v in found["loso_error"].items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def _write(path: Path, errors: pd.Series) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(
            "w", dir=path.parent, prefix=path.name, suffix=".tmp", delete=False
        ) as out:
            json.dump({"loso_error": {str(k): float(v) for k, v in errors.items()}}, out)
        Path(out.name).replace(path)
    except OSError:
        return


def published_backtest(catalog: pd.DataFrame, runs: str | Path | None = None) -> Backtest:
    """:func:`~tasks.analysis.supply.backtest.backtest` of a published-runs file (or the runs
    memwall ships), its leave-one-source-out errors read from the cache where these runs,
    this catalog and this code were backtested before, and kept there otherwise."""
    table = builtin_published_runs() if runs is None else read_published_runs(runs)
    path = cache_dir() / f"published-backtest-{digest(table, catalog)}.json"
    known = _read(path)
    if known is not None:
        return backtest(table, catalog, loso=known)
    result = backtest(table, catalog)
    _write(path, result.runs.set_index("run_id")["loso_error"])
    return result

"""The wheels a GPU machine with no network needs to run memwall's probe path (and the device
check) on its own JAX, downloaded here into one folder.

    python -m benchmarks.device_wheels FOLDER [--all] [--python-version 3.12]
    make carry-wheels WHEELS=FOLDER [ARGS=--all]

For Linux x86-64 and CPython 3.12 (a GPU image's), it fetches memwall's own wheel (built from
this checkout) and every pinned line of ``requirements-probe.txt``; a range line (pyarrow, a
55 MB binary a GPU image usually has) is the image's own unless ``--all``. It keeps one version
of each project in FOLDER (two stop an install), then prints each wheel, the total and whether
it stays under the 30 MB a carried working tree can spare. On the GPU machine:

    pip install --no-index --find-links FOLDER --no-deps memwall
    pip install --no-index --find-links FOLDER -r requirements-probe.txt

(or ``pip install --no-index --no-deps --target DIR FOLDER/*.whl`` and ``PYTHONPATH=DIR``).
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Final

ROOT: Final = Path(__file__).resolve().parents[1]
REQUIREMENTS: Final = ROOT / "requirements-probe.txt"
BUDGET_BYTES: Final = 30 * 10**6
# The packages memwall's wheel holds (pyproject.toml's packages.find).
PACKAGES: Final = ("flows", "tasks", "hardware_profiles", "reports")
# manylinux tags a current GPU image's glibc (2.28 or newer) accepts; pip matches them exactly.
PLATFORMS: Final = (
    "manylinux_2_28_x86_64",
    "manylinux_2_27_x86_64",
    "manylinux_2_24_x86_64",
    "manylinux_2_17_x86_64",
    "manylinux2014_x86_64",
    "manylinux1_x86_64",
)


def canonical(name: str) -> str:
    """A project name as pip compares them (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def requirements(path: Path = REQUIREMENTS) -> tuple[list[str], list[str]]:
    """(pinned, ranged) requirement lines of ``path``, comments dropped."""
    lines = [line.split("#")[0].strip() for line in path.read_text().splitlines()]
    lines = [line for line in lines if line]
    return [r for r in lines if "==" in r], [r for r in lines if "==" not in r]


def project(requirement_or_wheel: str) -> str:
    """The canonical project name of a requirement line or a wheel's file name."""
    return canonical(re.split(r"[<>=!~;\[ ]|-\d", requirement_or_wheel, maxsplit=1)[0])


def download(folder: Path, wanted: list[str], python_version: str) -> None:
    platforms = [arg for tag in PLATFORMS for arg in ("--platform", tag)]
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--quiet",
        "--no-deps",
        "--only-binary=:all:",
        "--implementation",
        "cp",
        "--python-version",
        python_version,
        *platforms,
        "--dest",
        str(folder),
        *wanted,
    ]
    subprocess.run(command, check=True)


def build_memwall(folder: Path) -> None:
    """memwall's own wheel, built from a copy of the checkout's sources (a build in place
    would leave build/ and memwall.egg-info in the checkout)."""
    with tempfile.TemporaryDirectory() as scratch:
        source = Path(scratch) / "memwall"
        source.mkdir()
        for name in ("pyproject.toml", "README.md"):
            shutil.copy2(ROOT / name, source / name)
        for package in PACKAGES:
            shutil.copytree(
                ROOT / package, source / package, ignore=shutil.ignore_patterns("__pycache__")
            )
        command = [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w"]
        subprocess.run([*command, str(folder), str(source)], check=True)


def prune(folder: Path, keep: set[str]) -> list[Path]:
    """Remove the wheels of our projects that are not the ones just fetched (older versions);
    other projects' wheels in the folder are left alone."""
    removed = []
    ours = {project(name) for name in keep}
    for wheel in folder.glob("*.whl"):
        if project(wheel.name) in ours and wheel.name not in keep:
            wheel.unlink()
            removed.append(wheel)
    return removed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--all", action="store_true", help="the range lines (pyarrow) too")
    parser.add_argument("--python-version", default="3.12")
    args = parser.parse_args(argv)
    if args.folder.exists() and not args.folder.is_dir():
        print(f"device_wheels: error: {args.folder}: is a file, not a folder", file=sys.stderr)
        return 2
    pinned, ranged = requirements()
    wanted = pinned + (ranged if args.all else [])
    args.folder.mkdir(parents=True, exist_ok=True)
    before = {p.name for p in args.folder.glob("*.whl")}
    # Into a fresh subfolder first, so the names fetched now are known whatever was there.
    staging = args.folder / ".fetching"
    staging.mkdir(exist_ok=True)
    for stale in staging.glob("*.whl"):
        stale.unlink()
    try:
        download(staging, wanted, args.python_version)
        build_memwall(staging)
    except subprocess.CalledProcessError as exc:
        print(f"device_wheels: error: pip failed ({exc.returncode}); see above", file=sys.stderr)
        return 1
    fetched = sorted(staging.glob("*.whl"))
    for wheel in fetched:
        wheel.replace(args.folder / wheel.name)
    staging.rmdir()
    removed = prune(args.folder, {w.name for w in fetched})
    total = 0
    for wheel in sorted(args.folder / w.name for w in fetched):
        size = wheel.stat().st_size
        total += size
        print(f"{size / 1e6:8.2f} MB  {wheel.name}")
    for wheel in removed:
        print(f"  removed {wheel.name} (another version of a project fetched now)")
    verdict = "under" if total < BUDGET_BYTES else "OVER"
    print(
        f"{total / 1e6:8.2f} MB in {len(fetched)} wheels ({verdict} {BUDGET_BYTES / 1e6:.0f} MB) "
        f"for CPython {args.python_version} on Linux x86-64, in {args.folder}"
    )
    if not args.all and ranged:
        print(f"not carried (a GPU image's own serves; --all adds them): {', '.join(ranged)}")
    unchanged = before & {w.name for w in fetched}
    if unchanged:
        print(f"({len(unchanged)} of them were there already)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

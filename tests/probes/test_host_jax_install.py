"""memwall on a GPU host's own JAX, installed the way the README says, in a fresh virtual
environment standing in for a GPU image: the newest JAX on the registry (newer than memwall's
pin) and a pyarrow of its own, older than memwall's. The JAX stack must be there untouched
afterwards, and ``memwall probe --quick`` must run on it. The pinned end of the range is the rest
of the suite, which runs on the pin.

Needs a CPython 3.12 or newer (JAX's newest release needs 3.12; a GPU image's Python is 3.12)
and the package registry; skipped, saying which, where either is missing.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import jax
import pytest

from benchmarks import device_wheels

ROOT = Path(__file__).resolve().parents[2]
# A pyarrow the "image" brings: older than memwall's pin, inside requirements-probe.txt's range.
IMAGE_PYARROW = "17.0.0"
STACK = ("jax", "jaxlib", "numpy", "ml_dtypes", "pyarrow")
_OFFLINE_SIGNS = ("Failed to establish a new connection", "Temporary failure in name resolution")


def _version_of(python: str) -> tuple[int, int] | None:
    try:
        out = subprocess.run(
            [python, "-c", "import sys, venv, ensurepip; print(*sys.version_info[:2])"],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        ).stdout.split()
    except (OSError, subprocess.SubprocessError):
        return None
    return int(out[0]), int(out[1])


def python_at_least_312(exactly: tuple[int, int] | None = None) -> str | None:
    """A working CPython 3.12+ interpreter on this machine (PATH, then pyenv's versions)."""
    names = [shutil.which(f"python3.{minor}") for minor in range(12, 16)]
    pyenv = Path.home() / ".pyenv" / "versions"
    found = sorted(pyenv.glob("3.1[2-9]*/bin/python3")) if pyenv.is_dir() else []
    for candidate in [*(n for n in names if n), *map(str, found)]:
        version = _version_of(candidate)
        if version and version >= (3, 12) and (exactly is None or version == exactly):
            return candidate
    return None


def _run(command: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        command, capture_output=True, text=True, cwd=cwd, timeout=900, check=False
    )
    if result.returncode and any(sign in result.stderr for sign in _OFFLINE_SIGNS):
        pytest.skip(f"the package registry cannot be reached: {command[3:6]}")
    assert result.returncode == 0, f"{command}\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
    return result


def gpu_image(python: str, folder: Path) -> Path:
    """A fresh venv holding the newest JAX on the registry and an older pyarrow of its own."""
    _run([python, "-m", "venv", str(folder)])
    venv_python = folder / "bin" / "python"
    pip = [str(venv_python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    _run([*pip, "jax", f"pyarrow=={IMAGE_PYARROW}"])
    return venv_python


def installed(venv_python: Path) -> dict[str, str]:
    script = (
        "import json\nfrom importlib.metadata import version\n"
        f"print(json.dumps({{n: version(n) for n in {STACK!r}}}))"
    )
    return dict(json.loads(_run([str(venv_python), "-c", script]).stdout))


def checkout_copy(folder: Path) -> Path:
    """The checkout as a user has it (its tracked sources), so a build in it stays in tmp."""
    ignore = shutil.ignore_patterns(".git", ".venv", "__pycache__", "build", "*.egg-info", ".whl")
    return Path(shutil.copytree(ROOT, folder, ignore=ignore))


def _numbers(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in version.split(".")[:3] if p.isdigit())


def _probe_runs_on(venv: Path, stack: dict[str, str]) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    result = subprocess.run(
        [str(venv / "bin" / "memwall"), "probe", "--quick", "--json"],
        capture_output=True,
        text=True,
        cwd=venv,
        env=env,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    rows = json.loads(result.stdout)
    assert {r["probe"] for r in rows} >= {"copy", "triad", "matmul"}
    assert "failed" not in {r["status"] for r in rows}
    # Every row says it ran on the image's JAX, not memwall's pin.
    stack_line = f"jax {stack['jax']}; jaxlib {stack['jaxlib']}; "
    assert all(r["software"].startswith(stack_line) for r in rows), rows[0]["software"]


@pytest.mark.slow
@pytest.mark.integration
def test_the_documented_install_keeps_the_host_s_newer_jax(tmp_path: Path) -> None:
    python = python_at_least_312()
    if python is None:
        pytest.skip("no CPython 3.12 or newer here (the newest JAX needs one)")
    venv_python = gpu_image(python, tmp_path / "image")
    before = installed(venv_python)
    assert _numbers(before["jax"]) > _numbers(jax.__version__), before  # newer than the pin
    source = checkout_copy(tmp_path / "memwall")
    # README, "On a GPU host's own JAX": memwall without its dependencies, then the probe
    # path's own requirements.
    pip = [str(venv_python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    _run([*pip, "--no-deps", "."], cwd=source)
    _run([*pip, "-r", "requirements-probe.txt"], cwd=source)
    assert installed(venv_python) == before
    _probe_runs_on(tmp_path / "image", before)


@pytest.mark.slow
@pytest.mark.integration
def test_the_carried_wheels_install_with_no_network(tmp_path: Path) -> None:
    python = python_at_least_312(exactly=(3, 12))
    if python is None:
        pytest.skip("no CPython 3.12 here (the carried wheels are built for a 3.12 image)")
    wheels = tmp_path / "wheels"
    command = [sys.executable, "-m", "benchmarks.device_wheels", str(wheels)]
    listing = _run(command, cwd=ROOT).stdout
    total = sum(p.stat().st_size for p in wheels.glob("*.whl"))
    assert total < device_wheels.BUDGET_BYTES, listing
    assert f"{total / 1e6:8.2f} MB in " in listing
    venv_python = gpu_image(python, tmp_path / "image")
    before = installed(venv_python)
    # README: on the GPU machine, from the folder alone.
    offline = [str(venv_python), "-m", "pip", "install", "--quiet", "--no-index"]
    _run([*offline, "--find-links", str(wheels), "--no-deps", "memwall"])
    _run([*offline, "--find-links", str(wheels), "-r", str(ROOT / "requirements-probe.txt")])
    assert installed(venv_python) == before
    _probe_runs_on(tmp_path / "image", before)


def test_the_probe_requirements_pin_what_ci_runs() -> None:
    """requirements-probe.txt pins the versions constraints.txt pins (what CI ran), and names
    no part of the JAX stack: the host's own stays."""
    pins = {
        device_wheels.project(line): line.split("==")[1]
        for line in (ROOT / "constraints.txt").read_text().splitlines()
        if "==" in line
    }
    pinned, ranged = device_wheels.requirements()
    for line in pinned:
        assert pins.get(device_wheels.project(line)) == line.split("==")[1], line
    names = {device_wheels.project(line) for line in pinned + ranged}
    assert not names & {"jax", "jaxlib", "numpy", "ml-dtypes", "scipy", "opt-einsum"}
    assert [device_wheels.project(r) for r in ranged] == ["pyarrow"]
    # The image's pyarrow this file's test installs is inside the range it states.
    assert _numbers(IMAGE_PYARROW) >= _numbers(ranged[0].split(">=")[1])

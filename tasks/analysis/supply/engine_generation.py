"""Engine generation: which era of serving engine ran a published run, or will run a workload.

The same model on the same hardware runs about twice as fast on a 2026 engine as on an
early-2025 one (DeepSeek-R1 FP8 on 8 x MI300X under SGLang: 34.9 ms per output token at
concurrency 4 with 0.4.2, early 2025, in dstack's runs; 14.9 ms with 0.5.x in InferenceX's).
What changed is the engine, not the hardware: CUDA/HIP graphs captured by default for every
decode batch, overlapped CPU scheduling, fused-MoE and grouped-GEMM kernels, DeepEP-style
all-to-all. The routed experts' share of the dense efficiencies is fitted per generation
(``tasks.analysis.supply.published_fit``, which says why the per-layer overhead is not); the
hardware's efficiencies are not.

A row's generation comes from its engine's release date: a date stamp in the version string
(a container tag such as ``..._20250605`` or ``atom20260511``) is that build's date; else the
version is dated by :data:`RELEASES`, the newest listed release of that engine family at or
below it, to the day (each entry says where its date can be checked); a post, rc or dev build
is dated by its series' release, days to a few months off (vLLM 0.7.3.dev138, built before
0.7.3, takes 0.7.3's date; TensorRT-LLM 1.1.0rc2, with no 1.1 listed, takes 1.0.0's): enough
for a cut that no published run's engine sits near; a version older than every listed
release of its family came out before the oldest of them, so it is early where that one is
(vLLM 0.2, older than 0.4.3 of 2024-06-01); else the date the source says it was measured on
(``measured YYYY-MM-DD`` in the row's note); else the generation is :data:`UNKNOWN`.

Two generations, cut at :data:`CUT` (2025-07-01). The published runs' engines fall either side
of mid-2025 with none between (the nearest: a vLLM 0.9.0.1 container built 2025-06-05, then
TensorRT-LLM 1.0, released 2025-09-24): before it SGLang 0.4.x, vLLM 0.4-0.9 and TensorRT-LLM
0.x (its TensorRT-engine workflow); from it SGLang 0.5 (large-scale expert parallel with DeepEP
and two-batch overlap, added to 0.4.6-0.4.9 in May-July 2025 and the default path in 0.5, whose
first build is 0.5.0rc0 of 2025-08-08), vLLM 0.10 on (the V1 engine alone, full CUDA graphs;
0.10.0 of 2025-07-24) and TensorRT-LLM 1.x (PyTorch backend with CUDA graphs and the overlap
scheduler by default). More buckets would leave too few sources in each for the
:data:`~tasks.analysis.supply.published_fit.MIN_CLASS_SOURCES` rule.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Final

CUT: Final = date(2025, 7, 1)
EARLY: Final = "engines before 2025-07"
CURRENT: Final = "engines from 2025-07"
# Oldest first; the last is what a workload that names no engine is taken to run.
GENERATIONS: Final = (EARLY, CURRENT)
NEWEST: Final = GENERATIONS[-1]
UNKNOWN: Final = "unknown engine generation"


@dataclass(frozen=True)
class Release:
    """One engine release: its family (:func:`family`), version and date, and where it is
    stated."""

    family: str
    version: str
    released: date
    source: str


_SGLANG: Final = "https://github.com/sgl-project/sglang/releases/tag"
_VLLM: Final = "https://github.com/vllm-project/vllm/releases/tag"
_TRTLLM: Final = "https://github.com/NVIDIA/TensorRT-LLM/releases/tag"
_TRTLLM_PR: Final = "https://github.com/NVIDIA/TensorRT-LLM/pull"
_TRITON_TAG: Final = "https://github.com/triton-inference-server/tensorrtllm_backend/releases/tag"
# Day precision. SGLang and vLLM: the day the release's wheel was built (the date of every
# file inside the wheel the release published, which anyone who downloads it can read).
# TensorRT-LLM: the day its release-notes pull request was opened, or the date of the
# same-numbered tag of tensorrtllm_backend (Triton's backend, tagged by NVIDIA with each
# release: the same day as the pull request for 0.10.0, 0.16.0 and 0.18.2).
RELEASES: Final = (
    Release("sglang", "0.4.0", date(2024, 12, 3), f"{_SGLANG}/v0.4.0 (wheel built 2024-12-03)"),
    Release("sglang", "0.4.1", date(2024, 12, 25), f"{_SGLANG}/v0.4.1 (wheel built 2024-12-25)"),
    Release("sglang", "0.4.2", date(2025, 1, 27), f"{_SGLANG}/v0.4.2 (wheel built 2025-01-27)"),
    Release("sglang", "0.4.3", date(2025, 2, 14), f"{_SGLANG}/v0.4.3 (wheel built 2025-02-14)"),
    # No 0.5.0 was released: 0.5.0rc0-rc2, then 0.5.1 (wheel built 2025-08-23).
    Release(
        "sglang", "0.5.0rc0", date(2025, 8, 8), f"{_SGLANG}/v0.5.0rc0 (wheel built 2025-08-08)"
    ),
    Release("sglang", "0.5.6", date(2025, 12, 3), f"{_SGLANG}/v0.5.6 (wheel built 2025-12-03)"),
    Release("sglang", "0.5.7", date(2026, 1, 1), f"{_SGLANG}/v0.5.7 (wheel built 2026-01-01)"),
    Release("sglang", "0.5.9", date(2026, 2, 23), f"{_SGLANG}/v0.5.9 (wheel built 2026-02-23)"),
    Release("sglang", "0.5.12", date(2026, 5, 16), f"{_SGLANG}/v0.5.12 (wheel built 2026-05-16)"),
    Release("vllm", "0.4.3", date(2024, 6, 1), f"{_VLLM}/v0.4.3 (wheel built 2024-06-01)"),
    Release("vllm", "0.7.3", date(2025, 2, 20), f"{_VLLM}/v0.7.3 (wheel built 2025-02-20)"),
    Release("vllm", "0.8.0", date(2025, 3, 18), f"{_VLLM}/v0.8.0 (wheel built 2025-03-18)"),
    Release(
        "vllm",
        "0.9.0",
        date(2025, 5, 27),
        f"{_VLLM}/v0.9.0 (wheel built 2025-05-27; announced 2025-05-28 in vllm#18539)",
    ),
    Release("vllm", "0.10.0", date(2025, 7, 24), f"{_VLLM}/v0.10.0 (wheel built 2025-07-24)"),
    Release("vllm", "0.17.0", date(2026, 3, 6), f"{_VLLM}/v0.17.0 (wheel built 2026-03-06)"),
    Release(
        "tensorrt-llm",
        "0.5.0",
        date(2023, 10, 19),
        f"{_TRTLLM}/v0.5.0 (the first public release: https://developer.nvidia.com/blog/"
        "optimizing-inference-on-llms-with-tensorrt-llm-now-publicly-available/)",
    ),
    Release(
        "tensorrt-llm",
        "0.6.1",
        date(2023, 12, 4),
        f"{_TRTLLM}/v0.6.1 ({_TRITON_TAG}/v0.6.1, tag dated 2023-12-04)",
    ),
    Release(
        "tensorrt-llm",
        "0.7.0",
        date(2023, 12, 20),
        f"{_TRTLLM}/v0.7.0 ({_TRITON_TAG}/v0.7.0, tag dated 2023-12-20)",
    ),
    Release(
        "tensorrt-llm",
        "0.10.0",
        date(2024, 6, 5),
        f"{_TRTLLM}/v0.10.0 ({_TRTLLM_PR}/1734 opened and {_TRITON_TAG}/v0.10.0 dated 2024-06-05)",
    ),
    Release(
        "tensorrt-llm",
        "0.16.0",
        date(2024, 12, 24),
        f"{_TRTLLM}/v0.16.0 ({_TRTLLM_PR}/2611 opened and {_TRITON_TAG}/v0.16.0 dated 2024-12-24)",
    ),
    Release(
        "tensorrt-llm",
        "0.17.0",
        date(2025, 1, 30),
        f"{_TRTLLM}/v0.17.0 (release-notes pull request {_TRTLLM_PR}/2725, 2025-01-30)",
    ),
    Release(
        "tensorrt-llm",
        "0.18.2",
        date(2025, 4, 16),
        f"{_TRTLLM}/v0.18.2 ({_TRTLLM_PR}/3611 opened and {_TRITON_TAG}/v0.18.2 dated 2025-04-16)",
    ),
    Release(
        "tensorrt-llm",
        "1.0.0",
        date(2025, 9, 24),
        f"{_TRTLLM}/v1.0.0 ({_TRITON_TAG}/v1.0.0, tag dated 2025-09-24)",
    ),
)
# A build date: eight digits not inside a hexadecimal word (a commit hash is no date).
_STAMP: Final = re.compile(
    r"(?<![0-9a-f])(20[2-3]\d)(0[1-9]|1[0-2])(0[1-9]|[12]\d|3[01])(?![0-9a-f])"
)
_NUMBER: Final = re.compile(r"(?<![\d.])v?(\d+)\.(\d+)(?:\.(\d+))?")
_MEASURED: Final = re.compile(r"measured (\d{4})-(\d{2})-(\d{2})")


def family(engine: str) -> str:
    """An engine column's family: its name before any parenthesis, lower case
    (``vLLM (ROCm)`` -> ``vllm``, ``TensorRT-LLM (PyTorch backend)`` -> ``tensorrt-llm``)."""
    return engine.split("(")[0].strip().lower()


def _number(version: str) -> tuple[int, int, int] | None:
    """The first dotted release number in a version string (``v0.5.12-cu130`` -> 0.5.12,
    ``0.7a`` -> 0.7.0); None for a commit or nothing."""
    found = _NUMBER.search(version)
    if found is None:
        return None
    major, minor, patch = found.groups()
    return int(major), int(minor), int(patch or 0)


def release_date(engine: str, version: str) -> date | None:
    """When ``engine`` at ``version`` was built or released (the module docstring's order),
    or None where neither a stamp nor a listed release dates it."""
    stamp = _STAMP.search(version)
    if stamp is not None:
        return date(*(int(part) for part in stamp.groups()))
    number = _number(version)
    if number is None:
        return None
    listed = [
        r.released
        for r in RELEASES
        if r.family == family(engine) and (_number(r.version) or number) <= number
    ]
    return max(listed) if listed else None


def oldest_release(engine: str, version: str) -> Release | None:
    """The family's oldest listed release where ``version`` (a datable number, no stamp) is
    older than every listed one: it came out before that release, so on its side of the cut
    when that release is before it; None otherwise."""
    number = _number(version)
    if number is None or _STAMP.search(version) is not None:
        return None
    listed = [r for r in RELEASES if r.family == family(engine)]
    older = [r for r in listed if (_number(r.version) or number) > number]
    if not listed or len(older) < len(listed):
        return None
    return min(older, key=lambda r: r.released)


def _before(engine: str, version: str) -> Release | None:
    """The release ``version`` came out before, where that puts it before the cut."""
    first = oldest_release(engine, version)
    return first if first is not None and first.released <= CUT else None


def generation_of(released: date | None) -> str:
    """The generation of an engine released (or a run measured) on ``released``."""
    if released is None:
        return UNKNOWN
    return EARLY if released < CUT else CURRENT


def run_generation(engine: str, version: str, note: str) -> str:
    """A published run's generation: from its engine version, else from the measurement
    date its note states (``measured YYYY-MM-DD``), else :data:`UNKNOWN`."""
    released = release_date(engine, version) if version else None
    if released is None and version and _before(engine, version) is not None:
        return EARLY
    if released is None:
        measured = _MEASURED.search(note)
        released = date(*(int(p) for p in measured.groups())) if measured else None
    return generation_of(released)


def workload_generation(engine: str | None) -> tuple[str, str]:
    """The generation a workload's stated engine (``NAME`` or ``NAME VERSION``, e.g.
    ``SGLang 0.4.3``) runs, and why; with no engine or no datable version, the newest: a
    fleet planned today runs a current engine."""
    if not engine:
        return NEWEST, "no engine stated: a fleet planned today runs a current engine"
    name, _, version = engine.strip().partition(" ")
    released = release_date(name, version.strip()) if version.strip() else None
    before = _before(name, version.strip()) if version.strip() and released is None else None
    if before is not None:
        return EARLY, (
            f"engine {engine!r} predates {before.version}, the oldest listed release of its "
            f"family ({before.released:%Y-%m})"
        )
    if released is None:
        return NEWEST, f"engine {engine!r} names no datable version: taken as a current release"
    return generation_of(released), f"engine {engine!r} released {released:%Y-%m}"


# The engine families whose versions memwall can date, in :data:`RELEASES` order.
FAMILIES: Final = tuple(dict.fromkeys(r.family for r in RELEASES))


def stated_engine_problem(engine: str) -> str | None:
    """Why a workload's stated engine (``NAME`` or ``NAME VERSION``) cannot be read, None
    where it can. A name alone is read whatever it is (a current engine, as with no engine);
    a version is read only for a family :data:`RELEASES` dates: for another, the generation
    it asks for could not be told, and taking it as current would hide that."""
    name, _, version = engine.strip().partition(" ")
    if not name:
        return "must not be empty (NAME or NAME VERSION, e.g. SGLang 0.4.3; null: a current one)"
    if version.strip() and family(name) not in FAMILIES:
        return (
            f"{engine!r}: memwall dates the versions of {', '.join(FAMILIES)} only; give one "
            "of those with its version, or the engine's name alone (taken as a current one)"
        )
    return None

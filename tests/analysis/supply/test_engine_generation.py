"""Engine generation: a run's engine and version (or the date it was measured) mapped to an
era, and the fit's per-generation overhead with its fallback, both worked by hand."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from hardware_profiles.published_runs import builtin_published_runs
from tasks.analysis.supply.engine_generation import (
    CURRENT,
    EARLY,
    NEWEST,
    UNKNOWN,
    family,
    release_date,
    run_generation,
    workload_generation,
)
from tasks.analysis.supply.published_fit import fit


def test_a_version_is_dated_by_the_newest_listed_release_of_its_family_at_or_below_it() -> None:
    """SGLang 0.4.3.post2: number 0.4.3, listed SGLang releases at or below it 0.4.0
    (2024-12-03), 0.4.1 (2024-12-25), 0.4.2 (2025-01-27), 0.4.3 (2025-02-14): dated
    2025-02-14, before the 2025-07-01 cut. v0.5.12-cu130: 0.5.12, listed itself (2026-05-16):
    after the cut. vLLM (vllm-gaudi) 0.17.1rc1.dev127+gf296a1966: family vllm, 0.17.1, newest
    at or below 0.17.0 (2026-03-06). TensorRT-LLM 0.7a: 0.7.0, listed itself (2023-12-20).
    SGLang 0.3.0 is older than every listed SGLang release: undated, though early, since it came
    out before 0.4.0 (2024-12-03)."""
    assert family("vLLM (vllm-gaudi)") == "vllm"
    assert family("TensorRT-LLM (PyTorch backend)") == "tensorrt-llm"
    assert release_date("SGLang", "0.4.3.post2") == date(2025, 2, 14)
    assert run_generation("SGLang", "0.4.3.post2", "") == EARLY
    assert release_date("SGLang", "v0.5.12-cu130") == date(2026, 5, 16)
    assert run_generation("SGLang", "v0.5.12-cu130", "") == CURRENT
    assert release_date("vLLM (vllm-gaudi)", "0.17.1rc1.dev127+gf296a1966") == date(2026, 3, 6)
    assert release_date("TensorRT-LLM", "0.7a") == date(2023, 12, 20)
    assert release_date("SGLang", "0.3.0") is None
    assert run_generation("SGLang", "0.3.0", "") == EARLY


def test_the_shipped_runs_nearest_the_cut_are_dated_by_their_verified_releases() -> None:
    """Versions as the shipped published runs spell them, each dated by the release checked
    at its source (RELEASES): SGLang 0.4.2.post4 (dstack's early DeepSeek-R1 runs) by 0.4.2,
    wheel built 2025-01-27, early; TensorRT-LLM 0.16.0 by v0.16.0 of 2024-12-24, early;
    SGLang 0.5.6 (the SGLang cookbook's runs) by 0.5.6, wheel built 2025-12-03, current.
    Moving any of these dates across 2025-07-01 flips its runs' generation and the fit's
    per-generation routed-expert share."""
    runs = builtin_published_runs()
    pinned = {
        ("SGLang", "0.4.2.post4"): (date(2025, 1, 27), EARLY),
        ("TensorRT-LLM", "0.16.0"): (date(2024, 12, 24), EARLY),
        ("SGLang", "0.5.6"): (date(2025, 12, 3), CURRENT),
    }
    for (engine, version), (released, generation) in pinned.items():
        rows = runs[(runs["engine"] == engine) & (runs["engine_version"] == version)]
        assert len(rows) > 0, f"{engine} {version} is no longer in published_runs.csv"
        assert release_date(engine, version) == released
        assert {run_generation(engine, version, str(n)) for n in rows["note"]} == {generation}


def test_a_build_stamp_dates_a_container_tag_and_a_commit_hash_is_no_date() -> None:
    """rocm/vllm:rocm6.4.1_vllm_0.9.0.1_20250605: stamp 2025-06-05, before the cut (the
    ROCm 6.4.1 in the tag is not the version). ATOM's ..._atom20260511: 2026-05-11. A commit
    hash with eight digits inside it (...a20250101b...) is no stamp and no version: the note's
    measurement date decides, else the generation is unknown."""
    rocm = "rocm/vllm:rocm6.4.1_vllm_0.9.0.1_20250605"
    assert release_date("vLLM (ROCm)", rocm) == date(2025, 6, 5)
    assert run_generation("vLLM (ROCm)", rocm, "") == EARLY
    atom = "rocm7.2.3_ubuntu24.04_py3.12_pytorch_release_2.10.0_atom20260511"
    assert release_date("ATOM (AMD)", atom) == date(2026, 5, 11)
    commit = "commit 9f3a20250101b6261862419c33d6ce2313aff1e7"
    assert release_date("SGLang-JAX", commit) is None
    assert run_generation("SGLang-JAX", commit, "tp=16; measured 2025-11-02") == CURRENT
    assert run_generation("SGLang-JAX", commit, "no date") == UNKNOWN
    assert run_generation("TensorRT-LLM", "", "measured 2025-06-30") == EARLY


def test_a_workload_without_an_engine_or_a_datable_version_runs_the_newest_generation() -> None:
    assert NEWEST == CURRENT
    assert workload_generation(None)[0] == NEWEST
    assert workload_generation("SGLang")[0] == NEWEST
    generation, why = workload_generation("SGLang 0.4.3")
    assert generation == EARLY
    assert why == "engine 'SGLang 0.4.3' released 2025-02"


def test_a_version_older_than_every_listed_release_is_early_and_says_which_it_predates() -> None:
    """vLLM 0.2.1: the listed vLLM releases are 0.4.3 (2024-06-01) and later, all above it,
    so it came out before 2024-06-01, before the 2025-07-01 cut: early, for a workload and for
    a published run alike. release_date still gives no date (none is known). vLLM 0.4.3 itself
    is dated by its own entry; a family memwall does not list stays as it was (a workload's
    name alone: current; a run: unknown)."""
    assert release_date("vLLM", "0.2.1") is None
    generation, why = workload_generation("vLLM 0.2.1")
    assert generation == EARLY
    assert why == (
        "engine 'vLLM 0.2.1' predates 0.4.3, the oldest listed release of its family (2024-06)"
    )
    assert run_generation("vLLM", "0.2.1", "") == EARLY
    assert workload_generation("vLLM 0.4.3") == (EARLY, "engine 'vLLM 0.4.3' released 2024-06")
    assert run_generation("gpt-fast", "0.1", "") == UNKNOWN


def _run(
    run_id: str,
    kind: str,
    source: str,
    generation: str,
    memory_s: float,
    expert_s: float,
    measured_s: float,
) -> dict[str, object]:
    """A decode fit row's terms at efficiency 1: memory and routed-expert reads only."""
    return {
        "run_id": run_id, "phase": "decode", "vendor": "NVIDIA", "architecture_class": kind,
        "source": source, "engine_generation": generation, "memory_s_at_1": memory_s,
        "expert_memory_s_at_1": expert_s, "compute_s_at_1": 0.0, "expert_compute_s_at_1": 0.0,
        "attention_s": 0.0, "communication_s": 0.0, "layers": 0,
        "prefill_memory_s_at_1": 0.0, "prefill_compute_s_at_1": 0.0, "prefill_attention_s": 0.0,
        "prefill_communication_s": 0.0, "prefill_steps": 0.0, "load_compute_s_at_1": 0.0,
        "load_attention_s": 0.0, "measured_step_s": measured_s,
    }  # fmt: skip


def _rows(early_sources: tuple[str, str]) -> pd.DataFrame:
    """Runs measured at e_bw = 0.5 with step = (M + X / r) / 0.5 (ms):

    - dense (r plays no part), source s: M = 1 -> 2; M = 3 -> 6;
    - MLA-MoE on early engines, r = 0.25: M = 1, X = 1 -> (1 + 4) / 0.5 = 10;
      M = 2, X = 0.5 -> (2 + 2) / 0.5 = 8;
    - MLA-MoE on current engines, r = 0.5, sources c and d: M = 1, X = 1 -> (1 + 2) / 0.5 = 6;
      M = 2, X = 1 -> (2 + 2) / 0.5 = 8;
    - MLA-MoE of unknown generation, source e, r = 1/3: M = 1, X = 1 -> (1 + 3) / 0.5 = 8.
    """
    a, b = early_sources
    return pd.DataFrame(
        [
            _run("d1", "dense", "s", CURRENT, 1e-3, 0.0, 2e-3),
            _run("d2", "dense", "s", CURRENT, 3e-3, 0.0, 6e-3),
            _run("e1", "MLA-MoE", a, EARLY, 1e-3, 1e-3, 10e-3),
            _run("e2", "MLA-MoE", b, EARLY, 2e-3, 0.5e-3, 8e-3),
            _run("c1", "MLA-MoE", "c", CURRENT, 1e-3, 1e-3, 6e-3),
            _run("c2", "MLA-MoE", "d", CURRENT, 2e-3, 1e-3, 8e-3),
            _run("u1", "MLA-MoE", "e", UNKNOWN, 1e-3, 1e-3, 8e-3),
        ]
    )


def test_each_generation_with_two_sources_fits_its_own_share_and_the_rest_fall_back() -> None:
    """Early and current MLA-MoE rows each come from two sources: each generation gets its
    own r, and the fit is exact (e_bw = 0.5, r = 0.25 and 0.5; the unknown row's shared r
    1/3). A run of unknown generation is predicted with r refitted over all five MLA-MoE
    rows, e_bw held: between the two, and its source says so."""
    fitted = fit(_rows(("a", "b")))
    bandwidth = fitted.lookup("decode", "NVIDIA")
    assert bandwidth is not None and bandwidth.value == pytest.approx(0.5, rel=1e-3)
    early = fitted.experts("decode", "MLA-MoE", EARLY)
    current = fitted.experts("decode", "MLA-MoE", CURRENT)
    assert early.value == pytest.approx(0.25, rel=1e-3)
    assert current.value == pytest.approx(0.5, rel=1e-3)
    assert early.source == (
        "fitted on 2 published runs (decode, MLA-MoE, engines before 2025-07, 2 sources)"
    )
    unknown = fitted.experts("decode", "MLA-MoE", UNKNOWN)
    assert 0.25 < unknown.value < 0.5
    assert unknown.source == (
        "fitted on 5 published runs (decode, MLA-MoE, every engine generation, 5 sources); "
        "pooled over engine generations: unknown engine generation has no fit of its own"
    )
    # Without a generation (the pooled figure itself), no fallback note.
    assert fitted.experts("decode", "MLA-MoE").value == unknown.value
    assert "pooled" not in fitted.experts("decode", "MLA-MoE").source


def test_a_generation_whose_rows_come_from_one_source_takes_the_pooled_share() -> None:
    """Both early rows from source a: fitted alone, the early r would be that one page's
    engine and harness (the MIN_CLASS_SOURCES rule): no r of its own, and an early run is
    predicted with the class's r over every generation, which says so."""
    fitted = fit(_rows(("a", "a")))
    assert set(fitted.generation_experts) == {("MLA-MoE", CURRENT)}
    early = fitted.experts("decode", "MLA-MoE", EARLY)
    assert early.value == fitted.experts("decode", "MLA-MoE").value
    assert early.source.endswith(f"pooled over engine generations: {EARLY} has no fit of its own")

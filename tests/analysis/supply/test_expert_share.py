"""Decode's routed-expert matmuls at their class's own share r of the dense efficiencies:
the split of a step, and the fit's class parameter, both worked by hand.

The step (``predict``). Mixtral-8x7B decode, batch 1, context 1024, bf16, over tp=2 of the
accelerator x1 of ``test_predict`` (2e12 B/s, 1e15 bf16 FLOP/s) at efficiencies 0.5 and 0.5
(usable 1e12 B/s, 5e14 FLOP/s). One token routes to top-2 of 8 experts: 8·(1 − (1 − 2/8)^1)
= 2 experts touched per layer, each of 3·4096·14336 = 176,160,768 weights; over 32 layers
that is 2·32·176,160,768 = 11,274,289,152 weights, read at 2 B: 22,548,578,304 B, and
multiplied by one token: 2 FLOPs each, 22,548,578,304 FLOPs. Split over 2 devices:
11,274,289,152 B and FLOPs on the busiest. At r = 0.5 each expert byte and FLOP costs 1/r = 2
dense ones, so against r = 1 the memory time grows by (2 − 1)·11,274,289,152 / 1e12 =
11.274289152 ms and the compute time by 11,274,289,152 / 5e14 = 22.548578304 us.
"""

from __future__ import annotations

import pandas as pd
import pytest

from tasks.analysis.supply.efficiency import EXPERTS_AS_DENSE, Efficiency, FittedDefaults
from tasks.analysis.supply.predict import Prediction, predict
from tasks.analysis.supply.published_fit import fit
from tasks.analysis.workload.layout import parse_layout
from tasks.analysis.workload.presets import preset
from tasks.analysis.workload.workload_model import estimate
from tests.analysis.supply.test_predict import HALF, X1

MIXTRAL = preset("mixtral-8x7b")


def _step(arch_name: str, share: float) -> Prediction:
    arch = preset(arch_name)
    est = estimate(arch, phase="decode", batch=1, context=1024)
    experts = Efficiency(share, "test", 0.0)
    return predict(arch, est, X1, HALF, HALF, 2, layout=parse_layout("tp=2"), experts=experts)


def test_the_routed_experts_bytes_and_flops_run_at_their_share_of_the_dense_efficiencies() -> None:
    dense, half = _step("mixtral-8x7b", 1.0), _step("mixtral-8x7b", 0.5)
    assert dense.figures.expert_read_bytes_per_device == pytest.approx(11_274_289_152)
    assert dense.figures.expert_flops_per_device == pytest.approx(11_274_289_152)
    extra_memory = half.memory_time_s - dense.memory_time_s
    extra_compute = half.compute_time_s - dense.compute_time_s
    assert extra_memory == pytest.approx(11.274289152e-3)
    assert extra_compute == pytest.approx(22.548578304e-6)
    assert half.expert_efficiency.value == 0.5


def test_a_dense_model_has_no_expert_matmuls_to_slow() -> None:
    assert _step("llama-2-7b", 0.5).step_time_s == _step("llama-2-7b", 1.0).step_time_s


def test_the_share_is_decodes_only_and_a_class_without_a_fit_runs_as_dense() -> None:
    fitted = FittedDefaults(expert_matmuls={"MLA-MoE": Efficiency(0.25, "fit", 0.1)})
    assert fitted.experts("decode", "MLA-MoE").value == 0.25
    # Prefill multiplies hundreds of tokens per expert: a GEMM like the others.
    assert fitted.experts("prefill", "MLA-MoE") is EXPERTS_AS_DENSE
    assert fitted.experts("decode", "MoE") is EXPERTS_AS_DENSE
    assert fitted.experts("decode", "dense") is EXPERTS_AS_DENSE


def _run(
    run_id: str, kind: str, source: str, memory_s: float, expert_s: float, measured_s: float
) -> dict[str, object]:
    """A decode fit row's terms at efficiency 1: memory and routed-expert reads only."""
    return {
        "run_id": run_id, "phase": "decode", "vendor": "NVIDIA", "architecture_class": kind,
        "source": source, "memory_s_at_1": memory_s, "expert_memory_s_at_1": expert_s,
        "compute_s_at_1": 0.0, "expert_compute_s_at_1": 0.0, "attention_s": 0.0,
        "communication_s": 0.0, "layers": 0, "prefill_memory_s_at_1": 0.0,
        "prefill_compute_s_at_1": 0.0, "prefill_attention_s": 0.0,
        "prefill_communication_s": 0.0, "prefill_steps": 0.0, "load_compute_s_at_1": 0.0,
        "load_attention_s": 0.0, "measured_step_s": measured_s,
    }  # fmt: skip


def test_the_fit_recovers_a_class_share_from_two_sources_and_none_from_one() -> None:
    """Runs measured at e_bw = 0.5 and, for MLA-MoE, r = 0.25 (step = (M + X / r) / e_bw):

    - dense, 1 ms read: 1 / 0.5 = 2 ms; dense, 3 ms: 6 ms;
    - MLA-MoE from source a, 1 ms + 1 ms of experts: (1 + 1 / 0.25) / 0.5 = 10 ms;
      from source b, 2 ms + 0.5 ms: (2 + 0.5 / 0.25) / 0.5 = 8 ms;
    - MoE (Mixtral-like), both from source c, 1 ms + 1 ms at r = 1: (1 + 1) / 0.5 = 4 ms and
      2 ms + 1 ms: 6 ms. One source only: no fit of its own, so its experts stay as dense.
    The fit is exact: e_bw = 0.5, r[MLA-MoE] = 0.25, every residual 0."""
    rows = pd.DataFrame(
        [
            _run("d1", "dense", "s", 1e-3, 0.0, 2e-3),
            _run("d2", "dense", "s", 3e-3, 0.0, 6e-3),
            _run("m1", "MLA-MoE", "a", 1e-3, 1e-3, 10e-3),
            _run("m2", "MLA-MoE", "b", 2e-3, 0.5e-3, 8e-3),
            _run("q1", "MoE", "c", 1e-3, 1e-3, 4e-3),
            _run("q2", "MoE", "c", 2e-3, 1e-3, 6e-3),
        ]
    )
    fitted = fit(rows)
    bandwidth = fitted.lookup("decode", "NVIDIA")
    assert bandwidth is not None
    assert bandwidth.value == pytest.approx(0.5, rel=1e-4)
    share = fitted.experts("decode", "MLA-MoE")
    assert share.value == pytest.approx(0.25, rel=1e-4)
    assert share.source == "fitted on 2 published runs (decode, MLA-MoE, 2 sources)"
    assert share.spread < 1e-4
    assert set(fitted.expert_matmuls) == {"MLA-MoE"}
    assert fitted.experts("decode", "MoE") is EXPERTS_AS_DENSE

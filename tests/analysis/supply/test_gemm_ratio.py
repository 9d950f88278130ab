"""A compute efficiency fitted across vendors is carried to a vendor by its GEMM share, by hand.

GEMM shares of the dense peak: NVIDIA 0.80 (H100), AMD 0.51 (MI300X); AMD's ratio 0.51 / 0.80 =
0.6375. A decode matmul efficiency of 0.20 fitted on all vendors' runs is 0.20 on an NVIDIA
device and 0.20 x 0.6375 = 0.1275 on an AMD one; a pooled prefill efficiency of 0.60 is
0.60 x 0.6375 = 0.3825 on AMD, while a prefill efficiency fitted on AMD's own runs (0.45) stays.
Bandwidth is not carried: the pooled decode bandwidth 0.80 is 0.80 on AMD too.
"""

from __future__ import annotations

import pytest

from tasks.analysis.supply.efficiency import Efficiency, FittedDefaults, gemm_ratio


def _fitted(**own: float) -> FittedDefaults:
    efficiencies: dict[tuple[str, str | None], Efficiency] = {
        ("prefill", None): Efficiency(0.60, "pooled", 0.1),
        ("decode", None): Efficiency(0.80, "pooled", 0.1),
    }
    for vendor, value in own.items():
        efficiencies[("prefill", vendor)] = Efficiency(value, "own", 0.1)
    return FittedDefaults(
        efficiencies, other_ceiling={("decode", "flops"): Efficiency(0.20, "all", 0.1)}
    )


def test_the_ratio_is_the_vendors_gemm_share_over_nvidias() -> None:
    assert gemm_ratio("AMD") == pytest.approx(0.6375)
    assert gemm_ratio("NVIDIA") == 1.0 and gemm_ratio("Google") == 1.0


def test_shared_compute_efficiencies_are_carried_and_own_ones_kept() -> None:
    fitted = _fitted()
    decode_flops = fitted.lookup("decode", "AMD", "flops")
    assert decode_flops is not None and decode_flops.value == pytest.approx(0.1275)
    assert "x 0.64" in decode_flops.source
    nvidia = fitted.lookup("decode", "NVIDIA", "flops")
    assert nvidia is not None and nvidia.value == pytest.approx(0.20)
    prefill = fitted.lookup("prefill", "AMD")
    assert prefill is not None and prefill.value == pytest.approx(0.3825)
    own = _fitted(AMD=0.45).lookup("prefill", "AMD")
    assert own is not None and own.value == pytest.approx(0.45)
    bandwidth = fitted.lookup("decode", "AMD")
    assert bandwidth is not None and bandwidth.value == pytest.approx(0.80)

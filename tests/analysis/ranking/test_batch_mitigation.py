"""The batch mitigation re-derives the routed experts' share of a MoE decode step, by hand.

Mixtral 8x7B decode, bf16, 1,024-token context: E = 8 experts, top-k = 2. With uniform routing a
step of B tokens touches E·(1 − (1 − k/E)^B) experts per layer: B = 1: 8·(1 − 3/4) = 2;
B = 2: 8·(1 − 9/16) = 3.5; B = 4: 8·(1 − 81/256) = 5.46875. The routed experts' weight reads
per step are b_w · layers · expert parameters · touched, so at batch x2 they are 3.5/2 = 1.75
times batch 1's, and at batch x4 5.46875/2 = 2.734375 times. A step reads B · bytes_per_unit, so
share · bytes_per_unit · B is those reads: the variant's must grow by exactly these ratios (the
baseline's share kept, 0.879, against the variant's 0.924 and 0.946, would give 0.95 and
0.93 of them).

The FLOPs are k experts per token whatever the batch: their share does not move.
"""

from __future__ import annotations

import pandas as pd
import pytest

from tasks.analysis.workload.figures import Figures
from tasks.analysis.workload.presets import preset
from tasks.analysis.workload.variants import batch_figures
from tasks.analysis.workload.workload_model import estimate


@pytest.mark.parametrize(("factor", "touched"), [(2, 3.5), (4, 5.46875)])
def test_a_larger_batch_touches_more_experts(factor: int, touched: float) -> None:
    e = estimate(preset("mixtral-8x7b"), phase="decode", batch=1, context=1024)
    workloads = pd.DataFrame([{"workload_id": "m", **e.workload_columns()}])
    base = Figures.of(workloads)
    variant, applicable = batch_figures(base, workloads, factor)
    assert applicable[0]
    assert base.expert_bytes_share is not None and variant.expert_bytes_share is not None
    before = base.expert_bytes_share[0] * base.bytes_per_unit[0] * 1
    after = variant.expert_bytes_share[0] * variant.bytes_per_unit[0] * factor
    assert after / before == pytest.approx(touched / 2, rel=1e-9)
    assert variant.expert_bytes_share[0] > base.expert_bytes_share[0]
    assert variant.expert_flops_share == pytest.approx(base.expert_flops_share)


def test_a_dense_row_keeps_no_expert_share() -> None:
    e = estimate(preset("llama-3.1-8b"), phase="decode", batch=4, context=1024)
    workloads = pd.DataFrame([{"workload_id": "d", **e.workload_columns()}])
    variant, _ = batch_figures(Figures.of(workloads), workloads, 2)
    assert variant.expert_bytes_share is not None
    assert variant.expert_bytes_share[0] == 0.0

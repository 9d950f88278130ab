"""The projection runs a MoE decode workload's routed-expert bytes at its class's share r of
the dense efficiencies, worked by hand.

Shares (``expert_shares``). Mixtral-8x7B decode, batch 1, context 1024, bf16: 2 experts
touched per layer (8·(1 − (1 − 2/8)^1)), each 3·4096·14336 = 176,160,768 weights, 32 layers,
2 B each: 22,548,578,304 B of the step's 25,640,719,872 B (its ``estimate``), a share of
0.879405; a dense model and a prefill (hundreds of tokens per expert) have none.

Supply (``test_projector``'s fleet: 8 h100, usable 2.8475e12 B/s; one decode workload of
14e9 FLOP and 0.9375e9 B per token demanding 12,000 tokens/s, headroom 2.0249 as dense). With
half its bytes routed-expert reads at r = 0.25 (MLA-MoE, decode), those bytes take 1/0.25 = 4
times as long: the step's bytes take 0.5 + 0.5·4 = 2.5 times as long, the supply is
8 · 2.8475e12 / (0.9375e9 · 2.5) = 9,719.5 tokens/s, headroom 0.80996: it starves in month 0.
The same workload on an early engine, whose r is 0.125 here: 0.5 + 0.5·8 = 4.5 times as long,
headroom 2.0249 / 4.5 = 0.44998.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from tasks.analysis.projection.horizon import NEVER
from tasks.analysis.projection.placement import Placement
from tasks.analysis.projection.projector import Projector
from tasks.analysis.supply.ceilings import PHASE_ORDER
from tasks.analysis.supply.engine_generation import EARLY, GENERATIONS, NEWEST
from tasks.analysis.workload.architecture import ARCHITECTURE_CLASSES
from tasks.analysis.workload.figures import Figures, expert_shares
from tests.analysis.projection import handmade

MLA_MOE = ARCHITECTURE_CLASSES.index("MLA-MoE")


def test_a_moe_decode_rows_routed_expert_share_comes_from_its_preset() -> None:
    rows = pd.DataFrame(
        [
            {"model_preset": name, "phase": phase, "batch": 1, "context_tokens": 1024,
             "precision": "bf16"}
            for name, phase in
            (("mixtral-8x7b", "decode"), ("llama-2-7b", "decode"), ("mixtral-8x7b", "prefill"))
        ]
    )  # fmt: skip
    nbytes, _, classes = expert_shares(rows)
    assert nbytes.tolist() == pytest.approx([22_548_578_304 / 25_640_719_872, 0.0, 0.0])
    assert [ARCHITECTURE_CLASSES[c] for c in classes] == ["MoE", "dense", "MoE"]


def _headroom(share: float, generation: str = NEWEST) -> tuple[float, int]:
    fleet = handmade.fleet([[8, 8, 8]], ["h100"])
    r = np.ones((len(GENERATIONS), len(PHASE_ORDER), len(ARCHITECTURE_CLASSES), 1))
    r[GENERATIONS.index(NEWEST), PHASE_ORDER.index("decode"), MLA_MOE, 0] = 0.25
    r[GENERATIONS.index(EARLY), PHASE_ORDER.index("decode"), MLA_MOE, 0] = 0.125
    ceilings = replace(handmade.ceilings(), expert_share=r)
    placement = Placement(
        pool_index=np.array([0]),
        phase_index=np.array([PHASE_ORDER.index("decode")]),
        generation_index=np.array([GENERATIONS.index(generation)]),
        served_from=np.array([0]),
        start_index=np.array([0]),
        demand=np.full((1, 3), 12_000.0),
    )
    figures = Figures(
        np.array([14e9]), np.array([0.9375e9]), np.array(["bf16"]), np.zeros(1),
        np.array([share]), np.array([share]), np.array([MLA_MOE]),
    )  # fmt: skip
    outcome = Projector(fleet, ceilings, placement, figures, np.ones(1)).evaluate(figures)
    return float(outcome.headroom[0, 0]), int(outcome.starve_index[0])


def test_the_experts_share_of_the_bytes_runs_at_the_class_efficiency() -> None:
    dense = 8 * handmade.BW / 0.9375e9 / 12_000
    alone, never = _headroom(0.0)
    assert alone == pytest.approx(dense)
    assert never == NEVER
    headroom, starves = _headroom(0.5)
    assert headroom == pytest.approx(dense / 2.5)
    assert headroom == pytest.approx(0.80996, rel=1e-4)
    assert starves == 0


def test_a_workload_on_an_early_engine_runs_its_experts_at_that_generations_share() -> None:
    dense = 8 * handmade.BW / 0.9375e9 / 12_000
    headroom, _ = _headroom(0.5, EARLY)
    assert headroom == pytest.approx(dense / 4.5)
    assert headroom == pytest.approx(0.44998, rel=1e-4)

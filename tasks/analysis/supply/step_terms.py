"""One published run's step as the serving fit sees it: its time terms at efficiency 1 (as
:mod:`tasks.analysis.supply.published_terms` reads them) and the step they make at given
efficiencies and overheads, the formula of :mod:`tasks.analysis.supply.published_fit`'s
docstring, which fits them and says what each term is.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
import pandas as pd

from tasks.analysis.supply.calibration import DEFAULT_BANDWIDTH_EFFICIENCY, DEFAULT_FLOPS_EFFICIENCY
from tasks.analysis.supply.engine_generation import UNKNOWN

STREAM_BANDWIDTH_VALUE: Final = DEFAULT_BANDWIDTH_EFFICIENCY
STREAM_FLOPS_VALUE: Final = DEFAULT_FLOPS_EFFICIENCY


@dataclass(frozen=True)
class Terms:
    """Per run (arrays of shape (runs,)): its time terms at efficiency 1 and what it is."""

    decode: np.ndarray  # bool
    vendor: np.ndarray  # str
    memory_s: np.ndarray
    compute_s: np.ndarray
    attention_s: np.ndarray  # prefill attention at its own efficiency (0 in decode)
    communication_s: np.ndarray
    layers: np.ndarray
    # The prefill share of a static-batching decode run, per generated token (0 elsewhere).
    prefill_memory_s: np.ndarray
    prefill_compute_s: np.ndarray
    prefill_attention_s: np.ndarray
    prefill_communication_s: np.ndarray
    prefill_steps: np.ndarray  # 1 / generated tokens, or 0
    measured_s: np.ndarray
    # A decode run's routed-expert reads and matmuls (at efficiency 1, not in memory_s and
    # compute_s), its class, and the matmuls and attention of the prompts it carries under load.
    expert_memory_s: np.ndarray
    expert_compute_s: np.ndarray
    architecture_class: np.ndarray  # str
    source: np.ndarray  # str
    load_compute_s: np.ndarray
    load_attention_s: np.ndarray
    generation: np.ndarray  # str: the engine generation that ran it

    @staticmethod
    def of(rows: pd.DataFrame) -> Terms:
        def column(name: str) -> np.ndarray:
            return rows[name].to_numpy(dtype=float)

        return Terms(
            decode=(rows["phase"] == "decode").to_numpy(),
            vendor=rows["vendor"].astype(str).to_numpy(),
            memory_s=column("memory_s_at_1"),
            compute_s=column("compute_s_at_1"),
            attention_s=column("attention_s"),
            communication_s=column("communication_s"),
            layers=column("layers"),
            prefill_memory_s=column("prefill_memory_s_at_1"),
            prefill_compute_s=column("prefill_compute_s_at_1"),
            prefill_attention_s=column("prefill_attention_s"),
            prefill_communication_s=column("prefill_communication_s"),
            prefill_steps=column("prefill_steps"),
            measured_s=column("measured_step_s"),
            expert_memory_s=column("expert_memory_s_at_1"),
            expert_compute_s=column("expert_compute_s_at_1"),
            architecture_class=rows["architecture_class"].astype(str).to_numpy(),
            source=rows["source"].astype(str).to_numpy(),
            load_compute_s=column("load_compute_s_at_1"),
            load_attention_s=column("load_attention_s"),
            generation=(
                rows["engine_generation"].astype(str).to_numpy()
                if "engine_generation" in rows
                else np.full(len(rows), UNKNOWN)
            ),
        )


@dataclass(frozen=True)
class Parameters:
    """Efficiencies and overheads for every run: arrays of shape (runs,), or scalars."""

    decode_bandwidth: np.ndarray
    decode_flops: np.ndarray | float
    prefill_flops: np.ndarray
    decode_overhead_s: float
    prefill_overhead_s: float
    expert_share: np.ndarray | float = 1.0  # r of each run's class (and generation)


def step_s(t: Terms, p: Parameters) -> np.ndarray:
    """Predicted step time of each run (:mod:`tasks.analysis.supply.published_fit`'s
    formula)."""
    prefill_step = (
        np.maximum(
            t.prefill_memory_s / STREAM_BANDWIDTH_VALUE,
            t.prefill_compute_s / p.prefill_flops + t.prefill_attention_s,
        )
        + t.prefill_communication_s
        + p.prefill_overhead_s * t.layers * t.prefill_steps
    )
    decode = (
        np.maximum(
            (t.memory_s + t.expert_memory_s / p.expert_share) / p.decode_bandwidth,
            (t.compute_s + t.expert_compute_s / p.expert_share) / p.decode_flops
            + t.load_compute_s / p.prefill_flops
            + t.load_attention_s,
        )
        + t.communication_s
        + p.decode_overhead_s * t.layers
        + prefill_step
    )
    prefill = (
        np.maximum(
            t.memory_s / STREAM_BANDWIDTH_VALUE, t.compute_s / p.prefill_flops + t.attention_s
        )
        + t.communication_s
        + p.prefill_overhead_s * t.layers
    )
    return np.asarray(np.where(t.decode, decode, prefill))

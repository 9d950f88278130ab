"""Decode under load: a continuous-batching engine's step also carries the prompts that arrived.

At concurrency c (sequences decoding at once), with prompts of P tokens and O output tokens
per request, a request leaves every O steps on average, so c/O requests arrive per step, and
their prompts bring

    prefill tokens per decode step = c · P / O

which vLLM, SGLang and TensorRT-LLM schedule as chunks riding on the decode steps (chunked
prefill, on by default). The mixed step reads the weights once for both; the chunk adds its
KV writes and activations to the bytes, its matmuls at the prefill (GEMM) efficiency and its
attention at attention's own to the compute, and its activations to the collectives' bytes
(the calls are the decode step's own, so no latency is added):

    memory   = decode memory time + chunk bytes beyond the weights / (BW · e_bw)
    compute  = decode compute time + chunk matmuls / (F · e_f,prefill)
               + chunk attention / (F · e_attn)
    step     = max(memory, compute) + decode collectives + chunk collective bytes + overhead

A chunk's costs are those of prompts of P tokens (each chunk token attends, on average, to half
its prompt), one per attention group, scaled to c · P / O tokens. The time per output token
under load is the mixed step; the engine delivers c / step output tokens per second.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from hardware_profiles.schema import peak_column
from tasks.analysis.supply.collectives import collective_time, scale_up_link
from tasks.analysis.supply.efficiency import ATTENTION_EFFICIENCY, Efficiency
from tasks.analysis.supply.predict import Prediction, PredictionError, attention_peak
from tasks.analysis.workload.layout_figures import layout_figures
from tasks.analysis.workload.workload_model import Architecture, Estimate, estimate


def prefill_tokens_per_step(concurrency: float, prompt: float, output: float) -> float:
    """c · P / O: prompt tokens that ride on each decode step in steady state."""
    if output <= 0:
        raise PredictionError(f"output tokens must be > 0, got {output}")
    return concurrency * prompt / output


@dataclass(frozen=True)
class MixedStep:
    """A decode step under load: the step alone, and with its share of arriving prompts."""

    decode: Prediction
    concurrency: int
    prompt_tokens: int
    output_tokens: int
    prefill_tokens_per_step: float
    step_time_s: float  # the time per output token under load
    memory_time_s: float
    compute_time_s: float
    prefill_efficiency: Efficiency
    # The chunk's own parts of compute_time_s and of the step: its matmuls (at the prefill
    # efficiency), its attention (at attention's own) and its collective bytes over the link.
    chunk_matmul_time_s: float = 0.0
    chunk_attention_time_s: float = 0.0
    chunk_link_time_s: float = 0.0

    @property
    def output_tokens_per_s(self) -> float:
        """c / step: each of the c sequences emits a token per mixed step."""
        return self.concurrency / self.step_time_s

    def as_json(self) -> dict[str, Any]:
        return {
            "concurrency": self.concurrency,
            "prompt_tokens": self.prompt_tokens,
            "output_tokens": self.output_tokens,
            "prefill_tokens_per_step": self.prefill_tokens_per_step,
            "time_per_output_token_s": self.step_time_s,
            "output_tokens_per_s": self.output_tokens_per_s,
            "memory_time_s": self.memory_time_s,
            "compute_time_s": self.compute_time_s,
            "prefill_efficiency": self.prefill_efficiency.value,
            "prefill_efficiency_source": self.prefill_efficiency.source,
        }


def mixed_step(
    arch: Architecture,
    decode: Prediction,
    est: Estimate,
    accelerator: Mapping[str, Any],
    prefill_flops: Efficiency,
    prompt: int,
    output: int,
    attention: Efficiency = ATTENTION_EFFICIENCY,
) -> MixedStep:
    """The module docstring's mixed step for ``decode`` (``predict``'s step of the decode
    estimate ``est`` on ``accelerator``), prompts of ``prompt`` tokens, ``output`` each."""
    if est.phase != "decode":
        raise PredictionError(f"a step under load is a decode step, not {est.phase}")
    chunk = prefill_tokens_per_step(est.batch, prompt, output)
    layout = decode.layout
    prompts = layout.dp_attention
    prefill = estimate(
        arch, phase="prefill", batch=prompts, context=prompt, weights=est.weights, kv=est.kv,
        activations=est.activations, head=est.head,
    )  # fmt: skip
    figures = layout_figures(arch, prefill, layout)
    scale = chunk / (prompts * prompt)
    extra_bytes = (figures.step_bytes_per_device - figures.weight_read_bytes_per_device) * scale
    scores = figures.attention_flops_per_device * scale
    matmuls = figures.step_flops_per_device * scale - scores
    peak = float(accelerator[peak_column(est.precision)])
    bandwidth = float(accelerator["mem_bandwidth_bytes_per_s"])
    memory = decode.memory_time_s + extra_bytes / (bandwidth * decode.bandwidth_efficiency.value)
    chunk_matmuls = matmuls / (peak * prefill_flops.value)
    chunk_attention = scores / (attention_peak(accelerator, est.precision) * attention.value)
    compute = decode.compute_time_s + chunk_matmuls + chunk_attention
    link = scale_up_link(accelerator)
    chunk_link_s = 0.0
    if link is not None and figures.collectives:
        chunk_link_s = collective_time(figures, link).bytes_s * scale
    step = (
        max(memory, compute) + decode.communication_time_s + chunk_link_s + decode.overhead_time_s
    )
    return MixedStep(
        decode=decode,
        concurrency=est.batch,
        prompt_tokens=prompt,
        output_tokens=output,
        prefill_tokens_per_step=chunk,
        step_time_s=step,
        memory_time_s=memory,
        compute_time_s=compute,
        prefill_efficiency=prefill_flops,
        chunk_matmul_time_s=chunk_matmuls,
        chunk_attention_time_s=chunk_attention,
        chunk_link_time_s=chunk_link_s,
    )

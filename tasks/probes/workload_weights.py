"""The weights, KV cache and inputs of a workload probe (``tasks.probes.workload``): shapes
from an ``Architecture`` cut to the layers that run, values random in their storage precision.

Quantized weights (int8, fp8) hold values scaled to their type's range and a per-output-channel
scale; the step dequantizes them in the matmul. Untouched MoE experts are not allocated (a step
never reads them). Random values repeat with a period of ``_RANDOM_PERIOD`` elements so that
filling gigabytes is a memory write, not seconds of random number generation; no kernel can see
the period.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from functools import partial
from typing import Any, Final

import jax
import jax.numpy as jnp
import numpy as np

from tasks.analysis.workload.workload_model import (
    Architecture,
    expected_distinct_experts,
    head_precision,
)

# The workload model's precisions, as JAX dtypes.
PRECISION_DTYPES: Final = {
    "fp32": "float32",
    "tf32": "float32",
    "bf16": "bfloat16",
    "fp16": "float16",
    "fp8": "float8_e4m3fn",
    "int8": "int8",
}
# Precisions the matmuls can run at (W8A8 and fp8 compute are not built).
COMPUTE_PRECISIONS: Final = ("fp32", "tf32", "bf16", "fp16")
_QUANTIZED: Final = ("fp8", "int8")
_RANDOM_PERIOD: Final = 1 << 20
Params = dict[str, Any]


@dataclass(frozen=True)
class Shape:
    """What one step runs: an architecture (already cut to the layers that run) and its sizes."""

    arch: Architecture
    phase: str  # decode | prefill
    batch: int
    context: int
    weights: str
    kv: str
    compute: str

    @property
    def tokens(self) -> int:
        """Tokens one step pushes through the layers."""
        return self.batch * (1 if self.phase == "decode" else self.context)

    @property
    def compute_dtype(self) -> Any:
        return jnp.dtype(PRECISION_DTYPES[self.compute])

    @property
    def distinct_experts(self) -> int:
        """Experts one MoE layer touches: the model's expectation, rounded, at least top-k."""
        a = self.arch
        if not a.is_moe:
            return 0
        expected = expected_distinct_experts(a.experts, a.experts_per_token, self.tokens)
        return int(
            min(
                a.experts,
                self.tokens * a.experts_per_token,
                max(a.experts_per_token, round(expected)),
            )
        )

    def cache_length(self, layer: int) -> int:
        """Positions layer ``layer`` keeps: the first ``sliding_layers`` are windowed."""
        a = self.arch
        return min(self.context, a.sliding_window) if layer < a.sliding_layers else self.context

    def is_moe_layer(self, layer: int) -> bool:
        return self.arch.is_moe and layer >= self.arch.dense_layers


# --- weights -------------------------------------------------------------------------------


@partial(jax.jit, static_argnums=(1, 2, 3))
def _random(key: jax.Array, shape: tuple[int, ...], scale: float, dtype: str) -> jax.Array:
    """Uniform values in (-scale, scale) as ``dtype``, repeating every ``_RANDOM_PERIOD``
    elements; one small compiled call per shape (a model repeats a handful of shapes), where
    one call for the whole model compiled for seconds."""
    size = math.prod(shape)
    period = min(size, _RANDOM_PERIOD)
    block = jax.random.uniform(key, (period,), jnp.float32, -scale, scale)
    tiled = jnp.broadcast_to(block, (-(-size // period), period)).reshape(-1)
    return tiled[:size].reshape(shape).astype(dtype)


def _linear(key: jax.Array, fan_in: int, shape: tuple[int, ...], s: Shape, bias: bool) -> Params:
    """A weight of ``shape`` (input features first) in the storage precision; quantized types
    store values scaled to their range and carry a per-output-channel scale."""
    scale = 1.0 / math.sqrt(fan_in)
    out: Params = {}
    if s.weights in _QUANTIZED:
        qmax = 127.0 if s.weights == "int8" else 448.0
        out["w"] = _random(key, shape, qmax, PRECISION_DTYPES[s.weights])
        out["s"] = jnp.full(shape[-1:], scale / qmax, s.compute_dtype)
    else:
        out["w"] = _random(key, shape, scale, PRECISION_DTYPES[s.weights])
    if bias:
        out["b"] = jnp.full(shape[-1:], 0.01, s.compute_dtype)
    return out


def weight(key: jax.Array, in_features: int, out_features: int, s: Shape) -> Params:
    """One weight matrix as the step's layers hold it (storage precision, scales), no bias."""
    return _linear(key, in_features, (in_features, out_features), s, False)


def _norm(s: Shape, width: int, bias: bool) -> Params:
    out: Params = {"g": jnp.ones((width,), s.compute_dtype)}
    if bias:
        out["b"] = jnp.zeros((width,), s.compute_dtype)
    return out


def _ffn(key: jax.Array, s: Shape, width: int, bias: bool) -> Params:
    a = s.arch
    up = (2 if a.gated_ffn else 1) * width
    k1, k2 = jax.random.split(key)
    return {
        "up": _linear(k1, a.hidden, (a.hidden, up), s, bias),
        "down": _linear(k2, width, (width, a.hidden), s, bias),
    }


def _attention(key: jax.Array, s: Shape) -> Params:
    a = s.arch
    h, hq = a.hidden, a.heads
    keys = iter(jax.random.split(key, 6))
    if a.is_mla:
        p: Params = {}
        if a.q_lora_rank:
            p["q_a"] = _linear(next(keys), h, (h, a.q_lora_rank), s, False)
            p["q_norm"] = _norm(s, a.q_lora_rank, False)
            p["q_b"] = _linear(next(keys), a.q_lora_rank, (a.q_lora_rank, hq * a.qk_dim), s, False)
        else:
            p["q"] = _linear(next(keys), h, (h, hq * a.qk_dim), s, False)
        r = a.kv_lora_rank
        p["kv_a"] = _linear(next(keys), h, (h, r + a.qk_rope_dim), s, False)
        p["kv_norm"] = _norm(s, r, False)
        # kv_b, kept as its key and value halves: the absorbed form uses them apart.
        p["uk"] = _linear(next(keys), r, (r, hq, a.head_dim), s, False)
        p["uv"] = _linear(next(keys), r, (r, hq, a.v_dim), s, False)
        p["o"] = _linear(next(keys), hq * a.v_dim, (hq * a.v_dim, h), s, a.linear_bias)
        return p
    qkv = hq * a.qk_dim + a.kv_heads * (a.qk_dim + a.v_dim)
    return {
        "qkv": _linear(next(keys), h, (h, qkv), s, a.qkv_bias or a.linear_bias),
        "o": _linear(next(keys), hq * a.v_dim, (hq * a.v_dim, h), s, a.linear_bias),
    }


def layer_params(key: jax.Array, s: Shape, layer: int) -> Params:
    a = s.arch
    k_att, k_ffn, k_router, k_shared = jax.random.split(key, 4)
    p: Params = {
        "attn_norm": _norm(s, a.hidden, a.norm_bias),
        "attn": _attention(k_att, s),
        "ffn_norm": _norm(s, a.hidden, a.norm_bias),
    }
    for extra in range(a.norms_per_layer - 2):
        p[f"norm_{extra}"] = _norm(s, a.hidden, a.norm_bias)
    if s.is_moe_layer(layer):
        p["router"] = _linear(k_router, a.hidden, (a.hidden, a.experts), s, False)
        p["experts"] = [
            _ffn(k, s, a.expert_ffn, False) for k in jax.random.split(k_ffn, s.distinct_experts)
        ]
        if a.shared_ffn:
            p["shared"] = _ffn(k_shared, s, a.shared_ffn, False)
    else:
        p["ffn"] = _ffn(k_ffn, s, a.ffn, a.linear_bias)
    return p


def head_params(key: jax.Array, s: Shape) -> Params:
    """The LM head as a ``hidden x vocab`` matrix; its columns are also the embedding."""
    a = s.arch
    stored = dataclasses.replace(s, weights=head_precision(a, s.weights))
    table = _linear(key, a.hidden, (a.hidden, a.vocab), stored, False)
    return {"table": table, "norm": _norm(s, a.hidden, a.norm_bias)}


def cache_shapes(s: Shape, layer: int) -> tuple[tuple[int, ...], ...]:
    a, t = s.arch, s.cache_length(layer)
    if a.is_mla:
        return ((s.batch, t, a.kv_lora_rank), (s.batch, t, a.qk_rope_dim))
    return ((s.batch, a.kv_heads, t, a.qk_dim), (s.batch, a.kv_heads, t, a.v_dim))


def caches(key: jax.Array, s: Shape) -> Any:
    """Each layer's KV cache (keys and values, or MLA's latent and RoPE key), random."""
    out = []
    scale = 127.0 if s.kv == "int8" else 1.0  # int8 entries are dequantized by 1/64
    for layer, k in enumerate(jax.random.split(key, s.arch.layers)):
        shapes = cache_shapes(s, layer)
        out.append(
            tuple(
                _random(kk, shape, scale, PRECISION_DTYPES[s.kv])
                for kk, shape in zip(jax.random.split(k), shapes, strict=True)
            )
        )
    return out


def params(key: jax.Array, s: Shape) -> Any:
    """Every layer's weights and the head, on the default device."""
    k_head, *k_layers = jax.random.split(key, s.arch.layers + 1)
    return {
        "layers": [layer_params(k, s, i) for i, k in enumerate(k_layers)],
        "head": head_params(k_head, s),
    }


def tokens(s: Shape, seed: int = 0) -> jax.Array:
    positions = 1 if s.phase == "decode" else s.context
    rng = np.random.default_rng(seed)
    return jnp.asarray(rng.integers(0, s.arch.vocab, (s.batch, positions)), jnp.int32)


def position(s: Shape) -> jax.Array:
    """Where decode writes the new token: the last of the ``context`` positions."""
    return jnp.asarray(s.context - 1, jnp.int32)


def nbytes(tree: Any) -> int:
    """Bytes of every array (or abstract array) in ``tree``."""
    return sum(
        int(math.prod(leaf.shape)) * jnp.dtype(leaf.dtype).itemsize
        for leaf in jax.tree_util.tree_leaves(tree)
    )


def layer_bytes(s: Shape, layer: int) -> int:
    """Memory one layer takes (weights and cache), without allocating it."""
    weights = jax.eval_shape(lambda: layer_params(jax.random.PRNGKey(0), s, layer))
    itemsize = jnp.dtype(PRECISION_DTYPES[s.kv]).itemsize
    return nbytes(weights) + sum(math.prod(c) * itemsize for c in cache_shapes(s, layer))


def fixed_bytes(s: Shape) -> int:
    """Memory the step needs whatever its layers: the head, logits and working activations
    (prefill's score matrix included), twice over for XLA's temporaries."""
    head = nbytes(jax.eval_shape(lambda: head_params(jax.random.PRNGKey(0), s)))
    a = s.arch
    itemsize = s.compute_dtype.itemsize
    widest = max(a.hidden, a.ffn, a.expert_ffn * s.arch.experts_per_token) * 2 + a.hidden
    working = s.tokens * widest * itemsize + 4 * s.batch * a.vocab
    if s.phase == "prefill":
        working += 4 * s.batch * a.heads * s.context * s.context
    return int(head + 2 * working)

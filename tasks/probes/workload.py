"""A transformer's real step, built in JAX at a model's exact shapes, for the workload probes.

STREAM says what memory can deliver; this says what a decode step or a prefill chunk of a given
architecture gets out of it. ``step_function`` runs an ``Architecture``'s (the workload model's
vocabulary) decoder layers and its LM head once over random weights and a KV cache
(``tasks.probes.workload_weights``), the way serving engines do:

- attention with grouped KV heads (GQA/MQA: the cache holds KV heads only); MLA decodes in the
  absorbed form (scores over the ``kv_lora_rank`` latent and the RoPE key, the up-projection
  folded into the query and the output) and prefills in the plain multi-head form;
- the new token's keys and values go into a cache of ``context`` positions, written in place by
  a second program (``write_function``) to which the cache is donated;
- gated (or plain) FFN; MoE with a deterministic routing that touches exactly
  ``distinct_experts`` experts per layer, the workload model's expectation for that many tokens
  (rounded), each touched expert's weights read once by a matmul over its tokens. Untouched
  experts are not allocated: a step never reads them, they would only take memory;
- the embedding rows are gathered from the LM head's matrix (the same size; a separate untied
  table is read the same ``tokens·hidden`` either way) and the head computes float32 logits for
  the last token of each sequence.

Weights and the cache are in their storage precision: weight-only int8/fp8 (and an int8/fp8
cache) are dequantized in the computation, the matmul reading the narrow type, converting it
and applying a per-output-channel scale. RoPE is left out (elementwise, neither the model nor a
roofline counts it).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from tasks.probes.workload_weights import PRECISION_DTYPES, Params, Shape


def _matmul_precision(s: Shape) -> Any:
    return jax.lax.Precision.HIGHEST if s.compute == "fp32" else jax.lax.Precision.DEFAULT


def _weight(s: Shape, p: Params) -> Any:
    """A weight in the compute type: read in its storage type, converted, scaled."""
    w = p["w"]
    if w.dtype != s.compute_dtype:
        w = w.astype(s.compute_dtype)
    return w * p["s"] if "s" in p else w


def _apply(s: Shape, p: Params, x: jax.Array, spec: str) -> jax.Array:
    """``einsum(spec, x, w)`` with ``w`` dequantized, and the bias."""
    y = jnp.einsum(spec, x, _weight(s, p), precision=_matmul_precision(s))
    if "b" in p:
        y = y + p["b"]
    return y


def dense(s: Shape, p: Params, x: jax.Array) -> jax.Array:
    """``x`` times the weight ``p`` (dequantized), as every weight matmul of the step runs; the
    validation's GEMM rates are timed on it (``tasks.probes.workload_ceilings``)."""
    return _apply(s, p, x, "...i,io->...o")


def _normed(p: Params, x: jax.Array) -> Any:
    """RMSNorm, or LayerNorm where the norm has a bias (GPT-style)."""
    wide = x.astype(jnp.float32)
    if "b" in p:
        wide = wide - wide.mean(-1, keepdims=True)
    y = wide * jax.lax.rsqrt((wide * wide).mean(-1, keepdims=True) + 1e-6)
    y = y.astype(x.dtype) * p["g"]
    return y + p["b"] if "b" in p else y


def _activation(s: Shape, up: jax.Array) -> jax.Array:
    if s.arch.gated_ffn:
        gate, value = jnp.split(up, 2, axis=-1)
        return jax.nn.silu(gate) * value
    return jax.nn.gelu(up)


def _ffn_apply(s: Shape, p: Params, x: jax.Array) -> jax.Array:
    return dense(s, p["down"], _activation(s, dense(s, p["up"], x)))


def routing(s: Shape) -> list[tuple[np.ndarray, np.ndarray]]:
    """The deterministic routing: token ``t``'s ``j``-th choice is touched expert
    ``(t·k + j) mod n``, so the ``k`` choices differ and all ``n`` experts get tokens. Per
    touched expert: its tokens, and which of each token's choices it is."""
    n, k = s.distinct_experts, s.arch.experts_per_token
    picks = np.arange(s.tokens * k)
    return [(picks[picks % n == e] // k, picks[picks % n == e] % k) for e in range(n)]


def expert_ids(s: Shape) -> np.ndarray:
    """The router column each touched expert stands for, spread over all experts."""
    return (np.arange(s.distinct_experts) * s.arch.experts // max(1, s.distinct_experts)).astype(
        np.int32
    )


def _moe(s: Shape, p: Params, x: jax.Array) -> jax.Array:
    """Top-k MoE over the touched experts: the router's logits at each token's k chosen
    experts, softmaxed, weight the experts' outputs; each expert runs its tokens (a static
    group: the routing is fixed) as one matmul, and the outputs are added back per token."""
    ids = expert_ids(s)
    logits = dense(s, p["router"], x).astype(jnp.float32)  # [tokens, E]
    k = s.arch.experts_per_token
    chosen = ids[(np.arange(s.tokens)[:, None] * k + np.arange(k)) % s.distinct_experts]
    gates = jax.nn.softmax(jnp.take_along_axis(logits, jnp.asarray(chosen), axis=1), axis=-1)
    out = jnp.zeros_like(x)
    for expert, (rows, picks) in zip(p["experts"], routing(s), strict=True):
        y = _ffn_apply(s, expert, x[rows]) * gates[rows, picks][:, None].astype(x.dtype)
        out = out.at[rows].add(y)
    if "shared" in p:
        out = out + _ffn_apply(s, p["shared"], x)
    return out


def _store(s: Shape, values: jax.Array) -> jax.Array:
    dtype = jnp.dtype(PRECISION_DTYPES[s.kv])
    if s.kv == "int8":
        return jnp.clip(jnp.round(values * 64.0), -127, 127).astype(dtype)
    return values.astype(dtype)


def _load(s: Shape, cache: jax.Array) -> jax.Array:
    values = cache.astype(s.compute_dtype)
    return values * jnp.asarray(1 / 64.0, s.compute_dtype) if s.kv == "int8" else values


def _write(cache: jax.Array, new: jax.Array, position: jax.Array, axis: int) -> jax.Array:
    """``new`` into ``cache`` from ``position`` on along the positions ``axis``."""
    start = [jnp.int32(0)] * cache.ndim
    start[axis] = position.astype(jnp.int32)
    return jax.lax.dynamic_update_slice(cache, new, tuple(start))


def _mask(s: Shape, layer: int, length: int) -> jax.Array | None:
    """Prefill's causal (and sliding-window) mask over ``[query, key]``; None in decode."""
    if s.phase == "decode":
        return None
    q = jnp.arange(length)[:, None]
    kpos = jnp.arange(length)[None, :]
    allowed = kpos <= q
    if layer < s.arch.sliding_layers:
        allowed = allowed & (kpos > q - s.arch.sliding_window)
    return allowed


def _softmax(scores: jax.Array, mask: jax.Array | None) -> jax.Array:
    wide = scores.astype(jnp.float32)
    if mask is not None:
        wide = jnp.where(mask, wide, -jnp.inf)
    return jax.nn.softmax(wide, axis=-1)


def _patched(scores: jax.Array, fresh: jax.Array, slot: jax.Array) -> jax.Array:
    """Decode's scores over the cache as it was, with the new token's score at ``slot``.

    Attention reads the old cache and patches the new token in, rather than reading the cache
    after writing it: XLA then updates the donated cache in place and streams the old one once;
    reading the written cache made it copy the cache (several times over, on the CPU)."""
    start = (jnp.int32(0),) * (scores.ndim - 1) + (slot.astype(jnp.int32),)
    return jax.lax.dynamic_update_slice(scores, fresh.astype(scores.dtype), start)


def _correction(
    probs: jax.Array, slot: jax.Array, old: jax.Array, new: jax.Array, spec: str
) -> jax.Array:
    """What the new token's value adds over the stale one at ``slot``: ``p_slot·(new - old)``;
    ``old``/``new`` carry positions on their third axis."""
    p_slot = jax.lax.dynamic_index_in_dim(probs, slot, axis=probs.ndim - 1, keepdims=False)
    stale = jax.lax.dynamic_slice_in_dim(old, slot, 1, axis=2)
    return jnp.einsum(spec, p_slot, new - stale)


def _gqa(s: Shape, p: Params, x: jax.Array, cache: Any, layer: int, pos: jax.Array) -> Any:
    """Grouped-query attention; ``x`` is ``[batch, positions, hidden]``."""
    a = s.arch
    b, n = x.shape[0], x.shape[1]
    hq, hk, dq, dv = a.heads, a.kv_heads, a.qk_dim, a.v_dim
    qkv = dense(s, p["qkv"], x)
    q = qkv[..., : hq * dq].reshape(b, n, hk, hq // hk, dq)
    # The cache is head-major (``[batch, kv_heads, positions, dim]``), as paged engines keep
    # it: each head's keys are one contiguous matrix for the score and value matmuls.
    k_new = qkv[..., hq * dq : hq * dq + hk * dq].reshape(b, n, hk, dq).transpose(0, 2, 1, 3)
    v_new = qkv[..., hq * dq + hk * dq :].reshape(b, n, hk, dv).transpose(0, 2, 1, 3)
    length = cache[0].shape[2]
    # A windowed layer's cache is a ring: decode writes at the position modulo its length.
    where = pos % length if s.phase == "decode" else jnp.int32(0)
    written = (_store(s, k_new[:, :, -length:]), _store(s, v_new[:, :, -length:]))
    prec = _matmul_precision(s)
    if s.phase == "decode":
        # Scores and values over the cache as it was, the new token patched in (see _patched).
        k_new, v_new = _load(s, _store(s, k_new)), _load(s, _store(s, v_new))
        old_k, old_v = _load(s, cache[0]), _load(s, cache[1])
        scores = jnp.einsum("bqkgd,bktd->bkgqt", q, old_k, precision=prec)
        fresh = jnp.einsum("bqkgd,bkqd->bkgq", q, k_new, precision=prec)[..., None]
        probs = _softmax(_patched(scores, fresh, where) / math.sqrt(dq), None).astype(x.dtype)
        out = jnp.einsum("bkgqt,bktd->bkgqd", probs, old_v, precision=prec)
        out = out + _correction(probs, where, old_v, v_new, "bkgq,bkqd->bkgqd")
        out = out.transpose(0, 3, 1, 2, 4)
    else:
        scores = jnp.einsum("bqkgd,bktd->bkgqt", q, k_new, precision=prec)
        probs = _softmax(scores / math.sqrt(dq), _mask(s, layer, n)).astype(x.dtype)
        out = jnp.einsum("bkgqt,bktd->bqkgd", probs, v_new, precision=prec)
    return dense(s, p["o"], out.reshape(b, n, hq * dv)), written


def _mla(s: Shape, p: Params, x: jax.Array, cache: Any, layer: int, pos: jax.Array) -> Any:
    """Multi-head latent attention: absorbed over the latent cache in decode, plain in prefill."""
    a = s.arch
    b, n = x.shape[0], x.shape[1]
    hq, r, dn, dr = a.heads, a.kv_lora_rank, a.head_dim, a.qk_rope_dim
    prec = _matmul_precision(s)
    if "q" in p:
        q = dense(s, p["q"], x)
    else:
        q = dense(s, p["q_b"], _normed(p["q_norm"], dense(s, p["q_a"], x)))
    q = q.reshape(b, n, hq, dn + dr)
    q_nope, q_rope = q[..., :dn], q[..., dn:]
    kv = dense(s, p["kv_a"], x)
    latent_new, rope_new = _normed(p["kv_norm"], kv[..., :r]), kv[..., r:]
    where = pos if s.phase == "decode" else jnp.int32(0)
    written = (_store(s, latent_new), _store(s, rope_new))
    scale = 1.0 / math.sqrt(dn + dr)
    if s.phase == "decode":
        c_new, r_new = _load(s, _store(s, latent_new)), _load(s, _store(s, rope_new))
        old_c, old_r = _load(s, cache[0]), _load(s, cache[1])
        q_lat = _apply(s, p["uk"], q_nope, "bqhd,khd->bqhk")
        scores = jnp.einsum("bqhk,btk->bhqt", q_lat, old_c, precision=prec)
        scores = scores + jnp.einsum("bqhr,btr->bhqt", q_rope, old_r, precision=prec)
        fresh = jnp.einsum("bqhk,bqk->bhq", q_lat, c_new, precision=prec)
        fresh = fresh + jnp.einsum("bqhr,bqr->bhq", q_rope, r_new, precision=prec)
        probs = _softmax(_patched(scores, fresh[..., None], where) * scale, None).astype(x.dtype)
        o_lat = jnp.einsum("bhqt,btk->bhqk", probs, old_c, precision=prec)
        o_lat = o_lat + _correction(probs, where, old_c[:, None], c_new[:, None], "bhq,bxqk->bhqk")
        out = _apply(s, p["uv"], o_lat.transpose(0, 2, 1, 3), "bqhk,khd->bqhd")
    else:
        k_nope = _apply(s, p["uk"], latent_new, "btk,khd->bthd")
        v = _apply(s, p["uv"], latent_new, "btk,khd->bthd")
        k_rope = jnp.broadcast_to(rope_new[:, :, None, :], (b, n, hq, dr))
        k = jnp.concatenate([k_nope, k_rope], axis=-1)
        scores = jnp.einsum("bqhd,bthd->bhqt", q, k, precision=prec)
        probs = _softmax(scores * scale, _mask(s, layer, n)).astype(x.dtype)
        out = jnp.einsum("bhqt,bthd->bqhd", probs, v, precision=prec)
    return dense(s, p["o"], out.reshape(b, n, hq * a.v_dim)), written


def _layer(s: Shape, p: Params, x: jax.Array, cache: Any, layer: int, pos: jax.Array) -> Any:
    attend = _mla if s.arch.is_mla else _gqa
    attended, cache = attend(s, p["attn"], _normed(p["attn_norm"], x), cache, layer, pos)
    x = x + attended
    y = _normed(p["ffn_norm"], x)
    if "router" in p:
        flat = y.reshape(-1, y.shape[-1])
        return x + _moe(s, p, flat).reshape(x.shape), cache
    return x + _ffn_apply(s, p["ffn"], y), cache


def step_function(s: Shape) -> Callable[..., Any]:
    """``step(caches, params, tokens, position) -> (entries, logits)``: one decode step
    (``tokens`` is ``[batch, 1]``, at ``position``) or one prefill of ``context`` tokens
    (``[batch, context]``); each layer's new cache entries, for ``write_function`` to store,
    and float32 logits of each sequence's last token.

    The cache is written by a second, donated program, as serving engines write it with a
    kernel of its own (vLLM's ``reshape_and_cache``): XLA's CPU backend copies a donated cache
    that one program both reads and updates in place (twice over), which no engine does."""

    def step(caches: list[Any], p: Params, tokens: jax.Array, pos: jax.Array) -> Any:
        table = p["head"]["table"]
        rows = jnp.moveaxis(table["w"][:, tokens], 0, -1).astype(s.compute_dtype)
        x = rows * table["s"][tokens][..., None] if "s" in table else rows
        new = []
        for layer, (lp, cache) in enumerate(zip(p["layers"], caches, strict=True)):
            x, entries = _layer(s, lp, x, cache, layer, pos)
            new.append(entries)
        last = _normed(p["head"]["norm"], x[:, -1])
        logits = jnp.einsum(
            "bh,hv->bv",
            last,
            _weight(s, table),
            precision=_matmul_precision(s),
            preferred_element_type=jnp.float32,
        )
        return new, logits

    return step


def write_function(s: Shape) -> Callable[..., Any]:
    """``write(caches, entries, position) -> caches``: the new entries stored in place (decode:
    at ``position``, modulo a windowed layer's length; prefill: from the start)."""
    axis = 1 if s.arch.is_mla else 2

    def write(caches: list[Any], entries: list[Any], pos: jax.Array) -> Any:
        out = []
        for cache, new in zip(caches, entries, strict=True):
            where = pos % cache[0].shape[axis] if s.phase == "decode" else jnp.int32(0)
            out.append(tuple(_write(c, e, where, axis) for c, e in zip(cache, new, strict=True)))
        return out

    return write

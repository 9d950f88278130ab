"""Workload probes on tiny architectures: the JAX step against a numpy implementation written
here from the architecture's definition (MLA in its plain, non-absorbed form, so the absorbed
decode is checked against the textbook one), and the probe's weights against the workload
model's byte count."""

from __future__ import annotations

import math
from typing import Any

import jax
import numpy as np
import pytest

from tasks.analysis.supply.validation import step_cost
from tasks.analysis.workload.workload_model import Architecture, expected_distinct_experts
from tasks.probes import workload, workload_weights

GQA = Architecture(
    name="tiny-gqa",
    layers=2,
    hidden=32,
    heads=4,
    kv_heads=2,
    head_dim=8,
    ffn=48,
    vocab=64,
    max_context=64,
    sliding_window=4,
    sliding_layers=1,
    qkv_bias=True,
)
MOE = Architecture(
    name="tiny-moe",
    layers=2,
    hidden=32,
    heads=4,
    kv_heads=1,
    head_dim=8,
    ffn=48,
    vocab=64,
    max_context=64,
    experts=6,
    experts_per_token=2,
    expert_ffn=16,
    shared_ffn=16,
    dense_layers=1,
)
MLA = Architecture(
    name="tiny-mla",
    layers=1,
    hidden=32,
    heads=4,
    kv_heads=4,
    head_dim=8,
    ffn=48,
    vocab=64,
    max_context=64,
    q_lora_rank=16,
    kv_lora_rank=12,
    qk_rope_dim=4,
    v_head_dim=6,
)


def _np(tree: Any) -> Any:
    return jax.tree_util.tree_map(lambda a: np.asarray(a, np.float64), tree)


def _w(p: dict[str, Any]) -> Any:
    return p["w"] * p["s"] if "s" in p else p["w"]


def _lin(p: dict[str, Any], x: np.ndarray) -> Any:
    y = x @ _w(p)
    return y + p["b"] if "b" in p else y


def _norm(p: dict[str, Any], x: np.ndarray) -> Any:
    if "b" in p:
        x = x - x.mean(-1, keepdims=True)
    return x / np.sqrt((x * x).mean(-1, keepdims=True) + 1e-6) * p["g"] + p.get("b", 0.0)


def _softmax(x: np.ndarray) -> Any:
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def _silu(x: np.ndarray) -> Any:
    return x / (1 + np.exp(-x))


def _ffn(p: dict[str, Any], x: np.ndarray) -> Any:
    gate, value = np.split(_lin(p["up"], x), 2, axis=-1)
    return _lin(p["down"], _silu(gate) * value)


def _attend(q: np.ndarray, k: np.ndarray, v: np.ndarray, allowed: np.ndarray) -> Any:
    """q ``[heads, queries, d]``, k/v ``[heads, keys, d]`` (already one per query head)."""
    scores = np.einsum("hqd,htd->hqt", q, k) / math.sqrt(q.shape[-1])
    return np.einsum("hqt,htd->qhd", _softmax(np.where(allowed, scores, -np.inf)), v)


def _allowed(s: workload_weights.Shape, layer: int, n: int, keys: int) -> Any:
    if s.phase == "decode":
        return np.ones((1, keys), bool)
    q, k = np.arange(n)[:, None], np.arange(n)[None, :]
    window = s.arch.sliding_window if layer < s.arch.sliding_layers else n
    return (k <= q) & (k > q - window)


def _gqa(s: workload_weights.Shape, p: Any, x: np.ndarray, cache: Any, layer: int) -> Any:
    a = s.arch
    b, n = x.shape[:2]
    qkv = _lin(p["qkv"], x)
    q = qkv[..., : a.heads * a.qk_dim].reshape(b, n, a.heads, a.qk_dim)
    k = qkv[..., a.heads * a.qk_dim : (a.heads + a.kv_heads) * a.qk_dim]
    v = qkv[..., (a.heads + a.kv_heads) * a.qk_dim :]
    k, v = k.reshape(b, n, a.kv_heads, a.qk_dim), v.reshape(b, n, a.kv_heads, a.v_dim)
    if s.phase == "decode":
        keys, values = cache[0].copy(), cache[1].copy()  # [b, kv_heads, t, d]
        slot = (s.context - 1) % keys.shape[2]
        keys[:, :, slot], values[:, :, slot] = k[:, 0], v[:, 0]
    else:
        keys, values = k.transpose(0, 2, 1, 3), v.transpose(0, 2, 1, 3)
    group = a.heads // a.kv_heads
    out = np.stack(
        [
            _attend(
                q[i].transpose(1, 0, 2),
                np.repeat(keys[i], group, axis=0),
                np.repeat(values[i], group, axis=0),
                _allowed(s, layer, n, keys.shape[2]),
            )
            for i in range(b)
        ]
    )
    return _lin(p["o"], out.reshape(b, n, -1))


def _mla(s: workload_weights.Shape, p: Any, x: np.ndarray, cache: Any, layer: int) -> Any:
    a = s.arch
    b, n = x.shape[:2]
    r, dn, dr = a.kv_lora_rank, a.head_dim, a.qk_rope_dim
    q = _lin(p["q_b"], _norm(p["q_norm"], _lin(p["q_a"], x))).reshape(b, n, a.heads, dn + dr)
    kv = _lin(p["kv_a"], x)
    latent, rope = _norm(p["kv_norm"], kv[..., :r]), kv[..., r:]
    if s.phase == "decode":
        c_all, r_all = cache[0].copy(), cache[1].copy()
        c_all[:, s.context - 1], r_all[:, s.context - 1] = latent[:, 0], rope[:, 0]
    else:
        c_all, r_all = latent, rope
    k_nope = np.einsum("btk,khd->bhtd", c_all, _w(p["uk"]))
    k = np.concatenate(
        [k_nope, np.broadcast_to(r_all[:, None], (b, a.heads, *r_all.shape[1:]))], axis=-1
    )
    v = np.einsum("btk,khd->bhtd", c_all, _w(p["uv"]))
    allowed = _allowed(s, layer, n, c_all.shape[1])
    out = np.stack([_attend(q[i].transpose(1, 0, 2), k[i], v[i], allowed) for i in range(b)])
    return _lin(p["o"], out.reshape(b, n, -1))


def _moe(s: workload_weights.Shape, p: Any, y: np.ndarray) -> Any:
    """Token t's j-th choice is touched expert (t·k + j) mod n, standing for router column
    ⌊slot·E/n⌋; the gates are the softmax of the router logits at the chosen columns."""
    a = s.arch
    flat = y.reshape(-1, a.hidden)
    n, k = s.distinct_experts, a.experts_per_token
    logits = _lin(p["router"], flat)
    out = np.zeros_like(flat)
    for t in range(flat.shape[0]):
        slots = [(t * k + j) % n for j in range(k)]
        gates = _softmax(logits[t, [slot * a.experts // n for slot in slots]])
        for gate, slot in zip(gates, slots, strict=True):
            out[t] += gate * _ffn(p["experts"][slot], flat[t])
    if "shared" in p:
        out += _ffn(p["shared"], flat)
    return out.reshape(y.shape)


def reference(s: workload_weights.Shape, p: Any, caches: Any, tokens: np.ndarray) -> Any:
    table = _w(p["head"]["table"])  # [hidden, vocab]
    x = np.moveaxis(table[:, tokens], 0, -1)
    for layer, (lp, cache) in enumerate(zip(p["layers"], caches, strict=True)):
        attend = _mla if s.arch.is_mla else _gqa
        x = x + attend(s, lp["attn"], _norm(lp["attn_norm"], x), cache, layer)
        y = _norm(lp["ffn_norm"], x)
        x = x + (_moe(s, lp, y) if "router" in lp else _ffn(lp["ffn"], y))
    return _norm(p["head"]["norm"], x[:, -1]) @ table


def _step(s: workload_weights.Shape) -> tuple[np.ndarray, np.ndarray]:
    p = workload_weights.params(jax.random.PRNGKey(0), s)
    caches = workload_weights.caches(jax.random.PRNGKey(1), s)
    tokens = workload_weights.tokens(s, seed=3)
    want = reference(s, _np(p), _np(caches), np.asarray(tokens))
    _, got = jax.jit(workload.step_function(s))(caches, p, tokens, workload_weights.position(s))
    return np.asarray(got), want


@pytest.mark.parametrize(
    ("arch", "phase", "batch", "context"),
    [
        (GQA, "decode", 3, 10),
        (GQA, "prefill", 2, 6),
        (MOE, "decode", 3, 9),
        (MOE, "prefill", 1, 5),
        (MLA, "decode", 2, 7),
        (MLA, "prefill", 2, 5),
    ],
    ids=lambda v: getattr(v, "name", str(v)),
)
def test_step_matches_numpy(arch: Architecture, phase: str, batch: int, context: int) -> None:
    got, want = _step(workload_weights.Shape(arch, phase, batch, context, "fp32", "fp32", "fp32"))
    np.testing.assert_allclose(got, want, rtol=2e-4, atol=2e-4)


@pytest.mark.parametrize("weights", ["int8", "fp8"])
def test_weight_only_quantized_step_matches_numpy_on_the_dequantized_weights(weights: str) -> None:
    got, want = _step(workload_weights.Shape(GQA, "decode", 2, 8, weights, "fp32", "fp32"))
    np.testing.assert_allclose(got, want, rtol=2e-4, atol=2e-4)


def test_moe_routing_touches_the_expected_number_of_experts() -> None:
    for batch in (1, 2, 5, 40):
        s = workload_weights.Shape(MOE, "decode", batch, 8, "fp32", "fp32", "fp32")
        expected = expected_distinct_experts(MOE.experts, MOE.experts_per_token, batch)
        assert s.distinct_experts == max(MOE.experts_per_token, round(expected))
        groups = workload.routing(s)
        assert len(groups) == s.distinct_experts and all(len(t) for t, _ in groups)
        picks = {
            (int(t), int(j))
            for tokens, choices in groups
            for t, j in zip(tokens, choices, strict=True)
        }
        assert picks == {(t, j) for t in range(batch) for j in range(MOE.experts_per_token)}
        for t in range(batch):
            assert sum(t in tokens for tokens, _ in groups) == MOE.experts_per_token


@pytest.mark.parametrize("arch", [GQA, MOE, MLA], ids=lambda a: a.name)
def test_probe_weights_are_the_bytes_the_model_says_a_decode_step_reads(
    arch: Architecture,
) -> None:
    """The model's weight reads (touched experts, norms, biases, the head) less the gathered
    embedding rows are exactly the bytes the probe allocates: at batch 1 an MoE layer touches
    exactly top-k experts, so the model's expectation is whole."""
    s = workload_weights.Shape(arch, "decode", 1, 16, "fp32", "fp32", "fp32")
    allocated = workload_weights.nbytes(
        jax.eval_shape(lambda: workload_weights.params(jax.random.PRNGKey(0), s))
    )
    from tasks.analysis.workload.workload_model import estimate

    e = estimate(
        arch, phase="decode", batch=1, context=16, weights="fp32", kv="fp32", activations="fp32"
    )
    reads = e.components["weights"].bytes + e.components["lm_head"].bytes - 4 * arch.hidden
    assert allocated == pytest.approx(reads, rel=1e-12)
    cache = sum(
        math.prod(c) * 4
        for layer in range(arch.layers)
        for c in workload_weights.cache_shapes(s, layer)
    )
    assert cache == pytest.approx(e.components["kv_read"].bytes, rel=1e-12)


def _cost(compiled: Any) -> dict[str, float]:
    found = compiled.cost_analysis()
    return dict(found[0] if isinstance(found, list) else found)


def test_xla_counts_the_bytes_and_flops_of_a_decode_layer_the_model_counts() -> None:
    """A decode step at batch 1 (the embedding gather is then a dynamic slice, which XLA
    charges right): XLA's bytes and FLOPs within 10 % of the model's."""
    arch = Architecture(
        name="small",
        layers=2,
        hidden=512,
        heads=8,
        kv_heads=2,
        head_dim=64,
        ffn=1536,
        vocab=2048,
        max_context=4096,
    )
    s = workload_weights.Shape(arch, "decode", 1, 1024, "fp32", "fp32", "fp32")
    p = jax.eval_shape(lambda: workload_weights.params(jax.random.PRNGKey(0), s))
    caches = jax.eval_shape(lambda: workload_weights.caches(jax.random.PRNGKey(1), s))
    args = (caches, p, workload_weights.tokens(s), workload_weights.position(s))
    entries = jax.eval_shape(workload.step_function(s), *args)[0]
    write = jax.jit(workload.write_function(s), donate_argnums=(0,), keep_unused=True)
    found = {
        key: sum(
            _cost(compiled)[key]
            for compiled in (
                jax.jit(workload.step_function(s)).lower(*args).compile(),
                write.lower(caches, entries, workload_weights.position(s)).compile(),
            )
        )
        for key in ("bytes accessed", "flops")
    }
    model = step_cost(
        arch, phase="decode", batch=1, context=1024, weights="fp32", kv="fp32", compute="fp32"
    )
    assert found["bytes accessed"] == pytest.approx(model.bytes, rel=0.10)
    assert found["flops"] == pytest.approx(model.flops, rel=0.10)


def test_xla_charges_a_gather_of_several_rows_its_whole_table() -> None:
    """XLA's cost model, not the model, is wrong about the embedding gather: one row is a
    dynamic slice charged its bytes; several rows are charged the whole table."""
    from tasks.probes.workload_probe import gather_charge_bytes

    device = jax.devices()[0]
    table = 4 * GQA.hidden * GQA.vocab
    one = gather_charge_bytes(
        workload_weights.Shape(GQA, "decode", 1, 8, "fp32", "fp32", "fp32"), device
    )
    four = gather_charge_bytes(
        workload_weights.Shape(GQA, "decode", 4, 8, "fp32", "fp32", "fp32"), device
    )
    assert one < 0.1 * table
    assert four >= table

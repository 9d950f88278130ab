"""Dense matmul throughput, compiled by JAX for one device or split across all.

Random operands (constant ones let hardware and compilers take shortcuts), float32 at full
precision (not silently TF32), ``tfloat32`` (float32 operands multiplied on TF32 tensor cores,
asked for explicitly as XLA's TF32 dot algorithm, so a backend without it refuses instead of
running full float32 under the wrong name), int8 accumulated in int32. The product is validated by a
matrix-vector identity, C·x = A·(B·x), computed at float32 on the device: cheap (O(n²)) and
blind to nothing a wrong kernel would do. Across several devices A is split by rows and B
replicated, so each device multiplies its own block with no communication in the timed call.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import SingleDeviceSharding

from tasks.probes.kernels import MATMUL
from tasks.probes.placement import Devices, as_list, shardings
from tasks.probes.statistics import Summary, summarize
from tasks.probes.timing import time_calls, time_for

# Relative error (2-norm of C·x - A·(B·x) over the norm of A·(B·x)) a correct product stays
# within, given the rounding of C to its output type.
TOLERANCE: Final = {
    "float32": 1e-3,
    "tfloat32": 5e-3,  # a 10-bit mantissa, like float16's
    "float64": 1e-9,
    "bfloat16": 2e-2,
    "float16": 5e-3,
    "float8_e4m3fn": 2e-1,
    "int8": 1e-5,
}
_HIGHEST = jax.lax.Precision.HIGHEST
# Pseudo-dtypes: stored as one dtype, multiplied with a named dot algorithm.
_STORED_AS: Final = {"tfloat32": "float32"}
_ALGORITHM: Final = {"tfloat32": jax.lax.DotAlgorithmPreset.TF32_TF32_F32}


@dataclass(frozen=True)
class MatmulResult:
    dtype: str
    n: int
    summary: Summary
    relative_error: float
    output_dtype: str
    seconds: list[float]

    @property
    def working_set_bytes(self) -> int:
        return working_set_bytes(self.dtype, self.n)


def storage_dtype(dtype: str) -> str:
    """The dtype a probe's operands are stored in (float32 for ``tfloat32``)."""
    return _STORED_AS.get(dtype, dtype)


def output_dtype(dtype: str) -> str:
    return "int32" if dtype == "int8" else storage_dtype(dtype)


def working_set_bytes(dtype: str, n: int) -> int:
    in_size = jnp.dtype(storage_dtype(dtype)).itemsize
    return MATMUL.bytes_moved(n, in_size, jnp.dtype(output_dtype(dtype)).itemsize)


def operands(key: jax.Array, n: int, dtype: str, devices: Devices) -> tuple[Any, Any]:
    """Two random n×n operands: A split by rows over ``devices``, B replicated; small
    integers for int8 so that int32 accumulation is exact."""
    ka, kb = jax.random.split(key)
    split, replicated = shardings(devices)

    def make(k: jax.Array) -> Any:
        if dtype == "int8":
            return jax.random.randint(k, (n, n), -8, 8, dtype=jnp.int8)
        return jax.random.normal(k, (n, n), dtype=jnp.float32).astype(storage_dtype(dtype))

    a = jax.jit(make, out_shardings=split)(ka)
    b = jax.jit(make, out_shardings=replicated)(kb)
    return a, b


def product_error(a: Any, b: Any, c: Any, x: Any) -> float:
    """Relative 2-norm error of C·x against A·(B·x), at float32 (or wider) and full precision."""
    wide = jnp.float64 if c.dtype == jnp.float64 else jnp.float32
    got = jnp.matmul(c.astype(wide), x.astype(wide), precision=_HIGHEST)
    want = jnp.matmul(
        a.astype(wide),
        jnp.matmul(b.astype(wide), x.astype(wide), precision=_HIGHEST),
        precision=_HIGHEST,
    )
    return float(jnp.linalg.norm(got - want) / jnp.linalg.norm(want))


def product(dtype: str) -> Callable[[Any, Any], Any]:
    """C = A·B as the probe computes it at ``dtype``: the precision or dot algorithm that
    names what the hardware must do, the product in the output type."""
    out = jnp.dtype(output_dtype(dtype))
    precision: Any = _HIGHEST if dtype in ("float32", "float64") else _ALGORITHM.get(dtype)

    def multiply(x: Any, y: Any) -> Any:
        return jnp.matmul(x, y, precision=precision, preferred_element_type=out)

    return multiply


_CUSTOM_CALL = re.compile(r'custom_call_target="([^"]+)"')
_FUSION_KIND = re.compile(r'"kind":"(__[a-z_]+)"')


def kernel(device: Any, dtype: str, n: int) -> str:
    """What XLA compiled the probe's product at ``dtype`` into on ``device``: the library call
    (``__cublas$gemm``, ``__cublas$lt$matmul$f8``, ``__onednn$matmul``...) or fusion kind
    (``__triton_gemm``) its optimised HLO names, else ``dot`` (XLA's own emitter). A low GEMM
    figure with the wrong kernel here (an fp8 product upcast to a bf16 GEMM, say) is XLA's
    choice, not the hardware's limit."""
    shape = jax.ShapeDtypeStruct((n, n), jnp.dtype(storage_dtype(dtype)))  # type: ignore[no-untyped-call]
    sharding = SingleDeviceSharding(device)
    compiled = jax.jit(product(dtype), in_shardings=sharding, out_shardings=sharding)
    text = compiled.lower(shape, shape).compile().as_text() or ""
    found = dict.fromkeys(_CUSTOM_CALL.findall(text) + _FUSION_KIND.findall(text))
    found.pop("__custom_fusion", None)
    return ", ".join(found) or "dot"


def _prepared(
    devices: Devices, dtype: str, n: int, seed: int
) -> tuple[Callable[[], Any], Any, Any]:
    if n % len(as_list(devices)):
        raise ValueError(f"n={n} does not split over {len(as_list(devices))} devices")
    a, b = operands(jax.random.PRNGKey(seed), n, dtype, devices)
    split, _ = shardings(devices)
    compiled = jax.jit(product(dtype), out_shardings=split).lower(a, b).compile()

    def call() -> Any:
        return compiled(a, b).block_until_ready()

    return call, a, b


def _result(
    dtype: str, n: int, seconds: list[float], a: Any, b: Any, c: Any, seed: int
) -> MatmulResult:
    x = jnp.asarray(np.random.default_rng(seed).standard_normal(n), jnp.float32)
    error = product_error(a, b, c, x)
    summary = summarize(MATMUL.flops(n), seconds)
    return MatmulResult(dtype, n, summary, error, output_dtype(dtype), seconds)


def measure_matmul(
    devices: Devices,
    dtype: str,
    n: int,
    repetitions: int,
    warmup: int = 2,
    seed: int = 0,
    budget_s: float | None = None,
) -> MatmulResult:
    """Time C = A·B at ``dtype`` and size ``n`` on ``devices``; validate the product."""
    call, a, b = _prepared(devices, dtype, n, seed)
    timed = time_calls(call, warmup=warmup, repetitions=repetitions, budget_s=budget_s)
    return _result(dtype, n, timed.seconds, a, b, timed.last, seed)


def sustain_matmul(
    devices: Devices, dtype: str, n: int, seconds: float, seed: int = 0
) -> MatmulResult:
    """Repeat the product for ``seconds``: the timings show whether the device throttles."""
    call, a, b = _prepared(devices, dtype, n, seed)
    timed = time_for(call, seconds=seconds)
    return _result(dtype, n, timed.seconds, a, b, timed.last, seed)

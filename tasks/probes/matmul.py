"""Dense matmul throughput, compiled by JAX for one device.

Random operands (constant ones let hardware and compilers take shortcuts), float32 at full
precision (not silently TF32), int8 accumulated in int32. The product is validated by a
matrix-vector identity, C·x = A·(B·x), computed at float32 on the device: cheap (O(n²)) and
blind to nothing a wrong kernel would do.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Final

import jax
import jax.numpy as jnp
import numpy as np

from tasks.probes.kernels import MATMUL
from tasks.probes.statistics import Summary, summarize

# Relative error (2-norm of C·x - A·(B·x) over the norm of A·(B·x)) a correct product stays
# within, given the rounding of C to its output type.
TOLERANCE: Final = {
    "float32": 1e-3,
    "bfloat16": 2e-2,
    "float16": 5e-3,
    "float8_e4m3fn": 2e-1,
    "int8": 1e-5,
}
_HIGHEST = jax.lax.Precision.HIGHEST


@dataclass(frozen=True)
class MatmulResult:
    dtype: str
    n: int
    summary: Summary
    relative_error: float
    output_dtype: str

    @property
    def working_set_bytes(self) -> int:
        in_size = np.dtype(jnp.dtype(self.dtype)).itemsize
        out_size = np.dtype(jnp.dtype(self.output_dtype)).itemsize
        return MATMUL.bytes_moved(self.n, in_size, out_size)


def output_dtype(dtype: str) -> str:
    return "int32" if dtype == "int8" else dtype


def operands(key: jax.Array, n: int, dtype: str, device: jax.Device) -> tuple[Any, Any]:
    """Two random n×n operands on ``device``; small integers for int8."""
    ka, kb = jax.random.split(key)

    def make(k: jax.Array) -> Any:
        if dtype == "int8":
            return jax.random.randint(k, (n, n), -8, 8, dtype=jnp.int8)
        return jax.random.normal(k, (n, n), dtype=jnp.float32).astype(dtype)

    make_on_device = jax.jit(make, out_shardings=jax.sharding.SingleDeviceSharding(device))
    return make_on_device(ka), make_on_device(kb)


def product_error(a: Any, b: Any, c: Any, x: Any) -> float:
    """Relative 2-norm error of C·x against A·(B·x), all at float32 and full precision."""
    f32 = jnp.float32
    got = jnp.matmul(c.astype(f32), x, precision=_HIGHEST)
    want = jnp.matmul(
        a.astype(f32), jnp.matmul(b.astype(f32), x, precision=_HIGHEST), precision=_HIGHEST
    )
    return float(jnp.linalg.norm(got - want) / jnp.linalg.norm(want))


def measure_matmul(
    device: jax.Device, dtype: str, n: int, repetitions: int, warmup: int = 2, seed: int = 0
) -> MatmulResult:
    """Time C = A·B at ``dtype`` and size ``n`` on ``device``; validate the product."""
    key = jax.random.PRNGKey(seed)
    a, b = operands(key, n, dtype, device)
    out = output_dtype(dtype)
    precision = _HIGHEST if dtype == "float32" else None

    def product(x: Any, y: Any) -> Any:
        return jnp.matmul(x, y, precision=precision, preferred_element_type=jnp.dtype(out))

    compiled = jax.jit(product).lower(a, b).compile()
    seconds: list[float] = []
    c: Any = None
    for i in range(warmup + repetitions):
        start = time.perf_counter()
        c = compiled(a, b)
        c.block_until_ready()
        elapsed = time.perf_counter() - start
        if i >= warmup:
            seconds.append(elapsed)
    x = jax.device_put(np.random.default_rng(seed).standard_normal(n).astype(np.float32), device)
    error = product_error(a, b, c, x)
    return MatmulResult(dtype, n, summarize(MATMUL.flops(n), seconds), error, out)

"""What one stored element costs in memory at each precision, scales included.

The memory wall is counted in bytes, and below 8 bits the scales that make a narrow format
usable are no longer negligible: a 4-bit element with one 8-bit scale per 16 elements costs
4.5 bits, 12.5 % more than "half a byte". Each precision name means exactly one format, declared
here once (the schema's ``PRECISIONS`` are the names; this table is their cost):

- ``fp8``: E4M3/E5M2 with per-tensor (or per-channel) scales, about 8 bits;
- ``fp6``: **MXFP6** (OCP Microscaling v1.0): 32 E2M3/E3M2 elements share one 8-bit E8M0
  scale, 6 + 8/32 = 6.25 bits. NVIDIA has no NVFP6; Blackwell and CDNA4 run MXFP6;
- ``fp4``: **NVFP4** (NVIDIA Blackwell): 16 E2M1 elements share one FP8 E4M3 scale (plus one
  fp32 per tensor, negligible), 4 + 8/16 = 4.5 bits. The alternative, **MXFP4** (OCP: 32
  elements, one E8M0 scale, 4.25 bits; AMD CDNA4, gpt-oss checkpoints), is 5.6 % smaller; a
  user whose checkpoints are MXFP4 overstates its bytes by that much;
- ``int8``: per-channel 16-bit scales over k >= 4096 inputs, under 0.5 % of the bytes, not
  counted;
- ``int4``: weight-only group quantization as GPTQ/AWQ ship it, a 16-bit scale per group of
  **128** elements, 4 + 16/128 = 4.125 bits (the zero points of asymmetric schemes packed at
  4 bits would add 0.03 bits, not counted).

A KV cache or activations stored at a narrow precision use the same format.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final


@dataclass(frozen=True)
class NumberFormat:
    """A precision's element and its shared scale: ``bits + scale_bits / block``."""

    precision: str
    element_bits: int
    block: int = 0
    scale_bits: int = 0
    name: str = ""

    @property
    def bits_per_element(self) -> float:
        return self.element_bits + (self.scale_bits / self.block if self.block else 0.0)

    @property
    def bytes_per_element(self) -> float:
        return self.bits_per_element / 8


FORMATS: Final[Mapping[str, NumberFormat]] = {
    f.precision: f
    for f in (
        NumberFormat("fp32", 32, name="IEEE binary32"),
        NumberFormat("tf32", 32, name="stored as fp32"),
        NumberFormat("bf16", 16, name="bfloat16"),
        NumberFormat("fp16", 16, name="IEEE binary16"),
        NumberFormat("fp8", 8, name="E4M3/E5M2, per-tensor scale"),
        NumberFormat("fp6", 6, block=32, scale_bits=8, name="MXFP6: 32 elements, E8M0 scale"),
        NumberFormat("fp4", 4, block=16, scale_bits=8, name="NVFP4: 16 elements, E4M3 scale"),
        NumberFormat("int8", 8, name="per-channel scales, not counted"),
        NumberFormat("int4", 4, block=128, scale_bits=16, name="groups of 128, 16-bit scale"),
    )
}
# The alternative 4-bit format, for the record (not a precision name of its own).
MXFP4: Final = NumberFormat("fp4", 4, block=32, scale_bits=8, name="MXFP4: 32 elements, E8M0")

BYTES_PER_ELEMENT: Final[Mapping[str, float]] = {p: f.bytes_per_element for p, f in FORMATS.items()}

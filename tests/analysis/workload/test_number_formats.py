"""Bytes per stored element, block scales counted, and a quantized checkpoint as it ships."""

from __future__ import annotations

import pytest

from hardware_profiles.schema import PRECISIONS
from tasks.analysis.workload.number_formats import BYTES_PER_ELEMENT, FORMATS, MXFP4
from tasks.analysis.workload.presets import preset
from tasks.analysis.workload.workload_model import estimate, parameters


def test_every_schema_precision_has_one_format() -> None:
    assert tuple(FORMATS) == PRECISIONS


@pytest.mark.parametrize(
    ("precision", "bits"),
    [
        ("bf16", 16.0),
        ("fp8", 8.0),
        ("fp6", 6 + 8 / 32),  # MXFP6: 32 elements share an 8-bit E8M0 scale
        ("fp4", 4 + 8 / 16),  # NVFP4: 16 elements share an 8-bit E4M3 scale
        ("int4", 4 + 16 / 128),  # groups of 128 with a 16-bit scale
    ],
)
def test_scales_are_counted(precision: str, bits: float) -> None:
    assert FORMATS[precision].bits_per_element == bits
    assert BYTES_PER_ELEMENT[precision] == bits / 8


def test_mxfp4_is_the_smaller_alternative() -> None:
    assert MXFP4.bits_per_element == 4.25
    assert MXFP4.bits_per_element < FORMATS["fp4"].bits_per_element


def test_fp4_checkpoint_keeps_a_16_bit_embedding_and_head() -> None:
    arch = preset("llama-3.1-70b")
    p = parameters(arch)
    fp4 = estimate(arch, phase="decode", weights="fp4")
    # Embedding and LM head (2 x 128256 x 8192 = 2.10e9) at 2 bytes; the other 68.45e9 at
    # NVFP4's 0.5625 bytes: 0.605 bytes per parameter overall.
    head = 2 * 128256 * 8192
    assert (fp4.head, fp4.kv) == ("bf16", "bf16")
    assert fp4.weight_bytes == pytest.approx(0.5625 * (p.total - head) + 2 * head)
    assert fp4.weight_bytes / p.total == pytest.approx(0.605, abs=0.001)
    asked = estimate(arch, phase="decode", weights="fp4", head="fp4")
    assert asked.weight_bytes / p.total == 0.5625


def test_weights_wider_than_the_dtype_widen_the_head() -> None:
    fp32 = estimate(preset("llama-3.1-8b"), phase="decode", weights="fp32")
    assert fp32.head == "fp32" and fp32.weight_bytes == 4 * fp32.parameters_total

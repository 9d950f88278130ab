"""The method page's ground-truth paragraph and table, read back from a real PDF."""

from __future__ import annotations

from pathlib import Path

from reports.build import write_flowables
from reports.validation import decode_error, parts_text, sentence, validation_section
from tests.pdf import pdf_text


def _case(name: str, phase: str, ratio: float | None) -> dict[str, object]:
    return {
        "case": name,
        "phase": phase,
        "layers_run": 1,
        "layers_total": 32,
        "predicted_step_s": 0.1,
        "measured_step_s": None if ratio is None else 0.1 * ratio,
        "ratio": ratio,
        "model_bytes": 1.0e9,
        "xla_bytes": 1.02e9,
        "status": "ok" if ratio else "waived",
    }


PARTS = {
    "bandwidth_bytes_per_s": 40e9,
    "predicted_parts": [
        {
            "part": "matmuls",
            "step_s": 0.05,
            "bound": "compute",
            "gemm_rows": 16,
            "gemm_in_features": 4096,
            "gemm_out_features": 28672,
            "gemm_flops_per_s": 45e9,
        },
        {
            "part": "attention",
            "step_s": 0.004,
            "bound": "memory",
            "gemm_rows": 16,
            "gemm_in_features": 4096,
            "gemm_out_features": 28672,
            "gemm_flops_per_s": 45e9,
        },
    ],
}
RECORDS = [
    {**_case("mistral-7b decode b1", "decode", 1.10), **PARTS, "roofline_step_s": 0.044},
    _case("mistral-7b decode b16", "decode", 1.40),
    _case("mixtral-8x7b decode b1", "decode", 0.80),
    _case("mistral-7b prefill 128", "prefill", 3.0),
    _case("deepseek-v3 decode b1", "decode", None),
]


def test_decode_error_is_the_median_over_decode_cases_only() -> None:
    # |0.10|, |0.40|, |-0.20| -> median 0.20; the prefill and the waived case do not count.
    assert abs(decode_error(RECORDS) - 0.2) < 1e-12
    assert "predicted decode steps within 20%" in sentence(RECORDS)
    assert "no decode case ran" in sentence([RECORDS[3]])


def test_the_single_roofline_error_stands_beside_the_parts_sum() -> None:
    # mistral b1 measured 0.11 s against a single roofline of 0.044 s: 0.11/0.044 - 1 = 1.5.
    assert "missed them by 150%" in sentence(RECORDS)
    assert "missed them" not in sentence(RECORDS[1:])


def test_the_pdf_states_the_error_and_lists_the_cases(tmp_path: Path) -> None:
    path = write_flowables(validation_section(RECORDS), tmp_path / "v.pdf", title="t", subject="s")
    text = pdf_text(path)
    assert "On this host memwall's model predicted decode steps within 20%" in text
    for name in ("mistral-7b decode b16", "mixtral-8x7b decode b1", "1.40", "1.02"):
        assert name in text
    assert "mistral-7b decode b1: predicted = matmuls 50.0 ms" in " ".join(text.split())
    assert validation_section([]) == []


def test_parts_text_names_the_ceiling_that_bound_each_part() -> None:
    assert parts_text(RECORDS[0]) == (
        "matmuls 50.0 ms (GEMM 16x4096x28672 at 45.0 GFLOP/s) + "
        "attention 4.0 ms (memory at 40.0 GB/s triad)"
    )
    assert parts_text(RECORDS[1]) == ""

"""The method page's ground-truth paragraph and table, read back from a real PDF."""

from __future__ import annotations

from pathlib import Path

from reports.build import write_flowables
from reports.validation import decode_error, sentence, validation_section
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


RECORDS = [
    _case("mistral-7b decode b1", "decode", 1.10),
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


def test_the_pdf_states_the_error_and_lists_the_cases(tmp_path: Path) -> None:
    path = write_flowables(validation_section(RECORDS), tmp_path / "v.pdf", title="t", subject="s")
    text = pdf_text(path)
    assert "On this host memwall's model predicted decode steps within 20%" in text
    for name in ("mistral-7b decode b16", "mixtral-8x7b decode b1", "1.40", "1.02"):
        assert name in text
    assert validation_section([]) == []

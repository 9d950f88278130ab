"""Layouts no engine could run are refused in one line that lists what would be valid."""

from __future__ import annotations

import pytest

from tasks.analysis.training.layout import (
    Layout,
    LayoutError,
    TrainingRun,
    check_run,
    parse_layout,
    stage_layers,
)
from tasks.analysis.workload.presets import preset


def test_parse_reads_every_key_and_defaults_the_rest_to_one() -> None:
    layout = parse_layout("dp=64, tp=8,pp=16,vp=2")
    assert layout == Layout(dp=64, tp=8, pp=16, cp=1, ep=1, vp=2)
    assert layout.devices == 64 * 8 * 16
    assert layout.text() == "dp=64,tp=8,pp=16,vp=2"


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("dp=64,xx=2", "a key of dp, tp, pp, cp, ep, vp"),
        ("dp=0", "dp must be >= 1"),
        ("dp=2,dp=4", "dp given twice"),
        ("", "is empty"),
    ],
)
def test_parse_refuses_what_is_not_a_layout(text: str, says: str) -> None:
    with pytest.raises(LayoutError, match=says):
        parse_layout(text)


def _refusal(layout: str, devices: int | None = None, **run: object) -> str:
    arch = preset(str(run.pop("model", "llama-3.1-70b")))
    given = {"global_batch": 1024, "sequence": 8192, **run}
    with pytest.raises(LayoutError) as caught:
        check_run(arch, TrainingRun(parse_layout(layout), **given), devices)  # type: ignore[arg-type]
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_a_product_that_is_not_the_device_count_names_the_dp_that_would_be() -> None:
    assert "use dp=128" in _refusal("dp=64,tp=8", devices=1024)
    assert "valid tp·pp·cp products: 1, 2, 4" in _refusal("dp=8,tp=3", devices=1024)


def test_heads_and_layers_that_do_not_divide_list_the_valid_degrees() -> None:
    assert "valid tp: 1, 2, 4, 8, 16, 32, 64" in _refusal("dp=1,tp=3")
    assert "valid pp·vp: 1, 2, 4, 5, 8, 10, 16, 20, 40, 80" in _refusal("dp=1,pp=3")


def test_a_micro_batch_larger_than_the_global_batch_lists_the_valid_ones() -> None:
    message = _refusal("dp=4", global_batch=8, micro_batch=16)
    assert "valid micro-batches: 1, 2" in message
    assert "valid micro-batches: 1, 2, 4, 8" in _refusal("dp=1", global_batch=8, micro_batch=3)


def test_expert_parallelism_must_divide_dp_cp_and_the_experts() -> None:
    assert "needs an MoE model" in _refusal("dp=8,ep=2")
    assert "valid ep: 1, 2, 4, 8" in _refusal("dp=8,ep=16", model="mixtral-8x7b")


def test_unknown_knobs_are_refused_with_the_valid_ones() -> None:
    assert "valid: none, selective, full" in _refusal("dp=1", recompute="some")
    assert "valid: 0, 1, 2, 3" in _refusal("dp=1", zero=4)
    assert "valid: adam, adam-fp32-grads, adam-fp32" in _refusal("dp=1", optimizer="lion")


def test_uneven_stages_hold_the_rounded_up_layers() -> None:
    """Llama 3.1 405B's 126 layers over 16 stages: 8 on the fullest (⌈126/16⌉); interleaved
    by 2, 2·⌈126/32⌉ = 8 as well; without the allowance the layout is refused."""
    arch = preset("llama-3.1-405b")
    run = TrainingRun(Layout(dp=64, tp=8, pp=16), 2048, 8192, uneven_stages=True)
    check_run(arch, run, 8192)
    assert stage_layers(arch, run) == 8
    interleaved = TrainingRun(Layout(dp=64, tp=8, pp=16, vp=2), 2048, 8192, uneven_stages=True)
    assert stage_layers(arch, interleaved) == 8
    assert "allow uneven stages" in _refusal("dp=64,tp=8,pp=16", model="llama-3.1-405b")

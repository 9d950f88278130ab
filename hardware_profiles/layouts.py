"""Layout texts as files and options write them: ``tp=8``, ``dp_attention=8,ep=8`` (serving) or
``dp=64,tp=8,pp=16`` (training). Only the words are checked here; whether a layout splits a model
is the workload model's business (``tasks.analysis.workload.layout``,
``tasks.analysis.training.layout``)."""

from __future__ import annotations

from typing import Final

# Degrees of a serving layout ("dp_attention=8,ep=8"): tasks.analysis.workload.layout.
LAYOUT_DEGREES: Final = ("tp", "dp_attention", "ep", "pp")
# A training layout's (Megatron's names): dp·tp·pp·cp devices, ep carved out of dp·cp, vp the
# interleaved pipeline's virtual stages.
TRAINING_LAYOUT_DEGREES: Final = ("dp", "tp", "pp", "cp", "ep", "vp")
# Activation recompute policies a training run may name (costs: tasks.analysis.training.layout).
RECOMPUTE_POLICIES: Final = ("none", "selective", "full", "selective-layer", "selective-op")


def layout_degrees(text: str, degrees: tuple[str, ...] = LAYOUT_DEGREES) -> dict[str, int]:
    """The degrees a layout text names (of a serving layout, or of ``degrees``), each a whole
    number >= 1; a ValueError saying what is wrong otherwise. Whether they split a model is the
    workload model's business."""
    given: dict[str, int] = {}
    for part in (p.strip() for p in text.split(",")):
        name, sep, value = (x.strip() for x in part.partition("="))
        if not sep or name not in degrees:
            raise ValueError(
                f"layout {text!r}: {part!r} is not DEGREE=N; degrees: {', '.join(degrees)}"
            )
        if name in given:
            raise ValueError(f"layout {text!r}: {name} is given twice")
        if not value.isdigit() or int(value) < 1:
            raise ValueError(f"layout {text!r}: {name} must be a whole number >= 1")
        given[name] = int(value)
    return given


def layout_devices(degrees: dict[str, int]) -> int:
    """Devices a layout spans: tp · dp_attention · pp (ep splits the same devices)."""
    return degrees.get("tp", 1) * degrees.get("dp_attention", 1) * degrees.get("pp", 1)


def is_layout(text: object) -> bool:
    """A serving or a training layout (which one a row needs is its phase's business)."""
    for degrees in (LAYOUT_DEGREES, TRAINING_LAYOUT_DEGREES):
        try:
            layout_degrees(str(text), degrees)
        except ValueError:
            continue
        return True
    return False


def training_devices(degrees: dict[str, int]) -> int:
    """Devices a training layout spans: dp · tp · pp · cp (ep and vp split the same devices)."""
    devices = 1
    for axis in ("dp", "tp", "pp", "cp"):
        devices *= degrees.get(axis, 1)
    return devices

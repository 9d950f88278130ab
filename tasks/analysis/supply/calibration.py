"""Calibrated ceilings: what each accelerator model delivers, measured where memwall has
measured it, spec × a default efficiency where it has not.

Spec sheets state peaks nobody reaches; ranking on them would flatter every accelerator equally
and hide the wall. A model measured on any host in this run lends its measured efficiency to the
whole model; the defaults stand in (and are printed in the report) for the rest. On top of these
STREAM-based ceilings, each phase gets its own efficiency with its source
(``tasks.analysis.supply.efficiency``): workload probes, else defaults fitted on published runs.
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from hardware_profiles.errors import MemwallError
from hardware_profiles.schema import PEAK_PRECISIONS, peak_column
from tasks.analysis.supply.efficiency import NO_FIT, Efficiency, FittedDefaults, phase_columns

DEFAULT_BANDWIDTH_EFFICIENCY = 0.85
DEFAULT_FLOPS_EFFICIENCY = 0.70

# The bandwidth probe whose efficiency stands for a model's usable memory bandwidth.
BANDWIDTH_PROBE = "triad"
# JAX dtype names of matmul probes -> the catalog precision they measure.
DTYPE_PRECISION = {
    "float32": "fp32",
    "tfloat32": "tf32",
    "bfloat16": "bf16",
    "float16": "fp16",
    "float8_e4m3fn": "fp8",
    "int8": "int8",
}
_USABLE = ("ok", "unstable")


class CalibrationError(MemwallError, ValueError):
    """A default efficiency outside (0, 1]."""


def _measured_efficiency(measurements: pd.DataFrame) -> dict[tuple[str, str], float]:
    """(accelerator_id, 'bandwidth' or precision) -> measured efficiency.

    Per device the best size counts (a GEMM sweep's best size is what a tuned workload gets);
    across devices of one model the median counts, so one odd device does not speak for all.
    """
    usable = measurements[
        measurements["accelerator_id"].notna()
        & measurements["efficiency"].notna()
        & measurements["status"].isin(_USABLE)
        & (measurements["device_index"] >= 0)
    ]
    if usable.empty:
        return {}
    bandwidth = usable[usable["probe"] == BANDWIDTH_PROBE].assign(ceiling="bandwidth")
    matmul = usable[(usable["probe"] == "matmul") & usable["dtype"].isin(list(DTYPE_PRECISION))]
    matmul = matmul.assign(ceiling=matmul["dtype"].map(DTYPE_PRECISION))
    rows = pd.concat([bandwidth, matmul])
    per_device = rows.groupby(["accelerator_id", "ceiling", "host", "device_index"])[
        "efficiency"
    ].max()
    per_model = per_device.groupby(level=["accelerator_id", "ceiling"]).median()
    return {
        (str(model), str(ceiling)): float(value)
        for model, ceiling, value in zip(
            per_model.index.get_level_values(0),
            per_model.index.get_level_values(1),
            per_model.to_numpy(),
            strict=True,
        )
    }


def calibrate(
    catalog: pd.DataFrame,
    measurements: pd.DataFrame | None = None,
    *,
    bandwidth_efficiency: float = DEFAULT_BANDWIDTH_EFFICIENCY,
    flops_efficiency: float = DEFAULT_FLOPS_EFFICIENCY,
    fitted: FittedDefaults = NO_FIT,
    history: pd.DataFrame | None = None,
    production: Mapping[tuple[str, str], Efficiency] | None = None,
    engine: str | None = None,
) -> pd.DataFrame:
    """One row per catalog model: usable bandwidth and FLOP/s per precision, and their origin.

    Columns: accelerator_id, bandwidth_efficiency, bandwidth_from, bandwidth_bytes_per_s, and
    for each precision p: flops_efficiency_p, flops_from_p, flops_per_s_p (null where the
    model has no peak for p); then the per-phase columns of
    :func:`tasks.analysis.supply.efficiency.phase_columns`, from the workload probes in
    ``measurements`` (this run) or ``history`` (earlier runs), else ``fitted``; what
    ``production`` measured on the fleet comes before all of them. ``engine`` (``NAME`` or
    ``NAME VERSION``) picks the engine generation whose fitted expert shares stand; none:
    the newest.
    """
    for name, value in (("bandwidth", bandwidth_efficiency), ("flops", flops_efficiency)):
        if not 0 < value <= 1:
            raise CalibrationError(f"default {name} efficiency must be in (0, 1], got {value}")
    measured = _measured_efficiency(measurements) if measurements is not None else {}
    ids = catalog["accelerator_id"].astype(str)
    out = pd.DataFrame({"accelerator_id": ids})

    def pick(ceiling: str, default: float) -> tuple[pd.Series, pd.Series]:
        values = ids.map(lambda a: measured.get((a, ceiling)))
        origin = values.notna().map({True: "measured", False: "default"})
        return values.fillna(default).astype(float), origin

    eff, origin = pick("bandwidth", bandwidth_efficiency)
    out["bandwidth_efficiency"] = eff
    out["bandwidth_from"] = origin
    out["bandwidth_bytes_per_s"] = catalog["mem_bandwidth_bytes_per_s"].to_numpy() * eff
    for precision in PEAK_PRECISIONS:
        eff, origin = pick(precision, flops_efficiency)
        out[f"flops_efficiency_{precision}"] = eff
        out[f"flops_from_{precision}"] = origin
        out[f"flops_per_s_{precision}"] = catalog[peak_column(precision)].to_numpy() * eff
    return phase_columns(
        out,
        catalog["vendor"],
        here=measurements,
        history=history,
        fitted=fitted,
        production=production,
        engine=engine,
    )

"""A training job's wall and its month, by hand, through the projection and the ranking.

The job: Llama 3.1 70B at dp=128,tp=8 on 1,024 H100s (4M tokens of 8,192 per step, ZeRO-1,
selective recompute), one step every s seconds (whatever :func:`step_time` gives: its figures
are worked by hand in ``tests/analysis/training/test_hand_worked.py``). Its demand is
D0 = 1/(1.5·s) steps/s, so its headroom today is H(0) = (1/s)/D0 = 1.5; demand doubles yearly
(g = 1), so H(t) = 1.5/2^(t/12):

    H(7) = 1.5/2^(7/12) = 1.5/1.4983 = 1.0011   (still above 1)
    H(8) = 1.5/2^(8/12) = 1.5/1.5874 = 0.9449   (past the wall)

so its wall month is month 8: 2027-09 from a 2027-01 start, in general the first t above
12·ln(1.5)/ln(2) = 7.02. The step is compute-bound at this layout (its collectives take less
time than its matmuls), so the wall is the compute wall, reported as a shortfall, not as
starvation. FP8 matmuls k times faster give H'(0) = 1.5·k and a wall past 12·log2(1.5·k).
"""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pandas as pd

from hardware_profiles.catalog import builtin_catalog
from hardware_profiles.parquet import validate_frame
from hardware_profiles.scale_out import read_scale_out
from hardware_profiles.schema import WORKLOADS
from tasks.analysis.projection.horizon import NEVER
from tasks.analysis.projection.projector import project
from tasks.analysis.projection.uncertainty import Z90
from tasks.analysis.ranking.ranking import Ranked, rank, ranking_rows
from tasks.analysis.supply.calibration import calibrate
from tasks.analysis.training.audit import training_findings
from tasks.analysis.training.backtest import builtin_fit
from tasks.analysis.walls.training import job_headroom, wall_month
from tasks.analysis.walls.walls import WALLS
from tasks.analysis.workload.presets import preset
from tasks.analysis.workload.workload_model import estimate
from tests.analysis.projection.test_projector import _roadmap

START = dt.date(2027, 1, 1)
MONTHS = 18


def _job(layout: str, demand: float, growth: float = 1.0) -> dict[str, object]:
    e = estimate(preset("llama-3.1-70b"), phase="training", batch=512, context=8192)
    return {
        "workload_id": "pretrain-70b",
        "name": "70B pretraining",
        "owner": "research",
        "pool": "train",
        **e.workload_columns(),
        "demand_units_per_s": demand,
        "demand_growth_per_year": growth,
        "layout": layout,
        "global_batch_tokens": 4 * 2**20,
        "micro_batch": 1,
        "recompute": "selective",
        "zero_stage": 1,
        "optimizer": "adam",
    }


def _step(layout: str) -> float:
    """The step the audit times the job at (the ranking's own inputs)."""
    catalog = builtin_catalog()
    workloads = validate_frame(pd.DataFrame([_job(layout, 1.0)]), WORKLOADS, "w")
    found = training_findings(
        workloads, catalog, {"train": ("nvidia-h100-sxm", 1024)}, read_scale_out(),
        builtin_fit(catalog, read_scale_out()),
    )  # fmt: skip
    return float(found.summary["step_time_s"].iloc[0])


def _rank(layout: str, demand: float) -> tuple[pd.DataFrame, Ranked]:
    catalog = builtin_catalog()
    roadmap = _roadmap([("train", "2026-01-01", "nvidia-h100-sxm", 1024)])
    workloads = validate_frame(pd.DataFrame([_job(layout, demand)]), WORKLOADS, "w")
    ranked = rank(project(workloads, roadmap, calibrate(catalog), START, MONTHS), catalog=catalog)
    return ranked.ranking.set_index("workload_id"), ranked


def test_headroom_of_one_and_a_half_doubling_yearly_meets_the_wall_in_month_8() -> None:
    """The module docstring's arithmetic on the pure functions: H(7) = 1.0011, H(8) = 0.9449;
    a month before the pool holds hardware is not past a wall (NaN), nor one before the job
    starts (no demand: +inf)."""
    months = np.arange(MONTHS)
    demand = (2.0 ** (months / 12))[None, :] / 1.5  # supply 1 step/s
    headroom = job_headroom(np.array([1.0]), demand, np.ones((1, MONTHS), dtype=bool))
    assert headroom[0, 7] > 1 > headroom[0, 8]
    assert wall_month(headroom).tolist() == [8]
    served = months[None, :] >= 10
    assert wall_month(job_headroom(np.array([1.0]), demand, served)).tolist() == [10]
    late = np.where(months < 3, 0.0, demand)
    assert np.isinf(job_headroom(np.array([1.0]), late, np.ones((1, MONTHS), dtype=bool))[0, 0])


def test_the_ranking_gives_the_job_its_compute_wall_in_month_8_with_its_band() -> None:
    """Through project and rank: wall compute 2027-09 (module docstring), a shortfall not
    starvation; the band from the step's spread s (no demand-growth spread): P10 the first
    t above 12·log2(1.5·e^(−z·s)), P90 the first above 12·log2(1.5·e^(z·s)), z = 1.2816."""
    step = _step("dp=128,tp=8")
    table, ranked = _rank("dp=128,tp=8", 1 / (1.5 * step))
    row = table.loc["pretrain-70b"].to_dict()
    assert (row["wall"], row["wall_month"]) == ("compute", dt.date(2027, 9, 1))
    assert row["starve_month"] is None and row["shortfall_month"] == dt.date(2027, 9, 1)
    assert row["bound"] == "compute"
    assert row["step_time_s"] == step
    assert math.isclose(float(row["headroom_now"]), 1.5)
    assert (row["devices_per_replica"], row["replica_layout"]) == (1024, "dp=128,tp=8")
    assert ranked.training is not None
    spread = float(ranked.training.findings.summary["step_spread"].iloc[0])
    assert spread > 0

    def first_past(h0: float) -> int:
        return math.floor(12 * math.log2(h0)) + 1

    p10, p90 = first_past(1.5 * math.exp(-Z90 * spread)), first_past(1.5 * math.exp(Z90 * spread))
    month = {t: dt.date(2027 + (t // 12), t % 12 + 1, 1) for t in range(MONTHS)}
    assert row["wall_month_p10"] == month[p10]
    assert row["wall_month_p90"] == (month[p90] if p90 < MONTHS else None)


def test_fp8_matmuls_buy_the_months_its_speedup_gives() -> None:
    """FP8 matmuls make the step k times faster (k < 1: slower, at FP8's fitted GEMM
    efficiency): H'(0) = 1.5·k, its wall the first t above 12·log2(1.5·k) (month 0 where
    H'(0) < 1); the months bought are that less 8 (a wall past the horizon counts as its end,
    18: a lower bound). The ranking's best fix is the mitigation buying the most, if any buys
    a month."""
    step = _step("dp=128,tp=8")
    table, ranked = _rank("dp=128,tp=8", 1 / (1.5 * step))
    assert ranked.training is not None
    mitigations = ranked.training.findings.mitigations.set_index("mitigation")
    fp8 = mitigations.loc["fp8 matmuls"].to_dict()
    k = step / float(fp8["step_time_s"])
    after = 0 if 1.5 * k < 1 else math.floor(12 * math.log2(1.5 * k)) + 1
    assert fp8["wall_index"] == (after if after < MONTHS else NEVER)
    assert fp8["months_gained"] == min(after, MONTHS) - 8
    assert "convergence risk" in fp8["accuracy_risk"]
    row = table.loc["pretrain-70b"].to_dict()
    most = mitigations["months_gained"].max()
    assert row["months_gained"] == max(most, 0)
    assert row["best_mitigation"] == (mitigations["months_gained"].idxmax() if most > 0 else None)


def test_a_layout_that_does_not_fit_meets_the_capacity_wall_in_its_first_month() -> None:
    """dp=256,tp=4 puts 70B's weights, gradients and activations of a 4-way split on each
    H100 (116.3 GB): more than its 76.97 GB usable (0.9 x 81,559 MiB). No step runs (headroom
    0) from month 0, the capacity wall, lifted by the mitigations whose layout fits (twice the
    tensor parallelism)."""
    table, ranked = _rank("dp=256,tp=4", 1e-6)
    row = table.loc["pretrain-70b"].to_dict()
    assert (row["wall"], row["wall_month"], row["min_headroom"]) == ("capacity", START, 0.0)
    assert "2x tensor parallel" in row["wall_remedy"]
    assert ranked.walls is not None
    assert (ranked.walls.month_wall[0] == WALLS.index("capacity")).all()


def test_the_json_rows_carry_the_jobs_wall_layout_and_step() -> None:
    step = _step("dp=128,tp=8")
    _, ranked = _rank("dp=128,tp=8", 1 / (1.5 * step))
    (row,) = ranking_rows(ranked.ranking)
    assert row["wall"] == "compute" and row["wall_month"] == "2027-09"
    assert row["replica_layout"] == "dp=128,tp=8" and row["step_time_s"] == step


def test_a_job_its_pool_cannot_hold_yet_is_ranked_as_a_workload_and_said_so() -> None:
    """512 H100s first, 1,024 from 2027-06: a dp=128,tp=8 job (1,024 devices) is no layout on
    the pool's first hardware, so it is ranked by the projection alone (no step) and the
    training page says why."""
    catalog = builtin_catalog()
    roadmap = _roadmap(
        [
            ("train", "2026-01-01", "nvidia-h100-sxm", 512),
            ("train", "2027-06-01", "nvidia-h100-sxm", 512),
        ]
    )
    workloads = validate_frame(pd.DataFrame([_job("dp=128,tp=8", 0.01)]), WORKLOADS, "w")
    ranked = rank(project(workloads, roadmap, calibrate(catalog), START, MONTHS), catalog=catalog)
    assert ranked.training is not None and ranked.training.findings.summary.empty
    assert ranked.training.findings.skipped == [
        "pretrain-70b: layout dp=128,tp=8 needs 1024 devices; pool 'train' holds 512 x "
        "nvidia-h100-sxm"
    ]
    assert math.isnan(ranked.ranking["step_time_s"].iloc[0])
    assert ranked.ranking["bound"].iloc[0] in ("memory", "compute")

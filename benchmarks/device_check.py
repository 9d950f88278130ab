"""One prepared check of memwall's accelerator path, on whatever accelerators JAX sees, in
one short run: GPU time comes rarely and briefly, so the check is ready (and runs on a CPU in
CI, so it cannot rot) before a GPU is at hand.

    python -m benchmarks.device_check OUT_DIR [--quick] [--deadline-s SECONDS]
    make device-check OUT=OUT_DIR [ARGS=--quick]

Sections, each timed; both files are rewritten after each, so a run cut short keeps what it had:

1. discovery: every JAX device, what NVML says of it (model, memory, clocks now and at most,
   power limit, ECC, matched by PCI bus id: ``tasks.nvml``) and the catalog row it matched;
2. probes, on the first device of each kind (the summary's figures are the first device's;
   every row is in measurements.parquet): the STREAM kernels and the matmul sweep at
   float32, tfloat32, bfloat16, float16, float8_e4m3fn and int8 (a dtype the device or XLA
   lacks is a waived row with the reason), the host links, and the kernel XLA compiled each
   GEMM into;
3. native references in the same run (``benchmarks.native_reference``): a device-to-device
   copy and a bf16 matmul through PyTorch or CuPy on a GPU; likwid-bench's and numpy's copy
   and numpy's float32 matmul on a CPU;
4. ``memwall validate --quick`` (its cases and median error).

It writes ``device-check.json``, ``device-check.md`` (each figure beside the catalog's spec and
the native reference as ratios, with its CV, every number sourced) and ``measurements.parquet``
into OUT_DIR, and prints the Markdown. A step (a probe, a validate case) that would start past
``--deadline-s`` is skipped and listed, so the check ends inside one command's limit on a GPU
machine (planned: under 8 minutes on one H100; ``benchmarks/first_light.sh`` runs it there with
the gpu-marked tests). It prints figures and never fails a build: a section that breaks becomes
a note; only an unwritable OUT_DIR exits non-zero (2).

Figures. On this project's 2-core CPU (AMD EPYC, shared, load 5-6): the full form 96-98 s, the
quick form 43-85 s. On a GPU: not run yet (issue 28 was resolved as ready, not as verified).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import re
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import jax
import pandas as pd

from benchmarks.device_report import (
    Figure,
    Reference,
    figures,
    markdown,
    targets,
    write,
)
from benchmarks.native_reference import References, cpu_references, gpu_references
from hardware_profiles.catalog import builtin_catalog, match_device_kind
from hardware_profiles.parquet import write_table
from hardware_profiles.schema import MEASUREMENTS, Accelerator, peak_column
from tasks.analysis.supply.calibration import DTYPE_PRECISION
from tasks.analysis.supply.validation import median_abs_error
from tasks.discovery import discover, host_state, nvml_gpu
from tasks.nvml import session, shutdown
from tasks.probes import matmul
from tasks.probes.runner import ProbePlan, bandwidth_elements, device_steps
from tasks.probes.software import software_versions
from tasks.probes.targets import Row, Step, failure_reason, single_target
from tasks.probes.validation import cases, record, validation_steps

# The GEMM sweep: every precision a catalog row states a peak for that JAX can name.
SWEEP = ("float32", "tfloat32", "bfloat16", "float16", "float8_e4m3fn", "int8")
USABLE = ("ok", "unstable")
_N = re.compile(r"\bn=(\d+)")


class Run:
    """The summary as it grows, the deadline, and the files rewritten after every section."""

    def __init__(self, folder: Path, form: str, deadline_s: float) -> None:
        self.folder = folder
        self.began = time.perf_counter()
        self.deadline = self.began + deadline_s
        self.rows: list[Row] = []
        self.summary: dict[str, Any] = {
            "check": "memwall device check",
            "form": form,
            "device": "not discovered",
            "started_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "wall_s": 0.0,
            "complete": False,
            "running": "",
            "software": software_versions(),
            "host": host_state().describe(),
            "imported": imported(),
            "discovery": [],
            "figures": [],
            "kernels": {},
            "natives": [],
            "targets": [],
            "validate": {"cases": [], "median_error": None, "decode_cases": 0, "source": ""},
            "sections": [],
            "notes": [],
        }

    def note(self, text: str) -> None:
        self.summary["notes"].append(text)
        print(f"note: {text}", file=sys.stderr, flush=True)

    def section(self, name: str, body: Callable[[], None]) -> None:
        """Run one section; a failure is a note, and the files are rewritten either way."""
        self.summary["running"] = name
        print(f"[{time.perf_counter() - self.began:6.1f} s] {name}", file=sys.stderr, flush=True)
        start = time.perf_counter()
        try:
            body()
        except Exception as exc:
            self.note(f"{name} broke: {failure_reason(exc)}")
        self.summary["sections"].append(
            {"name": name, "seconds": round(time.perf_counter() - start, 2)}
        )
        self.save()

    def steps(self, steps: Sequence[Step]) -> list[Row]:
        """Run ``steps`` in order; those that would start past the deadline are skipped."""
        rows: list[Row] = []
        skipped = []
        for step in steps:
            if time.perf_counter() > self.deadline:
                skipped.append(step.label)
                continue
            print(f"  {step.label}", file=sys.stderr, flush=True)
            rows += step.run()
        if skipped:
            self.note(f"past the deadline, skipped: {'; '.join(skipped)}")
        self.rows += rows
        return rows

    def save(self, complete: bool = False) -> None:
        self.summary["wall_s"] = round(time.perf_counter() - self.began, 2)
        self.summary["complete"] = complete
        self.summary["imported"] = imported()
        write(self.summary, self.folder)


def imported() -> dict[str, bool]:
    """Whether this run has imported Prefect or reportlab: the probe path must not need them."""
    return {name: name in sys.modules for name in ("prefect", "reportlab")}


def check_plan(platform: str, quick: bool) -> ProbePlan:
    """``memwall probe``'s plan for the platform (``--quick``'s with ``quick``), with the whole
    GEMM sweep, on one device at a time."""
    plan = ProbePlan.for_platform(platform, quick=quick)
    return dataclasses.replace(plan, matmul_dtypes=SWEEP, all_devices=False)


def catalog_entry(catalog: pd.DataFrame, accelerator_id: str | None) -> dict[str, Any] | None:
    rows = catalog[catalog["accelerator_id"] == accelerator_id]
    if accelerator_id is None or rows.empty:
        return None
    return {str(k): v for k, v in rows.iloc[0].to_dict().items()}


def discovery(accelerators: Sequence[Accelerator], catalog: pd.DataFrame) -> list[dict[str, Any]]:
    found = []
    nvml_open = session() is not None
    for a in accelerators:
        device = jax.devices()[a.device_index]
        entry: dict[str, Any] = {
            "id": int(device.id),
            "index": a.device_index,
            "platform": a.platform,
            "device_kind": a.device_kind,
            "local_hardware_id": getattr(device, "local_hardware_id", None),
            "memory_bytes": a.memory_bytes,
            "accelerator_id": a.accelerator_id,
            "catalog": catalog_entry(catalog, a.accelerator_id),
            "note": a.note,
        }
        for attribute in ("compute_capability", "core_count"):
            entry[attribute] = getattr(device, attribute, None)
        if a.platform != "gpu":
            entry["nvml_absent"] = "not a GPU"
        elif not nvml_open:
            entry["nvml_absent"] = "NVML unavailable (no nvidia-ml-py, or no NVIDIA driver)"
        else:
            gpu = nvml_gpu(device)
            if gpu is None:
                entry["nvml_absent"] = "NVML could not match this device"
            else:
                entry["nvml"] = dataclasses.asdict(gpu)
                entry["nvml_catalog_row"] = match_device_kind(catalog, gpu.name)
        found.append(entry)
    return found


def _spec(
    row: Row, catalog: pd.DataFrame
) -> tuple[Reference | None, str]:  # (the spec, why there is none)
    probe, dtype = str(row["probe"]), str(row["dtype"])
    accelerator_id = row["accelerator_id"]
    if probe == "matmul":
        precision = DTYPE_PRECISION.get(dtype)
        column = peak_column(precision) if precision else None
    elif probe in ("host-to-device", "device-to-host", "device-to-device"):
        return None, "the catalog has no figure for a host link"
    else:
        column = "mem_bandwidth_bytes_per_s"
    entry = catalog_entry(catalog, accelerator_id)
    if entry is None:
        return None, f"no catalog row matches {row['device_kind']!r}"
    if column is None or row["spec"] is None:
        return None, f"the catalog lists no {dtype} peak for {accelerator_id}"
    where = f"; {entry['source_url']}" if entry.get("source_url") else ""
    checked = f" (checked {entry['checked_on']})" if entry.get("checked_on") else ""
    source = f"catalog {accelerator_id} {column}: {entry['source']}{where}{checked}"
    return Reference(float(row["spec"]), source), ""


def _source(row: Row) -> str:
    detail = str(row["detail"]).split(" | ")[0]
    where = f"{row['device_kind']} #{row['device_index']}"
    if row["status"] == "waived":
        return f"memwall {row['probe']} {row['dtype']} on {where}: waived, {detail}"
    return (
        f"memwall {row['probe']} {row['dtype']} on {where} ({detail}), best of "
        f"{row['repetitions']} calls each timed to block_until_ready; {row['software']}"
    )


def largest_n(rows: Sequence[Row], dtype: str) -> int | None:
    sizes = [
        int(m.group(1))
        for r in rows
        if r["probe"] == "matmul" and r["dtype"] == dtype and r["status"] in USABLE
        for m in [_N.search(str(r["detail"]))]
        if m
    ]
    return max(sizes, default=None)


def natives(refs: References) -> dict[tuple[str, str], Reference]:
    out: dict[tuple[str, str], Reference] = {}
    copy = refs.best("copy", "")
    if copy is not None:
        out["copy", ""] = Reference(
            copy.best, copy.source, copy.summary.cv if copy.summary else None
        )
    for n in refs.found:
        if n.probe == "matmul":
            out["matmul", n.dtype] = Reference(
                n.best, n.source, n.summary.cv if n.summary else None
            )
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="folder for device-check.json and .md")
    parser.add_argument(
        "--quick", action="store_true", help="memwall probe --quick's sizes (CI, a smoke test)"
    )
    parser.add_argument(
        "--deadline-s",
        type=float,
        default=420.0,
        help="skip steps (probes, validate's cases) that would start after this many seconds "
        "(default 420)",
    )
    args = parser.parse_args(argv)
    if args.out.exists() and not args.out.is_dir():
        print(
            f"device_check: error: {args.out}: is a file; OUT_DIR names a folder", file=sys.stderr
        )
        return 2
    try:
        args.out.mkdir(parents=True, exist_ok=True)
        run = Run(args.out, "quick" if args.quick else "full", args.deadline_s)
        run.save()
    except OSError as exc:
        print(f"device_check: error: {args.out}: cannot write ({exc.strerror})", file=sys.stderr)
        return 2
    catalog = builtin_catalog()
    run_id = f"{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%SZ}-check-{uuid.uuid4().hex[:6]}"
    state: dict[str, Any] = {"accelerators": [], "refs": References([], []), "probe_rows": []}

    def find() -> None:
        state["accelerators"] = discover(catalog)
        run.summary["discovery"] = discovery(state["accelerators"], catalog)
        first = state["accelerators"][0]
        run.summary["device"] = f"{first.device_kind} ({first.platform})"

    run.section("discovery", find)
    firsts = list({a.device_kind: a for a in reversed(state["accelerators"])}.values())[::-1]
    if not firsts:
        run.save()
        return 0
    first = firsts[0]
    device = jax.devices()[first.device_index]
    plan = check_plan(first.platform, args.quick)

    def probes() -> None:
        for accelerator in firsts:
            steps = device_steps(single_target(accelerator, catalog), plan, run_id)
            state["probe_rows"] += run.steps(steps)
        kernel_n = min(1024, max(plan.matmul_sizes))
        kernels = {}
        for dtype in SWEEP:
            try:
                kernels[dtype] = matmul.kernel(device, dtype, kernel_n)
            except Exception as exc:
                kernels[dtype] = f"refused: {failure_reason(exc)}"
        run.summary["kernels"] = kernels

    def reference() -> None:
        elements = bandwidth_elements(plan, "copy", "float32", device)
        if first.platform == "gpu":
            n = largest_n(state["probe_rows"], "bfloat16") or max(plan.matmul_sizes)
            ordinal = int(getattr(device, "local_hardware_id", None) or 0)
            refs = gpu_references(ordinal, elements, n, plan.repetitions)
        else:
            n = largest_n(state["probe_rows"], "float32") or max(plan.matmul_sizes)
            refs = cpu_references(elements, n, plan.repetitions)
        state["refs"] = refs
        run.summary["natives"] = [
            {
                "probe": native.probe,
                "dtype": native.dtype,
                "unit": native.unit,
                "best": native.best,
                "median": native.summary.median if native.summary else None,
                "cv": native.summary.cv if native.summary else None,
                "source": native.source,
            }
            for native in refs.found
        ]
        for reason in refs.absent:
            run.note(f"native reference: {reason}")

    def validate() -> None:
        chosen = cases(None, first.platform, quick=True)
        steps, results = validation_steps(first, catalog, chosen, True, run_id)
        run.steps(steps)
        records = [record(r) for r in results]
        decode = [r["ratio"] for r in records if r["phase"] == "decode" and r["ratio"] is not None]
        run.summary["validate"] = {
            "cases": records,
            "median_error": median_abs_error(decode) if decode else None,
            "decode_cases": len(decode),
            "source": (
                f"memwall validate --quick on {first.device_kind} #{first.device_index}: "
                f"{len(records)} case(s) of {', '.join(sorted({c.arch.name for c in chosen}))}, "
                "each predicted from the triad and GEMM rates measured in turns with it "
                "(tasks/probes/validation.py); median over the decode cases"
            ),
        }

    def summarize() -> None:
        rows = [
            {**r, "source": _source(r), "spec_reference": spec, "spec_missing": missing}
            for r in state["probe_rows"]
            if r["device_index"] == first.device_index
            for spec, missing in [_spec(r, catalog)]
        ]
        found: list[Figure] = figures(rows, natives(state["refs"]))
        run.summary["figures"] = [f.as_dict() for f in found]
        error = run.summary["validate"]["median_error"]
        chosen = targets(found, error, first.platform == "gpu")
        run.summary["targets"] = [{**dataclasses.asdict(t), "verdict": t.verdict()} for t in chosen]

    run.section("probes", probes)
    run.section("native references", reference)
    run.section("validate --quick", validate)
    run.section("summary", summarize)
    if run.rows:
        write_table(pd.DataFrame(run.rows), args.out / "measurements.parquet", MEASUREMENTS)
    shutdown()
    run.summary["running"] = ""
    run.save(complete=True)
    print(markdown(run.summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Serving telemetry read from Prometheus, under the exporters' real names and labels.

Each figure is looked up under every spelling a supported version uses, and what answered is
kept so the report can say which version's names it found:

- **Bandwidth utilization** (dcgm-exporter): ``DCGM_FI_PROF_DRAM_ACTIVE`` (ratio of cycles the
  memory interface is busy moving data, 0 to 1), which DCGM 4.6 renamed
  ``DCGM_FI_PROF_DRAM_UTIL_RATIO``; labels ``UUID``, ``gpu``, ``modelName``, ``Hostname`` (or
  ``hostname``), and ``pod``/``namespace`` where the exporter maps GPUs to pods (or
  ``exported_pod``/``exported_namespace`` where Prometheus renamed them on scrape);
  ``GPU_I_ID`` marks a MIG instance.
  ``DCGM_FI_DEV_GPU_UTIL`` (percent of time a kernel ran) only tells a missing profiling field
  from an idle one. ``DCGM_FI_DEV_MEM_COPY_UTIL`` is time busy, not bandwidth: never read.
- **vLLM**: ``vllm:num_requests_running`` (the batch); ``vllm:kv_cache_usage_perc`` (0 to 1;
  before it, ``vllm:gpu_cache_usage_perc``, deprecated by vLLM PR #18354 and removed in its
  late-2025 releases); ``vllm:inter_token_latency_seconds`` (before it
  ``vllm:time_per_output_token_seconds``, hidden by PR #29330) histograms, whose ``_sum`` over
  ``_count`` is the mean decode step; ``vllm:request_prompt_tokens`` and
  ``vllm:request_generation_tokens`` histograms (the context); and, with
  ``--enable-mfu-metrics``, the counter ``vllm:estimated_read_bytes_per_gpu_total`` (+ write);
  ``vllm:cache_config_info``, whose ``cache_dtype`` label is the KV cache's dtype.
- **SGLang** (``--enable-metrics``): ``sglang:num_running_reqs``, ``sglang:token_usage``,
  ``sglang:inter_token_latency_seconds``, and ``sglang:decode_sum_seq_lens`` (the decode
  batch's summed sequence lengths: context = it over the batch).

Where a server exports both spellings (vLLM's deprecation releases do), the newer names are
read and the older ones left: each sample counts once.

A server is one engine instance: its ``model_name`` and ``namespace``/``pod`` (or ``instance``
outside Kubernetes), plus vLLM's ``engine`` label where data-parallel ranks have their own.
Every range query runs at one step over one window so the samples line up; rates use twice the
step as their range, so a scrape as slow as the step still leaves two samples in each
(request-size histograms an hour: requests end less often than steps do). The request-size
rates are asked once an hour (:class:`Hourly`), not every step: an hour's rate evaluated
every 5 minutes counts each finished request twelve times over, and was the slowest query of
a fleet's window; each sample takes the rate over the hour that holds it (the first hourly
point at or after it, an hour's rate standing for the hour before it).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np
import pandas as pd

from tasks.analysis.supply.production import ENGINE_COLUMNS, GPU_COLUMNS
from tasks.prometheus import DEFAULT_TIMEOUT_S, Series, query_range

DEFAULT_STEP_S: Final = 300.0
REQUEST_RATE_RANGE: Final = "1h"
REQUEST_STEP_S: Final = 3600.0
DCGM_BANDWIDTH: Final = (
    ("DCGM_FI_PROF_DRAM_ACTIVE", "dcgm-exporter, DCGM before 4.6 (DRAM_ACTIVE)"),
    ("DCGM_FI_PROF_DRAM_UTIL_RATIO", "dcgm-exporter, DCGM 4.6+ (DRAM_UTIL_RATIO)"),
)
DCGM_GPU_UTIL: Final = "DCGM_FI_DEV_GPU_UTIL"


@dataclass(frozen=True)
class EngineNames:
    """One engine's metric names in one version's spelling."""

    engine: str
    version: str
    batch: str
    kv_usage: str
    step_histogram: str
    prompt_histogram: str | None = None
    generation_histogram: str | None = None
    seq_lens_sum: str | None = None
    read_bytes: str | None = None
    write_bytes: str | None = None
    cache_info: str | None = None  # an info gauge whose ``cache_dtype`` label is the KV dtype


ENGINES: Final = (
    EngineNames(
        "vllm",
        "vLLM 0.10+ names (inter_token_latency_seconds, kv_cache_usage_perc)",
        "vllm:num_requests_running",
        "vllm:kv_cache_usage_perc",
        "vllm:inter_token_latency_seconds",
        "vllm:request_prompt_tokens",
        "vllm:request_generation_tokens",
        read_bytes="vllm:estimated_read_bytes_per_gpu_total",
        write_bytes="vllm:estimated_write_bytes_per_gpu_total",
        cache_info="vllm:cache_config_info",
    ),
    EngineNames(
        "vllm",
        "vLLM before 0.10 names (time_per_output_token_seconds, gpu_cache_usage_perc)",
        "vllm:num_requests_running",
        "vllm:gpu_cache_usage_perc",
        "vllm:time_per_output_token_seconds",
        "vllm:request_prompt_tokens",
        "vllm:request_generation_tokens",
        cache_info="vllm:cache_config_info",
    ),
    EngineNames(
        "sglang",
        "SGLang names (num_running_reqs, token_usage, decode_sum_seq_lens)",
        "sglang:num_running_reqs",
        "sglang:token_usage",
        "sglang:inter_token_latency_seconds",
        seq_lens_sum="sglang:decode_sum_seq_lens",
    ),
)
_IDENTITY: Final = ("model_name", "namespace", "pod", "instance", "engine")
_ENGINE_LABELS: Final = (
    "server", "model_name", "namespace", "pod", "host", "engine", "kv_cache_dtype",
)  # fmt: skip
_GPU_LABELS: Final = (
    "uuid", "gpu", "host", "device_kind", "namespace", "pod", "bandwidth_source", "mig_instance",
)  # fmt: skip


def _long_table(
    parts: list[dict[str, Any]], columns: tuple[str, ...], labels: tuple[str, ...]
) -> pd.DataFrame:
    """One long table from each series' part (a label's one value, or a column's samples),
    built once rather than hundreds of frames concatenated. Label columns are categorical
    (plain Python strings as categories): one value repeated per sample, grouped on and
    compared, never computed with, and a fleet's window groups by their codes instead of
    hashing a million strings."""
    sizes = [int(np.size(part["time_s"])) for part in parts]
    data: dict[str, Any] = {}
    for name in columns:
        if name in labels:
            codes, values = pd.factorize(
                np.array([str(part[name]) for part in parts], dtype=object)
            )
            data[name] = pd.Categorical.from_codes(
                np.repeat(codes, sizes), categories=pd.Index(values, dtype=object)
            )
        else:
            data[name] = np.concatenate(
                [np.asarray(part[name], dtype=float) for part in parts] or [np.empty(0)]
            )
    return pd.DataFrame(data, columns=list(columns))


@dataclass
class Telemetry:
    """The long tables :func:`tasks.analysis.supply.production.observe_rows` reads, and the
    versions whose names answered."""

    engine: pd.DataFrame
    gpus: pd.DataFrame
    names_found: list[str] = field(default_factory=list)


def _label(labels: dict[str, str], *names: str) -> str:
    return next((labels[n] for n in names if labels.get(n)), "")


def _server(labels: dict[str, str]) -> tuple[str, ...]:
    return tuple(labels.get(k, "") for k in _IDENTITY)


@dataclass(frozen=True)
class Hourly:
    """A query whose rates span an hour: asked at :data:`REQUEST_STEP_S` over the window,
    on a grid that ends where the window ends."""

    query: str


Ask = str | Hourly | None


class _Reader:
    def __init__(self, url: str, start_s: float, end_s: float, step_s: float, timeout_s: float):
        self.url, self.start_s, self.end_s = url, start_s, end_s
        self.step_s, self.timeout_s = step_s, timeout_s
        self.answers: dict[str | Hourly, list[Series]] = {}

    @property
    def rate_range(self) -> str:
        return f"{2 * self.step_s:g}s"

    def get(self, ask: str | Hourly) -> list[Series]:
        if isinstance(ask, Hourly):
            hours = math.ceil((self.end_s - self.start_s) / REQUEST_STEP_S)
            start_s = self.end_s - hours * REQUEST_STEP_S
            return query_range(
                self.url, ask.query, start_s, self.end_s, REQUEST_STEP_S, self.timeout_s
            )
        return query_range(
            self.url, ask, self.start_s, self.end_s, self.step_s, timeout_s=self.timeout_s
        )

    def get_all(self, queries: Sequence[Ask]) -> list[list[Series]]:
        """Each query's answer (none for None), asked at once: Prometheus evaluates one while
        memwall parses another, which a fleet's window needs (seconds each). A query asked
        before is answered from memory: spellings share names (both vLLM spellings read
        ``vllm:num_requests_running``), and each would otherwise fetch a fleet's series again."""
        asked = list(dict.fromkeys(q for q in queries if q is not None and q not in self.answers))
        if asked:
            with ThreadPoolExecutor(max_workers=len(asked)) as pool:
                self.answers.update(zip(asked, pool.map(self.get, asked), strict=True))
        return [[] if q is None else self.answers[q] for q in queries]

    def ratio(self, histogram: str) -> str:
        """The mean of a histogram's observations per step: rate(_sum) / rate(_count)."""
        r = self.rate_range
        return f"rate({histogram}_sum[{r}]) / rate({histogram}_count[{r}])"


def _by_server(series: Iterable[Series]) -> dict[tuple[str, ...], Series]:
    return {_server(s.labels): s for s in series}


def _column(
    found: dict[tuple[str, ...], Series],
    key: tuple[str, ...],
    times: np.ndarray,
    span_s: float = 0.0,
) -> np.ndarray:
    """The server's series at ``times``: the sample at each time, or, for a series of rates
    each over ``span_s`` before its point, the first point at or after each time within
    ``span_s``; NaN where there is none (a gap stays a gap)."""
    s = found.get(key)
    if s is None:
        return np.full(times.size, np.nan)
    if np.array_equal(s.times_s, times):
        return s.values
    at = pd.Series(s.values, index=s.times_s)
    if span_s > 0:
        return at.reindex(times, method="bfill", tolerance=span_s).to_numpy(dtype=float)
    return at.reindex(times).to_numpy(dtype=float)


def read_engines(reader: _Reader) -> tuple[pd.DataFrame, list[str]]:
    """One row per engine server and sample, under whichever version's names answered."""
    parts: list[dict[str, Any]] = []
    names: dict[str, list[str]] = {}
    covered: set[tuple[str, tuple[str, ...]]] = set()  # (engine, server) already read
    for spelling in ENGINES:
        context_query: Ask
        context_span_s = 0.0
        if spelling.seq_lens_sum is not None:
            context_query = f"{spelling.seq_lens_sum} / {spelling.batch}"
        else:
            assert spelling.prompt_histogram and spelling.generation_histogram
            r = REQUEST_RATE_RANGE
            context_query = Hourly(
                f"rate({spelling.prompt_histogram}_sum[{r}]) / "
                f"rate({spelling.prompt_histogram}_count[{r}]) + 0.5 * "
                f"rate({spelling.generation_histogram}_sum[{r}]) / "
                f"rate({spelling.generation_histogram}_count[{r}])"
            )
            context_span_s = REQUEST_STEP_S
        bytes_query = None
        if spelling.read_bytes and spelling.write_bytes:
            r = reader.rate_range
            bytes_query = f"rate({spelling.read_bytes}[{r}]) + rate({spelling.write_bytes}[{r}])"
        answers = reader.get_all(
            [
                reader.ratio(spelling.step_histogram),
                spelling.batch,
                spelling.kv_usage,
                context_query,
                bytes_query,
                spelling.cache_info,
            ]
        )
        steps, batch, kv, context, engine_bytes = (_by_server(a) for a in answers[:5])
        # The info gauge carries the server's labels but not always the model's.
        kv_dtype = {_server({**i.labels, "model_name": ""}): i.labels for i in answers[5]}
        if not steps:
            continue
        names.setdefault(spelling.engine, []).append(spelling.version)
        for key, step in steps.items():
            if (spelling.engine, key) in covered:
                continue  # a deprecation release exports both names: the newer ones stand
            covered.add((spelling.engine, key))
            times = step.times_s
            labels = step.labels
            where = labels.get("pod") or labels.get("instance", "")
            server = f"{spelling.engine} {labels.get('namespace', '')}/{where}".replace(" /", " ")
            if labels.get("engine"):
                server += f" engine {labels['engine']}"
            parts.append(
                {
                    "server": server,
                    "model_name": labels.get("model_name", ""),
                    "namespace": labels.get("namespace", ""),
                    "pod": labels.get("pod", ""),
                    "host": labels.get("instance", "").rsplit(":", 1)[0],
                    "engine": spelling.version,
                    "time_s": times,
                    "batch": _column(batch, key, times),
                    "step_s": step.values,
                    "context_tokens": _column(context, key, times, context_span_s),
                    "kv_cache_usage": _column(kv, key, times),
                    "engine_bytes_per_s_per_gpu": _column(engine_bytes, key, times),
                    "kv_cache_dtype": kv_dtype.get(_server({**labels, "model_name": ""}), {}).get(
                        "cache_dtype", ""
                    ),
                }
            )
    return _long_table(parts, ENGINE_COLUMNS, _ENGINE_LABELS), [
        v for vs in names.values() for v in vs
    ]


def read_gpus(reader: _Reader) -> tuple[pd.DataFrame, list[str]]:
    """One row per GPU series and sample: DCGM's bandwidth utilization (either spelling), with
    the GPU's identity and the pod it served. GPU utilization is read only where the profiling
    field reads 0 (the one place it matters: busy there means missing, not idle), which
    spares a fleet's window a second full series per GPU."""
    parts: list[dict[str, Any]] = []
    versions: list[str] = []
    for name, version in DCGM_BANDWIDTH:
        answered, busy_at_zero = reader.get_all(
            [name, f"{DCGM_GPU_UTIL} > 0 and on (UUID) ({name} == 0)"]
        )
        if answered:
            versions.append(version)
        util = {
            (b.labels.get("UUID", ""), _label(b.labels, "pod", "exported_pod")): b
            for b in busy_at_zero
        }
        for s in answered:
            labels = s.labels
            pod = _label(labels, "pod", "exported_pod")
            busy = util.get((labels.get("UUID", ""), pod))
            gpu_util = (
                np.full(s.times_s.size, np.nan)
                if busy is None
                else pd.Series(busy.values, index=busy.times_s).reindex(s.times_s).to_numpy()
            )
            parts.append(
                {
                    "uuid": labels.get("UUID", ""),
                    "gpu": labels.get("gpu", ""),
                    "host": _label(labels, "Hostname", "hostname"),
                    "device_kind": labels.get("modelName", ""),
                    "namespace": _label(labels, "namespace", "exported_namespace"),
                    "pod": pod,
                    "time_s": s.times_s,
                    "bandwidth_utilization": s.values,
                    "gpu_util": gpu_util,
                    "bandwidth_source": version,
                    "mig_instance": labels.get("GPU_I_ID", ""),
                }
            )
    return _long_table(parts, GPU_COLUMNS, _GPU_LABELS), versions


def read_telemetry(
    url: str,
    end_s: float,
    days: float,
    step_s: float = DEFAULT_STEP_S,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> Telemetry:
    """Every engine's and every GPU's samples over the ``days`` before ``end_s`` from ``url``.
    Raises :class:`tasks.prometheus.PrometheusUnreachable` when nothing answers."""
    end_s = float(int(end_s // step_s) * step_s)
    reader = _Reader(url, end_s - days * 86400, end_s, step_s, timeout_s)
    # The GPUs' queries beside the engines': Prometheus answers both at once.
    with ThreadPoolExecutor(max_workers=1) as pool:
        gpus_read = pool.submit(read_gpus, reader)
        engine, names = read_engines(reader)
        gpus, dcgm = gpus_read.result()
    return Telemetry(engine, gpus, [*dcgm, *names])

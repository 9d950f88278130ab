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
- **Bandwidth utilization** (AMD device-metrics-exporter, labels ``gpu_id``, ``serial_number``
  (or ``gpu_uuid`` where enabled), ``card_model``, ``hostname``, ``pod``/``namespace``,
  ``gpu_partition_id`` and ``gpu_compute_partition_type``): ``gpu_prof_fetch_size`` +
  ``gpu_prof_write_size``, the KiB its profiler saw read from and written to video memory in
  one sampling window (``SamplingInterval`` in its config, 1000 µs by default), over
  ``gpu_vram_max_bandwidth`` (GB/s), where the profiler fields are enabled
  (``ProfilerMetrics``; units from the exporter's docs/configuration/metricslist.md and
  configmap.md, and amd-smi's ``amdsmi_vram_info_t``); else ``gpu_umc_activity`` (memory
  controller busy, 0 to 100), a weaker signal, marked so. A GPU in a CPX/DPX/QPX compute
  partition is a slice, reported like a MIG instance.
- **Bandwidth utilization** (GKE's TPU device plugin, scraped from its ``/metrics``):
  ``memory_bandwidth_utilization`` (percent of the chip's HBM bandwidth), labels
  ``accelerator_id`` (one chip), ``model`` (``tpu-v6e-slice``, ``tpu-v5-lite-podslice``...),
  ``make`` (``cloud-tpu``), ``tpu_topology``, ``pod``/``namespace``/``container``.
- **vLLM**: ``vllm:num_requests_running`` (the batch); ``vllm:kv_cache_usage_perc`` (0 to 1;
  before it, ``vllm:gpu_cache_usage_perc``, deprecated by vLLM PR #18354 and removed in its
  late-2025 releases); ``vllm:inter_token_latency_seconds`` (before it
  ``vllm:time_per_output_token_seconds``, hidden by PR #29330) histograms, whose ``_sum`` over
  ``_count`` is the mean decode step; ``vllm:request_prompt_tokens`` and
  ``vllm:request_generation_tokens`` histograms (the context); and, with
  ``--enable-mfu-metrics``, the counter ``vllm:estimated_read_bytes_per_gpu_total`` (+ write);
  ``vllm:cache_config_info``, whose ``cache_dtype`` label is the KV cache's dtype;
  ``vllm:time_to_first_token_seconds`` (TTFT, a histogram in both spellings).
- **SGLang** (``--enable-metrics``): ``sglang:num_running_reqs``, ``sglang:token_usage``,
  ``sglang:inter_token_latency_seconds``, and ``sglang:decode_sum_seq_lens`` (the decode
  batch's summed sequence lengths: context = it over the batch);
  ``sglang:time_to_first_token_seconds``.
- **TensorRT-LLM** (trtllm-serve's ``/prometheus/metrics``, passed through by Dynamo; names
  as ``tensorrt_llm/metrics/collector.py`` declares them, labels ``model_name`` and
  ``engine_type``): ``trtllm_num_requests_running`` (the batch) and
  ``trtllm_kv_cache_utilization`` (used over all KV blocks, 0 to 1), both iteration statistics
  (``enable_iter_perf_stats``); ``trtllm_time_per_output_token_seconds`` and
  ``trtllm_time_to_first_token_seconds`` histograms (``return_perf_metrics``); the context from
  ``trtllm_prompt_tokens_total`` and ``trtllm_generation_tokens_total`` over
  ``trtllm_request_success_total`` (its ``finished_reason`` label summed away). Releases with
  only the five request metrics (TensorRT-LLM 1.1, as Dynamo's docs list them) export no
  batch, KV or context: their rows show the step and the TTFT, and calibrate nothing.

Where a server exports both spellings (vLLM's deprecation releases do; TensorRT-LLM's
releases with iteration statistics keep the five request metrics), the newer names are read
and the older ones left: each sample counts once, and a version is said found only where it
gave a server its row.

A server is one engine instance: its ``model_name`` and ``namespace``/``pod`` (or ``instance``
outside Kubernetes), plus vLLM's ``engine`` label where data-parallel ranks have their own.
Every range query runs at one step over one window so the samples line up; rates use twice the
step as their range, so a scrape as slow as the step still leaves two samples in each
(request-size histograms an hour: requests end less often than steps do). The request-size
and TTFT rates are asked once an hour (:class:`Hourly`), not every step: an hour's rate
evaluated every 5 minutes counts each finished request twelve times over, and was the slowest
query of a fleet's window; each sample takes the rate over the hour that holds it (the first
hourly point at or after it, an hour's rate standing for the hour before it). A query two
spellings share is asked once (:meth:`_Reader.get_all`), and every query of a read is asked
at once.
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
from tasks.analysis.supply.telemetry_checks import amd_bandwidth_utilization
from tasks.prometheus import DEFAULT_TIMEOUT_S, Series, query_range

DEFAULT_STEP_S: Final = 300.0
REQUEST_RATE_RANGE: Final = "1h"
REQUEST_STEP_S: Final = 3600.0
DCGM_BANDWIDTH: Final = (
    ("DCGM_FI_PROF_DRAM_ACTIVE", "dcgm-exporter, DCGM before 4.6 (DRAM_ACTIVE)"),
    ("DCGM_FI_PROF_DRAM_UTIL_RATIO", "dcgm-exporter, DCGM 4.6+ (DRAM_UTIL_RATIO)"),
)
DCGM_GPU_UTIL: Final = "DCGM_FI_DEV_GPU_UTIL"
AMD_FETCH: Final = "gpu_prof_fetch_size"
AMD_WRITE: Final = "gpu_prof_write_size"
AMD_MAX_BANDWIDTH: Final = "gpu_vram_max_bandwidth"
AMD_UMC_ACTIVITY: Final = "gpu_umc_activity"
AMD_GFX_ACTIVITY: Final = "gpu_gfx_activity"  # percent of time the graphics engine is busy
_AMD_CARD: Final = "hostname, gpu_id, serial_number"
AMD_BYTES: Final = (
    "AMD device-metrics-exporter, profiler fields "
    "(gpu_prof_fetch_size + gpu_prof_write_size over gpu_vram_max_bandwidth)"
)
AMD_UMC: Final = (
    "AMD device-metrics-exporter, gpu_umc_activity only "
    "(memory controller busy time: a weaker signal)"
)
# The exporter's default profiler SamplingInterval (its configmap.md): the window
# gpu_prof_fetch_size and gpu_prof_write_size count KiB over.
AMD_SAMPLING_INTERVAL_US: Final = 1000.0
TPU_BANDWIDTH: Final = (
    "memory_bandwidth_utilization",
    "GKE TPU device plugin (memory_bandwidth_utilization)",
)
TPU_QUERY: Final = f'{TPU_BANDWIDTH[0]}{{make=~".*tpu.*"}}'
# The label each bandwidth source names the accelerator model by, as a report says it.
ACCELERATOR_LABEL: Final = {
    **{version: "DCGM modelName" for _, version in DCGM_BANDWIDTH},
    AMD_BYTES: "AMD card_model",
    AMD_UMC: "AMD card_model",
    TPU_BANDWIDTH[1]: "TPU model",
}


@dataclass(frozen=True)
class Hourly:
    """A query whose rates span an hour: asked at :data:`REQUEST_STEP_S` over the window,
    on a grid that ends where the window ends."""

    query: str


Ask = str | Hourly | None


def _span_s(ask: Ask) -> float:
    """How long before its point each of the answer's samples stands for (0: the point)."""
    return REQUEST_STEP_S if isinstance(ask, Hourly) else 0.0


@dataclass(frozen=True)
class EngineNames:
    """One engine's metric names in one version's spelling."""

    engine: str
    version: str
    batch: str | None  # None: the version exports no batch gauge (nothing calibrates)
    kv_usage: str | None
    step_histogram: str
    prompt_histogram: str | None = None
    generation_histogram: str | None = None
    seq_lens_sum: str | None = None
    read_bytes: str | None = None
    write_bytes: str | None = None
    cache_info: str | None = None  # an info gauge whose ``cache_dtype`` label is the KV dtype
    ttft_histogram: str | None = None
    # Token counters of finished requests and the finished requests' counter (TensorRT-LLM).
    prompt_counter: str | None = None
    generation_counter: str | None = None
    requests_counter: str | None = None

    @property
    def context_series(self) -> str:
        """The series the context is read from, as a report names them."""
        if self.seq_lens_sum:
            return self.seq_lens_sum
        if self.prompt_counter:
            return f"{self.prompt_counter} + {self.generation_counter} / {self.requests_counter}"
        if self.prompt_histogram:
            return f"{self.prompt_histogram} + {self.generation_histogram}"
        return "no context series"

    def context_query(self) -> Ask:
        """Mean context per running sequence: the summed lengths over the batch where the
        engine states them (each step), else the mean prompt plus half the mean generation of
        the requests that finished (each request's decode steps run at contexts from P to
        P + G; asked hourly); None where the version exports neither."""
        if self.seq_lens_sum is not None:
            return f"{self.seq_lens_sum} / {self.batch}"
        r = REQUEST_RATE_RANGE
        if self.prompt_counter and self.generation_counter and self.requests_counter:
            finished = f"sum without (finished_reason) (rate({self.requests_counter}[{r}]))"
            return Hourly(
                f"rate({self.prompt_counter}[{r}]) / {finished} + 0.5 * "
                f"rate({self.generation_counter}[{r}]) / {finished}"
            )
        if not (self.prompt_histogram and self.generation_histogram):
            return None
        return Hourly(
            f"rate({self.prompt_histogram}_sum[{r}]) / "
            f"rate({self.prompt_histogram}_count[{r}]) + 0.5 * "
            f"rate({self.generation_histogram}_sum[{r}]) / "
            f"rate({self.generation_histogram}_count[{r}])"
        )


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
        ttft_histogram="vllm:time_to_first_token_seconds",
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
        ttft_histogram="vllm:time_to_first_token_seconds",
    ),
    EngineNames(
        "sglang",
        "SGLang names (num_running_reqs, token_usage, decode_sum_seq_lens)",
        "sglang:num_running_reqs",
        "sglang:token_usage",
        "sglang:inter_token_latency_seconds",
        seq_lens_sum="sglang:decode_sum_seq_lens",
        ttft_histogram="sglang:time_to_first_token_seconds",
    ),
    EngineNames(
        "trtllm",
        "TensorRT-LLM names with iteration statistics (trtllm_num_requests_running, "
        "trtllm_kv_cache_utilization)",
        "trtllm_num_requests_running",
        "trtllm_kv_cache_utilization",
        "trtllm_time_per_output_token_seconds",
        ttft_histogram="trtllm_time_to_first_token_seconds",
        prompt_counter="trtllm_prompt_tokens_total",
        generation_counter="trtllm_generation_tokens_total",
        requests_counter="trtllm_request_success_total",
    ),
    EngineNames(
        "trtllm",
        "TensorRT-LLM 1.1 names (the five request metrics: no batch, KV or context series)",
        None,
        None,
        "trtllm_time_per_output_token_seconds",
        ttft_histogram="trtllm_time_to_first_token_seconds",
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
    """One long table from each series' part (a label's one value, or a column's samples or
    one value for all of them), built once rather than hundreds of frames concatenated.
    Label columns are categorical (plain Python strings as categories): one value repeated
    per sample, grouped on and compared, never computed with, and a fleet's window groups by
    their codes instead of hashing a million strings. A flag (``weaker_signal``) stays
    boolean; every other column is float."""
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
            continue
        samples = [
            np.broadcast_to(np.asarray(part[name]), (size,))
            for part, size in zip(parts, sizes, strict=True)
        ]
        column = np.concatenate(samples) if samples else np.empty(0)
        data[name] = column if column.dtype == bool else column.astype(float, copy=False)
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


class _Reader:
    def __init__(
        self,
        url: str,
        start_s: float,
        end_s: float,
        step_s: float,
        timeout_s: float,
        amd_window_s: float = AMD_SAMPLING_INTERVAL_US * 1e-6,
    ):
        self.url, self.start_s, self.end_s = url, start_s, end_s
        self.step_s, self.timeout_s = step_s, timeout_s
        self.amd_window_s = amd_window_s
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
        ``vllm:num_requests_running``, both TensorRT-LLM spellings their step and TTFT
        histograms), and each would otherwise fetch a fleet's series again."""
        asked = list(dict.fromkeys(q for q in queries if q is not None and q not in self.answers))
        if asked:
            with ThreadPoolExecutor(max_workers=len(asked)) as pool:
                self.answers.update(zip(asked, pool.map(self.get, asked), strict=True))
        return [[] if q is None else self.answers[q] for q in queries]

    def ratio(self, histogram: str) -> str:
        """The mean of a histogram's observations per step: rate(_sum) / rate(_count)."""
        r = self.rate_range
        return f"rate({histogram}_sum[{r}]) / rate({histogram}_count[{r}])"


def _request_mean(histogram: str) -> Hourly:
    """A per-request histogram's mean over each hour requests end in."""
    r = REQUEST_RATE_RANGE
    return Hourly(f"rate({histogram}_sum[{r}]) / rate({histogram}_count[{r}])")


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
    found: list[str] = []  # the versions that gave a server its row
    covered: set[tuple[str, tuple[str, ...]]] = set()  # (engine, server) already read
    for i, spelling in enumerate(ENGINES):
        # A later spelling with the same step histogram (TensorRT-LLM's five request metrics)
        # takes the servers this one's batch gauge does not answer for.
        deferred = any(
            (e.engine, e.step_histogram) == (spelling.engine, spelling.step_histogram)
            for e in ENGINES[i + 1 :]
        )
        bytes_query = None
        if spelling.read_bytes and spelling.write_bytes:
            r = reader.rate_range
            bytes_query = f"rate({spelling.read_bytes}[{r}]) + rate({spelling.write_bytes}[{r}])"
        context_query = spelling.context_query()
        ttft_query = (
            None if spelling.ttft_histogram is None else _request_mean(spelling.ttft_histogram)
        )
        answers = reader.get_all(
            [
                reader.ratio(spelling.step_histogram),
                spelling.batch,
                spelling.kv_usage,
                context_query,
                bytes_query,
                spelling.cache_info,
                ttft_query,
            ]
        )
        steps, batch, kv, context, engine_bytes = (_by_server(a) for a in answers[:5])
        ttft = _by_server(answers[6])
        # The info gauge carries the server's labels but not always the model's.
        kv_dtype = {_server({**i.labels, "model_name": ""}): i.labels for i in answers[5]}
        for key, step in steps.items():
            if (spelling.engine, key) in covered:
                continue  # a deprecation release exports both names: the newer ones stand
            if deferred and key not in batch:
                continue
            if spelling.version not in found:
                found.append(spelling.version)
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
                    "context_tokens": _column(context, key, times, _span_s(context_query)),
                    "kv_cache_usage": _column(kv, key, times),
                    "engine_bytes_per_s_per_gpu": _column(engine_bytes, key, times),
                    "kv_cache_dtype": kv_dtype.get(_server({**labels, "model_name": ""}), {}).get(
                        "cache_dtype", ""
                    ),
                    "ttft_s": _column(ttft, key, times, _span_s(ttft_query)),
                }
            )
    return _long_table(parts, ENGINE_COLUMNS, _ENGINE_LABELS), found


def _reindexed(series: Series | None, times: np.ndarray) -> np.ndarray:
    if series is None:
        return np.full(times.size, np.nan)
    return pd.Series(series.values, index=series.times_s).reindex(times).to_numpy(dtype=float)


def _dcgm_parts(
    version: str, answered: list[Series], busy_at_zero: list[Series]
) -> list[dict[str, Any]]:
    util = {
        (b.labels.get("UUID", ""), _label(b.labels, "pod", "exported_pod")): b for b in busy_at_zero
    }
    parts = []
    for s in answered:
        labels = s.labels
        pod = _label(labels, "pod", "exported_pod")
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
                "gpu_util": _reindexed(util.get((labels.get("UUID", ""), pod)), s.times_s),
                "bandwidth_source": version,
                "mig_instance": labels.get("GPU_I_ID", ""),
                "weaker_signal": False,
            }
        )
    return parts


def _amd_card(labels: dict[str, str]) -> tuple[str, str, str]:
    """One AMD GPU (or partition) as every metric of the exporter labels it."""
    return labels.get("hostname", ""), labels.get("gpu_id", ""), labels.get("serial_number", "")


def _amd_part(
    s: Series, utilization: np.ndarray, source: str, busy: np.ndarray | float, *, weaker: bool
) -> dict[str, Any]:
    labels = s.labels
    host, gpu, serial = _amd_card(labels)
    partition_type = labels.get("gpu_compute_partition_type", "").lower()
    partitioned = partition_type not in ("", "spx")
    partition = labels.get("gpu_partition_id", "")
    uuid = labels.get("gpu_uuid") or serial or f"{host}/gpu{gpu}"
    return {
        "uuid": f"{uuid}:{partition}" if partitioned else uuid,
        "gpu": gpu,
        "host": host,
        "device_kind": labels.get("card_model", ""),
        "namespace": labels.get("namespace", ""),
        "pod": labels.get("pod", ""),
        "time_s": s.times_s,
        "bandwidth_utilization": utilization,
        "gpu_util": busy,
        "bandwidth_source": source,
        "mig_instance": f"{partition} ({partition_type.upper()} partition)" if partitioned else "",
        "weaker_signal": weaker,
    }


def _amd_parts(
    moved: list[Series],
    peaks: list[Series],
    umc: list[Series],
    busy_at_zero: list[Series],
    window_s: float,
) -> tuple[list[dict[str, Any]], list[str]]:
    """Bytes moved over the card's maximum where the profiler fields and a maximum answer;
    the memory controller's busy time, marked weaker, for the cards they leave out. The
    graphics engine's activity, read only where the profiler counted no byte, tells a field
    not collected (on Radeon boards it always reads 0) from an idle memory."""
    peak = {_amd_card(p.labels): p for p in peaks}
    busy = {_amd_card(b.labels): b for b in busy_at_zero}
    parts: list[dict[str, Any]] = []
    covered: set[tuple[str, str, str]] = set()
    for s in moved:
        utilization = amd_bandwidth_utilization(
            s.values, window_s, _reindexed(peak.get(_amd_card(s.labels)), s.times_s)
        )
        if np.isfinite(utilization).any():
            covered.add(_amd_card(s.labels))
            gfx = _reindexed(busy.get(_amd_card(s.labels)), s.times_s)
            parts.append(_amd_part(s, utilization, AMD_BYTES, gfx, weaker=False))
    weaker = [s for s in umc if _amd_card(s.labels) not in covered]
    parts += [_amd_part(s, s.values / 100, AMD_UMC, np.nan, weaker=True) for s in weaker]
    return parts, [v for v, used in ((AMD_BYTES, covered), (AMD_UMC, weaker)) if used]


def _tpu_parts(answered: list[Series]) -> list[dict[str, Any]]:
    parts = []
    for s in answered:
        labels = s.labels
        chip = labels.get("accelerator_id", "")
        parts.append(
            {
                "uuid": chip,
                "gpu": chip.rsplit("-", 1)[-1],
                "host": _label(labels, "node", "instance").rsplit(":", 1)[0],
                # "tpu-v6e-slice" -> "tpu v6e slice", which the catalog's "TPU v6e" matches
                "device_kind": labels.get("model", "").replace("-", " "),
                "namespace": labels.get("namespace", ""),
                "pod": labels.get("pod", ""),
                "time_s": s.times_s,
                "bandwidth_utilization": s.values / 100,
                "gpu_util": np.nan,
                "bandwidth_source": TPU_BANDWIDTH[1],
                "mig_instance": "",
                "weaker_signal": False,
            }
        )
    return parts


def read_gpus(reader: _Reader) -> tuple[pd.DataFrame, list[str]]:
    """One row per accelerator series and sample: its bandwidth utilization (achieved over
    peak, 0 to 1) from whichever exporter answered, with its identity and the pod it served.
    DCGM's GPU utilization is read only where the profiling field reads 0 (the one place it
    matters: busy there means missing, not idle), which spares a fleet's window a second full
    series per GPU. All queries are asked at once."""
    dcgm = [
        q
        for name, _ in DCGM_BANDWIDTH
        for q in (name, f"{DCGM_GPU_UTIL} > 0 and on (UUID) ({name} == 0)")
    ]
    moved = f"{AMD_FETCH} + {AMD_WRITE}"
    amd = [
        moved,
        AMD_MAX_BANDWIDTH,
        AMD_UMC_ACTIVITY,
        f"{AMD_GFX_ACTIVITY} > 0 and on ({_AMD_CARD}) ({moved} == 0)",
    ]
    answers = reader.get_all([*dcgm, *amd, TPU_QUERY])
    parts: list[dict[str, Any]] = []
    versions: list[str] = []
    for i, (_, version) in enumerate(DCGM_BANDWIDTH):
        answered, busy_at_zero = answers[2 * i], answers[2 * i + 1]
        if answered:
            versions.append(version)
        parts += _dcgm_parts(version, answered, busy_at_zero)
    moved_kib, peaks, umc, busy_at_zero, tpu = answers[len(dcgm) :]
    amd_parts, amd_versions = _amd_parts(moved_kib, peaks, umc, busy_at_zero, reader.amd_window_s)
    parts += amd_parts + _tpu_parts(tpu)
    versions += amd_versions + ([TPU_BANDWIDTH[1]] if tpu else [])
    return _long_table(parts, GPU_COLUMNS, _GPU_LABELS), versions


def read_telemetry(
    url: str,
    end_s: float,
    days: float,
    step_s: float = DEFAULT_STEP_S,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    amd_sampling_interval_us: float = AMD_SAMPLING_INTERVAL_US,
) -> Telemetry:
    """Every engine's and every GPU's samples over the ``days`` before ``end_s`` from ``url``
    (``amd_sampling_interval_us``: the AMD exporter's profiler ``SamplingInterval``).
    Raises :class:`tasks.prometheus.PrometheusUnreachable` when nothing answers."""
    end_s = float(int(end_s // step_s) * step_s)
    reader = _Reader(
        url, end_s - days * 86400, end_s, step_s, timeout_s, amd_sampling_interval_us * 1e-6
    )
    # The GPUs' queries beside the engines': Prometheus answers both at once.
    with ThreadPoolExecutor(max_workers=1) as pool:
        gpus_read = pool.submit(read_gpus, reader)
        engine, names = read_engines(reader)
        gpus, dcgm = gpus_read.result()
    return Telemetry(engine, gpus, [*dcgm, *names])

"""The serving engines' metric names, per version, and the rows read under them.

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
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import pandas as pd

from tasks.analysis.supply.production import ENGINE_COLUMNS
from tasks.prometheus import Series
from tasks.telemetry.reader import (
    REQUEST_RATE_RANGE,
    REQUEST_STEP_S,
    Ask,
    Hourly,
    Reader,
    long_table,
)


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


def _server(labels: dict[str, str]) -> tuple[str, ...]:
    return tuple(labels.get(k, "") for k in _IDENTITY)


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


def read_engines(reader: Reader) -> tuple[pd.DataFrame, list[str]]:
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
    return long_table(parts, ENGINE_COLUMNS, _ENGINE_LABELS), found

"""Prometheus's HTTP API, the one call memwall needs: a range query, with bounded time-outs.

The serving engines count the tokens they process; a query template per engine turns the
counter into units per second for one model (``{model}`` is the served model's name as the
engine labels it). Metric names, as each engine's metrics documentation states them:

- vLLM (documented from v0.5 to v0.9, V0 and V1 engines): counters
  ``vllm:generation_tokens_total`` and ``vllm:prompt_tokens_total``, label ``model_name``.
- SGLang (``--enable-metrics``; its Production Metrics page, 2025 releases): counters
  ``sglang:generation_tokens_total`` and ``sglang:prompt_tokens_total``, label ``model_name``.
- TensorRT-LLM (trtllm-serve's ``/prometheus/metrics``; the counters
  ``trtllm_generation_tokens_total`` and ``trtllm_prompt_tokens_total`` as
  ``tensorrt_llm/metrics/collector.py`` declares them, labels ``model_name`` and
  ``engine_type``). Releases with only the five request metrics (1.1) count no tokens: their
  query answers no series, and the demand stays the file's.
- TGI (its metrics reference, 2.x/3.x): histograms ``tgi_request_generated_tokens`` and
  ``tgi_request_input_length`` per request; their ``_sum`` counts tokens. TGI serves one model
  per server and labels none, so the template selects by the scrape job instead.

Rates use a 5 minute range; the demand sync then averages each hour (a subquery), so a range
query over 90 days returns 2,160 points, well under Prometheus's 11,000 points per series.

Each request has one deadline, ``timeout_s`` from its start to its last byte: a server that
answers slowly, byte by byte, is given up on then (a socket's time-out alone bounds each read,
not the answer). A busy answer (429, 502, 503) is tried again up to :data:`RETRIES` times,
after its ``Retry-After`` where it gives one (capped at :data:`MAX_RETRY_AFTER_S`), then
counts as unreachable, so an audit goes on with the file's demand. An answer is checked for
the shape of a range query before any of it is used.

A fleet's window is hundreds of thousands of samples per metric: Prometheus's own encoding of
a range answer (Go's, compact, keys in its fixed order) is read without building a Python
object per sample (:func:`_prometheus_matrix`: each series' labels by orjson, all its samples
at once by pandas' C CSV reader, five times faster than orjson's lists); any other encoding
(a proxy that re-indents, an error, another result type) is read as plain JSON.
"""

from __future__ import annotations

import email.utils
import io
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import orjson
import pandas as pd

from hardware_profiles.errors import MemwallError

DEFAULT_TIMEOUT_S: Final = 30.0
HOURLY_STEP_S: Final = 3600
BUSY_STATUSES: Final = (429, 502, 503)
RETRIES: Final = 3
MAX_RETRY_AFTER_S: Final = 30.0

ENGINE_QUERIES: Final = {
    "vllm": {
        "decode": 'sum(rate(vllm:generation_tokens_total{{model_name="{model}"}}[5m]))',
        "prefill": 'sum(rate(vllm:prompt_tokens_total{{model_name="{model}"}}[5m]))',
    },
    "sglang": {
        "decode": 'sum(rate(sglang:generation_tokens_total{{model_name="{model}"}}[5m]))',
        "prefill": 'sum(rate(sglang:prompt_tokens_total{{model_name="{model}"}}[5m]))',
    },
    "trtllm": {
        "decode": 'sum(rate(trtllm_generation_tokens_total{{model_name="{model}"}}[5m]))',
        "prefill": 'sum(rate(trtllm_prompt_tokens_total{{model_name="{model}"}}[5m]))',
    },
    "tgi": {
        "decode": 'sum(rate(tgi_request_generated_tokens_sum{{job="{model}"}}[5m]))',
        "prefill": 'sum(rate(tgi_request_input_length_sum{{job="{model}"}}[5m]))',
    },
}


class PrometheusError(MemwallError):
    """Prometheus answered, but not with what memwall asked for."""


class PrometheusUnreachable(PrometheusError):
    """No answer at all: refused, timed out, no such host."""


def engine_query(engine: str, phase: str, model: str) -> str:
    """The built-in PromQL for ``engine``'s token counter of ``model`` in ``phase``."""
    if engine not in ENGINE_QUERIES:
        raise MemwallError(f"unknown engine {engine!r}; valid: {', '.join(ENGINE_QUERIES)}")
    phases = ENGINE_QUERIES[engine]
    if phase not in phases:
        raise MemwallError(
            f"{engine} counts tokens for {', '.join(phases)}, not {phase!r} workloads"
        )
    if '"' in model or "\\" in model:
        raise MemwallError(f"model name {model!r} must not contain quotes or backslashes")
    return phases[phase].format(model=model)


def hourly(query: str) -> str:
    """``query`` averaged over each hour: a subquery sampling it every 5 minutes."""
    return f"avg_over_time(({query})[1h:5m])"


@dataclass(frozen=True)
class Series:
    labels: dict[str, str]
    times_s: np.ndarray
    values: np.ndarray


def _read_within(request: urllib.request.Request, timeout_s: float) -> bytes:
    """The whole answer to ``request``, or TimeoutError once ``timeout_s`` has passed."""
    deadline = time.monotonic() + timeout_s
    chunks = []
    with urllib.request.urlopen(request, timeout=timeout_s) as response:
        while chunk := response.read1(65536):
            chunks.append(chunk)
            if time.monotonic() > deadline:
                raise TimeoutError(f"no whole answer within {timeout_s:g} s")
    return b"".join(chunks)


def _retry_after_s(header: str | None, attempt: int) -> float:
    """Seconds to wait before trying again: the server's Retry-After (seconds or an HTTP
    date), else 1, 2, 4 s; never more than MAX_RETRY_AFTER_S."""
    wait = float(2**attempt)
    if header:
        try:
            wait = float(header)
        except ValueError:
            when = email.utils.parsedate_to_datetime(header) if header.strip() else None
            if when is not None:
                wait = when.timestamp() - time.time()
    return min(max(wait, 0.0), MAX_RETRY_AFTER_S)


def _post(url: str, form: dict[str, str], timeout_s: float, base_url: str) -> bytes:
    body = urllib.parse.urlencode(form).encode()
    request = urllib.request.Request(
        url, data=body, headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    for attempt in range(RETRIES + 1):
        try:
            return _read_within(request, timeout_s)
        except urllib.error.HTTPError as exc:
            if exc.code in BUSY_STATUSES:
                if attempt < RETRIES:
                    time.sleep(_retry_after_s(exc.headers.get("Retry-After"), attempt))
                    continue
                raise PrometheusUnreachable(
                    f"Prometheus at {base_url} busy (HTTP {exc.code}, {RETRIES + 1} tries)"
                ) from None
            try:
                detail = json.loads(exc.read()).get("error", exc.reason)
            except (ValueError, AttributeError):
                detail = exc.reason
            raise PrometheusError(f"Prometheus at {url} refused the query: {detail}") from None
        except (TimeoutError, urllib.error.URLError, ConnectionError) as exc:
            reason = getattr(exc, "reason", exc)
            raise PrometheusUnreachable(
                f"Prometheus at {base_url} unreachable ({reason})"
            ) from None
    raise AssertionError("unreachable: the loop returns or raises")


def query_range(
    base_url: str,
    query: str,
    start_s: float,
    end_s: float,
    step_s: float = HOURLY_STEP_S,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> list[Series]:
    """Every series ``query`` returns over [start, end] at ``step_s``, from ``base_url``."""
    if not base_url.startswith(("http://", "https://")):
        raise MemwallError(f"Prometheus URL must start with http:// or https://, got {base_url!r}")
    url = base_url.rstrip("/") + "/api/v1/query_range"
    raw = _post(
        url,
        {
            "query": query,
            "start": f"{start_s:.3f}",
            "end": f"{end_s:.3f}",
            "step": f"{step_s:g}",
            "timeout": f"{timeout_s:g}s",
        },
        timeout_s,
        base_url,
    )
    fast = _prometheus_matrix(raw)
    if fast is not None:
        return fast
    try:
        answer = orjson.loads(raw)
    except ValueError:
        raise PrometheusError(f"{url} did not answer with Prometheus's JSON") from None
    if not isinstance(answer, dict) or answer.get("status") != "success":
        error = answer.get("error", "no status") if isinstance(answer, dict) else "not an object"
        raise PrometheusError(f"Prometheus at {url} failed the query: {error}")
    data = answer.get("data", {})
    kind = data.get("resultType") if isinstance(data, dict) else None
    if kind != "matrix":
        raise PrometheusError(f"Prometheus at {url} returned a {kind}, not a range of samples")
    try:
        return [_series(item) for item in data.get("result", [])]
    except (TypeError, ValueError, AttributeError) as exc:
        raise PrometheusError(
            f"Prometheus at {url} answered a range of the wrong shape ({exc}); expected "
            'result: [{"metric": {...}, "values": [[time, "value"], ...]}, ...]'
        ) from None


def _series(item: dict[str, Any]) -> Series:
    labels = item.get("metric", {})
    pairs = item.get("values", [])
    if not isinstance(labels, dict) or not isinstance(pairs, list):
        raise TypeError("metric must be an object and values a list")
    # Unpacking checks the shape: anything but [time, value] pairs raises ValueError or
    # TypeError (a per-pair isinstance check cost a fleet's window a second).
    try:
        times, values = zip(*pairs, strict=True) if pairs else ((), ())
    except (TypeError, ValueError):
        raise ValueError("each value must be a [time, value] pair") from None
    return Series(
        labels={str(k): str(v) for k, v in labels.items()},
        times_s=np.array(times, dtype=float),
        values=np.array(values, dtype=float),  # "NaN", "+Inf" parse too
    )


_MATRIX_HEAD: Final = b'{"status":"success","data":{"resultType":"matrix","result":['
_SERIES: Final = b'{"metric":'
_VALUES: Final = b',"values":['


def _prometheus_matrix(raw: bytes) -> list[Series] | None:
    """The series of a range answer in Prometheus's own encoding, or None for any other
    encoding (then read as plain JSON, which checks its shape and says what is wrong).

    The markers cannot occur inside a label's value: JSON escapes every quote in a string, so
    ``{"metric":`` and ``,"values":[`` only ever appear as structure, and a series' samples
    (numbers and quoted numbers) end at the first ``]]}``."""
    if not raw.startswith(_MATRIX_HEAD):
        return None
    rest = raw[len(_MATRIX_HEAD) :]
    if rest.startswith(b"]"):
        return []
    if not rest.startswith(_SERIES):
        return None
    labels: list[dict[str, str]] = []
    bodies: list[bytes] = []
    sizes: list[int] = []
    chunks = rest.split(_SERIES)[1:]
    for i, chunk in enumerate(chunks):
        at = chunk.find(_VALUES)
        end = chunk.find(b"]]}", at)
        if at < 0 or end < 0:
            return None  # native histograms, or not Prometheus's layout after all
        after = chunk[end + 3 :]  # "," before the next series; "]}" and the rest after the last
        if not (after.startswith(b"]}") if i == len(chunks) - 1 else after == b","):
            return None
        try:
            metric = orjson.loads(chunk[:at])
        except ValueError:
            return None
        body = chunk[at + len(_VALUES) + 1 : end]  # t,"v"],[t,"v"],...,[t,"v"
        pairs = body.count(b"],[") + 1
        if not isinstance(metric, dict) or body.count(b",") != 2 * pairs - 1:
            return None
        labels.append({str(k): str(v) for k, v in metric.items()})
        bodies.append(body.replace(b"],[", b"\n"))
        sizes.append(pairs)
    try:
        samples = pd.read_csv(
            io.BytesIO(b"\n".join(bodies).translate(None, b'"')),
            header=None,
            dtype=float,
            engine="c",
            keep_default_na=False,
            na_values=["NaN"],  # "+Inf" and "-Inf" parse as numbers
        ).to_numpy()
    except (ValueError, pd.errors.ParserError):
        return None
    if samples.shape != (sum(sizes), 2):
        return None
    bounds = np.cumsum([0, *sizes])
    times, values = samples[:, 0].copy(), samples[:, 1].copy()
    return [
        Series(labels=item, times_s=times[a:b], values=values[a:b])
        for item, a, b in zip(labels, bounds[:-1], bounds[1:], strict=True)
    ]

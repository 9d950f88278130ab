"""The one reader every telemetry query goes through, and the long table its answers become.

Every range query runs at one step over one window so the samples line up; rates use twice the
step as their range, so a scrape as slow as the step still leaves two samples in each
(request-size histograms an hour: requests end less often than steps do). The request-size
and TTFT rates are asked once an hour (:class:`Hourly`), not every step: an hour's rate
evaluated every 5 minutes counts each finished request twelve times over, and was the slowest
query of a fleet's window; each sample takes the rate over the hour that holds it (the first
hourly point at or after it, an hour's rate standing for the hour before it). A query two
spellings share is asked once (:meth:`Reader.get_all`), and every query of a read is asked
at once.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import pandas as pd

from tasks.prometheus import Series, query_range

DEFAULT_STEP_S: Final = 300.0
REQUEST_RATE_RANGE: Final = "1h"
REQUEST_STEP_S: Final = 3600.0
# The AMD exporter's default profiler SamplingInterval (its configmap.md): the window
# gpu_prof_fetch_size and gpu_prof_write_size count KiB over (the reader carries it to
# tasks.telemetry.gpus).
AMD_SAMPLING_INTERVAL_US: Final = 1000.0


@dataclass(frozen=True)
class Hourly:
    """A query whose rates span an hour: asked at :data:`REQUEST_STEP_S` over the window,
    on a grid that ends where the window ends."""

    query: str


Ask = str | Hourly | None


def long_table(
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


class Reader:
    """One Prometheus over one window at one step: every query of a read goes through it."""

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

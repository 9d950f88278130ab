"""``memwall workloads discover``'s work: the workloads a fleet serves, read off its telemetry.

Per Prometheus (one per pool), the serving telemetry ``memwall observe`` reads
(:mod:`tasks.telemetry`, the same queries, the same bad-telemetry rules) gives one row per
served model and accelerator model, with the batch and context as served; those are merged
into one row per served model (:func:`one_row_per_model`), matched to a preset by the name
the engine serves it under, and given the demand of the engine's token counter (the
``demand_query`` :func:`tasks.prometheus.engine_query` writes, fitted as ``workloads sync``
fits it). Every row says which series it came from.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import pandas as pd

from hardware_profiles.catalog import match_device_kind
from tasks.analysis.demand import MIN_FIT_DAYS, DemandError
from tasks.analysis.supply.production import ENGINE_KV_DTYPES, Window
from tasks.analysis.supply.production_rows import observe_rows
from tasks.analysis.supply.telemetry_checks import shared_gpus
from tasks.analysis.workload.presets import preset
from tasks.analysis.workload.served_models import (
    OBSERVED_COLUMNS,
    engine_only_rows,
    match_preset,
    one_row_per_model,
)
from tasks.demand import fetch_fit
from tasks.prometheus import (
    DEFAULT_TIMEOUT_S,
    ENGINE_QUERIES,
    PrometheusError,
    engine_query,
    query_range,
)
from tasks.telemetry.engines import ENGINES
from tasks.telemetry.gpus import ACCELERATOR_LABEL
from tasks.telemetry.reader import DEFAULT_STEP_S
from tasks.telemetry.window import read_telemetry

PROPOSAL_COLUMNS: Final = (
    "pool", "model_name", "workload_id", "model_preset", "match", "accelerators", "gpus",
    "batch", "context", "kv_cache_usage", "samples", "engine", "weight_precision",
    "kv_precision", "owner", "demand_units_per_s", "demand_growth_per_year",
    "demand_growth_sigma", "demand_query", "source", "status",
)  # fmt: skip
WRITABLE: Final = "proposed"
# kube-state-metrics' kube_node_labels, with GPU Feature Discovery's nvidia.com/gpu.product
# allowed (--metric-labels-allowlist=nodes=[nvidia.com/gpu.product]), e.g.
# "NVIDIA-H100-80GB-HBM3": the accelerator of a server whose pod no DCGM series names.
NODE_PRODUCT: Final = "label_nvidia_com_gpu_product"
NODE_LABEL_SOURCE: Final = "node label nvidia.com/gpu.product (kube-state-metrics)"
_NO_GPU_SERIES: Final = "no GPU series carries its pod label; left out"


@dataclass(frozen=True)
class Discovery:
    """The proposed rows (:data:`PROPOSAL_COLUMNS`; ``status`` is :data:`WRITABLE` or why
    not), the telemetry set aside, and the names found, each one line."""

    proposals: pd.DataFrame
    findings: tuple[str, ...]
    names: tuple[str, ...]

    @property
    def writable(self) -> pd.DataFrame:
        return self.proposals[self.proposals["status"] == WRITABLE]


def _series_read(version: str) -> str:
    """The metric names one engine version's rows were read from."""
    names = next(e for e in ENGINES if e.version == version)
    return ", ".join(n for n in (names.batch, names.step_histogram, names.context_series) if n)


def _model_of(engine: pd.DataFrame, server: str) -> str:
    return str(engine.loc[engine["server"] == server, "model_name"].iloc[0])


def _pod_key(frame: pd.DataFrame) -> pd.Series:
    """Each row's ``namespace/pod``: how a server finds its GPUs' series."""
    return frame["namespace"].astype(str) + "/" + frame["pod"].astype(str)


def _node_products(
    url: str, pods: set[tuple[str, str]], start_s: float, end_s: float, timeout_s: float
) -> dict[tuple[str, str], tuple[str, float]]:
    """(namespace, pod) -> its node's GPU product and the GPUs it requests (NaN where it
    requests none), from kube-state-metrics: ``kube_pod_info`` (the pod's node),
    ``kube_node_labels`` (the node's product) and ``kube_pod_container_resource_requests``
    (``resource="nvidia_com_gpu"``), each asked hourly over the window and only for ``pods``."""
    names = sorted({pod for _, pod in pods if re.fullmatch(r"[a-z0-9.-]+", pod)})
    if not names:
        return {}
    regex = "|".join(n.replace(".", "\\\\.") for n in names)
    ask = [
        f'max by (namespace, pod, node) (kube_pod_info{{pod=~"{regex}"}})',
        f'max by (node, {NODE_PRODUCT}) (kube_node_labels{{{NODE_PRODUCT}!=""}})',
        "sum by (namespace, pod) (kube_pod_container_resource_requests"
        f'{{resource="nvidia_com_gpu", pod=~"{regex}"}})',
    ]
    on_node, products, requests = (
        query_range(url, q, start_s, end_s, 3600, timeout_s) for q in ask
    )
    product = {s.labels.get("node", ""): s.labels.get(NODE_PRODUCT, "") for s in products}
    gpus = {
        (s.labels.get("namespace", ""), s.labels.get("pod", "")): float(s.values[-1])
        for s in requests
        if s.values.size
    }
    out: dict[tuple[str, str], tuple[str, float]] = {}
    for series in on_node:
        key = (series.labels.get("namespace", ""), series.labels.get("pod", ""))
        found = product.get(series.labels.get("node", ""), "")
        if key in pods and found:
            out[key] = (found, gpus.get(key, float("nan")))
    return out


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9.]+", "-", text.lower()).strip("-") or "served"


def _unique(wanted: str, taken: set[str], pool: str) -> str:
    """``wanted``, else it with the pool's name, else a number: ids are unique in a file."""
    for candidate in (wanted, f"{wanted}-{_slug(pool)}" if pool else wanted):
        if candidate not in taken:
            return candidate
    n = 2
    while f"{wanted}-{n}" in taken:
        n += 1
    return f"{wanted}-{n}"


def _pool_rows(
    pool: str,
    url: str,
    catalog: pd.DataFrame,
    days: int,
    end: dt.datetime,
    step_s: float,
    timeout_s: float,
    taken: set[str],
) -> tuple[list[dict[str, Any]], list[str], list[str]]:
    end_s = end.timestamp()
    telemetry = read_telemetry(url, end_s, days, step_s, timeout_s)
    window = Window(float(int(end_s // step_s) * step_s), days, step_s)
    seen = observe_rows(telemetry.engine, telemetry.gpus, catalog, pd.DataFrame(), window)
    engine, gpus = telemetry.engine, telemetry.gpus
    findings = list(seen.findings)
    # Servers no GPU series names: placed by their node's label where it is exported.
    bare = engine[~_pod_key(engine).isin(set(_pod_key(gpus)))]
    pods = set(zip(bare["namespace"].astype(str), bare["pod"].astype(str), strict=True))
    products = _node_products(url, pods, window.end_s - days * 86400, window.end_s, timeout_s)
    placed: dict[str, tuple[str, float]] = {}
    node_kinds: dict[str, str] = {}
    for server, namespace, pod in (
        bare[["server", "namespace", "pod"]].drop_duplicates().itertuples(index=False)
    ):
        product, requested = products.get((str(namespace), str(pod)), ("", float("nan")))
        accelerator = match_device_kind(catalog, product.replace("-", " ")) if product else None
        if accelerator is None:
            continue
        placed[str(server)] = (accelerator, requested)
        node_kinds[str(server)] = product
        said = f"server {server} ({_model_of(bare, str(server))}): {_NO_GPU_SERIES}"
        findings = [f for f in findings if f != said]
        findings.append(
            f"server {server}: no GPU series carries its pod label; accelerator {accelerator} "
            f"from its {NODE_LABEL_SOURCE} {product}, no bandwidth measured"
        )
    observed = pd.concat(
        [
            seen.rows[list(OBSERVED_COLUMNS)],
            engine_only_rows(engine, placed, NODE_LABEL_SOURCE),
        ],
        ignore_index=True,
    )
    attributable = set(_pod_key(gpus[~gpus["uuid"].isin(list(shared_gpus(gpus)))]))
    rows: list[dict[str, Any]] = []
    for merged in one_row_per_model(observed).to_dict("records"):
        name = str(merged["model_name"])
        # The servers whose figures reached the row: those on a GPU no other pod shares, and
        # those placed by their node's label.
        served = engine[
            (engine["model_name"] == name)
            & (_pod_key(engine).isin(attributable) | engine["server"].isin(list(placed)))
        ]
        versions = sorted(set(served["engine"].astype(str)))
        servers = sorted(set(served["server"].astype(str)))
        engines = sorted({s.split(" ", 1)[0] for s in servers})
        on_pods = gpus[_pod_key(gpus).isin(set(_pod_key(served)))]
        kinds = sorted(set(on_pods["device_kind"].astype(str)))
        sources = sorted(set(on_pods["bandwidth_source"].astype(str)))
        named_by = " / ".join(sorted({ACCELERATOR_LABEL.get(v, v) for v in sources}))
        labelled = sorted({node_kinds[s] for s in servers if s in node_kinds})
        accelerators_from = [
            *([f"{named_by} {', '.join(kinds)} ({', '.join(sources)})"] if kinds else []),
            *([f"{NODE_LABEL_SOURCE} {', '.join(labelled)}"] if labelled else []),
        ]
        dtypes = {str(d) for d in served["kv_cache_dtype"].unique() if str(d)}
        kv = ENGINE_KV_DTYPES.get(next(iter(dtypes))) if len(dtypes) == 1 else None
        match = match_preset(name)
        row: dict[str, Any] = {
            "pool": pool,
            "model_name": name,
            "model_preset": None if match is None else match.preset,
            "match": "no preset matches: give its config.json (--config)"
            if match is None
            else match.how,
            "accelerators": merged["accelerators"],
            "gpus": merged["gpus"],
            "batch": merged["batch"],
            "context": merged["context"],
            "kv_cache_usage": merged["kv_cache_usage"],
            "samples": merged["samples"],
            "engine": ", ".join(engines),
            "weight_precision": None if match is None else preset(match.preset).dtype,
            "kv_precision": kv,
            "owner": ", ".join(sorted({str(ns) for ns in served["namespace"] if str(ns)})),
            "demand_units_per_s": None,
            "demand_growth_per_year": None,
            "demand_growth_sigma": None,
            "demand_query": None,
            "status": WRITABLE,
        }
        wanted = f"{match.preset}-decode" if match else f"{_slug(name.rsplit('/', 1)[-1])}-decode"
        row["workload_id"] = _unique(wanted, taken, pool)
        taken.add(row["workload_id"])
        demand_from = ""
        if len(engines) != 1 or engines[0] not in ENGINE_QUERIES:
            row["status"] = f"served by {', '.join(engines)}: no one token counter to read"
        else:
            query = engine_query(engines[0], "decode", name)
            row["demand_query"] = query
            demand_from = f"; demand from {query}"
            try:
                fit = fetch_fit(url, row["workload_id"], query, days, end, timeout_s)
            except (DemandError, PrometheusError) as exc:
                row["status"] = f"no demand: {exc}"
            else:
                row["demand_units_per_s"] = fit.units_per_s
                row["demand_growth_per_year"] = fit.growth_per_year
                row["demand_growth_sigma"] = fit.growth_sigma
        if not merged["samples"] or not (merged["batch"] > 0 and merged["context"] > 0):
            row["status"] = "not written: no sample in the window has a batch, step and context"
        if match is None:
            row["status"] = "not written: no preset matches (memwall workloads add --config)"
        row["source"] = (
            f"memwall workloads discover, {url}, {window.describe()}: "
            f"{', '.join(servers)} ({'; '.join(_series_read(v) for v in versions)}; "
            f"{merged['samples']} samples); "
            f"accelerator from {' and '.join(accelerators_from)}{demand_from}; "
            f"preset {row['match']}"
        )
        rows.append(row)
    return rows, findings, list(telemetry.names_found)


def discover(
    urls: Mapping[str, str],
    catalog: pd.DataFrame,
    *,
    days: int = 7,
    end: dt.datetime | None = None,
    step_s: float = DEFAULT_STEP_S,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> Discovery:
    """The rows every pool's Prometheus proposes (``urls``: pool -> URL). Raises
    PrometheusUnreachable naming the URL that did not answer, DemandError for a window too
    short for the demand fit."""
    if days < MIN_FIT_DAYS:
        raise DemandError(
            f"--days must be >= {MIN_FIT_DAYS} (the demand's growth fit needs {MIN_FIT_DAYS} days "
            f"with traffic), got {days}"
        )
    end = end or dt.datetime.now(dt.UTC)
    rows: list[dict[str, Any]] = []
    findings: list[str] = []
    names: list[str] = []
    taken: set[str] = set()
    for pool, url in urls.items():
        found, set_aside, spellings = _pool_rows(
            pool, url, catalog, days, end, step_s, timeout_s, taken
        )
        rows += found
        prefix = f"pool {pool}: " if len(urls) > 1 else ""
        findings += [prefix + f for f in set_aside]
        names += [prefix + n for n in spellings]
    frame = pd.DataFrame(rows, columns=list(PROPOSAL_COLUMNS))
    return Discovery(frame, tuple(findings), tuple(names))

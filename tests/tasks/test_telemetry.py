"""The telemetry reader, with Prometheus (the edge of the world) answering canned series:
which exporter's series become which accelerator's bandwidth utilization (AMD's bytes before
its busy time, a card the exporter cannot give a maximum for, a compute partition, TPU model
names to catalog ids); and its query plumbing, against a loopback server that records each
form it is posted: a query two spellings share is asked once, request-size rates are asked
hourly on a grid ending where the window ends, and an hourly rate reaches only the samples of
the hour it spans (a gap stays a gap). The real Prometheus is in
``tests/integration/test_observe_exporters.py``."""

from __future__ import annotations

import http.server
import json
import threading
import urllib.parse
from collections.abc import Iterator

import numpy as np
import pytest

from hardware_profiles.catalog import builtin_catalog, match_device_kind
from tasks.prometheus import Series
from tasks.telemetry.engines import ENGINES, _column
from tasks.telemetry.gpus import (
    AMD_BYTES,
    AMD_FETCH,
    AMD_MAX_BANDWIDTH,
    AMD_UMC,
    AMD_UMC_ACTIVITY,
    AMD_WRITE,
    TPU_QUERY,
    read_gpus,
)
from tasks.telemetry.reader import REQUEST_STEP_S, Hourly, Reader

TIMES = np.array([0.0, 300.0])


class Canned(Reader):
    """A reader whose Prometheus answers each query from a table (nothing else)."""

    def __init__(self, table: dict[str, list[Series]]) -> None:
        super().__init__("http://canned", 0.0, 300.0, 300.0, 1.0)
        self.table = table

    def get(self, ask: str | Hourly) -> list[Series]:
        return self.table.get(ask.query if isinstance(ask, Hourly) else ask, [])


def _card(gpu_id: str, **extra: str) -> dict[str, str]:
    return {
        "gpu_id": gpu_id,
        "serial_number": f"SN{gpu_id}",
        "card_model": "AMD Instinct MI300X",
        "hostname": "h1",
        "namespace": "ns",
        "pod": f"p{gpu_id}",
        "gpu_partition_id": "0",
        "gpu_compute_partition_type": "spx",
        **extra,
    }


def _series(labels: dict[str, str], value: float) -> Series:
    return Series(labels, TIMES, np.full(TIMES.size, value))


def test_amd_bytes_stand_and_busy_time_fills_in_only_where_they_cannot() -> None:
    """Card 0: 2.5e6 KiB per 1 ms window over 5,300 GB/s is 0.483, its busy time (90 %) left.
    Card 1: the exporter's maximum is amd-smi's UINT64_MAX sentinel, no bandwidth: its busy
    time (60 %) stands, marked weaker."""
    kib = 2.5e6
    reader = Canned(
        {
            f"{AMD_FETCH} + {AMD_WRITE}": [_series(_card("0"), kib), _series(_card("1"), kib)],
            AMD_MAX_BANDWIDTH: [_series(_card("0"), 5300.0), _series(_card("1"), 2.0**64 - 1)],
            AMD_UMC_ACTIVITY: [_series(_card("0"), 90.0), _series(_card("1"), 60.0)],
        }
    )
    gpus, versions = read_gpus(reader)
    by_card = gpus.groupby("uuid").first()
    assert by_card.loc["SN0", "bandwidth_utilization"] == pytest.approx(kib * 1024 / 1e-3 / 5.3e12)
    assert by_card.loc["SN0", "bandwidth_source"] == AMD_BYTES
    assert not by_card.loc["SN0", "weaker_signal"]
    assert by_card.loc["SN1", "bandwidth_utilization"] == pytest.approx(0.6)
    assert by_card.loc["SN1", "weaker_signal"] and by_card.loc["SN1", "bandwidth_source"] == AMD_UMC
    assert versions == [AMD_BYTES, AMD_UMC]
    assert match_device_kind(builtin_catalog(), str(by_card.loc["SN0", "device_kind"])) == (
        "amd-mi300x"
    )


@pytest.mark.parametrize(
    ("card_model", "accelerator_id"),
    [
        ("MI300X", "amd-mi300x"),  # the exporter's own tests' CardModel
        ("AMD Instinct MI300X", "amd-mi300x"),
        ("AMD Instinct Mi325X VF", "amd-mi325x"),  # amd-smi's market name, as its docs show it
        ("AMD Instinct MI355X", "amd-mi355x"),
    ],
)
def test_amd_card_models_map_to_the_catalog(card_model: str, accelerator_id: str) -> None:
    gpus, _ = read_gpus(Canned({AMD_UMC_ACTIVITY: [_series(_card("0", card_model=card_model), 1)]}))
    kind = str(gpus["device_kind"].iloc[0])
    assert match_device_kind(builtin_catalog(), kind) == accelerator_id


def test_an_amd_compute_partition_is_a_slice() -> None:
    """A card in CPX mode: each partition is its own series; each is a slice (as a MIG
    instance is), named by card and partition."""
    cpx = _card("3", gpu_partition_id="2", gpu_compute_partition_type="cpx")
    gpus, _ = read_gpus(Canned({AMD_UMC_ACTIVITY: [_series(cpx, 50.0)]}))
    assert set(gpus["uuid"]) == {"SN3:2"}
    assert set(gpus["mig_instance"]) == {"2 (CPX partition)"}


@pytest.mark.parametrize(
    ("model", "accelerator_id"),
    [
        ("tpu-v6e-slice", "google-tpu-v6e"),
        ("tpu-v5-lite-podslice", "google-tpu-v5e"),
        ("tpu-v5p-slice", "google-tpu-v5p"),
        ("tpu-v4-podslice", "google-tpu-v4"),
        ("tpu7x", "google-tpu7x"),
    ],
)
def test_tpu_model_labels_map_to_the_catalog(model: str, accelerator_id: str) -> None:
    """GKE's device plugin names the chip's TPU type (``model``) in percent; the row is a
    fraction, and the type maps to the catalog's id."""
    labels = {
        "accelerator_id": "123-0",
        "make": "cloud-tpu",
        "model": model,
        "namespace": "ns",
        "pod": "p",
        "tpu_topology": "2x2",
    }
    gpus, _ = read_gpus(Canned({TPU_QUERY: [_series(labels, 40.0)]}))
    assert gpus["bandwidth_utilization"].tolist() == pytest.approx([0.4, 0.4])
    kind = str(gpus["device_kind"].iloc[0])
    assert match_device_kind(builtin_catalog(), kind) == accelerator_id


def test_tensorrt_llm_context_sums_the_finish_reasons_away() -> None:
    """TensorRT-LLM counts finished requests per finish reason: the context's denominator sums
    them, so the token counters (which carry no such label) divide one for one."""
    trt = next(e for e in ENGINES if e.engine == "trtllm")
    ask = trt.context_query()
    assert isinstance(ask, Hourly)  # an hour's rate, asked hourly
    query = ask.query
    assert "sum without (finished_reason) (rate(trtllm_request_success_total[1h]))" in query
    assert query.startswith("rate(trtllm_prompt_tokens_total[1h]) / ")
    assert trt.context_series.startswith("trtllm_prompt_tokens_total")
    # TensorRT-LLM 1.1's five request metrics hold no context at all.
    old = next(e for e in ENGINES if e.version.startswith("TensorRT-LLM 1.1"))
    assert old.context_query() is None and old.batch is None


END = 1_796_000_400.0  # on the hour


@pytest.fixture
def recorder() -> Iterator[tuple[str, list[dict[str, str]]]]:
    """A Prometheus answering every range query with one series of one sample; yields its
    URL and the forms posted to it."""
    forms: list[dict[str, str]] = []

    class Answer(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"])).decode()
            form = dict(urllib.parse.parse_qsl(body))
            forms.append(form)
            data = json.dumps(
                {
                    "status": "success",
                    "data": {
                        "resultType": "matrix",
                        "result": [{"metric": {"q": form["query"]}, "values": [[END, "1"]]}],
                    },
                },
                separators=(",", ":"),
            ).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Answer)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}", forms
    server.shutdown()
    server.server_close()


def test_a_query_is_asked_once_and_hourly_ones_hourly(
    recorder: tuple[str, list[dict[str, str]]],
) -> None:
    """A 1.5-day window ending on the hour at a 300 s step: the hourly grid is 36 hours back
    from the end (ceil(1.5 · 24) = 36), stepped 3600 s; the plain queries keep the window."""
    url, forms = recorder
    reader = Reader(url, END - 1.5 * 86400, END, 300.0, 5.0)
    first = reader.get_all(["a", None, Hourly("b")])
    again = reader.get_all(["a", "c", "a"])
    assert [s[0].labels["q"] for s in first if s] == ["a", "b"] and first[1] == []
    assert [s[0].labels["q"] for s in again] == ["a", "c", "a"]
    asked = {f["query"]: f for f in forms}
    assert sorted(f["query"] for f in forms) == ["a", "b", "c"]  # "a" once
    assert asked["a"]["step"] == "300" and float(asked["a"]["start"]) == END - 1.5 * 86400
    assert asked["b"]["step"] == f"{REQUEST_STEP_S:g}"
    assert float(asked["b"]["start"]) == END - 36 * 3600 and float(asked["b"]["end"]) == END


def test_an_hourly_rate_reaches_the_samples_of_its_hour() -> None:
    """Hourly rates at 0 and 3600 s (values 1 and 2), none at 7200 s (a gap): a sample every
    300 s takes the first point at or after it within 3600 s, the rate over the hour that
    holds it: 0 s takes 1, 300 to 3600 s take 2, and 3900 s on (their hour's point is
    missing) stay NaN."""
    hourly = Series({}, np.array([0.0, 3600.0]), np.array([1.0, 2.0]))
    times = np.arange(0.0, 9000.0, 300.0)
    got = _column({("k",): hourly}, ("k",), times, REQUEST_STEP_S)
    expected = np.where(times == 0, 1.0, np.where(times <= 3600, 2.0, np.nan))
    assert np.array_equal(got, expected, equal_nan=True)
    # The step's own samples are taken as they are, a missing one left missing.
    plain = Series({}, np.array([0.0, 600.0]), np.array([5.0, 6.0]))
    assert np.array_equal(
        _column({("k",): plain}, ("k",), np.array([0.0, 300.0, 600.0])),
        [5.0, np.nan, 6.0],
        equal_nan=True,
    )

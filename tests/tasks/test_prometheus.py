"""Prometheus that answers badly, on loopback: busy, slow byte by byte, or the wrong shape.

A real HTTP server on 127.0.0.1 plays each part (the edge of the world: the monitoring
system), beside a valid control answer from the same server. Answers come both as Prometheus
encodes them (compact, read by the fast path) and re-indented (read as plain JSON).
"""

from __future__ import annotations

import http.server
import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest

from tasks.demand import demand_or_file
from tasks.prometheus import (
    PrometheusError,
    PrometheusUnreachable,
    Series,
    _prometheus_matrix,
    query_range,
)
from tests.tasks.test_demand import END, _with_query

VALID = {
    "status": "success",
    "data": {"resultType": "matrix", "result": [{"metric": {"a": "b"}, "values": [[END, "2"]]}]},
}
Handler = Callable[[http.server.BaseHTTPRequestHandler, int], None]


def _json(
    handler: http.server.BaseHTTPRequestHandler,
    status: int,
    body: Any,
    compact: bool = False,
    **headers: str,
) -> None:
    """``body`` as JSON: ``compact`` as Prometheus (Go) writes it, else with spaces."""
    data = json.dumps(body, separators=(",", ":") if compact else None).encode()
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(data)))
    for name, value in headers.items():
        handler.send_header(name.replace("_", "-"), value)
    handler.end_headers()
    handler.wfile.write(data)


@pytest.fixture
def prometheus() -> Iterator[Callable[[Handler], tuple[str, list[float]]]]:
    """Start a loopback server answering each POST with ``handler(request, n)`` (n counts
    from 0); yields its URL and the times of the requests it saw."""
    servers: list[http.server.ThreadingHTTPServer] = []

    def start(handler: Handler) -> tuple[str, list[float]]:
        seen: list[float] = []

        class Answer(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers["Content-Length"]))
                seen.append(time.monotonic())
                handler(self, len(seen) - 1)

            def log_message(self, *args: object) -> None:
                pass

        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Answer)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_port}", seen

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def test_a_busy_answer_is_tried_again_after_its_retry_after(
    prometheus: Callable[[Handler], tuple[str, list[float]]],
) -> None:
    def busy_twice(h: http.server.BaseHTTPRequestHandler, n: int) -> None:
        if n < 2:
            _json(h, 503 if n == 0 else 429, {"status": "error"}, Retry_After="1")
        else:
            _json(h, 200, VALID)

    url, seen = prometheus(busy_twice)
    series = query_range(url, "up", END - 3600, END, timeout_s=5)
    assert [s.values.tolist() for s in series] == [[2.0]]
    assert len(seen) == 3
    assert seen[1] - seen[0] >= 0.9 and seen[2] - seen[1] >= 0.9


def test_a_prometheus_busy_every_time_falls_back_to_the_files_demand(
    prometheus: Callable[[Handler], tuple[str, list[float]]],
) -> None:
    url, seen = prometheus(lambda h, n: _json(h, 502, {}, Retry_After="0"))
    with pytest.raises(PrometheusUnreachable, match=r"busy \(HTTP 502, 4 tries\)"):
        query_range(url, "up", END - 3600, END, timeout_s=5)
    assert len(seen) == 4
    frame = _with_query()
    workloads, provenance, warning = demand_or_file(frame, url, "w.parquet")
    assert warning is not None and "busy" in warning and "\n" not in warning
    assert workloads is frame and set(provenance["source"]) == {"file"}


def test_a_slow_answer_byte_by_byte_is_given_up_on_at_the_deadline(
    prometheus: Callable[[Handler], tuple[str, list[float]]],
) -> None:
    def trickle(h: http.server.BaseHTTPRequestHandler, n: int) -> None:
        data = json.dumps(VALID).encode()
        h.send_response(200)
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        for byte in data:
            h.wfile.write(bytes([byte]))
            h.wfile.flush()
            time.sleep(0.2)

    url, _ = prometheus(trickle)
    started = time.monotonic()
    with pytest.raises(PrometheusUnreachable, match="no whole answer within 1 s"):
        query_range(url, "up", END - 3600, END, timeout_s=1)
    assert time.monotonic() - started < 3  # each byte came within the socket's time-out


@pytest.mark.parametrize(
    "answer",
    [
        {"status": "success", "data": []},
        {"status": "success", "data": {"resultType": "matrix", "result": "x"}},
        {"status": "success", "data": {"resultType": "matrix", "result": [{"values": [[1]]}]}},
        {"status": "success", "data": {"resultType": "matrix", "result": [{"values": [[1, "a"]]}]}},
        {"status": "success", "data": {"resultType": "matrix", "result": [{"metric": []}]}},
    ],
)
@pytest.mark.parametrize("compact", [False, True])
def test_an_answer_of_the_wrong_shape_is_one_line(
    prometheus: Callable[[Handler], tuple[str, list[float]]],
    answer: dict[str, Any],
    compact: bool,
) -> None:
    url, _ = prometheus(lambda h, n: _json(h, 200, VALID if n == 0 else answer, compact))
    assert len(query_range(url, "up", END - 3600, END, timeout_s=5)) == 1
    with pytest.raises(PrometheusError) as caught:
        query_range(url, "up", END - 3600, END, timeout_s=5)
    assert "\n" not in str(caught.value)
    assert not isinstance(caught.value, PrometheusUnreachable)


# Label values holding the fast path's markers, escapes and non-ASCII; every value spelling
# Prometheus writes (NaN, +Inf, -Inf, exponents) and fractional timestamps.
TRICKY = {
    "status": "success",
    "data": {
        "resultType": "matrix",
        "result": [
            {
                "metric": {"__name__": "up", "pod": '{"metric":', "x": ',"values":[ ]]} \\ é'},
                "values": [[END, "1"], [END + 300.5, "NaN"], [END + 600, "+Inf"]],
            },
            {"metric": {}, "values": [[END, "-Inf"], [END + 300, "1.5e-300"]]},
            {"metric": {"pod": "b"}, "values": [[END, "0.010365290098556633"]]},
        ],
    },
}


def _same(a: list[Series], b: list[Series]) -> bool:
    return len(a) == len(b) and all(
        x.labels == y.labels
        and np.array_equal(x.times_s, y.times_s)
        and np.array_equal(x.values, y.values, equal_nan=True)
        for x, y in zip(a, b, strict=True)
    )


def test_prometheus_own_encoding_reads_as_plain_json_does(
    prometheus: Callable[[Handler], tuple[str, list[float]]],
) -> None:
    compact = json.dumps(TRICKY, separators=(",", ":")).encode()
    fast = _prometheus_matrix(compact)
    assert fast is not None  # the fast path read it
    assert _prometheus_matrix(json.dumps(TRICKY).encode()) is None  # re-indented: plain JSON
    url, _ = prometheus(lambda h, n: _json(h, 200, TRICKY, compact=n == 0))
    assert _same(query_range(url, "up", END - 3600, END, timeout_s=5), fast)
    plain = query_range(url, "up", END - 3600, END, timeout_s=5)
    assert _same(plain, fast)
    assert fast[0].labels["x"] == ',"values":[ ]]} \\ é'
    assert fast[0].times_s.tolist() == [END, END + 300.5, END + 600]
    assert np.isnan(fast[0].values[1]) and fast[0].values[2] == np.inf
    assert fast[1].values.tolist() == [-np.inf, 1.5e-300]
    assert fast[2].values.tolist() == [float("0.010365290098556633")]


def test_an_empty_range_is_no_series() -> None:
    empty = {"status": "success", "data": {"resultType": "matrix", "result": []}}
    assert _prometheus_matrix(json.dumps(empty, separators=(",", ":")).encode()) == []

"""The telemetry reader's query plumbing, against a loopback server that records each form it
is posted (the edge of the world: the monitoring system): a query two spellings share is asked
once, request-size rates are asked hourly on a grid ending where the window ends, and an
hourly rate reaches only the samples of the hour it spans (a gap stays a gap)."""

from __future__ import annotations

import http.server
import json
import threading
import urllib.parse
from collections.abc import Iterator

import numpy as np
import pytest

from tasks.prometheus import Series
from tasks.telemetry import REQUEST_STEP_S, Hourly, _column, _Reader

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
    reader = _Reader(url, END - 1.5 * 86400, END, 300.0, 5.0)
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

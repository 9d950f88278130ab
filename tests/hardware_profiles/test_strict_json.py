"""Strict JSON: every non-finite number becomes null, wherever it sits; the bytes are those the
standard library's encoder wrote before orjson, except where the module says they differ."""

from __future__ import annotations

import datetime as dt
import json
import math

import numpy as np
import pandas as pd

from hardware_profiles.strict_json import dumps, strict


def test_non_finite_numbers_become_null() -> None:
    frame = pd.DataFrame({"a": [1.0, math.nan, math.inf], "when": [dt.date(2026, 1, 1)] * 3})
    assert strict(frame) == [
        {"a": 1.0, "when": "2026-01-01"},
        {"a": None, "when": "2026-01-01"},
        {"a": None, "when": "2026-01-01"},
    ]
    assert strict({"x": [-math.inf, pd.NaT, 2]}) == {"x": [None, None, 2]}


def test_nested_values_numpy_and_pandas_print_as_strict_json_byte_for_byte() -> None:
    value = {
        "runs": [{"error": math.nan, "ratio": np.float64(1.25)}, {"error": -math.inf}],
        "summary": {"mape": np.float64("nan"), "runs": np.int64(3), "ok": np.bool_(True)},
        "band": np.array([0.5, np.inf, np.nan]),
        "shape": (np.int64(16), 4096),
        "when": dt.datetime(2026, 1, 5, 6, tzinfo=dt.UTC),
        "missing": [pd.NA, pd.NaT, None],
        "text": "NaN",
        1: 0.1,
    }
    # What the standard library wrote (json.dumps of the walked value), byte for byte.
    expected = (
        "{\n"
        '  "runs": [\n'
        '    {\n      "error": null,\n      "ratio": 1.25\n    },\n'
        '    {\n      "error": null\n    }\n'
        "  ],\n"
        '  "summary": {\n    "mape": null,\n    "runs": 3,\n    "ok": true\n  },\n'
        '  "band": [\n    0.5,\n    null,\n    null\n  ],\n'
        '  "shape": [\n    16,\n    4096\n  ],\n'
        '  "when": "2026-01-05T06:00:00+00:00",\n'
        '  "missing": [\n    null,\n    null,\n    null\n  ],\n'
        '  "text": "NaN",\n'
        '  "1": 0.1\n'
        "}"
    )
    assert dumps(value).decode() == expected
    assert json.dumps(strict(value), indent=2, allow_nan=False) == expected


def test_finite_values_pass_unchanged() -> None:
    value = {"a": [1, 2.5, "x", None, True], "b": {"c": -0.0}}
    assert strict(value) == value
    assert json.dumps(strict(value)) == json.dumps(value)


def test_where_the_bytes_differ_from_the_standard_library_the_values_do_not() -> None:
    value = {"tiny_s": 7.9e-05, "tinier_s": 1.2e-07, "name": "Grace–Hopper"}
    assert dumps(value, indent=False) == (
        '{"tiny_s":0.000079,"tinier_s":1.2e-7,"name":"Grace–Hopper"}'.encode()
    )
    assert json.loads(dumps(value)) == json.loads(json.dumps(value))


def test_a_dataframe_prints_as_its_rows_and_compact_output_has_no_spaces() -> None:
    frame = pd.DataFrame(
        {
            "a": [1.5, math.nan],
            "at": [pd.Timestamp("2026-01-05T06:00:00.000000001Z"), pd.NaT],
            "n": pd.array([3, None], dtype="Int64"),
        }
    )
    assert dumps(frame, indent=False) == (
        b'[{"a":1.5,"at":"2026-01-05T06:00:00.000000001+00:00","n":3},'
        b'{"a":null,"at":null,"n":null}]'
    )

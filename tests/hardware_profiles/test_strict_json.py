"""Strict JSON: every non-finite number becomes null, wherever it sits."""

from __future__ import annotations

import datetime as dt
import json
import math

import numpy as np
import pandas as pd

from hardware_profiles.strict_json import strict


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
    assert json.dumps(strict(value), indent=2, allow_nan=False) == (
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


def test_finite_values_pass_unchanged() -> None:
    value = {"a": [1, 2.5, "x", None, True], "b": {"c": -0.0}}
    assert strict(value) == value
    assert json.dumps(strict(value)) == json.dumps(value)

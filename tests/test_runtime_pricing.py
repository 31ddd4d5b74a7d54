"""A forecast plan's stated overflow, on hand-computed cases: the expectation over past errors and shapes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from hetplan.planner.optimize.runtime import _error_excess

# One VM pool: throughput 10 req/s, latency 50 ms, SLO 200 ms, queue fraction 0.75: it diverts what would
# queue beyond K = 0.75 × (0.2 − 0.05) × 10 = 1.125 requests.
OPTIONS = pd.DataFrame({"throughput_rps": [10.0], "latency_ms": [50.0]}, index=["vm:m@c5.large"])
ONE_VM = pd.DataFrame({"platform": ["vm"], "option": ["vm:m@c5.large"], "window": [0], "count": [1.0],
                       "rate_rps": [8.0]})
K = 0.75 * (0.2 - 0.05) * 10.0


def test_an_error_of_any_size_counts():
    """Past error +300%: 32 req/s on 10 a second for 60 s. The fluid diverts 22 a second once the queue
    holds K: 60 × 22 − K. The forecast (8 req/s) diverts nothing. (A grid capped at 3× gave 60 × 14 − K.)"""
    flat = np.full((1, 60), 8.0)
    excess = _error_excess(ONE_VM, OPTIONS, flat, 0.75, 0.2, errors=[np.array([3.0])])
    assert excess[0] == pytest.approx(60 * 22 - K)


def test_errors_are_averaged_over_their_quantile_midpoints():
    """Past errors −50% and +100%: the 9 quantile midpoints interpolate between them (0.58× to 1.92×);
    the 4 above 1.25× bring more than 10 req/s and divert 60 × (8s − 10) − K each; the rest nothing."""
    flat = np.full((1, 60), 8.0)
    errors = np.array([-0.5, 1.0])
    scale = 1.0 + np.quantile(errors, (np.arange(9) + 0.5) / 9)
    by_hand = np.mean([max(60 * (8 * s - 10) - K, 0.0) if 8 * s > 10 else 0.0 for s in scale])
    assert _error_excess(ONE_VM, OPTIONS, flat, 0.75, 0.2, errors=[errors])[0] == pytest.approx(by_hand)


def test_a_burstier_last_shape_than_the_past_ones_lowers_the_statement():
    """The forecast takes the last window's shape: 16 req/s every other second (mean 8). Each burst second
    diverts 16 − 10 − K, and the queue drains in the quiet second: 30 × (6 − K) at the forecast. The past
    shapes are flat, where 8 req/s diverts nothing. The expectation is below the value at the forecast and
    the difference is kept with its sign (a clamp at zero overstated such windows)."""
    bursty = np.tile([16.0, 0.0], 30)[None, :]
    flat_shapes = np.ones((1, 12, 60))
    excess = _error_excess(ONE_VM, OPTIONS, bursty, 0.75, 0.2, errors=[np.zeros(5)], shapes=flat_shapes)
    assert excess[0] == pytest.approx(-30 * (6 - K))

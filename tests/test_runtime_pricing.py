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


# --- the request-level run in bounded memory -----------------------------------------------------------------

TWO_WINDOWS = pd.DataFrame({"platform": ["vm", "vm"], "option": ["vm:m@c5.large"] * 2, "window": [0, 1],
                            "count": [1.0, 2.0], "rate_rps": [14.0, 14.0], "share": [1.0, 1.0]})
OPTIONS_WITH_SLOTS = OPTIONS.assign(servers=[1])
LOAD = np.full((2, 60), 14.0)  # 14 req/s on one VM of 10 req/s, then on two


def test_a_load_beyond_the_limit_runs_window_by_window(monkeypatch):
    from hetplan.planner.optimize import runtime

    whole = runtime.overflow_requests(TWO_WINDOWS, OPTIONS_WITH_SLOTS, LOAD, 0.75, 0.2, seed=4)
    monkeypatch.setattr(runtime, "MAX_REQUESTS_PER_RUN", 14 * 60)  # one window per run
    parts = runtime.overflow_requests(TWO_WINDOWS, OPTIONS_WITH_SLOTS, LOAD, 0.75, 0.2, seed=4)
    by_hand = [runtime._request_level(TWO_WINDOWS[TWO_WINDOWS.window == t].assign(window=0), OPTIONS_WITH_SLOTS,
                                      LOAD[t:t + 1], 0.75, 0.2, seed=4 + t)[0] for t in (0, 1)]
    np.testing.assert_array_equal(parts, np.vstack(by_hand))
    # one VM takes 10 of 14 a second: at least the fluid's 4 a second overflow (Poisson bunching adds to it);
    # two VMs take all but the bursts
    assert parts[0].sum() >= 60 * 4 - K and parts[1].sum() < 0.1 * parts[0].sum()
    assert whole[0].sum() == pytest.approx(parts[0].sum(), rel=0.15)


def test_a_window_beyond_the_limit_alone_is_priced_by_the_fluid(monkeypatch):
    from hetplan.planner.optimize import runtime

    monkeypatch.setattr(runtime, "MAX_REQUESTS_PER_RUN", 100)
    out = runtime.overflow_requests(TWO_WINDOWS, OPTIONS_WITH_SLOTS, LOAD, 0.75, 0.2, seed=4)
    # the fluid: one VM, 4 a second beyond it once K is queued; two VMs (20 a second) divert nothing
    assert out[0].sum() == pytest.approx(60 * 4 - K) and out[1].sum() == 0.0

"""Sizing windows for the requests the SLO counts: the lateness rule, the overflow curve and its MILP cuts."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy.optimize import linprog

from hetplan.planner.optimize.lateness import late_requests
from hetplan.planner.optimize.model import Limits, Windows, build_model
from hetplan.planner.optimize.overflow import _RATIOS, diverted, overflow_curve, overflow_cuts
from hetplan.planner.optimize.sizing import forecast_headroom, required_ratio
from hetplan.planner.optimize.solvers import SolveOptions, solve_highs
from milp_cases import options


def bursty_seconds(windows=4, seconds=300, seed=3):
    rng = np.random.default_rng(seed)
    t = np.arange(seconds)
    rows = [rng.poisson(100 + np.where((t + 37 * w) % 60 < 3, 300 + 50 * w, 0)) for w in range(windows)]
    return np.array(rows, float)


def test_one_burst_second_by_hand():
    """μ = 100 req/s, service 50 ms, SLO 200 ms: 15 requests of backlog use up the wait budget. A second of
    300 arrivals builds backlog at 200/s, so its arrivals after x = 15/200 = 0.075 are late: 277.5."""
    a = np.zeros(10)
    a[2] = 300.0
    late = late_requests(a[None, :], [100.0], servers=5, service_s=0.05, slo_s=0.2)
    assert late[0] == pytest.approx(277.5)
    calm = late_requests(np.full((1, 10), 50.0), [100.0], servers=8, service_s=0.05, slo_s=0.2)
    assert calm[0] == pytest.approx(0.0, abs=1e-6)  # half busy, 8 slots: the M/D/c tail is negligible


def test_required_ratio_is_the_smallest_that_meets_the_target():
    a = bursty_seconds()
    ratio = required_ratio(a, servers=2, service_s=0.035, slo_s=0.2, target=0.005)
    mean = a.mean(axis=1)
    late = late_requests(a, ratio * mean, 2, 0.035, 0.2) / a.sum(axis=1)
    below = late_requests(a, 0.99 * ratio * mean, 2, 0.035, 0.2) / a.sum(axis=1)
    assert (late <= 0.005 + 1e-9).all() and (below > 0.005).all()
    assert (ratio > 1.0).all()  # bursts need more than the mean


def test_forecast_headroom_is_the_quantile_of_under_forecasts():
    actual, predicted = np.array([110.0, 90.0, 120.0, 100.0]), np.full(4, 100.0)
    assert forecast_headroom(actual, predicted, 0.5) == pytest.approx(0.05)  # errors 0.1, 0, 0.2, 0 → median 0.05
    assert forecast_headroom(actual, predicted, 1.0) == pytest.approx(0.2)


def test_overflow_curve_is_the_capped_fluid_and_convex():
    a = bursty_seconds()
    g = overflow_curve(a, budget_s=0.165)
    mean, total = a.mean(axis=1), a.sum(axis=1)
    for k in (3, 10, 20):
        mu = _RATIOS[k] * mean
        assert np.allclose(g[:, k], diverted(a, mu, 0.75 * 0.165 * mu).sum(axis=1) / total)
    assert np.allclose(g[:, 0], 1.0) and (np.diff(g, axis=1) <= 1e-12).all()
    slopes = np.diff(g, axis=1) / np.diff(_RATIOS)
    assert (np.diff(slopes, axis=1) >= -1e-9).all()  # convex: its segment lines are valid cuts


def one_model_case():
    opts = options([{"model": "m", "instance_type": "c5.large", "accuracy": 0.7, "price": 0.36, "capacity": 45.0,
                     "latency_ms": 35.0, "boot": 60.0}],
                   [{"model": "m", "memory_mb": 3008, "accuracy": 0.7, "cost": 7e-6, "latency_ms": 144.0}])
    a = bursty_seconds(windows=3, seconds=120)
    win = Windows(start_s=np.arange(3) * 120.0, duration_s=np.full(3, 120.0), demand_rps=a.mean(axis=1),
                  mean_rps=a.mean(axis=1),
                  capacity_rps=np.full((3, 1), opts.vm.throughput_rps.iloc[0] * 0.95), peak_rps=a.max(axis=1))
    win = Windows(**{**win.__dict__, "overflow_cuts": overflow_cuts(a, opts.vm, 0.2)})
    return opts, win


def test_the_milp_with_overflow_matches_brute_force():
    """Every VM count enumerated; per window the rest (rate to the VMs, overflow, Lambda share) by an LP with
    the same cuts. The MILP's optimum must equal the best of them."""
    opts, win = one_model_case()
    limits = Limits(horizon_start_s=-1000.0, overflow_option=opts.lam.option.iloc[0])
    result = solve_highs(build_model(win, opts, limits), SolveOptions(gap=1e-9, time_limit_s=60))
    theta, price = opts.vm.throughput_rps.iloc[0], opts.vm.price_per_hour_usd.iloc[0] / 3600
    c = opts.lam.cost_per_request_usd.iloc[0]
    cuts = win.overflow_cuts

    def window_cost(t, n):
        L, w = win.demand_rps[t], win.duration_s[t]
        # variables x (to VMs), v (overflow), f (Lambda share); v ≥ α x + β n; v ≤ x; x ≤ 0.95 θ n; x + f = L
        a_ub = [[cuts.intercept[t, 0, k], -1.0, 0.0] for k in range(cuts.intercept.shape[2])] + [[-1.0, 1.0, 0.0], [1.0, 0.0, 0.0]]
        b_ub = [-cuts.slope[t, 0, k] * n for k in range(cuts.intercept.shape[2])] + [0.0, 0.95 * theta * n]
        res = linprog([0.0, c * w, c * w], A_ub=a_ub, b_ub=b_ub, A_eq=[[1.0, 0.0, 1.0]], b_eq=[L],
                      bounds=[(0, None)] * 3, method="highs")
        return res.fun + price * w * n

    top = int(math.ceil(cuts.full_ratio.max() * win.demand_rps.max() / theta)) + 1
    cost = {(t, n): window_cost(t, n) for t in range(3) for n in range(top + 1)}
    best = math.inf
    for n in itertools.product(range(top + 1), repeat=3):
        launches = np.maximum(0, np.diff(np.concatenate([[0], n])))
        best = min(best, sum(cost[t, n[t]] for t in range(3)) + float((launches * price * 60.0).sum()))
    assert result.objective == pytest.approx(best, rel=1e-6)


def test_the_overflow_at_its_busiest_second_keeps_within_the_lambda_concurrency_limit():
    """A burst second sends its excess to Lambda all at once: the account's concurrency limit binds there, not at
    the mean. With a tight limit the MILP must buy the VMs that keep the busiest second's overflow within it,
    checked here by the capped-queue recursion itself (``diverted``) at the planned VM counts."""
    from hetplan.planner.optimize.model import Limits, build_model
    from hetplan.planner.optimize.solvers import SolveOptions, solve_highs

    opts, win = one_model_case()
    a = bursty_seconds(windows=3, seconds=120)
    a[:, 60] *= 6.0  # one spike second per window
    win = Windows(**{**win.__dict__, "demand_rps": a.mean(axis=1), "mean_rps": a.mean(axis=1), "peak_rps": a.max(axis=1),
                     "overflow_cuts": overflow_cuts(a, opts.vm, 0.2)})
    star = opts.lam.option.iloc[0]
    latency = opts.lam.latency_ms.iloc[0] / 1000.0
    theta = opts.vm.throughput_rps.iloc[0]

    def plan(limit):
        limits = Limits(concurrency_limit=limit, overflow_option=star, horizon_start_s=-1e4)
        model = build_model(win, opts, limits)
        result = solve_highs(model, SolveOptions(gap=1e-9))
        counts = np.round(model.values(result.values, "vm-count")[:, 0])
        x = model.values(result.values, "vm-rate")[:, 0]
        share = np.divide(x, a.mean(axis=1), out=np.zeros(3), where=a.mean(axis=1) > 0)
        mu = counts * theta
        peaks = np.array([diverted(a[t:t + 1] * share[t], mu[t], 0.75 * (0.2 - 0.035) * mu[t]).max() for t in range(3)])
        lam_rate = model.values(result.values, "lambda-rate")[:, 0]
        return result.objective, counts, peaks * latency + lam_rate * latency * a.max(axis=1) / a.mean(axis=1)

    loose_cost, loose_counts, loose_concurrency = plan(1e6)
    limit = 200.0
    assert loose_concurrency.max() > limit  # without the limit the spike second overflows past it
    tight_cost, tight_counts, tight_concurrency = plan(limit)
    assert (tight_concurrency <= limit * (1 + 1e-6)).all()
    assert tight_cost > loose_cost and tight_counts.sum() > loose_counts.sum()

"""The MILP against brute force: every VM count enumerated, the continuous rest solved per window."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy.optimize import linprog

from hetplan.planner.optimize.model import Limits, build_model
from hetplan.planner.optimize.solvers import SolveOptions, Status, solve_cbc, solve_highs, solve_ortools
from milp_cases import random_case


def window_cost(opts, win, t, counts, accuracy, concurrency):
    """Cheapest Lambda spend in window t with these VM counts (inf when the window cannot be served)."""
    vm, lam = opts.vm, opts.lam
    V, Λ = len(vm), len(lam)
    demand, share = win.demand_rps[t], win.mean_rps[t] / win.demand_rps[t]
    cost = np.concatenate([np.zeros(V), lam.cost_per_request_usd.to_numpy() * share * win.duration_s[t]])
    acc = np.concatenate([vm.accuracy.to_numpy(), lam.accuracy.to_numpy()])
    a_ub = [-acc, np.concatenate([np.zeros(V), lam.latency_ms.to_numpy() / 1000])]
    b_ub = [-accuracy * demand, concurrency]
    bounds = [(0, c * k) for c, k in zip(counts, vm.capacity_rps)] + [(0, None)] * Λ
    res = linprog(cost, A_ub=np.array(a_ub), b_ub=b_ub, A_eq=np.ones((1, V + Λ)), b_eq=[demand], bounds=bounds, method="highs")
    return res.fun if res.status == 0 else math.inf


def brute_force(opts, win, accuracy, concurrency, now):
    vm = opts.vm
    T, V = len(win), len(vm)
    price_s = vm.price_per_hour_usd.to_numpy() / 3600
    boot = vm.boot_seconds.to_numpy()
    top = [int(math.ceil(win.demand_rps.max() / k)) + 1 for k in vm.capacity_rps]
    per_window = {}
    best = math.inf
    for flat in itertools.product(*[range(top[o] + 1) for _ in range(T) for o in range(V)]):
        n = np.array(flat).reshape(T, V)
        previous = np.vstack([np.zeros(V), n[:-1]])
        # A VM cannot serve a window that starts before it could have booted (launched no earlier than `now`).
        if np.any((win.start_s[:, None] - now < boot[None, :]) & (n > previous)):
            continue
        total = float((n * price_s * win.duration_s[:, None]).sum() + (np.maximum(0, n - previous) * price_s * boot).sum())
        for t in range(T):
            key = (t, tuple(n[t]))
            if key not in per_window:
                per_window[key] = window_cost(opts, win, t, n[t], accuracy, concurrency)
            total += per_window[key]
        best = min(best, total)
    return best


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("lead_s", [0.0, 1000.0])
def test_highs_matches_brute_force(seed, lead_s):
    opts, win, accuracy = random_case(seed)
    concurrency = 5.0
    now = win.start_s[0] - lead_s
    expected = brute_force(opts, win, accuracy, concurrency, now)
    model = build_model(win, opts, Limits(mean_accuracy=accuracy, concurrency_limit=concurrency, horizon_start_s=now))
    result = solve_highs(model, SolveOptions(gap=1e-9, time_limit_s=30))
    if math.isinf(expected):
        assert result.status == Status.INFEASIBLE
        return
    assert result.status == Status.OPTIMAL
    assert result.objective == pytest.approx(expected, rel=1e-6, abs=1e-9)


@pytest.mark.parametrize("seed", range(3))
def test_backends_agree(seed):
    opts, win, accuracy = random_case(seed, T=4)
    model = build_model(win, opts, Limits(mean_accuracy=accuracy, concurrency_limit=50.0, horizon_start_s=-1000.0))
    results = [backend(model, SolveOptions(gap=1e-9, time_limit_s=30)) for backend in (solve_highs, solve_cbc, solve_ortools)]
    assert all(r.status == Status.OPTIMAL for r in results), [r.message for r in results]
    costs = [r.objective for r in results]
    assert max(costs) - min(costs) <= 1e-6 * max(costs)
    # Each backend's plan is feasible for the model it was given, checked here by plain linear algebra.
    for r in results:
        z = r.values
        activity = model.matrix @ z
        assert np.all(activity >= model.row_lb - 1e-6) and np.all(activity <= model.row_ub + 1e-6)
        assert np.all(z >= model.lb - 1e-6) and np.all(z <= model.ub + 1e-6)
        assert np.allclose(z[model.integer], np.round(z[model.integer]), atol=1e-6)


def test_lp_relaxation_is_a_lower_bound():
    opts, win, accuracy = random_case(3, T=4)
    model = build_model(win, opts, Limits(mean_accuracy=accuracy, concurrency_limit=50.0))
    lp = solve_highs(model, SolveOptions(relax=True))
    mip = solve_highs(model, SolveOptions(gap=1e-9))
    assert lp.objective <= mip.objective + 1e-9


@pytest.mark.parametrize("seed", range(6))
def test_the_first_plan_and_the_chunk_bound_bracket_the_optimum(seed):
    """The restricted first plan is feasible for the whole model, the chunk bound never exceeds the true
    optimum, and what ``_solve_whole`` returns is within its stated gap of it."""
    import time

    from hetplan.planner.optimize.solve import _chunk_bound, _restricted_start, _solve_whole

    opts, win, accuracy = random_case(seed, T=7, V=4)
    limits = Limits(mean_accuracy=accuracy, concurrency_limit=5.0, horizon_start_s=win.start_s[0] - 1000.0)
    model = build_model(win, opts, limits)
    optimum = solve_highs(model, SolveOptions(gap=1e-9)).objective
    bound = _chunk_bound(win, opts, limits, "highs", 30.0, 1e-6)
    assert bound <= optimum + 1e-7
    lp = solve_highs(model, SolveOptions(relax=True))
    start = _restricted_start(model, win, opts, limits, lp, "highs", 30.0, 1e-9)
    if start is not None:  # feasible for the whole model: every row holds
        rows = model.matrix @ start
        assert (rows >= model.row_lb - 1e-6).all() and (rows <= model.row_ub + 1e-6).all()
        assert float(model.cost @ start) >= optimum - 1e-7
    result, method = _solve_whole(model, win, opts, limits, lp, "highs", 30.0, 0.01, time.perf_counter())
    assert method in ("full", "restricted")
    assert result.bound <= optimum + 1e-7 <= result.objective + 2e-7
    assert result.objective <= optimum * 1.01 + 1e-9

"""The MILP against brute force: every VM count enumerated, the continuous rest solved per window."""

from __future__ import annotations

import dataclasses
import itertools
import math

import numpy as np
import pytest
from scipy.optimize import linprog

from hetplan.planner.optimize.model import Limits, Windows, build_model
from hetplan.planner.optimize.solvers import SolveOptions, Status, solve_cbc, solve_highs, solve_ortools
from milp_cases import random_case


def window_cost(opts, win, t, counts, accuracy, concurrency, overflow=None):
    """Cheapest Lambda spend in window t with these VM counts (inf when the window cannot be served).

    Written from the model's docstring, not its code: routed rates x (VM) and f (Lambda) add up to L_t; each VM
    option carries at most k_to per VM and, when batched, at least ρ_o per VM; mean accuracy ≥ A; Lambda
    concurrency at the peak second ≤ C. With ``overflow`` (the ℓ* name), each pool's overflow v ≥ every segment
    line of its curve and ≤ x, paid at ℓ*'s price and served at ℓ*'s accuracy; where the limit could bind
    ((τ_max + τ*) · P_t > C) the busiest second's overflow w ≥ its segment lines counts against C at τ*."""
    vm, lam = opts.vm, opts.lam
    V, Λ = len(vm), len(lam)
    n = np.asarray(counts, float)
    demand, share = win.demand_rps[t], win.mean_rps[t] / win.demand_rps[t]
    capacity = vm.capacity_rps.to_numpy() if win.capacity_rps is None else np.asarray(win.capacity_rps)[t]
    fill = vm.min_rate_rps.to_numpy() if "min_rate_rps" in vm else np.zeros(V)
    peak = demand if win.peak_rps is None else max(win.peak_rps[t], demand)
    τ = lam.latency_ms.to_numpy() / 1000
    star = lam.set_index("option").loc[overflow] if overflow else None
    busy = overflow is not None and (τ.max() + star.latency_ms / 1000) * peak > concurrency
    # columns: x (V), f (Λ), v (V, with overflow), w (V, where the limit could bind)
    width = V + Λ + V * (overflow is not None) + V * busy
    x, f, v, w = slice(0, V), slice(V, V + Λ), slice(V + Λ, 2 * V + Λ), slice(2 * V + Λ, 3 * V + Λ)
    cost, acc, usage = np.zeros(width), np.zeros(width), np.zeros(width)
    cost[f] = lam.cost_per_request_usd.to_numpy() * share * win.duration_s[t]
    acc[x], acc[f] = vm.accuracy.to_numpy(), lam.accuracy.to_numpy()
    usage[f] = τ * peak / demand
    if overflow is not None:
        cost[v] = star.cost_per_request_usd * share * win.duration_s[t]
        acc[v] = star.accuracy - vm.accuracy.to_numpy()
    if busy:
        usage[w] = star.latency_ms / 1000
    a_ub, b_ub = [-acc, usage], [-accuracy * demand, concurrency]
    if overflow is not None:
        cuts = win.overflow_cuts
        for o in range(V):
            for variable, icpt, slope in ((v, cuts.intercept, cuts.slope), (w, cuts.peak_intercept, cuts.peak_slope)):
                if variable is w and not busy:
                    continue
                for k in range(icpt.shape[2]):  # variable_o ≥ α x_o + β n_o
                    row = np.zeros(width)
                    row[variable.start + o], row[o] = -1.0, icpt[t, o, k]
                    a_ub.append(row)
                    b_ub.append(-slope[t, o, k] * n[o])
            row = np.zeros(width)
            row[v.start + o], row[o] = 1.0, -1.0  # v_o ≤ x_o
            a_ub.append(row)
            b_ub.append(0.0)
    equal = np.zeros((1, width))
    equal[0, : V + Λ] = 1.0
    bounds = [(fill[o] * n[o], capacity[o] * n[o]) for o in range(V)] + [(0, None)] * (width - V)
    res = linprog(cost, A_ub=np.array(a_ub), b_ub=b_ub, A_eq=equal, b_eq=[demand], bounds=bounds, method="highs")
    return res.fun if res.status == 0 else math.inf


def brute_force(opts, win, accuracy, concurrency, now, initial=None, quotas=None, overflow=None, top=None):
    """The optimum over every VM count vector of every window, by exhaustive dynamic programming: the cost
    couples windows only through launches (n[t] − n[t−1], with n[−1] the VMs ``initial`` serving at ``now``),
    so the cheapest way to reach each count vector in window t is the cheapest over every vector in t − 1.
    A VM cannot serve a window that starts before it could have booted (launched no earlier than ``now``)."""
    vm = opts.vm
    T, V = len(win), len(vm)
    price_s = vm.price_per_hour_usd.to_numpy() / 3600
    boot = vm.boot_seconds.to_numpy()
    n0 = np.array([(initial or {}).get(name, 0) for name in vm.option], float)
    if top is None:
        top = [int(math.ceil(win.demand_rps.max() / k)) + 1 for k in vm.capacity_rps]
    states = [np.array(s, float) for s in itertools.product(*[range(top[o] + 1) for o in range(V)])]
    types = vm.instance_type.to_numpy()
    within_quota = [all(s[types == itype].sum() <= q for itype, q in (quotas or {}).items()) for s in states]
    best = {tuple(n0): 0.0}
    for t in range(T):
        unready = win.start_s[t] - now < boot
        reached = {}
        for s, fits in zip(states, within_quota):
            if not fits:
                continue
            serve = win.duration_s[t] * price_s @ s + window_cost(opts, win, t, s, accuracy, concurrency, overflow)
            if math.isinf(serve):
                continue
            for previous, spent in best.items():
                p = np.array(previous)
                if np.any(unready & (s > p)):
                    continue
                total = spent + serve + price_s * boot @ np.maximum(0.0, s - p)
                reached[tuple(s)] = min(reached.get(tuple(s), math.inf), total)
        best = reached
    return min(best.values(), default=math.inf)


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


def extended_case(seed: int, overflow: bool):
    """``random_case`` with every optional row in play: both options on one instance type (one quota row covers
    them), option 1 batched (a fill rate per VM), per-window capacities below the steady ones, peak seconds above
    the routed rate, one VM already serving, and with ``overflow`` the cuts of a mildly bursty per-second load."""
    from hetplan.planner.optimize.options import Options
    from hetplan.planner.optimize.overflow import overflow_cuts

    opts, win, accuracy = random_case(seed, T=3, V=2)
    rng = np.random.default_rng(1000 + seed)
    vm = opts.vm.assign(instance_type="t0.large", min_rate_rps=[0.0, float(rng.uniform(5.0, 15.0))])
    opts = Options(vm=vm, lam=opts.lam, rejected=opts.rejected)
    capacity = vm.capacity_rps.to_numpy()[None, :] * rng.uniform(0.7, 1.0, (len(win), len(vm)))
    peak = win.demand_rps * rng.uniform(1.0, 1.5, len(win))
    cuts = None
    if overflow:
        per_second = win.mean_rps[:, None] * rng.uniform(0.4, 1.6, (len(win), 300))
        cuts = overflow_cuts(per_second, vm, slo_s=0.05)
    win = Windows(win.start_s, win.duration_s, win.demand_rps, win.mean_rps, capacity, peak, cuts)
    return opts, win, accuracy, {vm.option[0]: 1}


# (Lambda concurrency, instance quota, seconds from "now" to the first window, Lambda price factor): a loose limit,
# a tight one, and with overflow one so tight that the overflow's busiest second decides how many VMs the plan
# needs, and Lambda so dear that VMs are bought beyond the window's capacity to keep every request off it
LIMITS = {"loose": (60.0, None, 250.0, 1.0), "tight": (5.0, None, 250.0, 1.0), "peak": (1.0, 8, 1000.0, 1.0),
          "dear": (60.0, 8, 1000.0, 20.0)}


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("overflow, limits", [(False, "loose"), (False, "tight"), (True, "loose"), (True, "tight"),
                                              (True, "peak"), (True, "dear")])
def test_every_optional_row_matches_brute_force(seed, overflow, limits):
    """Quotas, a budget, VMs already serving, batch fill, per-window capacity, peak seconds and overflow cuts
    (with the busiest second's overflow counted against the Lambda limit where it could bind): the MILP's
    optimum is the exhaustive one, a budget just above it changes nothing and one just below is infeasible."""
    opts, win, accuracy, initial = extended_case(seed, overflow)
    star = opts.lam.option[seed % 2] if overflow else None  # the fast model's function, or the accurate one's
    concurrency, quota, lead_s, dearer = LIMITS[limits]
    opts = dataclasses.replace(opts, lam=opts.lam.assign(cost_per_request_usd=opts.lam.cost_per_request_usd * dearer))
    quotas = {"t0.large": quota or 1 + seed % 2}
    now = win.start_s[0] - lead_s
    top = None
    if overflow:  # more VMs than carry the window without overflow cannot lower the cost
        per_vm = np.minimum(win.capacity_rps, opts.vm.throughput_rps.to_numpy() / np.maximum(win.overflow_cuts.full_ratio, 1e-9))
        top = (np.ceil(win.demand_rps[:, None] / per_vm).max(axis=0) + 1).astype(int).tolist()
    expected = brute_force(opts, win, accuracy, concurrency, now, initial, quotas, star, top)

    def solve(budget=None):
        limits = Limits(mean_accuracy=accuracy, concurrency_limit=concurrency, quotas=quotas, budget_usd=budget,
                        initial_vms=initial, horizon_start_s=now, overflow_option=star)
        return solve_highs(build_model(win, opts, limits), SolveOptions(gap=1e-9, time_limit_s=30))

    result = solve()
    if math.isinf(expected):
        assert result.status == Status.INFEASIBLE
        return
    assert result.status == Status.OPTIMAL, result.message
    assert result.objective == pytest.approx(expected, rel=1e-6, abs=1e-9)
    assert solve(expected * 1.001).objective == pytest.approx(expected, rel=1e-6)
    assert solve(expected * 0.99).status == Status.INFEASIBLE


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


def test_rows_carry_their_family_and_index_names():
    """Every row is named ``family[index]`` once, so an infeasibility report or LP dump can be read: the quota
    row of window 1 holds exactly that window's VM counts of the type, and the budget row is the last one."""
    import re

    opts, win, accuracy, initial = extended_case(1, True)
    limits = Limits(mean_accuracy=accuracy, concurrency_limit=1.0, quotas={"t0.large": 8}, budget_usd=1.0,
                    initial_vms=initial, horizon_start_s=win.start_s[0] - 1000.0, overflow_option=opts.lam.option[1])
    model = build_model(win, opts, limits)
    names = model.row_names()
    assert len(names) == len(set(names)) == model.num_rows
    assert all(re.fullmatch(r"[a-z-]+\[[^\]]+\]", name) for name in names)
    families = {name.split("[")[0] for name in names}
    assert families == {"demand-window", "capacity-vm", "batch-fill", "launch-vm", "accuracy-window", "overflow-vm",
                        "overflow-cap", "overflow-peak-vm", "concurrency-window", "quota-window", "budget"}
    assert names[-1] == "budget[total]"
    quota = model.matrix.getrow(names.index("quota-window[1,t0.large]")).toarray().ravel()
    columns = model.var_names()
    assert sorted(columns[j] for j in np.flatnonzero(quota)) == [f"vm-count[1,{o}]" for o in sorted(opts.vm.option)]
    assert model.row_ub[names.index("quota-window[1,t0.large]")] == 8


def test_windows_keep_their_columns_when_sliced_or_narrowed():
    """``Windows.slice`` and ``select_vm`` (the decomposition's chunks and option subsets) cut every per-window
    and per-option array the same way, cuts included."""
    _, win, _, _ = extended_case(2, True)
    part = win.slice(1, 3)
    assert part.start_s.tolist() == win.start_s[1:3].tolist() and len(part) == 2
    for name in ("duration_s", "demand_rps", "mean_rps", "capacity_rps", "peak_rps"):
        np.testing.assert_array_equal(getattr(part, name), getattr(win, name)[1:3])
    for name in ("intercept", "slope", "full_ratio", "peak_intercept", "peak_slope"):
        np.testing.assert_array_equal(getattr(part.overflow_cuts, name), getattr(win.overflow_cuts, name)[1:3])
    one = win.select_vm(np.array([1]))
    np.testing.assert_array_equal(one.capacity_rps, win.capacity_rps[:, [1]])
    np.testing.assert_array_equal(one.overflow_cuts.slope, win.overflow_cuts.slope[:, [1]])
    np.testing.assert_array_equal(one.peak_rps, win.peak_rps)
    np.testing.assert_array_equal(one.demand_rps, win.demand_rps)
    bare = Windows(win.start_s, win.duration_s, win.demand_rps, win.mean_rps)
    assert bare.slice(0, 2).capacity_rps is None and bare.select_vm(np.array([0])).overflow_cuts is None


@pytest.mark.parametrize("price, lambda_cost, serving, first, boot", [
    (0.05, 2e-6, 1, 5.0, 400.0), (0.05, 2e-5, 1, 5.0, 400.0), (0.5, 2e-5, 1, 5.0, 400.0), (0.05, 2e-5, 2, 15.0, 700.0)])
def test_a_vm_dropped_before_it_could_boot_again_stays_down(price, lambda_cost, serving, first, boot):
    """VMs serving at the start, batched (at least 10 req/s each): the first window brings too few requests to
    fill all their batches, so some are dropped there, and the next windows start before a new one could boot.
    The MILP must serve them on Lambda, as the enumeration does, not bring the VMs back (no-launch-before-ready)."""
    from hetplan.planner.optimize.options import Options
    from milp_cases import options, windows

    opts = options([{"model": "fast", "instance_type": "t0.large", "accuracy": 0.6, "price": price, "capacity": 60.0,
                     "boot": boot}], [{"model": "fast", "memory_mb": 1024, "accuracy": 0.6, "cost": lambda_cost}])
    opts = Options(vm=opts.vm.assign(min_rate_rps=10.0), lam=opts.lam, rejected=opts.rejected)
    win, initial = windows([first, 100.0, 100.0]), {opts.vm.option[0]: serving}
    expected = brute_force(opts, win, 0.0, 200.0, 0.0, initial)
    model = build_model(win, opts, Limits(concurrency_limit=200.0, initial_vms=initial, horizon_start_s=0.0))
    assert solve_highs(model, SolveOptions(gap=1e-9)).objective == pytest.approx(expected, rel=1e-6)
    unready = [f"no-launch-before-ready[{t},{opts.vm.option[0]}]" for t in range(1, 3) if t * 300.0 < boot]
    assert [name for name in model.row_names() if name.startswith("no-launch")] == unready

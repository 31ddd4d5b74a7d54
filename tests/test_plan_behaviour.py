"""Plans change as they should: SLO, accuracy, ramps, decomposition, pruning."""

from __future__ import annotations

import numpy as np
import pytest

from hetplan.planner import catalog
from hetplan.planner.optimize.model import Limits, Windows, build_model
from hetplan.planner.optimize.options import Targets, build_options, prune_dominated
from hetplan.planner.optimize.solve import solve_plan
from hetplan.planner.optimize.solvers import SolveOptions, solve_highs
from hetplan.planner.optimize.workflow import PlanRequest, make_plan
from milp_cases import options, windows


@pytest.fixture(scope="module")
def reference():
    return catalog.load_profile(), catalog.load_instances(), catalog.load_serverless(), catalog.load_models()


def _cost_and_accuracy(slo_s, mean_accuracy, hours=1.0):
    plan = make_plan(PlanRequest(slo_s=slo_s, mean_accuracy=mean_accuracy, hours=hours, gap=1e-4, time_limit_s=60))
    return plan.summary["total_cost_usd"], plan.summary["mean_accuracy"], plan


@pytest.mark.parametrize("accuracy", [0.60, 0.70])
def test_tighter_slo_never_lowers_cost(accuracy):
    costs = [_cost_and_accuracy(slo, accuracy)[0] for slo in (1.0, 0.3, 0.15)]
    # Each plan is proven within 0.01%: allow that slack between neighbours.
    assert costs[0] <= costs[1] * (1 + 2e-4) and costs[1] <= costs[2] * (1 + 2e-4), costs


def test_higher_accuracy_target_never_lowers_mean_accuracy():
    results = [_cost_and_accuracy(0.2, target) for target in (0.56, 0.65, 0.70, 0.72)]
    accuracies = [r[1] for r in results]
    assert all(a >= t - 1e-9 for a, t in zip(accuracies, (0.56, 0.65, 0.70, 0.72)))
    assert accuracies == sorted(accuracies) or np.all(np.diff(accuracies) >= -1e-6), accuracies
    costs = [r[0] for r in results]
    assert np.all(np.diff(costs) >= -1e-4 * max(costs)), costs  # more accuracy costs at least as much


def test_ramp_faster_than_boot_is_covered_by_lambda():
    # 1-minute windows, 100 s boot: a ramp that starts now cannot wait for VMs.
    opts = options([{"model": "m", "instance_type": "c5.large", "accuracy": 0.7, "price": 0.085, "capacity": 50.0, "boot": 100.0}],
                   [{"model": "m", "memory_mb": 2048, "accuracy": 0.7, "cost": 4e-6, "latency_ms": 80.0}])
    win = windows([50, 200, 200, 200, 200, 200], window_s=60)
    plan = solve_plan(win, opts, Targets(slo_s=0.2), Limits(initial_vms={"vm:m@c5.large": 1}, concurrency_limit=1000.0),
                      gap=1e-6, time_limit_s=30)
    lam = plan.assignments[plan.assignments.platform == "lambda"].groupby("window").rate_rps.sum()
    vms = plan.assignments[plan.assignments.platform == "vm"].set_index("window")["count"]
    # Windows 1 (starts 60 s after now) cannot have new VMs: Lambda carries the ramp there.
    assert vms.get(1, 0) <= 1 and lam.get(1, 0) >= 150 - 1e-6
    # From window 2 (120 s ≥ boot) VMs take over: 4 VMs of 50 rps, nothing left on Lambda.
    assert all(vms.get(t, 0) == 4 for t in range(2, 6))
    assert all(lam.get(t, 0) <= 1e-6 for t in range(2, 6))


def test_vms_are_prelaunched_for_a_predicted_ramp_when_there_is_lead_time():
    opts = options([{"model": "m", "instance_type": "c5.large", "accuracy": 0.7, "price": 0.085, "capacity": 50.0, "boot": 100.0}],
                   [{"model": "m", "memory_mb": 2048, "accuracy": 0.7, "cost": 4e-6, "latency_ms": 80.0}])
    win = windows([50, 200, 200, 200], window_s=300)
    plan = solve_plan(win, opts, Targets(slo_s=0.2), Limits(horizon_start_s=-600.0, concurrency_limit=1000.0), gap=1e-6)
    assert plan.assignments.query("platform == 'lambda'").empty
    launches = plan.assignments.set_index("window").launches
    assert launches[0] == 1 and launches[1] == 3  # paid boot time before the windows they serve


def test_decomposition_brackets_the_full_optimum(reference):
    from hetplan.planner.forecast.traces import load_trace, window_stats

    trace = load_trace(catalog.DEFAULT_TRACE)
    stats = window_stats(trace[trace.second < 1800], "1m", 0.95)
    win = Windows.from_frame(stats)  # 30 windows, 100 s boot: launches couple several windows
    targets = Targets(slo_s=0.2, mean_accuracy=0.7)
    opts = prune_dominated(build_options(*reference, targets))
    limits = Limits(mean_accuracy=0.7, concurrency_limit=1000.0, horizon_start_s=float(win.start_s[0]) - 600)
    full = solve_highs(build_model(win, opts, limits), SolveOptions(gap=0.002, time_limit_s=60))
    decomposed = solve_plan(win, opts, targets, limits, chunk_windows=10, gap=0.05, time_limit_s=20)
    assert decomposed.meta["solver"]["method"] == "decomposed"
    bound, cost = decomposed.meta["solver"]["bound_usd"], decomposed.summary["total_cost_usd"]
    assert bound <= full.objective + 1e-9  # a valid lower bound
    assert cost >= full.bound - 1e-9        # a feasible plan
    assert cost == pytest.approx(decomposed.meta["solver"]["objective_usd"], rel=1e-9)


def test_pruning_keeps_the_optimum(reference):
    from hetplan.planner.forecast.traces import load_trace, window_stats

    trace = load_trace(catalog.DEFAULT_TRACE)
    win = Windows.from_frame(window_stats(trace[trace.second < 3600], "5m", 0.95))
    targets = Targets(slo_s=0.2, mean_accuracy=0.65)
    everything = build_options(*reference, targets)
    pruned = prune_dominated(everything)
    assert len(pruned.vm) < len(everything.vm) and not pruned.pruned.empty
    limits = Limits(mean_accuracy=0.65, concurrency_limit=1000.0)
    results = [solve_highs(build_model(win, o, limits), SolveOptions(gap=1e-6, time_limit_s=60)) for o in (everything, pruned)]
    # Pruning removes no optimal plan: both optima agree within the proven gaps.
    assert results[1].objective <= results[0].objective * (1 + 1e-5)
    assert results[0].objective <= results[1].objective * (1 + 1e-5)


def test_quota_and_budget_limits():
    from hetplan.errors import HetplanError

    base = make_plan(PlanRequest(slo_s=0.2, hours=1.0, time_limit_s=30))
    used = set(base.assignments.dropna(subset=["instance_type"]).instance_type)
    assert "c5.large" in used
    capped = make_plan(PlanRequest(slo_s=0.2, hours=1.0, time_limit_s=30, quotas={"c5.large": 1}))
    per_window = capped.assignments[capped.assignments.instance_type == "c5.large"].groupby("window")["count"].sum()
    assert per_window.max() <= 1
    assert capped.meta["solver"]["objective_usd"] >= base.meta["solver"]["bound_usd"] - 1e-9
    cost = base.summary["total_cost_usd"]
    within = make_plan(PlanRequest(slo_s=0.2, hours=1.0, time_limit_s=30, budget_usd=cost * 1.02))
    assert within.summary["total_cost_usd"] <= cost * 1.02 + 1e-9
    with pytest.raises(HetplanError, match="no plan fits --budget"):
        make_plan(PlanRequest(slo_s=0.2, hours=1.0, time_limit_s=30, budget_usd=cost * 0.5))


def test_predicted_windows_see_only_the_past():
    from hetplan.planner.forecast.traces import load_trace, window_seconds, window_stats
    from hetplan.planner.optimize.workflow import predicted_windows

    trace = load_trace(catalog.DEFAULT_TRACE)
    stats = window_stats(trace[trace.second < 6 * 3600], "5m", 0.95)
    seconds = window_seconds(trace[trace.second < 6 * 3600], "5m")
    spiked, spiked_seconds = stats.copy(), seconds.copy()
    spiked.loc[spiked.index[-1], ["mean_rps", "peak_rps", "q_rps"]] *= 50  # the last window explodes
    spiked_seconds[-1] *= 50
    (plain, plain_s), (changed, changed_s) = (predicted_windows(f, s, "peak-aware") for f, s in
                                              ((stats, seconds), (spiked, spiked_seconds)))
    assert len(plain) == len(stats) - 18 and plain.window.iloc[0] == 18  # a quarter of 72 windows is history
    assert np.allclose(plain.q_rps.to_numpy(), changed.q_rps.to_numpy())  # no forecast saw the spike
    assert np.allclose(plain.headroom.to_numpy(), changed.headroom.to_numpy())  # nor the headroom
    assert np.allclose(plain_s, changed_s, equal_nan=True)  # nor the per-second shape
    assert (plain.headroom > 0).all() and np.allclose(plain.mean_rps, plain.central_rps * (1 + plain.headroom))


def _cores_in_worker(_):
    from hetplan.planner.optimize.solve import _cores

    return _cores()


def test_chunk_pool_is_not_started_inside_daemonic_workers(monkeypatch):
    import multiprocessing

    from hetplan.planner.optimize.solve import _cores

    with multiprocessing.get_context("spawn").Pool(1) as pool:  # pool workers are daemonic, as Dask's are
        assert pool.map(_cores_in_worker, [0]) == [1]
    monkeypatch.setenv("HETPLAN_SOLVE_PROCESSES", "1")
    assert _cores() == 1

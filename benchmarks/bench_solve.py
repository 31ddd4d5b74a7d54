"""Planner benchmark: windows, variables, solve time, cost, proven gap, per backend and per formulation step.

Run:  python benchmarks/bench_solve.py            (all cases; a few minutes)
      python benchmarks/bench_solve.py --quick    (the default case only)
      python benchmarks/bench_solve.py --catalog  (``hetplan solve --slo 200ms`` on the default profile and on every
                                                   shipped row, data/profiles/catalog.csv: options, variables, time)
Each row solves the same request; the LP column is the LP relaxation of that row's model, the bound the
best proven lower bound (the solver's, or the sum of chunk bounds for the decomposition).
"""

from __future__ import annotations

import argparse
import time

from hetplan.planner import catalog
from hetplan.planner.optimize.model import Limits, Windows, build_model
from hetplan.planner.optimize.options import Targets, build_options, prune_dominated
from hetplan.planner.optimize.solve import solve_plan
from hetplan.planner.optimize.solvers import BACKENDS, SolveOptions
from hetplan.planner.forecast.traces import load_trace, window_stats


def windows_for(trace: str, window: str, hours: float | None) -> Windows:
    frame = load_trace(catalog.DATA_DIR / "traces" / f"{trace}.csv.gz")
    if hours:
        frame = frame[frame.second < frame.second.iloc[0] + hours * 3600]
    return Windows.from_frame(window_stats(frame, window, 0.95, gaps="interpolate"))


def options_for(targets: Targets, prune: bool):
    opts = build_options(catalog.load_profile(), catalog.load_instances(), catalog.load_serverless(), catalog.load_models(), targets)
    return prune_dominated(opts) if prune else opts


def row(label, win, model, result_cost, bound, lp, seconds, status):
    gap = (result_cost - bound) / result_cost if (result_cost and bound is not None) else float("nan")
    cost = f"{result_cost:9.4f}" if result_cost is not None else "     none"
    print(f"{label:44s} {len(win):5d} {model.num_vars:7d} {model.num_rows:7d} {lp:8.4f} {cost} "
          f"{bound if bound is not None else float('nan'):9.4f} {gap:7.2%} {seconds:7.1f}s  {status}")


def direct(label, win, opts, limits, backend, time_limit, gap, tighten=True):
    model = build_model(win, opts, limits, tighten=tighten)
    lp = BACKENDS["highs"](model, SolveOptions(relax=True)).objective
    res = BACKENDS[backend](model, SolveOptions(time_limit_s=time_limit, gap=gap))
    row(label, win, model, res.objective, res.bound, lp, res.seconds, res.status.value)


def planned(label, win, opts, targets, limits, time_limit, gap, chunk=None):
    started = time.perf_counter()
    plan = solve_plan(win, opts, targets, limits, time_limit_s=time_limit, gap=gap, chunk_windows=chunk)
    s = plan.meta["solver"]
    model = build_model(win, opts, limits)
    row(label, win, model, s["objective_usd"], s["bound_usd"], s["lp_bound_usd"], time.perf_counter() - started,
        f"{s['status']} ({s['method']})")


def catalog_cases(time_limit: float) -> None:
    """The whole ``hetplan solve`` (options, sizing, MILP, runtime) per profile and request."""
    from hetplan.planner.optimize.workflow import PlanRequest, make_plan

    print(f"{'profile':14s} {'request':28s} {'options':>8s} {'VM in MILP':>10s} {'vars':>7s} {'rows':>7s} "
          f"{'cost':>8s} {'gap':>7s} {'solve':>7s} {'total':>7s}  VM options used")
    for name, path in (("aws-reference", catalog.DEFAULT_PROFILE), ("catalog", catalog.FULL_PROFILE)):
        for label, extra in (("--slo 200ms", {}), ("--slo 500ms --load-scale 50 --hours 2",
                                                    {"slo_s": 0.5, "load_scale": 50.0, "hours": 2.0})):
            request = PlanRequest(**{"slo_s": 0.2, "profile": path, "time_limit_s": time_limit, **extra})
            started = time.perf_counter()
            plan = make_plan(request)
            total = time.perf_counter() - started
            s = plan.meta["solver"]
            vm = plan.options[plan.options.platform == "vm"]
            used = sorted(set(plan.assignments[plan.assignments.platform == "vm"].option))
            print(f"{name:14s} {label:28s} {len(plan.options):8d} {len(vm):10d} {s['variables']:7d} {s['constraints']:7d} "
                  f"{plan.summary['total_cost_usd']:8.2f} {s['gap'] if s['gap'] is not None else float('nan'):7.2%} {s['seconds']:6.1f}s {total:6.1f}s  {', '.join(used)}")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--time-limit", type=float, default=60.0)
    parser.add_argument("--catalog", action="store_true")
    args = parser.parse_args()
    if args.catalog:
        return catalog_cases(args.time_limit)
    targets = Targets(slo_s=0.2, mean_accuracy=0.70)
    print(f"{'case':44s} {'win':>5s} {'vars':>7s} {'rows':>7s} {'LP':>8s} {'cost':>9s} {'bound':>9s} {'gap':>7s} {'time':>8s}  status")
    wits = windows_for("wits", "5m", None)
    lead = Limits(mean_accuracy=0.70, concurrency_limit=1000.0, horizon_start_s=float(wits.start_s[0]) - 600)
    pruned = options_for(targets, True)
    planned("default: WITS 13 h, 5-min windows (solve)", wits, pruned, targets, lead, args.time_limit, 0.01)
    if args.quick:
        return
    for backend in ("highs", "cbc", "scip"):
        direct(f"  WITS 5-min, {backend}, pruned+tight", wits, pruned, lead, backend, args.time_limit, 0.01)
    direct("  WITS 5-min, highs, not pruned", wits, options_for(targets, False), lead, "highs", args.time_limit, 0.01)
    direct("  WITS 5-min, highs, pruned, no count bounds", wits, pruned, lead, "highs", args.time_limit, 0.01, tighten=False)
    berkeley = windows_for("berkeley", "1m", 24)
    lead_b = Limits(mean_accuracy=0.70, concurrency_limit=1000.0, horizon_start_s=float(berkeley.start_s[0]) - 600)
    planned("Berkeley 24 h, 1-min windows (solve)", berkeley, pruned, targets, lead_b, args.time_limit, 0.02)
    direct("  Berkeley 24 h 1-min, highs, one MILP", berkeley, pruned, lead_b, "highs", args.time_limit, 0.02)
    day = windows_for("berkeley", "5m", 24)
    lead_d = Limits(mean_accuracy=0.70, concurrency_limit=1000.0, horizon_start_s=float(day.start_s[0]) - 600)
    planned("Berkeley 24 h, 5-min windows (solve)", day, pruned, targets, lead_d, args.time_limit, 0.01)


if __name__ == "__main__":
    main()

"""Replay speed: the full Berkeley trace (56 h at 1 s) through the fluid simulator (target: under 30 s).

Deployments replayed: ``vm-reactive`` (one option, many launches), ``mark-like`` (a VM family with Lambda
overflow) and a synthetic seven-option rolling deployment with routing shares on every VM and Lambda option
(what a hetplan plan looks like, without the MILP's time). Also times the request-level run on 10 minutes.

    python benchmarks/bench_replay.py [--trace data/traces/berkeley.csv.gz]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from hetplan.planner.replay.baselines import mark_like, vm_reactive

from hetplan.planner.replay.planned import deployment_of

from hetplan.planner.replay.scenario import make_scenario
from hetplan.planner.replay.simulate import replay


def mixed_deployment(sc):
    """Every usable option gets a share in every window; VM counts follow the true window load."""
    stats = sc.stats()
    vm, lam = sc.options.vm.reset_index(drop=True), sc.options.lam.reset_index(drop=True)
    rng = np.random.default_rng(0)
    weights = rng.dirichlet(np.ones(len(vm) + len(lam)), size=len(stats))
    weights[:, len(vm):] *= 0.05
    weights /= weights.sum(axis=1, keepdims=True)
    shares = pd.DataFrame(weights, columns=[*vm.option, *lam.option])
    counts = pd.DataFrame(np.ceil(weights[:, :len(vm)] * stats.q_rps.to_numpy()[:, None] / vm.capacity_rps.to_numpy()),
                          columns=list(vm.option))
    for frame in (shares, counts):
        frame.insert(0, "start_s", stats.start_s.to_numpy(float))
        frame["end_s"] = stats.end_s.to_numpy(float)
    return deployment_of(vm, lam, counts, shares, overflow=lam.option.iloc[0], name="mixed")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trace", default="data/traces/berkeley.csv.gz")
    args = parser.parse_args()
    sc = make_scenario(args.trace, 0.2, mean_accuracy=0.70)
    requests = sc.trace.requests.sum()
    span = int(sc.trace.second.iloc[-1] - sc.trace.second.iloc[0] + 1)
    print(f"trace {args.trace}: {span:,} s ({span / 3600:.1f} h), {requests:,.0f} requests")
    for name, build in (("vm-reactive", vm_reactive), ("mark-like", mark_like), ("mixed", mixed_deployment)):
        started = time.perf_counter()
        dep = build(sc)
        built = time.perf_counter() - started
        started = time.perf_counter()
        result = replay(sc.trace, dep, 0.2, sc.pricing, default_load_time_ms=sc.default_load_time_ms)
        took = time.perf_counter() - started
        r = result.report
        print(f"{name:12s} policy {built:6.2f} s | fluid replay {took:6.2f} s ({requests / took / 1e6:5.1f} M req/s) | "
              f"{len(dep.vm_options)} VM + {len(dep.lam_options)} Lambda options, {r.vm_launches} launches | "
              f"${r.cost_usd:,.2f}, {r.violation_pct:.3f}% late {'(target < 30 s: ok)' if took < 30 else '(SLOW)'}")
    short = sc.trace[sc.trace.second < sc.trace.second.iloc[0] + 600]
    dep = mark_like(sc)
    for method in ("fluid", "events"):
        started = time.perf_counter()
        r = replay(short, dep, 0.2, sc.pricing, default_load_time_ms=sc.default_load_time_ms, method=method).report
        took = time.perf_counter() - started
        print(f"first 10 min, mark-like, {method:6s}: {took:6.2f} s, {r.requests:,.0f} requests, {r.violation_pct:.3f}% late")


if __name__ == "__main__":
    main()

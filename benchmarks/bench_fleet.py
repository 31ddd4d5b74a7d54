"""Fleet benchmark: N services planned jointly under a binding shared Lambda limit, against planning each alone.

Run:  python benchmarks/bench_fleet.py --small     (the test fleet, 3 services × 12 windows, against the monolithic MILP)
      python benchmarks/bench_fleet.py --services 1,5 --windows 288              (a day of 5-minute windows)
      python benchmarks/bench_fleet.py --services 1,5,10,50 --windows 2016 --workers 2   (a week: the issue's sizes)
      python benchmarks/bench_fleet.py --services 10 --windows 2016 --rounds 2           (a week of ten, two rounds)

Fleets are built from the shipped traces by documented transformations, so anyone can rebuild them:
service i takes WITS (even i) or Berkeley (odd i, gaps interpolated), **tiled** end to end until it covers the
horizon, **shifted** by i × 37 minutes (rotated, so services peak at different times), and **scaled** by
0.4 + 0.15 · (i mod 5). The shared Lambda concurrency is set to half the largest per-window sum of the services'
own concurrency when each is planned alone, so it binds.

Printed per fleet: services, windows, variables, workers, seconds, the joint plan's MILP cost, its bound and gap,
and two ways to plan without a fleet: each service alone (cost, and whether together they break the limit), and
a static split (each service capped at its share of the limit by its requests).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from hetplan.planner import catalog
from hetplan.planner.fleet.coupling import capped
from hetplan.planner.fleet.spec import Fleet, Service, Shared
from hetplan.planner.fleet.workflow import build_problems, plan_fleet
from hetplan.planner.forecast.traces import load_trace
from hetplan.planner.optimize.chunked import solve_by_chunks
from hetplan.planner.optimize.solvers import SolveOptions, get_backend
from hetplan.planner.optimize.workflow import PlanRequest

WINDOW_S = 300.0
SHIFT_S = 37 * 60


def service_trace(i: int, seconds: int, folder: Path) -> Path:
    """The i-th service's trace: tiled, shifted and scaled from a shipped one (module docstring)."""
    name = "wits" if i % 2 == 0 else "berkeley"
    frame = load_trace(catalog.DATA_DIR / "traces" / f"{name}.csv.gz")
    full = np.arange(frame.second.min(), frame.second.max() + 1)
    rate = frame.set_index("second").requests.reindex(full).interpolate().bfill().ffill().to_numpy(float)
    tiled = np.tile(rate, int(np.ceil((seconds + SHIFT_S * i) / len(rate))) + 1)
    shifted = tiled[SHIFT_S * i: SHIFT_S * i + seconds] * (0.4 + 0.15 * (i % 5))
    path = folder / f"service{i}.csv"
    pd.DataFrame({"second": np.arange(1, seconds + 1), "requests": np.round(shifted).astype(int)}).to_csv(path, index=False)
    return path


def run(count: int, windows: int, workers: int, folder: Path, time_limit_s: float, gap: float, rounds: int) -> None:
    hours = windows * WINDOW_S / 3600
    services = tuple(Service(f"s{i}", 0.2) for i in range(count))
    requests = [PlanRequest(slo_s=0.2, trace=service_trace(i, int(hours * 3600), folder), hours=hours, gaps="interpolate",
                            time_limit_s=time_limit_s, gap=gap) for i in range(count)]
    loose = Fleet(services, Shared(lambda_concurrency=1000, hours=hours))
    problems, rows = build_problems(loose, requests)
    started = time.perf_counter()
    alone = [solve_by_chunks(p.model, "highs", SolveOptions(time_limit_s=time_limit_s, gap=gap)) for p in problems]
    alone_s = time.perf_counter() - started
    concurrency = sum(p.coupling[:windows] @ r.values for p, r in zip(problems, alone))
    limit = max(1, int(concurrency.max() / 2))
    fleet = Fleet(services, Shared(lambda_concurrency=limit, hours=hours))
    requests = [r.__class__(**{**r.__dict__, "lambda_concurrency": limit}) for r in requests]
    started = time.perf_counter()
    outcome = plan_fleet(fleet, requests, workers=workers, serial=workers == 0, gap=gap, iterations=rounds)
    seconds = time.perf_counter() - started
    problems, rows = build_problems(fleet, requests)
    weights = np.array([p.weight for p in problems])
    split = [solve_by_chunks(capped(p, rows.capacity * w / weights.sum()), "highs", SolveOptions(time_limit_s=time_limit_s, gap=gap))
             for p, w in zip(problems, weights)]
    split_cost = sum(r.objective for r in split) if all(r.values is not None for r in split) else float("nan")
    s = outcome.solution
    print(f"{count:8d} {windows:7d} {sum(p.model.num_vars for p in problems):9d} {workers:7d} {seconds:8.1f} "
          f"{s.cost:9.4f} {s.bound:9.4f} {s.gap:6.2%} {sum(r.objective for r in alone):9.4f} "
          f"{'breaks ' + str(limit) if concurrency.max() > limit else 'fits':>12s} {split_cost:9.4f} {alone_s:7.1f}")


def small() -> None:
    """The fleet of tests/test_fleet.py (3 services × 12 windows, Lambda concurrency 60 and 40 c5 vCPUs shared): the
    services' own optima, the monolithic MILP's optimum, and the decomposition's plan and bound."""
    from hetplan.planner.fleet.coupling import monolithic

    berkeley = catalog.DEFAULT_TRACE.parent / "berkeley.csv.gz"
    services = (Service("search", 0.2), Service("photos", 0.5, trace="berkeley", load_scale=0.5), Service("tags", 0.2, load_scale=0.6))
    fleet = Fleet(services, Shared(lambda_concurrency=60, vcpu_quota={"c5": 40}, hours=1.0))
    requests = [PlanRequest(slo_s=s.slo_s, trace=berkeley if s.trace else catalog.DEFAULT_TRACE, hours=1.0, load_scale=s.load_scale,
                            lambda_concurrency=60, gaps="interpolate", models=("inception_bn", "squeezenet"), time_limit_s=30)
                for s in services]
    problems, rows = build_problems(fleet, requests)
    exact = get_backend("highs")(monolithic(problems, rows), SolveOptions(time_limit_s=120, gap=1e-6))
    alone = sum(get_backend("highs")(p.model, SolveOptions(time_limit_s=60, gap=1e-6)).objective for p in problems)
    started = time.perf_counter()
    s = plan_fleet(fleet, requests, serial=True, gap=0.001, iterations=20).solution
    print(f"alone (limits broken) ${alone:.4f}; monolithic optimum ${exact.objective:.4f}; decomposed plan ${s.cost:.4f} "
          f"({s.cost / exact.objective - 1:+.2%}), bound ${s.bound:.4f} ({s.bound / exact.objective - 1:+.2%}), gap {s.gap:.2%}, "
          f"{s.iterations} rounds, {time.perf_counter() - started:.1f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--services", default="1,5", help="fleet sizes, comma-separated")
    parser.add_argument("--windows", type=int, default=288, help="5-minute windows per service (2016 = a week)")
    parser.add_argument("--workers", type=int, default=2, help="Dask workers (0: one after another, no Dask)")
    parser.add_argument("--time-limit", type=float, default=60.0, help="seconds per subproblem")
    parser.add_argument("--gap", type=float, default=0.02)
    parser.add_argument("--rounds", type=int, default=20, help="Lagrangian rounds at most (hetplan solve --fleet: 20)")
    parser.add_argument("--small", action="store_true", help="the test fleet against the monolithic MILP, then stop")
    args = parser.parse_args()
    if args.small:
        small()
        return
    print(f"{'services':>8s} {'windows':>7s} {'variables':>9s} {'workers':>7s} {'seconds':>8s} {'joint $':>9s} "
          f"{'bound $':>9s} {'gap':>6s} {'alone $':>9s} {'alone limit':>12s} {'split $':>9s} {'alone s':>7s}")
    with tempfile.TemporaryDirectory() as folder:
        for count in (int(c) for c in args.services.split(",")):
            run(count, args.windows, args.workers, Path(folder), args.time_limit, args.gap, args.rounds)


if __name__ == "__main__":
    main()

"""``hetplan solve --fleet``: every service's MILP built, the subproblems solved on Dask, one plan per service and
the fleet summary (cost per service, each shared limit's use per window, the binding ones, the bound and gap)."""

from __future__ import annotations

import contextlib
import functools
import os
import time
from dataclasses import dataclass

import numpy as np

from hetplan.planner import catalog
from hetplan.planner.fleet.coupling import ServiceProblem, SharedRows, aligned_windows, coupling_matrix, service_model, shared_rows
from hetplan.planner.fleet.decompose import ROUNDS, FleetSolution, lagrangian, lp_start
from hetplan.planner.fleet.spec import Fleet
from hetplan.planner.optimize.plan import Plan, build_plan
from hetplan.planner.optimize.solvers import SolveOptions, SolveResult
from hetplan.planner.optimize.workflow import PlanRequest, prepare_plan, price_runtime

BINDING = 0.999  # a shared row used to this fraction of its limit in some window binds


@dataclass
class FleetOutcome:
    plans: dict[str, Plan]
    summary: dict
    solution: FleetSolution


def build_problems(fleet: Fleet, requests: list[PlanRequest]) -> tuple[list[ServiceProblem], SharedRows]:
    prepared = [_prepared(service.name, r) for service, r in zip(fleet.services, requests)]
    models = [service_model(p) for p in prepared]
    instances = catalog.load_instances(requests[0].instances)
    vcpus, families = instances.vcpus.astype(float).to_dict(), instances.family.to_dict()
    unknown = sorted(set(fleet.shared.vcpu_quota) - set(families.values()))
    if unknown:
        from hetplan.errors import HetplanError, did_you_mean

        raise HetplanError(f"fleet file: vcpu_quota names the unknown family '{unknown[0]}'{did_you_mean(unknown[0], set(families.values()))}")
    problems = [ServiceProblem(s.name, p, m, None, 0.0) for s, p, m in zip(fleet.services, prepared, models)]
    windows = aligned_windows(problems)
    rows = shared_rows(windows, fleet.shared.lambda_concurrency, fleet.shared.vcpu_quota, fleet.shared.budget_usd,
                       sum(m.objective_offset for m in models))
    for service, problem in zip(fleet.services, problems):
        problem.coupling = coupling_matrix(problem.model, rows, vcpus, families)
        w = problem.model.windows
        problem.weight = service.weight if service.weight is not None else float(np.sum(w.mean_rps * w.duration_s)) or 1.0
    return problems, rows


def _prepared(name: str, request: PlanRequest):
    """The service's inputs read and checked; an error names the service (and keeps its exit code)."""
    from hetplan.errors import HetplanError

    try:
        return prepare_plan(request)
    except HetplanError as exc:
        raise type(exc)(f"service {name}: {exc}") from None


def solve_task(name: str, model, start, solver: str, time_limit_s: float, gap: float) -> SolveResult:
    """One subproblem (a Dask task): the service's priced or capped MILP, solved on one thread from ``start``; a long
    horizon by chunks of windows (``optimize.chunked``: its bound stays a proven one, so the fleet's stays valid)."""
    from hetplan.planner.optimize.chunked import solve_by_chunks

    return solve_by_chunks(model, solver, SolveOptions(time_limit_s=time_limit_s, gap=gap, threads=1, start=start))


@contextlib.contextmanager
def dask_solver(scheduler: str | None, workers: int | None, solver: str, time_limit_s: float, gap: float):
    """``solve_many(tasks)`` on a Dask cluster: a ``LocalCluster`` of single-threaded worker processes, or the one at
    ``scheduler``. A task whose worker dies is run again by Dask on another worker (its ``allowed-failures``)."""
    import logging

    from dask.distributed import Client, LocalCluster

    with contextlib.ExitStack() as stack:
        if scheduler:
            from hetplan.planner.whatif.sweep import connect_scheduler

            client = stack.enter_context(connect_scheduler(Client, scheduler))
        else:
            cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
            cluster = stack.enter_context(LocalCluster(n_workers=workers or cores, threads_per_worker=1, processes=True,
                                                       dashboard_address=None, silence_logs=logging.ERROR))
            client = stack.enter_context(Client(cluster))

        def solve_many(tasks):
            stamp = f"{os.getpid()}-{time.time_ns()}"
            futures = [client.submit(solve_task, name, model, start, solver, time_limit_s, gap,
                                     key=f"hetplan-fleet-{name}-{stamp}", pure=False) for name, model, start in tasks]
            return client.gather(futures)

        yield solve_many


def serial_solver(solver: str, time_limit_s: float, gap: float):
    return lambda tasks: [solve_task(name, model, start, solver, time_limit_s, gap) for name, model, start in tasks]


def plan_fleet(fleet: Fleet, requests: list[PlanRequest], *, scheduler: str | None = None, workers: int | None = None,
               serial: bool = False, iterations: int = ROUNDS, gap: float = 0.01, on_round=None) -> FleetOutcome:
    started = time.perf_counter()
    problems, rows = build_problems(fleet, requests)
    first = requests[0]
    sub_gap = min(first.gap, gap) / 4  # the subproblems' proven bounds (not their plans) make the fleet's bound
    prices, lp_bound, lp_usage = lp_start(problems, rows, first.time_limit_s)
    run = functools.partial(lagrangian, problems, rows, iterations=iterations, gap=gap, on_round=on_round,
                            start_prices=prices, lp_bound=lp_bound, lp_usage=lp_usage)
    if serial:
        solution = run(serial_solver(first.solver, first.time_limit_s, sub_gap))
    else:
        with dask_solver(scheduler, workers, first.solver, first.time_limit_s, sub_gap) as solve_many:
            solution = run(solve_many)
    seconds = time.perf_counter() - started
    plans = {p.name: _service_plan(p, column, first, seconds) for p, column in zip(problems, solution.columns)}
    return FleetOutcome(plans, fleet_summary(fleet, problems, rows, solution, plans, seconds), solution)


def _service_plan(problem: ServiceProblem, column, request: PlanRequest, seconds: float) -> Plan:
    model = problem.model
    meta = {**problem.prepared.meta, "solver": {
        "name": request.solver, "method": "fleet", "status": "feasible", "objective_usd": column.cost, "bound_usd": None,
        "gap": None, "lp_bound_usd": None, "seconds": seconds, "time_limit_s": request.time_limit_s, "gap_target": request.gap,
        "variables": model.num_vars, "constraints": model.num_rows, "integers": int(model.integer.sum())}}
    meta["limits"] = {**meta.get("limits", {}), "initial_vms": dict(problem.prepared.limits.initial_vms)}
    return price_runtime(problem.prepared, build_plan(model, column.values, meta, problem.prepared.targets.percentile))


def fleet_summary(fleet: Fleet, problems, rows: SharedRows, solution: FleetSolution, plans: dict[str, Plan], seconds: float) -> dict:
    """Cost per service, every shared row's use and limit per window, the binding rows, the bound and the gap."""
    limits = []
    for label, used, cap in zip(rows.labels, solution.usage, rows.capacity):
        limits.append({"row": label, "used": float(used), "limit": float(cap),
                       "binding": bool(cap > 0 and used >= BINDING * cap) or bool(cap <= 0 and used >= cap - 1e-9)})
    return {
        "kind": "hetplan.fleet", "fleet": fleet.path, "method": "lagrangian",
        "services": [{"name": p.name, "milp_cost_usd": c.cost, "total_cost_usd": plans[p.name].summary["total_cost_usd"],
                      "windows": len(p.model.windows), "plan": f"{p.name}.json"} for p, c in zip(problems, solution.columns)],
        "milp_cost_usd": solution.cost, "bound_usd": solution.bound, "gap": solution.gap, "iterations": solution.iterations,
        "total_cost_usd": float(sum(plan.summary["total_cost_usd"] for plan in plans.values())), "seconds": seconds,
        "shared": {"lambda_concurrency": fleet.shared.lambda_concurrency, "vcpu_quota": fleet.shared.vcpu_quota,
                   "budget_usd": fleet.shared.budget_usd},
        "limits": limits, "binding": [row["row"] for row in limits if row["binding"]],
        "prices": {label: float(price) for label, price in zip(rows.labels, solution.prices) if price > 0},
        "rounds": solution.history,
    }

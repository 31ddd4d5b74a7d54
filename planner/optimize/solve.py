"""The planner's entry point: options + windows → a solved, checked plan.

Small horizons are solved as one MILP, from a first plan: the MILP over the VM options the LP relaxation
uses. When short chunks of windows, each solved with its incoming VMs free, already bound the whole model
within the gap, that plan is returned (method ``restricted``); else the whole MILP is searched from it.
Long horizons are **decomposed**: the windows are cut into chunks;
each chunk is solved with its incoming VMs free (a relaxation, so the chunk bounds add up to a lower
bound on the whole horizon), and the chunk plans are joined, paying for the launches their joins need
(a feasible plan, so an upper bound). When time is left and the gap is still above target, the whole
model is solved starting from the joined plan and the best plan and the best bound are kept.
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np

from hetplan.errors import HetplanError, Infeasible, SolverStopped
from hetplan.planner.optimize.chunked import CHUNK_WINDOWS, chunk_spans
from hetplan.planner.optimize.model import Limits, MilpModel, Windows, build_model, initial_counts, vms_needed
from hetplan.planner.optimize.options import Options, Targets
from hetplan.planner.optimize.plan import Plan, build_plan
from hetplan.planner.optimize.solvers import DEFAULT_BACKEND, SolveOptions, SolveResult, Status, get_backend



def solve_plan(windows: Windows, options: Options, targets: Targets, limits: Limits, *, solver: str = DEFAULT_BACKEND,
               time_limit_s: float = 60.0, gap: float = 0.01, chunk_windows: int | None = None,
               meta: dict | None = None) -> Plan:
    """Solve the planning MILP and return the plan (raises HetplanError with an explanation when infeasible)."""
    explain_options(options, targets)
    get_backend(solver)  # an unknown solver name fails before any work
    started = time.perf_counter()
    model = build_model(windows, options, limits)
    lp = get_backend("highs")(model, SolveOptions(relax=True, time_limit_s=time_limit_s))  # HiGHS: the fast LP, always installed
    if lp.status == Status.INFEASIBLE:
        raise Infeasible(explain_infeasible(windows, options, targets, limits))
    chunk = chunk_windows or CHUNK_WINDOWS
    decompose = len(windows) > 2 * chunk and limits.budget_usd is None  # small horizons solve faster whole
    if decompose:
        result, method = _solve_decomposed(model, windows, options, limits, solver, time_limit_s, gap, chunk), "decomposed"
    else:
        result, method = _solve_whole(model, windows, options, limits, lp, solver, time_limit_s, gap, started)
    if result.values is None:
        if result.status == Status.INFEASIBLE:
            raise Infeasible(explain_infeasible(windows, options, targets, limits))
        other = "" if result.solver == "highs" else ", or use --solver highs"
        raise SolverStopped(f"the {result.solver} solver found no plan within --time-limit {time_limit_s:g}s: "
                            f"raise --time-limit{other}")
    solver_meta = {
        "name": result.solver, "method": method, "status": result.status.value, "objective_usd": result.objective,
        "bound_usd": result.bound, "gap": result.gap, "lp_bound_usd": lp.objective,
        "seconds": time.perf_counter() - started, "time_limit_s": time_limit_s, "gap_target": gap,
        "variables": model.num_vars, "constraints": model.num_rows, "integers": int(model.integer.sum()),
    }
    full_meta = {**(meta or {}), "solver": solver_meta}
    full_meta.setdefault("limits", {})
    full_meta["limits"] = {**full_meta["limits"], "initial_vms": dict(limits.initial_vms)}
    return build_plan(model, result.values, full_meta, targets.percentile)


BOUND_CHUNK_WINDOWS = 3  # windows per chunk of the chunk bound: small enough to solve at once, big enough to see launches


def _solve_whole(model: MilpModel, windows: Windows, options: Options, limits: Limits, lp: SolveResult, solver: str,
                 time_limit_s: float, gap: float, started: float) -> tuple[SolveResult, str]:
    """One MILP over the horizon, from a first plan (``_restricted_start``).

    With a first plan, a lower bound comes first from short chunks of windows (``_chunk_bound``); when it
    already proves the plan within the gap, the whole model is not searched (method ``restricted``). Otherwise
    the whole model is solved from the first plan with the time left, and the better bound is kept."""
    backend = get_backend(solver)
    spent = time.perf_counter() - started
    start = None if spent > time_limit_s / 3 else \
        _restricted_start(model, windows, options, limits, lp, solver, time_limit_s / 3 - spent, gap)
    bound = None
    if start is not None:
        start_cost = float(model.cost @ start)
        bound = _chunk_bound(windows, options, limits, solver, (time_limit_s - (time.perf_counter() - started)) / 2, gap)
        first = SolveResult(Status.FEASIBLE, solver, start, start_cost, bound, 0.0, "restricted")
        if first.gap is not None and first.gap <= gap:
            return dataclasses.replace(first, status=Status.OPTIMAL), "restricted"
    left = max(time_limit_s - (time.perf_counter() - started), 1e-3)  # the whole solve keeps --time-limit
    result = backend(model, SolveOptions(time_limit_s=left, gap=gap, start=start))
    if start is not None and (result.values is None or result.objective > start_cost + 1e-9):
        result = dataclasses.replace(result, values=start, objective=start_cost,
                                     status=Status.FEASIBLE if result.status != Status.OPTIMAL else result.status)
    bounds = [b for b in (bound, result.bound) if b is not None]
    if bounds:
        result = dataclasses.replace(result, bound=max(bounds))
        if result.values is not None and result.gap is not None and result.gap <= gap:
            result = dataclasses.replace(result, status=Status.OPTIMAL)
    return result, "full"


def _chunk_bound(windows: Windows, options: Options, limits: Limits, solver: str, time_limit_s: float,
                 gap: float) -> float | None:
    """A lower bound on the whole MILP: the windows in chunks of ``BOUND_CHUNK_WINDOWS``, each solved with the
    VMs serving at its start free (the relaxation of the decomposition: launches across the joins are not
    paid), their proven bounds summed. None when a chunk is not solved in time or a budget couples the chunks."""
    if limits.budget_usd is not None:
        return None
    deadline = time.perf_counter() + time_limit_s
    chunk_model = _chunk_models(windows, options, limits)
    total = 0.0
    for k, first in enumerate(range(0, len(windows), BOUND_CHUNK_WINDOWS)):
        left = deadline - time.perf_counter()
        if left <= 0:
            return None
        part = chunk_model(k, first, min(first + BOUND_CHUNK_WINDOWS, len(windows)))
        result = get_backend(solver)(part, SolveOptions(time_limit_s=left, gap=gap / 10))
        if result.bound is None:
            return None
        total += result.bound
    return total


def _chunk_models(windows: Windows, options: Options, limits: Limits):
    """``model(k, first, last)``: chunk k (windows first..last−1) as its own MILP, with the VMs serving at its
    start free after the first chunk (the relaxation that makes chunk bounds add up) and the whole horizon's
    per-option count bounds."""
    peak = tuple(vms_needed(windows, options).max(axis=0, initial=0.0))
    return lambda k, first, last: build_model(windows.slice(first, last), options,
                                              dataclasses.replace(limits, peak_vms=peak, free_start=k > 0))


def _restricted_start(model: MilpModel, windows: Windows, options: Options, limits: Limits, lp: SolveResult,
                      solver: str, time_limit_s: float, gap: float) -> np.ndarray | None:
    """A first plan for the full MILP: the MILP over the VM options its LP relaxation uses (plus those with
    initial VMs), as a full-model vector with every other option at zero, which is feasible for the full model.

    Why: many near-equal options (batch sizes, families) slow the solver's search for a first good plan; the
    LP's own choice is usually where the optimum lies. The full MILP then starts from this plan and proves
    (or improves) it: the reported bound is always the full model's. None when the restriction finds no plan.
    """
    if lp.values is None or len(options.vm) <= 2:
        return None
    used = (model.values(lp.values, "vm-rate").max(axis=0, initial=0.0) > 1e-7) | \
           (model.values(lp.values, "vm-count").max(axis=0, initial=0.0) > 1e-7) | \
           options.vm.option.isin(list(limits.initial_vms)).to_numpy()
    keep = np.flatnonzero(used)
    if len(keep) == len(options.vm):
        return None
    sub_options = dataclasses.replace(options, vm=options.vm.iloc[keep].reset_index(drop=True))
    sub = build_model(windows.select_vm(keep), sub_options, limits)
    result = get_backend(solver)(sub, SolveOptions(time_limit_s=time_limit_s, gap=gap))
    if result.values is None:
        return None
    start = np.zeros(model.num_vars)
    for name, block in model.blocks.items():
        values = np.zeros(block.shape)
        part = sub.values(result.values, name)
        if name == "lambda-rate":
            values[:] = part
        else:
            values[:, keep] = part
        start[block.offset:block.offset + block.size] = values.ravel()
    return start


def _solve_decomposed(model: MilpModel, windows: Windows, options: Options, limits: Limits, solver: str,
                      time_limit_s: float, gap: float, chunk: int) -> SolveResult:
    started = time.perf_counter()
    spans = chunk_spans(len(windows), chunk)  # no tiny last chunk
    chunk_model = _chunk_models(windows, options, limits)
    parts = [chunk_model(k, a, b) for k, (a, b) in enumerate(spans)]
    workers = min(len(parts), _cores())
    per_chunk = SolveOptions(time_limit_s=0.6 * time_limit_s * workers / len(parts), gap=gap / 2,
                             threads=1 if workers > 1 else None)
    results = _map_chunks(solver, parts, per_chunk, workers)
    failed = next((r for r in results if r.values is None), None)
    if failed is not None:
        return failed
    lower = sum(r.bound for r in results) if all(r.bound is not None for r in results) else None
    joined = _join(model, list(zip(parts, (r.values for r in results))), initial_counts(options, limits))
    best = SolveResult(Status.FEASIBLE, results[0].solver, joined, float(model.cost @ joined), lower,
                       time.perf_counter() - started, "decomposed")
    remaining = time_limit_s - (time.perf_counter() - started)
    if best.gap is not None and best.gap > gap and remaining > 1.0:
        polished = get_backend(solver)(model, SolveOptions(time_limit_s=remaining, gap=gap, start=joined))
        bounds = [b for b in (lower, polished.bound) if b is not None]
        if polished.values is not None and polished.objective < best.objective:
            best = polished
        best = dataclasses.replace(best, bound=max(bounds) if bounds else None)
    if best.gap is not None and best.gap <= gap:
        best = dataclasses.replace(best, status=Status.OPTIMAL)
    return dataclasses.replace(best, seconds=time.perf_counter() - started)


def _cores() -> int:
    """Processes for chunk solves: the cores we may use, at most ``HETPLAN_SOLVE_PROCESSES``; one inside a
    daemonic process (a Dask or multiprocessing worker, which may not start children and already runs in parallel)."""
    import multiprocessing
    import os

    if multiprocessing.current_process().daemon:
        return 1
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    cap = os.environ.get("HETPLAN_SOLVE_PROCESSES", "")
    return max(1, min(cores, int(cap))) if cap.isdigit() else cores


def _solve_one(solver: str, model: MilpModel, opts: SolveOptions) -> SolveResult:
    return get_backend(solver)(model, opts)


def _map_chunks(solver: str, parts: list[MilpModel], opts: SolveOptions, workers: int) -> list[SolveResult]:
    """Chunks are independent relaxations: solve them in parallel processes when there are cores for it."""
    if workers <= 1:
        return [_solve_one(solver, part, opts) for part in parts]
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        return list(pool.map(_solve_one, [solver] * len(parts), parts, [opts] * len(parts)))


def _join(model: MilpModel, parts: list[tuple[MilpModel, np.ndarray]], initial: np.ndarray) -> np.ndarray:
    """The whole horizon's values from the chunk plans; launches recomputed across the joins."""
    z = np.zeros(model.num_vars)
    for name in ("vm-count", "vm-rate", "lambda-rate", "vm-overflow", "vm-overflow-peak"):
        if name not in model.blocks:
            continue
        block = model.blocks[name]
        stacked = np.vstack([part.values(values, name) for part, values in parts])
        if name == "vm-count":
            stacked = np.round(stacked)
            counts = stacked
        z[block.offset:block.offset + block.size] = stacked.ravel()
    previous = np.vstack([initial[None, :], counts[:-1]])
    block = model.blocks["vm-launch"]
    z[block.offset:block.offset + block.size] = np.maximum(0.0, counts - previous).ravel()
    return z


def explain_options(options: Options, targets: Targets) -> None:
    """Raise a HetplanError saying what to relax when no option, or no accurate-enough option, is usable."""
    usable = list(options.vm.itertuples()) + list(options.lam.itertuples())
    rejected = options.rejected
    slo_ms = targets.slo_s * 1000
    if not usable:
        accurate = rejected[rejected.reason == "latency above the SLO"].dropna(subset=["latency_ms"])
        target = targets.min_accuracy
        text = f"no model meets {slo_ms:g} ms" + (f" at top-1 ≥ {target:.1%}" if target else "")
        if accurate.empty:
            runnable = rejected.dropna(subset=["latency_ms"])
            if target and not runnable.empty:
                best = runnable.loc[runnable.accuracy.idxmax()]
                raise Infeasible(f"no profiled model reaches top-1 ≥ {target:.1%}: the most accurate is {best.model} "
                                   f"at {best.accuracy:.1%}; relax --min-accuracy to ≤ {best.accuracy:.1%}")
            raise Infeasible(text + ": no profiled configuration can run; check the profile and --models")
        fastest = accurate.loc[accurate.latency_ms.idxmin()]
        hint = f": the fastest such model is {fastest.model} at {fastest.latency_ms:g} ms on {fastest.config}; relax --slo to ≥ {fastest.latency_ms:g}ms"
        if target:
            within = rejected[(rejected.reason == "accuracy below --min-accuracy")]
            within = within[within.latency_ms <= slo_ms]
            if not within.empty:
                hint += f" or --min-accuracy to ≤ {within.accuracy.max():.1%}"
        raise Infeasible(text + hint)
    if targets.mean_accuracy is not None:
        best = max(o.accuracy for o in usable)
        if best < targets.mean_accuracy - 1e-12:
            better = rejected[(rejected.reason == "latency above the SLO") & (rejected.accuracy >= targets.mean_accuracy)]
            hint = f"relax --mean-accuracy to ≤ {best:.1%}"
            if not better.empty:
                fastest = better.loc[better.latency_ms.idxmin()]
                hint += f" or --slo to ≥ {fastest.latency_ms:g}ms ({fastest.model} on {fastest.config})"
            most = max(usable, key=lambda o: o.accuracy)
            raise Infeasible(f"no model within {slo_ms:g} ms reaches a mean top-1 of {targets.mean_accuracy:.1%}: "
                               f"the most accurate is {most.model} at {most.accuracy:.1%}; {hint}")


def explain_infeasible(windows: Windows, options: Options, targets: Targets, limits: Limits) -> str:
    """Why a model with usable options still has no plan, with what to relax."""
    if limits.budget_usd is not None:
        try:
            cheapest = solve_plan(windows, options, targets, dataclasses.replace(limits, budget_usd=None), time_limit_s=30)
            return (f"no plan fits --budget ${limits.budget_usd:g}: the cheapest plan found costs "
                    f"${cheapest.summary['total_cost_usd']:.2f}; raise --budget to at least that")
        except HetplanError as exc:
            return str(exc)
    if options.lam.empty:
        return ("no plan can serve the first windows: a VM launched now is not serving before its boot delay and no "
                "Lambda configuration meets the SLO; relax --slo, or give VMs already running with --initial-vms")
    if limits.concurrency_limit is not None:
        return (f"the load exceeds what VMs and the Lambda concurrency limit ({limits.concurrency_limit:g}) can serve "
                "in some window (VMs cannot be ready in the first windows): raise --lambda-concurrency, relax --slo, "
                "or give VMs already running with --initial-vms")
    quotas = ", ".join(f"{k}={v}" for k, v in limits.quotas.items())
    return f"no plan meets the load within the limits ({quotas or 'none'}): raise the quotas or relax --slo"

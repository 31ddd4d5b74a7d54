"""Any per-window MILP solved by chunks of windows: a proven lower bound, a feasible plan, then a polish.

Every variable of a planning MILP belongs to one window (the first index of its block). Cut the windows into
chunks and drop every row that reaches across a cut (the launch and no-launch-before-ready rows at a join, and
any horizon-wide row such as a budget): what is left falls apart into one small MILP per chunk.

**Why the bound is valid.** Dropping rows relaxes the model, and the relaxation is separable by chunk, so its
optimum is the sum of the chunks' optima, each at least its solver-proven bound. Hence

    Σ_k bound_k + offset  ≤  optimum of the relaxation  ≤  optimum of the whole MILP,

whatever the costs are (a fleet's priced subproblem) and whatever per-window rows were added (a service's caps).

**The plan.** The chunk plans side by side are completed on the whole model: integer variables fixed at their
chunk values, the continuous ones (launches paid across the joins, rates) re-solved as one LP over the whole
horizon, so every dropped row is enforced again. If that LP has no solution (a dropped row that the fixed counts
break), or the plan is not within the gap of the bound, the whole MILP is searched from it with the time left.
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np

from hetplan.planner.optimize.matrix import MilpModel
from hetplan.planner.optimize.solvers import SolveOptions, SolveResult, Status, get_backend

CHUNK_WINDOWS = 120  # windows per chunk, here and in the single-service decomposition (``solve.py``)
CHUNK_SHARE = 0.6    # of the time limit for the chunk solves; the rest completes and polishes the plan


def column_windows(model: MilpModel) -> np.ndarray:
    """Each variable's window (its block's first index); −1 for a variable in no block."""
    window = np.full(model.num_vars, -1)
    for block in model.blocks.values():
        window[block.offset:block.offset + block.size] = np.repeat(np.arange(block.shape[0]), block.shape[1])
    return window


def chunk_spans(windows: int, chunk: int) -> list[tuple[int, int]]:
    """(first, last) windows of each chunk; the remainder joins the last chunk when it is under half a chunk."""
    cuts = list(range(0, windows, chunk))
    if len(cuts) > 1 and windows - cuts[-1] < chunk // 2:
        cuts.pop()
    return list(zip(cuts, cuts[1:] + [windows]))


def chunk_models(model: MilpModel, spans: list[tuple[int, int]]) -> list[tuple[np.ndarray, MilpModel]]:
    """Per chunk: its columns in the whole model, and its MILP (the rows whose every variable is in the chunk)."""
    starts = np.array([first for first, _ in spans])
    chunk_of = np.searchsorted(starts, column_windows(model), side="right") - 1
    matrix = model.matrix.tocsr()
    row_of_entry = np.repeat(np.arange(matrix.shape[0]), np.diff(matrix.indptr))
    low = np.full(matrix.shape[0], len(spans))
    high = np.full(matrix.shape[0], -1)
    np.minimum.at(low, row_of_entry, chunk_of[matrix.indices])
    np.maximum.at(high, row_of_entry, chunk_of[matrix.indices])
    row_chunk = np.where(low == high, low, -1)  # −1: reaches across a cut, or empty
    parts = []
    for k in range(len(spans)):
        cols, rows = np.flatnonzero(chunk_of == k), np.flatnonzero(row_chunk == k)
        parts.append((cols, MilpModel(
            windows=None, options=None, blocks={}, cost=model.cost[cols], lb=model.lb[cols], ub=model.ub[cols],
            integer=model.integer[cols], matrix=matrix[rows][:, cols], row_lb=model.row_lb[rows],
            row_ub=model.row_ub[rows], row_blocks=[])))
    return parts


def solve_by_chunks(model: MilpModel, solver: str, opts: SolveOptions, chunk: int | None = None) -> SolveResult:
    """The whole MILP's plan and a proven bound by chunks (module docstring); the plain solve when the model is too
    short to cut or has variables outside its window blocks."""
    backend = get_backend(solver)
    chunk = chunk or CHUNK_WINDOWS
    windows = column_windows(model)
    T = int(windows.max(initial=-1)) + 1
    if T <= 2 * chunk or (windows < 0).any() or opts.relax:
        return backend(model, opts)
    started = time.perf_counter()
    parts = chunk_models(model, chunk_spans(T, chunk))
    deadline = started + CHUNK_SHARE * opts.time_limit_s
    stitched, bound = np.zeros(model.num_vars), model.objective_offset
    for k, (cols, part) in enumerate(parts):
        # an even share of the chunks' time that is left (a chunk solved early leaves its rest to the others)
        share = max((deadline - time.perf_counter()) / (len(parts) - k), 1.0)
        start = None if opts.start is None else _feasible_or_none(part, opts.start[cols])
        result = backend(part, dataclasses.replace(opts, start=start, gap=opts.gap / 2, time_limit_s=share))
        if result.status == Status.INFEASIBLE:  # a relaxation without a plan: neither has the whole model
            return dataclasses.replace(result, seconds=time.perf_counter() - started)
        if result.values is None or result.bound is None:
            return backend(model, dataclasses.replace(opts, time_limit_s=_left(opts, started)))
        stitched[cols] = result.values
        bound += result.bound
    plan = _complete(model, stitched, solver, _left(opts, started))
    best = SolveResult(Status.FEASIBLE, solver, plan, None if plan is None else float(model.cost @ plan + model.objective_offset),
                       bound, 0.0, "chunks")
    if best.values is None or (best.gap > opts.gap and _left(opts, started) > 1.0):
        polished = backend(model, dataclasses.replace(opts, time_limit_s=_left(opts, started), start=best.values))
        if polished.values is not None and (best.values is None or polished.objective < best.objective):
            best = dataclasses.replace(best, values=polished.values, objective=polished.objective)
        if polished.bound is not None:
            best = dataclasses.replace(best, bound=max(bound, polished.bound))
    if best.values is not None and best.gap <= opts.gap:
        best = dataclasses.replace(best, status=Status.OPTIMAL)
    elif best.values is None:
        best = dataclasses.replace(best, status=Status.NO_SOLUTION)
    return dataclasses.replace(best, seconds=time.perf_counter() - started)


def _complete(model: MilpModel, stitched: np.ndarray, solver: str, time_limit_s: float) -> np.ndarray | None:
    """The chunk plans' integer values fixed, every continuous variable re-solved on the whole model (one LP)."""
    fixed = np.round(stitched)  # the chunk solves kept every variable within its bounds
    lb, ub = model.lb.copy(), model.ub.copy()
    lb[model.integer], ub[model.integer] = fixed[model.integer], fixed[model.integer]
    lp = dataclasses.replace(model, lb=lb, ub=ub, integer=np.zeros(model.num_vars, bool))
    result = get_backend("highs")(lp, SolveOptions(relax=True, time_limit_s=max(time_limit_s, 1.0)))
    if result.values is None or result.status != Status.OPTIMAL:
        return None
    values = result.values.copy()
    values[model.integer] = fixed[model.integer]
    return values


def _feasible_or_none(part: MilpModel, start: np.ndarray) -> np.ndarray | None:
    """A chunk's piece of a whole-model start, when it satisfies the chunk's rows (it does when the start was
    feasible for the whole model, since the chunk keeps a subset of the rows)."""
    activity = part.matrix @ start
    ok = np.all(activity >= part.row_lb - 1e-7) and np.all(activity <= part.row_ub + 1e-7)
    return start if ok else None


def _left(opts: SolveOptions, started: float) -> float:
    return max(opts.time_limit_s - (time.perf_counter() - started), 1e-3)

"""Stage 3: thin solver backends behind a registry, each mapping its outcome into ``Status``/``SolveResult``.

Solver packages are imported lazily inside each backend, so importing the planner stays fast.
Time limits are enforced by wall clock where the backend allows it (HiGHS: solve in the background,
cancel at the deadline), since HiGHS can overrun its own limit inside the root node on large models.
"""

from __future__ import annotations

import enum
import math
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from hetplan.errors import HetplanError, did_you_mean
from hetplan.planner.optimize.model import MilpModel


class Status(str, enum.Enum):
    OPTIMAL = "optimal"          # proven within the requested gap
    FEASIBLE = "feasible"        # a plan, stopped by the time limit before the gap was proven
    INFEASIBLE = "infeasible"
    NO_SOLUTION = "no_solution"  # stopped before any plan was found
    ERROR = "error"


@dataclass(frozen=True)
class SolveResult:
    status: Status
    solver: str
    values: np.ndarray | None
    objective: float | None
    bound: float | None
    seconds: float
    message: str = ""
    row_duals: np.ndarray | None = None  # an LP's (``relax``) optimal row duals, HiGHS's sign: ≤ 0 on a binding upper row

    @property
    def gap(self) -> float | None:
        """Relative gap (objective − bound) / objective; None where the solver reports no bound."""
        if self.objective is None or self.bound is None:
            return None
        if abs(self.objective) < 1e-12:
            return 0.0
        return max(0.0, (self.objective - self.bound) / abs(self.objective))


@dataclass(frozen=True)
class SolveOptions:
    time_limit_s: float = 60.0
    gap: float = 0.01
    relax: bool = False                     # solve the LP relaxation
    start: np.ndarray | None = None         # a feasible plan to start from
    threads: int | None = None
    verbose: bool = False


def solve_highs(model: MilpModel, opts: SolveOptions) -> SolveResult:
    import highspy

    started = time.perf_counter()
    h = _new_highs(highspy, opts.verbose)
    h.setOptionValue("time_limit", float(opts.time_limit_s))
    h.setOptionValue("mip_rel_gap", float(opts.gap))
    if opts.threads:
        h.setOptionValue("threads", int(opts.threads))
    lp = highspy.HighsLp()
    lp.num_col_, lp.num_row_ = model.num_vars, model.num_rows
    lp.col_cost_, lp.col_lower_, lp.col_upper_ = model.cost, model.lb, model.ub
    lp.row_lower_, lp.row_upper_ = model.row_lb, model.row_ub
    lp.offset_ = model.objective_offset
    csc = model.matrix.tocsc()
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_, lp.a_matrix_.index_, lp.a_matrix_.value_ = csc.indptr, csc.indices, csc.data
    if not opts.relax:
        lp.integrality_ = [highspy.HighsVarType.kInteger if i else highspy.HighsVarType.kContinuous for i in model.integer]
    h.passModel(lp)
    if opts.start is not None and not opts.relax:
        h.setSolution(_highs_solution(highspy, opts.start))
    h.startSolve()
    deadline = started + opts.time_limit_s + 2.0
    cancelled = False
    while h.is_solver_running():
        if time.perf_counter() > deadline:
            h.cancelSolve()
            cancelled = True
            break
        time.sleep(0.01)
    h.wait()
    seconds = time.perf_counter() - started
    status = h.getModelStatus()
    if status in (highspy.HighsModelStatus.kInterrupt, highspy.HighsModelStatus.kHighsInterrupt) and not cancelled:
        # highspy turns Ctrl-C into an interrupted solve; the user asked to stop, not for the incumbent
        raise KeyboardInterrupt
    info = h.getInfo()
    ms = highspy.HighsModelStatus
    has_solution = info.primal_solution_status == 2  # kSolutionStatusFeasible
    solution = h.getSolution()
    values = np.asarray(solution.col_value) if has_solution else None
    objective = info.objective_function_value if has_solution else None
    if opts.relax or not model.integer.any():  # an LP: its optimum is its own bound
        bound = objective if status == ms.kOptimal else None
    else:
        bound = info.mip_dual_bound if math.isfinite(info.mip_dual_bound) else None
    if status == ms.kOptimal:
        result_status = Status.OPTIMAL
    elif status == ms.kInfeasible:
        result_status = Status.INFEASIBLE
    elif has_solution:
        result_status = Status.FEASIBLE
    elif status in (ms.kTimeLimit, ms.kInterrupt, ms.kNotset):
        result_status = Status.NO_SOLUTION
    else:
        result_status = Status.ERROR
    duals = np.asarray(solution.row_dual) if opts.relax and status == ms.kOptimal and solution.dual_valid else None
    return SolveResult(result_status, "highs", values, objective, bound, seconds, h.modelStatusToString(status), duals)


def _new_highs(highspy, verbose: bool):
    """A Highs object; its C++ banner (printed once per process on fd 1) is kept out of our output."""
    import os
    import sys

    if verbose:
        return highspy.Highs()
    sys.stdout.flush()
    saved, devnull = os.dup(1), os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    try:
        h = highspy.Highs()
        h.setOptionValue("output_flag", False)
    finally:
        os.dup2(saved, 1)
        os.close(saved)
        os.close(devnull)
    return h


def _highs_solution(highspy, start: np.ndarray):
    solution = highspy.HighsSolution()
    solution.col_value = list(map(float, start))
    solution.value_valid = True
    return solution


def solve_cbc(model: MilpModel, opts: SolveOptions) -> SolveResult:
    """CBC through PuLP (always available: PuLP bundles CBC). PuLP reports no bound, so gaps show only at optimality."""
    import pulp

    started = time.perf_counter()
    prob = pulp.LpProblem("hetplan", pulp.LpMinimize)
    cat = [pulp.LpInteger if (i and not opts.relax) else pulp.LpContinuous for i in model.integer]
    zs = [prob.add_variable(f"z{j}", lowBound=_finite(model.lb[j]), upBound=_finite(model.ub[j]), cat=cat[j])
          for j in range(model.num_vars)]
    prob += pulp.LpAffineExpression(zip(zs, model.cost)) + model.objective_offset
    csr = model.matrix
    for r in range(model.num_rows):
        lo, hi = csr.indptr[r], csr.indptr[r + 1]
        expr = pulp.LpAffineExpression(zip((zs[c] for c in csr.indices[lo:hi]), csr.data[lo:hi]))
        if model.row_lb[r] == model.row_ub[r]:
            prob += expr == model.row_lb[r]
        else:
            if math.isfinite(model.row_lb[r]):
                prob += expr >= model.row_lb[r]
            if math.isfinite(model.row_ub[r]):
                prob += expr <= model.row_ub[r]
    with warnings.catch_warnings():  # PuLP 3.3 deprecates its bundled CBC for 4.0 (pinned < 4); it is the one here
        warnings.simplefilter("ignore", DeprecationWarning)
        solver = pulp.PULP_CBC_CMD(msg=opts.verbose, timeLimit=opts.time_limit_s, gapRel=opts.gap)
    prob.solve(solver)
    seconds = time.perf_counter() - started
    status = pulp.LpStatus[prob.status]
    values = np.array([v.varValue if v.varValue is not None else 0.0 for v in zs])
    has_solution = prob.sol_status in (pulp.LpSolutionOptimal, pulp.LpSolutionIntegerFeasible)
    if prob.status == pulp.LpStatusInfeasible:
        return SolveResult(Status.INFEASIBLE, "cbc", None, None, None, seconds, status)
    if not has_solution:
        return SolveResult(Status.NO_SOLUTION, "cbc", None, None, None, seconds, status)
    objective = float(pulp.value(prob.objective))
    optimal = prob.sol_status == pulp.LpSolutionOptimal
    # CBC stops at gapRel: its bound is at least objective·(1 − gap) when it reports optimal.
    bound = objective if opts.relax else (objective * (1 - opts.gap) if optimal else None)
    return SolveResult(Status.OPTIMAL if optimal else Status.FEASIBLE, "cbc", values, objective, bound, seconds, status)


def _finite(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def solve_ortools(model: MilpModel, opts: SolveOptions, backend: str = "SCIP") -> SolveResult:
    """OR-Tools' linear solver wrapper (SCIP by default; GLOP for the relaxation)."""
    from ortools.linear_solver import pywraplp

    started = time.perf_counter()
    solver = pywraplp.Solver.CreateSolver("GLOP" if opts.relax else backend)
    if solver is None:
        raise HetplanError(f"OR-Tools has no '{backend}' backend in this build: choose --solver highs or cbc")
    inf = solver.infinity()
    clip = (lambda v: v if math.isfinite(v) else (inf if v > 0 else -inf))
    zs = [solver.IntVar(clip(model.lb[j]), clip(model.ub[j]), f"z{j}") if (model.integer[j] and not opts.relax)
          else solver.NumVar(clip(model.lb[j]), clip(model.ub[j]), f"z{j}") for j in range(model.num_vars)]
    csr = model.matrix
    for r in range(model.num_rows):
        row = solver.Constraint(clip(model.row_lb[r]), clip(model.row_ub[r]))
        for c, v in zip(csr.indices[csr.indptr[r]:csr.indptr[r + 1]], csr.data[csr.indptr[r]:csr.indptr[r + 1]]):
            row.SetCoefficient(zs[c], float(v))
    objective = solver.Objective()
    for z, c in zip(zs, model.cost):
        if c:
            objective.SetCoefficient(z, float(c))
    objective.SetOffset(model.objective_offset)
    objective.SetMinimization()
    solver.SetTimeLimit(int(opts.time_limit_s * 1000))
    params = pywraplp.MPSolverParameters()
    params.SetDoubleParam(pywraplp.MPSolverParameters.RELATIVE_MIP_GAP, opts.gap)
    if opts.start is not None and not opts.relax:
        solver.SetHint(zs, [float(v) for v in opts.start])
    code = solver.Solve(params)
    seconds = time.perf_counter() - started
    name = "ortools-" + ("glop" if opts.relax else backend.lower())
    if code == pywraplp.Solver.INFEASIBLE:
        return SolveResult(Status.INFEASIBLE, name, None, None, None, seconds, "infeasible")
    if code not in (pywraplp.Solver.OPTIMAL, pywraplp.Solver.FEASIBLE):
        return SolveResult(Status.NO_SOLUTION, name, None, None, None, seconds, f"status {code}")
    values = np.array([z.solution_value() for z in zs])
    value = objective.Value()
    bound = value if opts.relax else objective.BestBound()
    status = Status.OPTIMAL if code == pywraplp.Solver.OPTIMAL else Status.FEASIBLE
    return SolveResult(status, name, values, value, bound, seconds, "optimal" if code == pywraplp.Solver.OPTIMAL else "feasible")


BACKENDS: dict[str, Callable[[MilpModel, SolveOptions], SolveResult]] = {
    "highs": solve_highs,
    "cbc": solve_cbc,
    "scip": solve_ortools,
}
DEFAULT_BACKEND = "highs"


def get_backend(name: str) -> Callable[[MilpModel, SolveOptions], SolveResult]:
    try:
        return BACKENDS[name]
    except KeyError:
        raise HetplanError(f"unknown solver '{name}'{did_you_mean(name, BACKENDS)}") from None

"""Lagrangian relaxation of the shared limits, a restricted master for a feasible fleet plan, and the gap.

Why the bound is valid. For prices λ ≥ 0 on the shared rows Σ_s G_s z_s ≤ b, every fleet-feasible z has
λᵀ(Σ_s G_s z_s − b) ≤ 0, so its cost Σ_s c_sᵀz_s ≥ Σ_s c_sᵀz_s + λᵀ(Σ_s G_s z_s − b) ≥ Σ_s min_{z_s∈X_s}(c_s + G_sᵀλ)ᵀz_s − λᵀb
= L(λ). The minimum over X_s is replaced by the solver's proven lower bound of service s's priced MILP (never
above it), so the sum is still ≤ the fleet optimum: ``bound`` = max_k L(λ_k) is a lower bound on every fleet plan.

The prices start at the optimal duals of the shared rows in the fleet's LP relaxation (``lp_start``; zero if the
LP is not solved in time). At those prices the relaxed subproblems add up to the LP's optimum, and an integer
subproblem's minimum is at least its relaxation's, so L(λ_LP) ≥ the LP bound from the first round: a start the
subgradient steps cannot match in their round budget (the 3-service test fleet: bound 0.5% below the optimum
after one round, where 20 rounds from zero prices stopped 12.6% below).

The prices then move by subgradient steps (Polyak's rule towards the best fleet plan found): g = Σ_s G_s z_s(λ) − b,
λ ← max(0, λ + θ (U − L(λ)) g / ‖g‖²), θ halved when the bound stalls for three rounds. Every subproblem's plan is
kept as a column; the restricted master picks one column per service (a small 0-1 MILP) with the least cost
that respects every shared row: a feasible fleet plan, its cost the upper bound U. The start adds, per service, a
plan solved within the LP's own split of each limit (its use of the row in the LP's solution, plus its weight's
part of what the LP leaves unused): the caps add up to the limits, so those plans fit together, and the LP puts
each service's share where its peaks are. When their integer plans do not fit the LP's split, the next round adds
plans within fair shares (the weight's part of every limit).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from hetplan.errors import Infeasible
from hetplan.planner.fleet.coupling import ServiceProblem, SharedRows, capped, priced
from hetplan.planner.optimize.matrix import MilpModel
from hetplan.planner.optimize.solvers import SolveResult, Status

ROUNDS = 20  # subgradient rounds at most (each solves every service once)
IMPROVE_EVERY = 4  # rounds between passes of coordinate descent on the best fleet plan (``improve``)
# (task name, model, a feasible start or None) → results in the same order
SolveMany = Callable[[list[tuple[str, MilpModel, np.ndarray | None]]], list[SolveResult]]


@dataclass(frozen=True)
class Column:
    service: int
    values: np.ndarray
    cost: float  # c_sᵀz_s + offset_s: the plan's own MILP cost
    usage: np.ndarray  # G_s z_s


@dataclass
class FleetSolution:
    columns: list[Column]  # the chosen plan of each service, in service order
    cost: float
    bound: float
    iterations: int
    prices: np.ndarray
    usage: np.ndarray  # Σ_s G_s z_s of the chosen plans
    history: list[dict] = field(default_factory=list)

    @property
    def gap(self) -> float:
        return max(0.0, (self.cost - self.bound) / abs(self.cost)) if self.cost else 0.0


def lp_start(problems: list[ServiceProblem], rows: SharedRows, time_limit_s: float = 60.0):
    """From the fleet's LP relaxation: the shared rows' prices λ ≥ 0 at its optimum (HiGHS's row dual of a binding
    upper row is ≤ 0 in a minimization: λ = −dual), its value (a bound on the fleet MILP), and each service's use of
    every shared row in its solution (where the LP would spend each limit, window by window: a better first split
    than fair shares when services peak apart). Zero prices and no value or use if the LP is not solved in time."""
    from hetplan.planner.fleet.coupling import monolithic
    from hetplan.planner.optimize.solvers import SolveOptions, solve_highs

    result = solve_highs(monolithic(problems, rows), SolveOptions(time_limit_s=time_limit_s, relax=True))
    if result.row_duals is None or result.status != Status.OPTIMAL:
        return np.zeros(len(rows.capacity)), None, None
    offsets = np.cumsum([0] + [p.model.num_vars for p in problems])
    usage = [p.coupling @ result.values[a:b] for p, a, b in zip(problems, offsets, offsets[1:])]
    return np.maximum(0.0, -result.row_duals[-len(rows.capacity):]), result.objective, usage


def lagrangian(problems: list[ServiceProblem], rows: SharedRows, solve_many: SolveMany, *, iterations: int = ROUNDS,
               gap: float = 0.01, on_round: Callable[[dict], None] | None = None,
               start_prices: np.ndarray | None = None, lp_bound: float | None = None,
               lp_usage: list[np.ndarray] | None = None) -> FleetSolution:
    """The fleet plan by Lagrangian relaxation (module docstring): within ``gap`` of the bound, or after ``iterations``.
    ``start_prices``: the first round's prices (``lp_start``), zero without them; ``lp_bound``: the fleet LP's value,
    a bound from the start; ``lp_usage``: each service's use of the shared rows in the LP, its first cap."""
    K = len(rows.capacity)
    prices = np.zeros(K) if start_prices is None else np.asarray(start_prices, float).copy()
    pools: list[dict[bytes, Column]] = [dict() for _ in problems]
    weights = np.array([p.weight for p in problems], float)
    shares = weights / weights.sum()
    fair = [(f"{p.name}-fair-share", capped(p, rows.capacity * share), None) for p, share in zip(problems, shares)]
    starts = fair
    if lp_usage is not None:  # the LP's own split, its unused part shared out by weight (the caps add up to the limits)
        slack = np.maximum(rows.capacity - np.sum(lp_usage, axis=0), 0.0)
        starts = [(f"{p.name}-lp-share", capped(p, used + slack * share), None)
                  for p, used, share in zip(problems, lp_usage, shares)]
    last: list = [None] * len(problems)  # each service's previous plan: feasible for its own rows, a warm start
    best_bound, best, theta, stalled, history = -np.inf if lp_bound is None else lp_bound, None, 1.0, 0, []
    for k in range(iterations):
        tasks = [(f"{p.name}-round-{k}", priced(p, prices), last[s]) for s, p in enumerate(problems)]
        results = solve_many(tasks + starts)
        for s, result in enumerate(results[:len(problems)]):
            if result.status == Status.INFEASIBLE:
                raise Infeasible(f"service {problems[s].name} has no plan even alone: relax its SLO or accuracy, "
                                 "or raise the limits it is given")
        for j, result in enumerate(results):
            s = j % len(problems)
            if result.values is not None:
                _keep(pools[s], problems[s], s, result.values)
                if j < len(problems):
                    last[s] = result.values
        bounds = [r.bound for r in results[:len(problems)]]  # proven bounds only (an objective within a gap is not one)
        value = sum(bounds) - prices @ rows.capacity if all(b is not None for b in bounds) else -np.inf
        improved = value > best_bound + 1e-9 * max(1.0, abs(best_bound) if np.isfinite(best_bound) else 1.0)
        best_bound = max(best_bound, value)
        best = master(pools, rows) or best
        # no fleet plan from the LP's split (the services' integer plans did not fit it): the fair shares next round
        starts = fair if best is None and starts and starts is not fair else []
        if best is not None and k % IMPROVE_EVERY == 0:  # from the first round: the steps aim at a good plan's cost
            best = improve(problems, rows, solve_many, best, pools)
        used = sum(pools[s][_key(result.values)].usage for s, result in enumerate(results[:len(problems)])
                   if result.values is not None)
        g = used - rows.capacity
        record = {"round": k, "dual_value": value, "bound": best_bound, "cost": best.cost if best else None,
                  "columns": sum(len(p) for p in pools)}
        history.append(record)
        if on_round is not None:
            on_round(record)
        if best is not None and best.cost - best_bound <= gap * abs(best.cost):
            break
        stalled = 0 if improved else stalled + 1
        if stalled >= 3:
            theta, stalled = theta / 2, 0
        target = best.cost if best is not None else best_bound + max(abs(best_bound) * 0.05, 1e-3)
        norm = float(g @ g)
        if norm <= 1e-18:
            break  # the subproblems' plans use every shared row exactly: no direction to move
        prices = np.maximum(0.0, prices + theta * (target - value if np.isfinite(value) else target) / norm * g)
    if best is None:
        raise Infeasible("no combination of the services' plans fits the shared limits: raise the account's Lambda "
                         "concurrency, the vCPU quotas or the budget in the fleet file")
    best = improve(problems, rows, solve_many, best, pools)
    best.bound, best.iterations, best.prices, best.history = best_bound, len(history), prices, history
    return best


def improve(problems: list[ServiceProblem], rows: SharedRows, solve_many: SolveMany, best: FleetSolution,
            pools: list[dict]) -> FleetSolution:
    """One pass of block coordinate descent with every service at once: each re-planned within its chosen plan's use
    of every shared row plus its weight's part of what the chosen plans leave unused. The parts add up to each
    limit, so the new plans fit together, and each chosen plan fits its own part, so no service's cost rises. The
    restricted master then picks the best combination of all the plans kept (it may hand one service's slack to
    another, which the even split cannot)."""
    weights = np.array([p.weight for p in problems], float)
    slack = np.maximum(rows.capacity - best.usage, 0.0)
    tasks = [(f"{problem.name}-improve", capped(problem, column.usage + slack * weight / weights.sum()), column.values)
             for problem, column, weight in zip(problems, best.columns, weights)]
    columns = list(best.columns)
    for s, result in enumerate(solve_many(tasks)):
        if result.values is None:
            continue
        _keep(pools[s], problems[s], s, result.values)
        candidate = pools[s][_key(result.values)]
        if candidate.cost < columns[s].cost - 1e-12:
            columns[s] = candidate
    joint = FleetSolution(columns, float(sum(c.cost for c in columns)), -np.inf, 0, best.prices,
                          np.sum([c.usage for c in columns], axis=0))
    picked = master(pools, rows)
    return picked if picked is not None and picked.cost < joint.cost else joint


def _key(values: np.ndarray) -> bytes:
    return np.round(values, 6).tobytes()


def _keep(pool: dict, problem: ServiceProblem, s: int, values: np.ndarray) -> None:
    key = _key(values)
    if key not in pool:
        model = problem.model
        pool[key] = Column(s, values, float(model.cost @ values + model.objective_offset), problem.coupling @ values)


def master(pools: list[dict[bytes, Column]], rows: SharedRows) -> FleetSolution | None:
    """One column per service, least total cost, every shared row respected (a 0-1 MILP on HiGHS); None if none fits."""
    from scipy.optimize import Bounds, LinearConstraint, milp

    columns = [c for pool in pools for c in pool.values()]
    if any(not pool for pool in pools):
        return None
    cost = np.array([c.cost for c in columns])
    pick = np.zeros((len(pools), len(columns)))
    for j, c in enumerate(columns):
        pick[c.service, j] = 1.0
    usage = np.array([c.usage for c in columns]).T
    result = milp(cost, integrality=np.ones(len(columns)), bounds=Bounds(0, 1),
                  constraints=[LinearConstraint(pick, 1, 1), LinearConstraint(usage, -np.inf, rows.capacity + 1e-7)])
    if result.status != 0 or result.x is None:
        return None
    chosen = sorted((columns[j] for j in np.flatnonzero(result.x > 0.5)), key=lambda c: c.service)
    return FleetSolution(chosen, float(sum(c.cost for c in chosen)), -np.inf, 0, np.zeros(len(rows.capacity)),
                         np.sum([c.usage for c in chosen], axis=0))

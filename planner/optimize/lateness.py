"""How many requests a VM pool serves late, second by second: the rule that sizes windows and scores replays.

A pool of VMs of one option serves requests FCFS on ``c`` slots at ``μ`` requests/s in all (``μ = n ·
throughput``), each request taking the profiled service time ``D`` plus its wait. The SLO counts requests,
so lateness is counted per request, from the per-second arrival counts ``a_s`` the trace (or the forecast)
gives, with two effects that add up:

1. **Backlog between seconds** (fluid, Lindley's recursion): ``Q_s = max(0, Q_{s−1} + a_s − μ)``. Inside a
   second the arrivals are spread evenly; the arrival at fraction x of second s finds
   ``q = max(0, Q_{s−1} + (a_s − μ)·x)`` requests ahead and waits ``q / μ``. It is late when
   ``D + q/μ > SLO``; the late fraction of the second is where that line crosses, exactly. A burst
   second over ``μ`` makes requests late for as long as its backlog takes to drain, which is what a
   per-second quantile cannot see.
2. **Queueing inside a second** (exact M/D/c, ``queueing.late_fraction``): an arrival that finds no
   fluid backlog is late with the stationary probability ``P(D + W > SLO)`` at that second's
   utilization ``ρ_s = a_s / μ`` (saturated above ``queueing.MAX_EXACT_UTILIZATION``).

``late_requests`` evaluates this for many windows at once; the probabilities of effect 2 come from a
table over ρ per (slots, SLO / D), computed once with the exact formula and interpolated in log space.
"""

from __future__ import annotations

import functools

import numpy as np

from hetplan.planner.optimize.queueing import MAX_EXACT_UTILIZATION, late_fraction

_GRID = 1.0 - np.geomspace(1.0, 1.0 - MAX_EXACT_UTILIZATION, 40)  # utilizations, dense near saturation


@functools.lru_cache(maxsize=512)
def _late_table(servers: int, budget_in_services: float) -> np.ndarray:
    """log10 of P(late) at the utilizations ``_GRID`` for ``servers`` slots and a wait budget in services."""
    values = np.full(_GRID.size, 1e-300)
    for k in range(_GRID.size - 1, -1, -1):  # from saturation down, until requests are no longer late
        values[k] = late_fraction(1.0, servers, float(_GRID[k]), 1.0 + budget_in_services)
        if values[k] < 1e-15:
            break
    return np.log10(np.clip(values, 1e-300, 1.0))


def stationary_late(utilization: np.ndarray, servers: int, service_s: float, slo_s: float) -> np.ndarray:
    """P(D + W > SLO) of an M/D/c pool at each utilization (interpolated exact values; 1 when saturated)."""
    rho = np.asarray(utilization, float)
    if service_s > slo_s:
        return np.ones_like(rho)
    table = _late_table(int(servers), round((slo_s - service_s) / service_s, 4))
    out = 10.0 ** np.interp(np.clip(rho, 0.0, _GRID[-1]), _GRID, table)
    return np.where(rho >= MAX_EXACT_UTILIZATION, 1.0, out)


def late_requests(arrivals: np.ndarray, throughput: np.ndarray, servers: int, service_s: float,
                  slo_s: float) -> np.ndarray:
    """Late requests per window: ``arrivals`` is (windows × seconds), ``throughput`` μ per window (req/s).

    Each window starts with no backlog (the plan sizes windows one by one). ``servers`` is the slot count
    the within-second queueing assumes (the planner uses one VM's slots: a conservative reading).
    """
    a = np.atleast_2d(np.asarray(arrivals, float))
    mu = np.maximum(np.asarray(throughput, float).reshape(-1, 1) * np.ones((a.shape[0], 1)), 1e-12)
    walk = np.cumsum(a - mu, axis=1)
    end = walk - np.minimum(np.minimum.accumulate(walk, axis=1), 0.0)
    start = np.concatenate([np.zeros((a.shape[0], 1)), end[:, :-1]], axis=1)
    late_fluid, free = fluid_fractions(start, a - mu, mu * max(slo_s - service_s, 0.0))
    inside = stationary_late(a / mu, servers, service_s, slo_s)
    return (a * (late_fluid + free * inside)).sum(axis=1)


def fluid_fractions(start: np.ndarray, drift: np.ndarray, limit: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Over a second whose backlog goes linearly from ``start`` at the rate ``drift`` (floored at 0), the
    fraction of its (evenly spread) arrivals that find more than ``limit`` requests ahead, and the
    fraction that find none. Exact for the linear fluid, so no sampling."""
    q, d = np.asarray(start, float), np.asarray(drift, float)
    limit = np.broadcast_to(limit, q.shape)
    with np.errstate(divide="ignore", invalid="ignore"):
        cross_limit = np.where(d != 0, (limit - q) / d, np.inf)   # x where q + d·x reaches the limit
        cross_zero = np.where(d < 0, q / -d, np.inf)               # x where a falling backlog empties
    over = np.where(d > 0, 1.0 - np.clip(cross_limit, 0.0, 1.0),
                    np.where(d < 0, np.clip(cross_limit, 0.0, 1.0), 0.0))
    over = np.where(q > limit + 1e-9, np.where(d >= 0, 1.0, over), np.where(d <= 0, 0.0, over))
    free = np.where(q <= 1e-9, np.where(d <= 0, 1.0, 0.0), np.where(d < 0, 1.0 - np.clip(cross_zero, 0.0, 1.0), 0.0))
    return over, free

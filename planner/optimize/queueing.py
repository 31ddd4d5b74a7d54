"""Latency under load: the exact M/D/c waiting time, and how busy a VM may run inside the SLO.

A VM running a model is ``c`` parallel slots with a deterministic service time ``D`` (the profiled
latency at the SLO's percentile, a conservative reading of its spread). Requests arrive as a Poisson
stream at rate λ, so the offered load is a = λD and the utilization ρ = a / c.

**Exact waiting time (Crommelin 1932, in Franx's form, Oper. Res. Letters 29, 2001).** With FCFS and
equal service times, every request in service at time t has left by t + D and every waiting one is still
there, so the number in the system obeys N(t + D) = max(N(t) − c, 0) + A(t, t + D] for *every* t. Two
consequences, both exact:

- the stationary law π of N is that of the chain N' = max(N − c, 0) + Poisson(a), solved here as a
  banded linear system truncated where the geometric tail is below 1e-13 (the decay per request is the
  root z > 1 of z^c = e^{a(z−1)});
- a request arriving at t waits at most kD + u (0 ≤ u < D) iff the requests ahead of it at t + u − D …
  t number at most (k + 1)c − 1, so with PASTA

      P(W ≤ kD + u) = Σ_j q_j · P(Poisson(λ(D − u)) ≤ (k + 1)c − 1 − j),   q_j = P(max(N − c, 0) = j).

Latency is D + W. ``max_utilization`` returns the largest utilization whose latency percentile fits the
SLO. ``late_fraction`` gives P(D + W > SLO) directly: the planner's sizing and the fluid replay use it
inside each second.

**Kingman's heavy-traffic approximation** (``kingman_latency_quantile``) is kept only as a documented
comparison: P(W > t) ≈ C(c, a) · exp(−2(cμ − λ)t), the M/M/c tail with its decay doubled. It is close at
high utilization and pessimistic at low utilization with few slots (tests/test_queueing.py shows both).
"""

from __future__ import annotations

import functools
import math

import numpy as np

MAX_EXACT_UTILIZATION = 0.995  # above this the exact tail needs tens of thousands of states: treat as saturated


def erlang_c(servers: int, offered_load: float) -> float:
    """Probability that an arrival waits in an M/M/c queue (Erlang C), for offered load a = λ/μ < c."""
    if offered_load <= 0:
        return 0.0
    if offered_load >= servers:
        return 1.0
    inverse_b = 1.0  # Erlang B by its stable recursion, as 1/B
    for k in range(1, servers + 1):
        inverse_b = 1.0 + inverse_b * k / offered_load
    erlang_b = 1.0 / inverse_b
    rho = offered_load / servers
    return erlang_b / (1.0 - rho + rho * erlang_b)


def kingman_latency_quantile(service_s: float, servers: int, utilization: float, quantile: float) -> float:
    """Seconds: Kingman's approximation of the latency ``quantile`` (comparison only, see the module docstring)."""
    if utilization >= 1.0:
        return math.inf
    mu = 1.0 / service_s
    arrival = utilization * servers * mu
    wait_probability = erlang_c(servers, arrival / mu)
    tail = 1.0 - quantile
    if wait_probability <= tail:
        return service_s
    return service_s + math.log(wait_probability / tail) / (2.0 * (servers * mu - arrival))


def _decay(servers: int, offered: float) -> float:
    """ln z of the root z > 1 of z^c = e^{a(z−1)}: the tail of N decays as z^{−n}."""
    low, high = 1.0, 2.0
    while servers * math.log(high) > offered * (high - 1.0):
        high *= 2.0
    for _ in range(80):
        mid = (low + high) / 2
        if servers * math.log(mid) > offered * (mid - 1.0):
            low = mid
        else:
            high = mid
    return math.log(max(low, 1.0 + 1e-12))


@functools.lru_cache(maxsize=4096)
def _excess(servers: int, utilization: float) -> np.ndarray:
    """q_j = P(max(N − c, 0) = j) of the stationary M/D/c chain (see the module docstring).

    The balance equations π_j = Σ_i π_i · pois(j − max(i − c, 0)) are banded (c above the diagonal, the
    Poisson width below). With π_0 fixed to 1 and its own equation dropped, the rest is a banded linear
    system solved by LAPACK's gbsv in O(states · width²); then π is normalised.
    """
    from scipy.linalg import solve_banded
    from scipy.stats import poisson

    a = utilization * servers
    size = int(servers + a + 10 * math.sqrt(a + 1) + 32 / _decay(servers, a) + 50)
    width = int(a + 12 * math.sqrt(a + 1) + 20)
    pmf = poisson.pmf(np.arange(width + 1), a)
    state = np.arange(size)
    base = np.maximum(state - servers, 0)
    equation = base[:, None] + np.arange(width + 1)[None, :]           # j for each (i, k)
    unknown = np.broadcast_to(state[:, None], equation.shape)           # i
    value = np.broadcast_to(pmf[None, :], equation.shape)
    inside = equation < size
    j, i, v = equation[inside], unknown[inside], value[inside].copy()
    upper, lower = servers, width
    band = np.zeros((upper + lower + 1, size))
    np.add.at(band, (upper + j - i, i), v)
    band[upper, :] -= 1.0
    # unknowns and equations 1..size−1; the π_0 = 1 column moves to the right-hand side
    rhs = np.zeros(size)
    first = (i == 0)
    np.add.at(rhs, j[first], -v[first])
    rhs[0] += 1.0  # (π_0's own diagonal −1, unused: equation 0 is dropped)
    pi = np.empty(size)
    pi[0] = 1.0
    pi[1:] = solve_banded((lower, upper), band[:, 1:], rhs[1:])
    pi = np.clip(pi, 0.0, None)
    pi /= pi.sum()
    q = pi[servers:].copy()
    q[0] = pi[:servers + 1].sum()
    return q


def wait_cdf(servers: int, utilization: float, wait_in_services: float) -> float:
    """P(W ≤ x·D) of an M/D/c queue at ``utilization`` (exact up to 1e-12; see the module docstring)."""
    from scipy.special import pdtr  # the Poisson CDF as a ufunc: scipy.stats' poisson.cdf is 25x slower per call

    if utilization <= 0:
        return 1.0
    if utilization >= MAX_EXACT_UTILIZATION:
        return 0.0 if wait_in_services < 1e3 else 1.0
    if wait_in_services < 0:
        return 0.0
    k = math.floor(wait_in_services)
    u = wait_in_services - k
    q = _excess(int(servers), round(float(utilization), 6))
    limit = (k + 1) * servers - 1
    j = np.arange(min(len(q), limit + 1))
    return float(np.clip((q[j] * pdtr(limit - j, utilization * servers * (1.0 - u))).sum(), 0.0, 1.0))


def late_fraction(service_s: float, servers: int, utilization: float, slo_s: float) -> float:
    """P(D + W > SLO): the share of requests later than the SLO at a steady ``utilization``."""
    if service_s > slo_s:
        return 1.0
    return 1.0 - wait_cdf(servers, utilization, (slo_s - service_s) / service_s)


def latency_quantile(service_s: float, servers: int, utilization: float, quantile: float) -> float:
    """Seconds: the exact ``quantile`` of request latency D + W at ``utilization`` (inf at ρ ≥ 1)."""
    if utilization >= MAX_EXACT_UTILIZATION:
        return math.inf
    if wait_cdf(servers, utilization, 0.0) >= quantile:
        return service_s
    low, high = 0.0, 1.0
    while wait_cdf(servers, utilization, high) < quantile:
        low, high = high, high * 2
    for _ in range(50):  # the CDF is continuous in x (Poisson rates vary continuously): bisect
        mid = (low + high) / 2
        if wait_cdf(servers, utilization, mid) >= quantile:
            high = mid
        else:
            low = mid
    return service_s * (1.0 + high)


def max_utilization(service_s: float, servers: int, slo_s: float, quantile: float, cap: float = 0.95) -> float:
    """Largest utilization in (0, cap] whose exact latency quantile fits ``slo_s``; 0 when even an idle VM misses it."""
    if service_s > slo_s:
        return 0.0
    tail = 1.0 - quantile
    if late_fraction(service_s, servers, cap, slo_s) <= tail:
        return cap
    low, high = 0.0, cap  # lateness grows with utilization: bisect
    for _ in range(30):
        mid = (low + high) / 2
        if late_fraction(service_s, servers, mid, slo_s) <= tail:
            low = mid
        else:
            high = mid
    return low

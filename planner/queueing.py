"""Latency under load: how busy a VM may run before queueing pushes a request's latency past the SLO.

A VM running a model is ``c`` parallel servers (inference slots) with a near-deterministic service
time ``S`` (the profiled latency). Requests arrive as a Poisson stream. For the waiting time we use
the heavy-traffic (Kingman) approximation for an M/D/c queue:

    P(wait > t) ≈ C(c, a) · exp(-2 (c·μ − λ) t)        (a = λ/μ, μ = 1/S, C = Erlang C)

the exponential tail of an M/M/c queue with its rate doubled, since deterministic service halves the
variability term (c_a² + c_s² = 1 instead of 2). The p-quantile of latency is then

    latency_p ≈ S_p + max(0, ln(C / (1 − p)) / (2 (c·μ − λ))).

``max_utilization`` returns the largest utilization ρ = λ / (c·μ) whose latency quantile fits the SLO.
"""

from __future__ import annotations

import math


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


def latency_quantile(service_s: float, servers: int, utilization: float, quantile: float) -> float:
    """Seconds: the ``quantile`` of request latency at ``utilization`` (see the module docstring)."""
    if utilization >= 1.0:
        return math.inf
    mu = 1.0 / service_s
    arrival = utilization * servers * mu
    wait_probability = erlang_c(servers, arrival / mu)
    tail = 1.0 - quantile
    if wait_probability <= tail:
        return service_s
    return service_s + math.log(wait_probability / tail) / (2.0 * (servers * mu - arrival))


def max_utilization(service_s: float, servers: int, slo_s: float, quantile: float, cap: float = 0.95) -> float:
    """Largest utilization in (0, cap] whose latency quantile fits ``slo_s``; 0 when even an idle VM misses it."""
    if service_s > slo_s:
        return 0.0
    if latency_quantile(service_s, servers, cap, quantile) <= slo_s:
        return cap
    low, high = 0.0, cap  # latency grows with utilization: bisect
    for _ in range(40):
        mid = (low + high) / 2
        if latency_quantile(service_s, servers, mid, quantile) <= slo_s:
            low = mid
        else:
            high = mid
    return low

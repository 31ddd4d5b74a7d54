"""The exact M/D/c capacity model against closed forms and a discrete-event simulation of 10^6+ requests."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest

from hetplan.planner.optimize.queueing import (kingman_latency_quantile, late_fraction, latency_quantile, max_utilization,
                                      wait_cdf)


def erlang_md1_cdf(x: Fraction, rho: Fraction) -> float:
    """Erlang's closed form for M/D/1 (D = 1), in exact rational arithmetic with a high-precision exp."""
    from decimal import Decimal, getcontext

    getcontext().prec = 60
    total = Fraction(0)
    for k in range(math.floor(x) + 1):
        t = rho * (k - x)
        term = (Decimal(t.numerator) / Decimal(t.denominator)) ** k / Decimal(math.factorial(k))
        total += Fraction(term * (-(Decimal(t.numerator) / Decimal(t.denominator))).exp())
    return float((1 - rho) * total)


@pytest.mark.parametrize("rho", ["1/2", "9/10", "19/20"])
@pytest.mark.parametrize("x", ["1/2", "3", "37/4", "20"])
def test_md1_waiting_time_matches_erlangs_closed_form(rho, x):
    exact = erlang_md1_cdf(Fraction(x), Fraction(rho))
    assert wait_cdf(1, float(Fraction(rho)), float(Fraction(x))) == pytest.approx(exact, abs=1e-10)


@pytest.mark.parametrize("c,rho", [(1, 0.5), (1, 0.95), (4, 0.9), (16, 0.97)])
def test_mean_wait_from_the_distribution_matches_the_mean_queue(c, rho):
    """∫ P(W > x) dx is the mean wait. By Little's law it is also E[queue] / λ from the stationary chain (an
    independent use of it); for c = 1 both are Pollaczek–Khinchine's ρ / (2(1 − ρ)) (D = 1)."""
    from hetplan.planner.optimize.queueing import _excess

    xs = np.linspace(0, 60 / (1 - rho) / c + 10, 6001)
    mean = np.trapz([1 - wait_cdf(c, rho, x) for x in xs], xs)
    q = _excess(c, rho)
    assert mean == pytest.approx((np.arange(q.size) * q).sum() / (rho * c), rel=1e-3)
    if c == 1:
        assert mean == pytest.approx(rho / (2 * (1 - rho)), rel=1e-4)


def des_latency_quantile(c: int, rho: float, n: int, seed: int, q: float = 0.99) -> float:
    """FCFS M/D/c with D = 1, request by request: s_i = max(a_i, s_{i−c} + 1), solved per residue class."""
    rng = np.random.default_rng(seed)
    n -= n % c
    arrivals = np.cumsum(rng.standard_exponential(n) / (rho * c)).reshape(-1, c)  # row k: requests kc .. kc+c−1
    k = np.arange(arrivals.shape[0])[:, None]
    waits = (k + np.maximum.accumulate(arrivals - k, axis=0) - arrivals).ravel()[n // 20:]  # drop the empty start
    return 1.0 + float(np.partition(waits, int(q * waits.size))[int(q * waits.size)])


@pytest.mark.parametrize("c", range(1, 17))
def test_exact_p99_latency_within_5_percent_of_an_event_simulation(c):
    """Every c in 1..16 at utilizations 0.5..0.97; the simulation runs enough requests (at least 10^6, more
    near saturation where the queue forgets slowly) for its own noise to stay well inside 5%."""
    for k, rho in enumerate((0.5, 0.7, 0.85, 0.93, 0.97)):
        n = int(max(1e6, 2.5e4 / (1 - rho) ** 2))
        simulated = des_latency_quantile(c, rho, n, seed=97 * c + k)
        exact = latency_quantile(1.0, c, rho, 0.99)
        assert exact == pytest.approx(simulated, rel=0.05), (c, rho, exact, simulated)


def test_kingman_is_kept_only_as_a_comparison_and_differs_where_expected():
    """Kingman's tail is close at high load and pessimistic for one slot at moderate load."""
    assert kingman_latency_quantile(1.0, 8, 0.95, 0.99) == pytest.approx(latency_quantile(1.0, 8, 0.95, 0.99), rel=0.03)
    assert kingman_latency_quantile(1.0, 1, 0.5, 0.99) > 1.1 * latency_quantile(1.0, 1, 0.5, 0.99)


def test_late_fraction_and_max_utilization_agree_with_the_quantile():
    service, slo = 0.035, 0.2
    cap = max_utilization(service, 2, slo, 0.99, cap=0.99)
    assert 0.5 < cap < 0.99
    assert late_fraction(service, 2, cap, slo) <= 0.01 + 1e-9
    assert late_fraction(service, 2, min(cap + 0.01, 0.99), slo) > 0.01
    assert latency_quantile(service, 2, cap, 0.99) == pytest.approx(slo, rel=1e-3)
    assert max_utilization(0.3, 4, 0.2, 0.99) == 0.0  # slower than the SLO even when idle
    assert late_fraction(service, 4, 0.0, slo) == 0.0

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


# --- edges and helpers the mutation run found unchecked (tests/README.md) ---------------------------------------


@pytest.mark.parametrize("c, a, want", [(1, 0.5, 0.5), (2, 1.0, 1 / 3), (3, 2.0, 4 / 9), (4, 0.0, 0.0), (2, 2.0, 1.0),
                                        (2, 3.5, 1.0)])
def test_erlang_c_known_values_and_edges(c, a, want):
    """M/M/1: P(wait) = ρ; C(2, 1) = 1/3; C(3, 2) = 4/9 (Erlang B(3, 2) = 4/19, then C = B / (1 − ρ(1 − B)));
    no load never waits, a load at or above the servers always does."""
    from hetplan.planner.optimize.queueing import erlang_c

    assert erlang_c(c, a) == pytest.approx(want, abs=1e-12)


def test_kingman_by_hand():
    """One slot, D = 1, ρ = 0.5, p99: P(wait) = 0.5, so 1 + ln(0.5 / 0.01) / (2 (1 − 0.5)) = 1 + ln 50. Below the
    tail (8 slots at ρ = 0.1 wait with probability ~1e-7) it is the service time; at ρ ≥ 1 it is infinite."""
    assert kingman_latency_quantile(1.0, 1, 0.5, 0.99) == pytest.approx(1 + math.log(50), rel=1e-12)
    assert kingman_latency_quantile(0.2, 1, 0.5, 0.99) == pytest.approx(0.2 * (1 + math.log(50)), rel=1e-12)
    assert kingman_latency_quantile(1.0, 8, 0.1, 0.99) == 1.0
    assert kingman_latency_quantile(1.0, 4, 1.0, 0.99) == math.inf


@pytest.mark.parametrize("c, a", [(1, 0.5), (4, 3.6), (16, 15.5), (64, 20.0)])
def test_the_tail_decay_is_the_root_it_claims(c, a):
    """z = e^{_decay} > 1 solves z^c = e^{a(z − 1)} (it sizes the chain's state space)."""
    from hetplan.planner.optimize.queueing import _decay

    z = math.exp(_decay(c, a))
    assert z > 1.0 and c * math.log(z) == pytest.approx(a * (z - 1.0), rel=1e-9)


def test_wait_cdf_edges():
    assert wait_cdf(2, 0.0, 0.0) == 1.0 and wait_cdf(2, 0.5, -0.1) == 0.0
    assert wait_cdf(2, 0.996, 10.0) == 0.0 and wait_cdf(2, 0.996, 2e3) == 1.0  # saturated: nobody within 1,000 D
    assert 0.0 < wait_cdf(2, 0.9, 0.0) < 1.0 and wait_cdf(2, 0.9, 1e4) == pytest.approx(1.0, abs=1e-12)
    # a probability even where the sum of many terms rounds past 1
    assert 0.0 <= wait_cdf(64, 0.99, 500.0) <= 1.0


def test_latency_quantile_and_max_utilization_edges():
    """Light load: P(no wait) ≥ 99%, so the p99 is the service time itself; saturation: infinite. An SLO equal to
    the service time is met at a positive utilization when enough slots keep P(wait) ≤ 1%; slower than the SLO,
    no utilization is."""
    assert latency_quantile(0.05, 16, 0.3, 0.99) == 0.05
    assert latency_quantile(0.05, 2, 0.996, 0.99) == math.inf
    assert late_fraction(0.3, 2, 0.1, 0.2) == 1.0
    assert late_fraction(0.2, 16, 0.3, 0.2) == pytest.approx(1.0 - wait_cdf(16, 0.3, 0.0))
    assert 0.0 < max_utilization(0.2, 16, 0.2, 0.99) < 0.95
    assert max_utilization(0.3, 4, 0.2, 0.99) == 0.0

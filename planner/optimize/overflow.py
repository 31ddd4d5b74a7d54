"""Serverless absorbs the bursts: how much of a window a VM pool sends to Lambda, as MILP cuts.

With overflow on (the plan's ``runtime.overflow``), the router sends a request to the overflow Lambda
function when the queue of its VM pool already holds ``fraction × (SLO − D) × μ`` requests: a request
that would wait past that share of its wait budget is served by Lambda instead of being late. The
fraction leaves room for the jitter inside a second that the per-second fluid does not see.

**The overflow curve.** For window t, a pool of throughput μ receiving the share p of the arrivals
``p·a_s`` diverts, by the capped Lindley recursion

    e_s = Q_{s−1} + p·a_s − μ,   d_s = max(0, e_s − K),   Q_s = max(0, e_s − d_s),   K = fraction·B·μ,

the requests ``Σ d_s`` (exact for the linear fluid inside a second). Arrivals, μ and K scale together,
so the diverted share of the pool's requests is a function g_t(r) of the ratio r = μ / (p·mean_t) alone,
decreasing from g_t(0) = 1. It is convex on every window of the shipped traces (a test checks a bursty
generated one); its piecewise-linear interpolation on a grid of r is a maximum of segment lines
ℓ_k(r) = g_k + s_k (r − r_k). With x the mean rate routed to option o and n its VMs (μ = θ_o n):

    overflow-vm[t,o,k]:   v[t,o] ≥ x[t,o] · ℓ_k(θ_o n / x) = (g_k − s_k r_k) · x[t,o] + s_k θ_o · n[t,o]

the perspective of ℓ_k, linear in (x, n). The MILP pays the overflow function's price for v and counts
its accuracy, so it trades VMs against Lambda requests window by window.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from hetplan.planner.forecast.traces import observed_mean

OVERFLOW_FRACTION = 0.75   # of the wait budget a queued request may use before the router diverts
_RATIOS = np.concatenate([[0.0], np.geomspace(0.5, 8.0, 33)])  # r = μ / (p · mean): pool throughput per routed mean


@dataclass(frozen=True)
class OverflowCuts:
    """Segment lines of every (window, VM option) overflow curve: v ≥ intercept · x + slope · n."""

    intercept: np.ndarray  # windows × VM options × segments
    slope: np.ndarray      # windows × VM options × segments (per VM, ≤ 0)
    full_ratio: np.ndarray  # windows × VM options: r beyond which nothing overflows (more VMs cannot help)

    def slice(self, first: int, last: int) -> "OverflowCuts":
        return OverflowCuts(self.intercept[first:last], self.slope[first:last], self.full_ratio[first:last])


def diverted(arrivals: np.ndarray, throughput: np.ndarray, queue_cap: np.ndarray) -> np.ndarray:
    """(windows × seconds) requests the capped fluid diverts, each window starting with an empty queue."""
    a = np.nan_to_num(np.atleast_2d(np.asarray(arrivals, float)))
    mu = np.broadcast_to(np.asarray(throughput, float).reshape(-1), (a.shape[0],))
    cap = np.broadcast_to(np.asarray(queue_cap, float).reshape(-1), (a.shape[0],))
    out = np.zeros_like(a)
    queue = np.zeros(a.shape[0])
    for s in range(a.shape[1]):
        excess = queue + a[:, s] - mu
        out[:, s] = np.maximum(excess - cap, 0.0)
        queue = np.maximum(excess - out[:, s], 0.0)
    return out


def overflow_curve(arrivals: np.ndarray, budget_s: float, fraction: float = OVERFLOW_FRACTION) -> np.ndarray:
    """(windows × ratios) g_t(r): the diverted share of a pool's requests at r = μ / mean (``_RATIOS``)."""
    a = np.nan_to_num(np.atleast_2d(np.asarray(arrivals, float)))
    total = a.sum(axis=1)
    mean = observed_mean(arrivals)
    g = np.ones((a.shape[0], _RATIOS.size))
    for k, r in enumerate(_RATIOS[1:], start=1):
        mu = r * mean
        g[:, k] = diverted(a, mu, fraction * budget_s * mu).sum(axis=1) / np.maximum(total, 1e-12)
    g[total <= 0, 1:] = 0.0
    return np.minimum.accumulate(g, axis=1)  # never more overflow with more VMs (guards float noise)


def overflow_cuts(per_second: np.ndarray, vm: pd.DataFrame, slo_s: float,
                  fraction: float = OVERFLOW_FRACTION) -> OverflowCuts:
    """The MILP's overflow cuts for every window and VM option (see the module docstring)."""
    T, V = per_second.shape[0], len(vm)
    segments = _RATIOS.size - 1
    intercept, slope = np.zeros((T, V, segments)), np.zeros((T, V, segments))
    full = np.zeros((T, V))
    curves: dict = {}
    for j, o in enumerate(vm.itertuples()):
        budget = max(slo_s - o.latency_ms / 1000.0, 0.0)
        if budget not in curves:
            curves[budget] = overflow_curve(per_second, budget, fraction)
        g = curves[budget]
        s = np.diff(g, axis=1) / np.diff(_RATIOS)[None, :]          # ≤ 0, non-decreasing when g is convex
        intercept[:, j, :] = g[:, :-1] - s * _RATIOS[None, :-1]
        slope[:, j, :] = s * o.throughput_rps
        zero = g <= 1e-12
        full[:, j] = np.where(zero.any(axis=1), _RATIOS[np.argmax(zero, axis=1)], _RATIOS[-1])
    return OverflowCuts(intercept, slope, full)


def diverted_per_second(per_second: np.ndarray, throughput: np.ndarray, routed_mean: np.ndarray,
                        budget_s: float, fraction: float = OVERFLOW_FRACTION) -> np.ndarray:
    """(windows × seconds) diverted requests of pools of ``throughput`` fed ``routed_mean / mean`` of each window."""
    a = np.nan_to_num(np.atleast_2d(np.asarray(per_second, float)))
    mean = observed_mean(per_second)
    share = np.divide(routed_mean, mean, out=np.zeros_like(mean), where=mean > 0)
    mu = np.asarray(throughput, float)
    return diverted(a * share[:, None], mu, fraction * budget_s * mu)

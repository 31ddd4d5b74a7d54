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

**The overflow's busiest second.** The overflow comes in bursts, and the Lambda account's concurrency limit
binds at its busiest second, not at its mean. The same recursion gives the largest diverted count of any second,
h_t(r) = max_s d_s / (p·mean_t), and the same perspective cuts bound the pool's peak overflow rate w[t,o] ≥ x·h_t(r)
(``overflow-peak-vm``). The concurrency row then counts w at the overflow function's latency. Where h_t is not
convex the extended segment lines lie above it, so w is overestimated: safe for a ≤ limit.
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
    peak_intercept: np.ndarray | None = None  # the same for the busiest second's overflow rate (w ≥ ·x + ·n)
    peak_slope: np.ndarray | None = None

    def slice(self, first: int, last: int) -> "OverflowCuts":
        return self.select(slice(first, last), slice(None))

    def select(self, windows, columns) -> "OverflowCuts":
        """Some windows (a slice) and some VM options (a slice or an index array)."""
        part = (lambda a: None if a is None else a[windows][:, columns])
        return OverflowCuts(part(self.intercept), part(self.slope), part(self.full_ratio),
                            part(self.peak_intercept), part(self.peak_slope))


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
    return overflow_curves(arrivals, budget_s, fraction)[0]


def overflow_curves(arrivals: np.ndarray, budget_s: float, fraction: float = OVERFLOW_FRACTION):
    """g_t(r) as :func:`overflow_curve`, and h_t(r): the busiest second's diverted count per mean rate."""
    a = np.nan_to_num(np.atleast_2d(np.asarray(arrivals, float)))
    total = a.sum(axis=1)
    mean = observed_mean(arrivals)
    g = np.ones((a.shape[0], _RATIOS.size))
    h = np.ones((a.shape[0], _RATIOS.size))
    h[:, 0] = a.max(axis=1, initial=0.0) / np.maximum(mean, 1e-12)  # no VM: every second goes to Lambda
    ratios = _RATIOS[1:]
    # the recursion steps through the seconds in Python: run many ratios at once (stacked as rows), in
    # blocks of about 64 MB per array (float64), rather than one ratio per pass
    per_block = max(1, min(ratios.size, int(8e6 // max(a.size, 1))))
    for start in range(0, ratios.size, per_block):
        block = ratios[start:start + per_block]
        mu = (block[:, None] * mean[None, :]).ravel()
        d = diverted(np.tile(a, (block.size, 1)), mu, fraction * budget_s * mu).reshape(block.size, *a.shape)
        columns = slice(1 + start, 1 + start + block.size)
        g[:, columns] = (d.sum(axis=2) / np.maximum(total, 1e-12)).T
        h[:, columns] = (d.max(axis=2, initial=0.0) / np.maximum(mean, 1e-12)).T
    g[total <= 0, 1:] = 0.0
    h[total <= 0, :] = 0.0
    # never more overflow with more VMs (guards float noise)
    return np.minimum.accumulate(g, axis=1), np.minimum.accumulate(h, axis=1)


def overflow_cuts(per_second: np.ndarray, vm: pd.DataFrame, slo_s: float,
                  fraction: float = OVERFLOW_FRACTION) -> OverflowCuts:
    """The MILP's overflow cuts for every window and VM option (see the module docstring)."""
    T, V = per_second.shape[0], len(vm)
    segments = _RATIOS.size - 1
    intercept, slope = np.zeros((T, V, segments)), np.zeros((T, V, segments))
    peak_intercept, peak_slope = np.zeros((T, V, segments)), np.zeros((T, V, segments))
    full = np.zeros((T, V))
    curves: dict = {}
    for j, o in enumerate(vm.itertuples()):
        budget = max(slo_s - o.latency_ms / 1000.0, 0.0)
        if budget not in curves:
            curves[budget] = overflow_curves(per_second, budget, fraction)
        g, h = curves[budget]
        for curve, icpt, slp in ((g, intercept, slope), (h, peak_intercept, peak_slope)):
            s = np.diff(curve, axis=1) / np.diff(_RATIOS)[None, :]      # ≤ 0, non-decreasing when convex
            icpt[:, j, :] = curve[:, :-1] - s * _RATIOS[None, :-1]
            slp[:, j, :] = s * o.throughput_rps
        zero = g <= 1e-12
        full[:, j] = np.where(zero.any(axis=1), _RATIOS[np.argmax(zero, axis=1)], _RATIOS[-1])
    return OverflowCuts(intercept, slope, full, peak_intercept, peak_slope)


def diverted_per_second(per_second: np.ndarray, throughput: np.ndarray, routed_mean: np.ndarray,
                        budget_s: float, fraction: float = OVERFLOW_FRACTION) -> np.ndarray:
    """(windows × seconds) diverted requests of pools of ``throughput`` fed ``routed_mean / mean`` of each window."""
    a = np.nan_to_num(np.atleast_2d(np.asarray(per_second, float)))
    mean = observed_mean(per_second)
    share = np.divide(routed_mean, mean, out=np.zeros_like(mean), where=mean > 0)
    mu = np.asarray(throughput, float)
    return diverted(a * share[:, None], mu, fraction * budget_s * mu)

"""Size each window for the requests the SLO counts: the per-window capacity of one VM of every option.

The SLO allows a share ``ε = 1 − percentile`` of requests to be late. For window t and VM option o the
planner needs the mean rate one VM can take while the window's late share stays within its target. Given
the window's per-second arrivals ``a_s`` (the trace's own for the oracle; recent history for a forecast),
``lateness.late_requests`` counts the late requests of a pool of total throughput μ. It does not increase
with μ, so the smallest μ with

    late(μ) ≤ target · Σ_s a_s

is found by bisection. The ratio ``r_{t,o} = μ / mean_t`` does not depend on how much of the traffic
the option carries (arrivals and throughput scale together; the within-second queueing is taken at one
VM's slots, the worst case). One VM of option o then carries a mean rate of

    k_{t,o} = min(θ_o / r_{t,o}, θ_o · max_utilization)        (θ_o the VM's throughput)

and the MILP's capacity rows read ``x[t,o] ≤ k_{t,o} · n[t,o]``, with ``x`` a share of the window's mean.

**The target.** Half of the allowance goes to what this rule sees (bursts and queueing on the VMs); the
other half is kept for what it does not see: the randomness of arrivals inside a second, backlogs carried
across window boundaries and Lambda cold starts. The split is a design choice stated in the plan
(``sizing.target``), not a figure fitted to any trace.

**Forecast windows.** A forecast gives a mean, not seconds. Its window takes the per-second *shape* of
the last observed window (``a_s / mean``) times the forecast mean, and the forecast mean is raised by a
headroom: the ``percentile`` quantile of the predictor's own relative under-forecasts in its backtest on
the history before the planned windows (``forecast_headroom``). Both are recorded in the plan.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from hetplan.planner.optimize.lateness import late_requests
from hetplan.planner.forecast.traces import observed_mean

SIZING_SHARE = 0.5  # of the allowance, for what the sizing models (see the module docstring)
_ITERATIONS = 18  # halvings of the log-ratio bracket: finer than any VM count can use


@dataclass(frozen=True)
class SizingRule:
    """What the plan records about how its windows were sized."""

    allowance: float           # late share the SLO allows (1 − percentile)
    target: float              # late share the VM sizing aims at per window
    source: str                # "trace" (each window's own seconds) or "history" (last observed window's shape)
    headroom: float = 0.0      # forecast mean raised by this fraction
    headroom_rule: str = ""

    def to_dict(self) -> dict:
        return {"rule": "late-share", "allowance": self.allowance, "target": self.target, "seconds": self.source,
                "headroom": self.headroom, "headroom_rule": self.headroom_rule,
                "within_second_queueing": "exact M/D/c at one VM's slots"}


def required_ratio(arrivals: np.ndarray, servers: int, service_s: float, slo_s: float, target: float) -> np.ndarray:
    """Per window (rows of ``arrivals``, requests per second; NaN = not observed): the throughput / mean
    ratio its pool needs, the mean being over the observed seconds (as the window's ``mean_rps``)."""
    a = np.nan_to_num(np.atleast_2d(np.asarray(arrivals, float)))
    total = a.sum(axis=1)
    mean = np.maximum(observed_mean(arrivals), 1e-12)
    allowed = target * total
    low = np.full(len(a), 0.25)  # a pool below a quarter of the mean rate cannot keep up with any window
    high = np.maximum(2.0 * a.max(axis=1, initial=0.0) / mean, 2.0)
    while True:  # the upper end must meet the target (it does unless the SLO is below the service time)
        late = late_requests(a, high * mean, servers, service_s, slo_s)
        short = late > allowed + 1e-9
        if not short.any() or (high > 1e6).all():
            break
        high = np.where(short, high * 2.0, high)
    for _ in range(_ITERATIONS):  # bisection in log space, all windows at once
        mid = np.sqrt(low * high)
        ok = late_requests(a, mid * mean, servers, service_s, slo_s) <= allowed + 1e-9
        high, low = np.where(ok, mid, high), np.where(ok, low, mid)
    return np.where(total > 0, high, 1.0)


def window_capacity(per_second: np.ndarray, vm: pd.DataFrame, slo_s: float, target: float,
                    max_utilization: float) -> np.ndarray:
    """(windows × VM options): the mean req/s one VM of each option carries within the target late share."""
    out = np.zeros((per_second.shape[0], len(vm)))
    cache: dict = {}
    for j, o in enumerate(vm.itertuples()):
        key = (int(o.servers), float(o.latency_ms))
        if key not in cache:
            cache[key] = required_ratio(per_second, int(o.servers), o.latency_ms / 1000.0, slo_s, target)
        ratio = cache[key]
        out[:, j] = np.minimum(o.throughput_rps / ratio, o.throughput_rps * max_utilization)
    return out


def forecast_headroom(actual_mean: np.ndarray, predicted_mean: np.ndarray, percentile: float) -> float:
    """The ``percentile`` quantile of relative under-forecasts (actual / predicted − 1, floored at 0)."""
    actual, predicted = np.asarray(actual_mean, float), np.asarray(predicted_mean, float)
    keep = predicted > 0
    if not keep.any():
        return 0.0
    errors = np.maximum(actual[keep] / predicted[keep] - 1.0, 0.0)
    return float(np.quantile(errors, percentile))


def shaped_like(history_seconds: np.ndarray, means: np.ndarray) -> np.ndarray:
    """Per-second rows for forecast windows: each history row's shape (a_s / its mean) times a forecast mean."""
    h = np.asarray(history_seconds, float)
    mean = np.nanmean(h, axis=1, keepdims=True)
    shape = np.divide(h, mean, out=np.ones_like(h), where=mean > 0)
    return shape * np.asarray(means, float)[:, None]

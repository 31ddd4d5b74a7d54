"""Replay a per-second request trace against a deployment timeline: cost, SLO violations, latency, accuracy.

A :class:`Deployment` says, over time, which VMs run (one row per launch), how traffic is split between
options (piecewise-constant shares) and, optionally, which Lambda option absorbs what the VMs cannot serve
within the SLO. :func:`replay` plays the actual trace against it (planner/REPLAY.md has the full model):

- **VMs** (``method="fluid"``): the VMs of one option form one pooled FIFO queue served at
  ``n(t) · throughput_rps``; a VM launched at τ serves from ``ceil(τ + boot_seconds)``. Arrivals are spread
  evenly within each second; requests beyond capacity wait in a backlog carried to later seconds. A request's
  wait is the time the (time-varying) capacity needs to clear the backlog ahead of it, so boot delays and
  scale-ins are exact for the fluid. Latency = the option's ``latency_ms`` + wait; a violation is latency > SLO.
  Billing: per second from launch, at least 60 s per launch (EC2 Linux on-demand).
- **Lambda**: one function per option. Ready instances serve ``ready / duration`` requests/s; each request
  beyond that starts its own instance (a cold start: the model's load time), ready after load + duration;
  instances idle longer than ``keep_alive_s`` expire. Above the account concurrency limit requests queue.
  Per-ms billing through :meth:`ServerlessPricing.cost_per_request`; a cold request is billed load + duration.
- **Overflow** (optional): a Lambda option takes the requests whose wait on the VMs would pass
  ``overflow_fraction`` of the wait budget (SLO − service latency).
- **Warm pool** (optional, ``Deployment.warm``): instances of a function kept warm by periodic pings (every
  half keep-alive, each billed ``PING_MS``); they never expire, so bursts up to the pool size start warm.
- ``method="events"``: the same model request by request (Poisson or evenly spaced arrivals within each
  second, from a seed), with per-slot deterministic service through the exact FCFS engine
  (``planner/optimize/fcfs.py``, diversion included); Lambda request by request. This is the replay that judges an
  SLO (``verdict.py``): the fluid does not see requests bunching inside a second, so it is a fast
  approximation for comparisons, never the verdict.
- **Router** (``Deployment.router``): ``random`` draws each request's option from the shares;
  ``weighted-round-robin`` (what plans state) spreads them evenly over the requests.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from hetplan.errors import HetplanError
from hetplan.planner.catalog.tables import ServerlessPricing
from hetplan.planner.replay.deployment import (ARRIVALS, METHODS, MIN_BILLED_S, PING_MS, Axis, Deployment, Replay, Report,
                                               time_axis, values_per_second)
from hetplan.planner.replay.drift import apply_drift
from hetplan.planner.replay.events import replay_events
from hetplan.planner.replay.fluid import replay_fluid


def _vm_billing(dep: Deployment, axis: Axis) -> tuple[np.ndarray, dict, int]:
    """Per-second VM cost (USD, T), billed hours per instance type, launches (60-s minimum per launch)."""
    cost = np.zeros(axis.length + 1)
    hours: dict[str, float] = {}
    if dep.vms.empty:
        return cost[:-1], hours, 0
    opts = dep.vm_options.set_index("option")
    end = axis.t0 + axis.length
    launch = dep.vms.launch_s.to_numpy(float)
    stop = np.minimum(dep.vms.stop_s.to_numpy(float), end)
    run = np.maximum(stop - launch, 0.0)
    billed = np.maximum(run, MIN_BILLED_S)
    price_s = opts.price_per_hour_usd.loc[dep.vms.option].to_numpy(float) / 3600.0
    # spread each VM's running cost over its seconds on the axis (before the axis: charged to its first second)
    first = np.clip(np.floor(launch) - axis.t0, 0, axis.length).astype(int)
    last = np.clip(np.ceil(stop) - axis.t0, 0, axis.length).astype(int)
    rate = np.zeros(axis.length + 1)
    np.add.at(rate, first, price_s)
    np.add.at(rate, last, -price_s)
    cost += np.cumsum(rate)
    inside = np.maximum(last - first, 0)
    np.add.at(cost, first, price_s * (billed - inside))  # time outside the axis and the 60-s top-up
    for itype, h in pd.Series(billed / 3600.0).groupby(opts.instance_type.loc[dep.vms.option].to_numpy()).sum().items():
        hours[str(itype)] = float(h)
    return cost[:-1], hours, len(dep.vms)


def _weighted_quantiles(values: np.ndarray, weights: np.ndarray, qs: tuple[float, ...]) -> list[float]:
    keep = weights > 0
    values, weights = values[keep], weights[keep]
    if values.size == 0:
        return [float("nan")] * len(qs)
    order = np.argsort(values, kind="stable")
    values, cum = values[order], np.cumsum(weights[order])
    return [float(values[min(np.searchsorted(cum, q * cum[-1], side="left"), len(values) - 1)]) for q in qs]


def replay(trace: pd.DataFrame, deployment: Deployment, slo_s: float, pricing: ServerlessPricing, *,
           keep_alive_s: float = 600.0, concurrency_limit: float | None = None,
           default_load_time_ms: float | None = None, method: str = "fluid", arrivals: str = "poisson",
           seed: int = 0, window_s: int = 300, samples: int = 16, drift=(), recorder=None) -> Replay:
    """Replay ``trace`` (``second,requests``) against ``deployment`` under ``slo_s`` (see the module docstring).

    ``default_load_time_ms`` is the cold-start time of Lambda options whose ``load_time_ms`` is empty (the
    policies pass the largest load time in the profile: a conservative rule). Gaps in the trace are replayed
    as seconds without arrivals (time still passes: VMs are billed and backlogs drain).
    ``drift``: :class:`hetplan.planner.replay.feedback.Drift` items, the true speed of models against the options'
    figures; ``recorder``: a :class:`hetplan.planner.replay.feedback.LogRecorder` that collects a request log.
    """
    if method not in METHODS:
        raise HetplanError(f"unknown replay method '{method}': use fluid or events")
    if arrivals not in ARRIVALS:
        raise HetplanError(f"unknown arrival pattern '{arrivals}': use poisson or even")
    axis = time_axis(trace)
    if drift:
        deployment = apply_drift(deployment, drift, slo_s)
    lam = _lambda_frame(deployment.lam_options, default_load_time_ms)
    limit = float(pricing.concurrency_limit if concurrency_limit is None else concurrency_limit)
    vm_cost, hours, launches = _vm_billing(deployment, axis)
    run = replay_fluid if method == "fluid" else replay_events
    pinned = np.round(values_per_second(deployment.warm, axis, list(lam.option)))
    per_second = run(axis, deployment, lam, slo_s, pricing, keep_alive_s, limit, seed, arrivals, samples, pinned, recorder)
    # pings: each pinned instance every half keep-alive
    ping = np.array([pricing.cost_per_request(PING_MS, m) for m in lam.memory_mb]) if len(lam) else np.zeros(0)
    per_second["ping_cost_usd"] = pinned @ ping / max(keep_alive_s / 2.0, 1.0)
    per_second["lambda_cost_usd"] = per_second["lambda_cost_usd"] + per_second["ping_cost_usd"]
    per_second["vm_cost_usd"] = vm_cost
    lat_values, lat_weights = per_second.pop("latency_values"), per_second.pop("latency_weights")
    p50, p99 = _weighted_quantiles(lat_values, lat_weights, (0.5, 0.99))
    frame = pd.DataFrame(per_second)
    total = float(axis.requests.sum())
    served = total - float(frame.unrouted.sum())  # the accuracy served is over the requests some option took
    violations = float(frame.violations.sum())
    vm_total, lam_total = float(frame.vm_cost_usd.sum()), float(frame.lambda_cost_usd.sum())
    report = Report(
        policy=deployment.name, method=method, seconds=axis.length, requests=total, violations=violations,
        violation_pct=100.0 * violations / total if total else 0.0, latency_p50_ms=1000 * p50,
        latency_p99_ms=1000 * p99, cost_usd=vm_total + lam_total, vm_cost_usd=vm_total, lambda_cost_usd=lam_total,
        cost_per_million_usd=1e6 * (vm_total + lam_total) / total if total else float("nan"),
        mean_accuracy=float(frame.accuracy_sum.sum()) / served if served else float("nan"),
        lambda_requests=float(frame.lambda_requests.sum()), overflow_requests=float(frame.overflow_requests.sum()),
        unrouted_requests=float(frame.unrouted.sum()),
        cold_starts=float(frame.cold_starts.sum()), ping_cost_usd=float(frame.ping_cost_usd.sum()),
        vm_launches=launches, vm_hours=hours,
    )
    return Replay(report, _timeline(frame, axis, window_s))


def _lambda_frame(lam: pd.DataFrame, default_load_time_ms: float | None) -> pd.DataFrame:
    lam = lam.reset_index(drop=True).copy()
    missing = lam.load_time_ms.isna()
    if missing.any():
        if default_load_time_ms is None:
            raise HetplanError(f"Lambda option '{lam.option[missing].iloc[0]}' has no load time: "
                               "pass default_load_time_ms (the profile's largest load time)")
        lam.loc[missing, "load_time_ms"] = default_load_time_ms
    lam["duration_ms"] = lam.duration_ms.fillna(lam.latency_ms)
    return lam


def _timeline(frame: pd.DataFrame, axis: Axis, window_s: int) -> pd.DataFrame:
    width = max(1, int(window_s))
    group = np.arange(axis.length) // width
    sums = frame.groupby(group).sum()
    counts = np.bincount(group)
    start = axis.t0 + sums.index.to_numpy() * width
    out = pd.DataFrame({
        "window": sums.index.to_numpy(), "start_s": start, "end_s": np.minimum(start + width, axis.t0 + axis.length),
        "requests": sums.requests.to_numpy(), "mean_rps": sums.requests.to_numpy() / counts,
        "peak_rps": frame.requests.groupby(group).max().to_numpy(),
        "violations": sums.violations.to_numpy(),
        "vm_capacity_rps": sums.vm_capacity_rps.to_numpy() / counts, "vms": sums.vms.to_numpy() / counts,
        "lambda_requests": sums.lambda_requests.to_numpy(), "cold_starts": sums.cold_starts.to_numpy(),
        "vm_cost_usd": sums.vm_cost_usd.to_numpy(), "lambda_cost_usd": sums.lambda_cost_usd.to_numpy(),
    })
    out["violation_pct"] = np.where(out.requests > 0, 100 * out.violations / out.requests.where(out.requests > 0, 1), 0.0)
    return out

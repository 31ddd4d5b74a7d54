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
  (``planner/fcfs.py``, diversion included); Lambda request by request. This is the replay that judges an
  SLO (``verdict.py``): the fluid does not see requests bunching inside a second, so it is a fast
  approximation for comparisons, never the verdict.
- **Router** (``Deployment.router``): ``random`` draws each request's option from the shares;
  ``weighted-round-robin`` (what plans state) spreads them evenly over the requests.
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from hetplan.catalog import ServerlessPricing
from hetplan.errors import HetplanError
from hetplan.planner.fcfs import fcfs_starts

MIN_BILLED_S = 60.0  # EC2 per-second billing charges at least one minute per launch
PING_MS = 100.0  # a keep-warm ping sleeps ~100 ms so concurrent pings land on distinct instances
VM_COLUMNS = ("option", "model", "instance_type", "accuracy", "latency_ms", "servers", "throughput_rps",
              "price_per_hour_usd", "boot_seconds")
LAMBDA_COLUMNS = ("option", "model", "memory_mb", "accuracy", "latency_ms", "duration_ms", "load_time_ms")
METHODS = ("fluid", "events")
ARRIVALS = ("poisson", "even")
_GOLDEN = (math.sqrt(5) - 1) / 2
_TOL = 1e-6  # seconds: a request finishing at the SLO (to float noise of the cumulative sums) meets it


@dataclass(frozen=True)
class Deployment:
    """What serves the traffic over time (absolute trace seconds).

    ``vm_options`` / ``lam_options``: the options used (columns ``VM_COLUMNS`` / ``LAMBDA_COLUMNS``).
    ``vms``: one row per VM launch: ``option``, ``launch_s``, ``stop_s`` (``inf`` = runs to the end).
    ``routes``: ``start_s`` plus one share column per option name; each row holds until the next one, and
    seconds before the first row are unrouted (their requests count as violations). Shares sum to ≤ 1.
    ``overflow``: a Lambda option that takes the requests a VM option could only serve after the SLO; with
    ``overflow_fraction`` < 1 it takes them once their wait would pass that fraction of the wait budget
    (SLO − service latency), a margin for the arrival jitter inside a second the fluid does not see.
    ``warm``: optional ``start_s`` plus one column per Lambda option: instances kept warm by pings (piecewise
    constant like ``routes``; zero before its first row).
    ``router``: how requests are split by share: ``random`` (each request draws its option) or
    ``weighted-round-robin`` (the shares spread evenly over the requests, as nginx or Envoy do).
    ``overflow_queue``: optional ``start_s`` plus one column per VM option: the queue per VM (requests) beyond
    which the router diverts to ``overflow``, piecewise constant; by default ``throughput_rps ×
    overflow_fraction × (SLO − latency)`` of the options' own figures. The router is set from what the
    planner believes; a :class:`~hetplan.planner.feedback.Drift` changes the true speed, not the router.
    """

    vm_options: pd.DataFrame
    lam_options: pd.DataFrame
    vms: pd.DataFrame
    routes: pd.DataFrame
    overflow: str | None = None
    name: str = "plan"
    warm: pd.DataFrame | None = None
    overflow_fraction: float = 1.0
    overflow_queue: pd.DataFrame | None = None
    router: str = "random"


    def __post_init__(self):
        for frame, columns, what in ((self.vm_options, VM_COLUMNS, "VM options"),
                                     (self.lam_options, LAMBDA_COLUMNS, "Lambda options")):
            missing = [c for c in columns if c not in frame.columns]
            if missing:
                raise HetplanError(f"deployment {what} lack column(s) {', '.join(missing)}")
        known = set(self.vm_options.option) | set(self.lam_options.option)
        unknown = sorted((set(self.routes.columns) - {"start_s"}) - known) + sorted(set(self.vms.option) - set(self.vm_options.option))
        if unknown:
            raise HetplanError(f"deployment uses unknown option '{unknown[0]}'")
        if self.warm is not None and set(self.warm.columns) - {"start_s"} - set(self.lam_options.option):
            raise HetplanError(f"warm pool names unknown Lambda option '{sorted(set(self.warm.columns) - {'start_s'})[0]}'")
        if self.overflow is not None and self.overflow not in set(self.lam_options.option):
            raise HetplanError(f"overflow option '{self.overflow}' is not one of the deployment's Lambda options")


@dataclass(frozen=True)
class Report:
    """Totals of one replay (costs in USD, latencies in ms, accuracy as a fraction)."""

    policy: str
    method: str
    seconds: int
    requests: float
    violations: float
    violation_pct: float
    latency_p50_ms: float
    latency_p99_ms: float
    cost_usd: float
    vm_cost_usd: float
    lambda_cost_usd: float
    cost_per_million_usd: float
    mean_accuracy: float
    lambda_requests: float
    overflow_requests: float
    unrouted_requests: float
    cold_starts: float
    ping_cost_usd: float
    vm_launches: int
    vm_hours: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Replay:
    """A replay's totals and its per-window timeline (``window_s=1`` gives one row per second)."""

    report: Report
    timeline: pd.DataFrame


@dataclass(frozen=True)
class _Axis:
    """The replay's time axis: absolute seconds t0 .. t0+T-1, with per-second arrivals (gaps are zeros)."""

    t0: int
    requests: np.ndarray

    @property
    def length(self) -> int:
        return len(self.requests)


def _axis(trace: pd.DataFrame) -> _Axis:
    if trace.empty:
        raise HetplanError("the trace is empty: nothing to replay")
    sec = trace["second"].to_numpy(np.int64)
    t0 = int(sec[0])
    requests = np.zeros(int(sec[-1]) - t0 + 1)
    requests[sec - t0] = trace["requests"].to_numpy(float)
    return _Axis(t0, requests)


def _shares(dep: Deployment, axis: _Axis, names: list[str]) -> np.ndarray:
    """(T × options) routing shares per second, from the piecewise-constant ``routes``."""
    return _per_second(dep.routes, axis, names)


def _per_second(frame: pd.DataFrame | None, axis: _Axis, names: list[str]) -> np.ndarray:
    """(T × names) values of a piecewise-constant frame (``start_s`` + columns); zero before its first row."""
    if frame is None:
        return np.zeros((axis.length, len(names)))
    routes = frame.sort_values("start_s")
    table = np.zeros((len(routes) + 1, len(names)))  # last row: before the first route = unrouted
    for j, name in enumerate(names):
        if name in routes:
            table[:-1, j] = routes[name].fillna(0.0).to_numpy(float)
    row = np.searchsorted(routes.start_s.to_numpy(float), axis.t0 + np.arange(axis.length), side="right") - 1
    return table[row]


def _vm_counts(dep: Deployment, axis: _Axis) -> np.ndarray:
    """(options × T) VMs serving in each second."""
    index = {name: j for j, name in enumerate(dep.vm_options.option)}
    boot = dep.vm_options.set_index("option").boot_seconds
    diff = np.zeros((len(index), axis.length + 1))
    if len(dep.vms):
        j = dep.vms.option.map(index).to_numpy(int)
        on = np.ceil(dep.vms.launch_s.to_numpy(float) + boot.loc[dep.vms.option].to_numpy(float) - 1e-9) - axis.t0
        off = np.ceil(dep.vms.stop_s.to_numpy(float) - 1e-9) - axis.t0
        on, off = np.clip(on, 0, axis.length), np.clip(off, 0, axis.length)
        ok = on < off
        np.add.at(diff, (j[ok], on[ok].astype(int)), 1.0)
        np.add.at(diff, (j[ok], off[ok].astype(int)), -1.0)
    return np.cumsum(diff, axis=1)[:, :-1]


def _vm_billing(dep: Deployment, axis: _Axis) -> tuple[np.ndarray, dict, int]:
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


# --- fluid queue -----------------------------------------------------------------------------------------

def _backlog(arrivals: np.ndarray, service: np.ndarray, cap: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Backlog at the start of each second and the arrivals diverted because the backlog would exceed ``cap``.

    Uncapped: the reflected random walk (Lindley) in closed form. Capped: a short loop over the seconds
    where the uncapped backlog is positive (the capped one is zero wherever the uncapped one is).
    """
    walk = np.cumsum(arrivals - service)
    end = walk - np.minimum(np.minimum.accumulate(walk), 0.0)
    end[end < 1e-9] = 0.0
    diverted = np.zeros_like(arrivals)
    if cap is not None and np.any(end > cap + 1e-9):
        busy = np.flatnonzero(end > 0)
        end = np.zeros_like(end)
        a, mu, c = arrivals[busy].tolist(), service[busy].tolist(), cap[busy].tolist()
        out, over = [0.0] * len(busy), [0.0] * len(busy)
        prev, b = -2, 0.0
        for k, i in enumerate(busy.tolist()):
            if i != prev + 1:
                b = 0.0
            e = b + a[k] - mu[k]
            d = min(a[k], e - c[k]) if e > c[k] else 0.0
            b = max(e - d, 0.0)
            out[k], over[k], prev = b, d, i
        end[busy], diverted[busy] = out, over
    start = np.concatenate([[0.0], end[:-1]])
    return start, diverted


def _queue_samples(start: np.ndarray, arrivals: np.ndarray, service: np.ndarray, samples: int):
    """Waits (s) of ``samples`` evenly spaced arrivals in every second where a queue exists.

    Returns (seconds, waits[seconds × samples]). The wait of an arrival at time t with backlog q ahead is the
    τ with CS(t + τ) − CS(t) = q, CS the cumulative capacity (capacity after the trace = its last value).
    """
    T = len(arrivals)
    busy = np.flatnonzero(((start > 1e-9) | (arrivals > service + 1e-9) | (service <= 0)) & ((arrivals > 0) | (start > 0)))
    if busy.size == 0:
        return busy, np.zeros((0, samples))
    x = (np.arange(samples) + 0.5) / samples
    q = np.maximum(start[busy, None] + (arrivals[busy, None] - service[busy, None]) * x[None, :], 0.0)
    cs = np.concatenate([[0.0], np.cumsum(service)])
    t = busy[:, None] + x[None, :]
    position = cs[busy, None] + service[busy, None] * x[None, :] + q
    j = np.searchsorted(cs, position, side="right") - 1
    inside = j < T
    jj = np.minimum(j, T - 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        tau = np.where(inside, jj + (position - cs[jj]) / service[jj], np.nan)
        last = service[-1]
        beyond = T + (position - cs[T]) / last if last > 0 else np.full_like(position, np.inf)
    tau = np.where(inside, tau, beyond)
    return busy, np.maximum(tau - t, 0.0)


def _weighted_quantiles(values: np.ndarray, weights: np.ndarray, qs: tuple[float, ...]) -> list[float]:
    keep = weights > 0
    values, weights = values[keep], weights[keep]
    if values.size == 0:
        return [float("nan")] * len(qs)
    order = np.argsort(values, kind="stable")
    values, cum = values[order], np.cumsum(weights[order])
    return [float(values[min(np.searchsorted(cum, q * cum[-1], side="left"), len(values) - 1)]) for q in qs]


# --- replay ----------------------------------------------------------------------------------------------

def replay(trace: pd.DataFrame, deployment: Deployment, slo_s: float, pricing: ServerlessPricing, *,
           keep_alive_s: float = 600.0, concurrency_limit: float | None = None,
           default_load_time_ms: float | None = None, method: str = "fluid", arrivals: str = "poisson",
           seed: int = 0, window_s: int = 300, samples: int = 16, drift=(), recorder=None) -> Replay:
    """Replay ``trace`` (``second,requests``) against ``deployment`` under ``slo_s`` (see the module docstring).

    ``default_load_time_ms`` is the cold-start time of Lambda options whose ``load_time_ms`` is empty (the
    policies pass the largest load time in the profile: a conservative rule). Gaps in the trace are replayed
    as seconds without arrivals (time still passes: VMs are billed and backlogs drain).
    ``drift``: :class:`hetplan.planner.feedback.Drift` items, the true speed of models against the options'
    figures; ``recorder``: a :class:`hetplan.planner.feedback.LogRecorder` that collects a request log.
    """
    if method not in METHODS:
        raise HetplanError(f"unknown replay method '{method}': use fluid or events")
    if arrivals not in ARRIVALS:
        raise HetplanError(f"unknown arrival pattern '{arrivals}': use poisson or even")
    axis = _axis(trace)
    if drift:
        from hetplan.planner.feedback import apply_drift

        deployment = apply_drift(deployment, drift, slo_s)
    lam = _lambda_frame(deployment.lam_options, default_load_time_ms)
    limit = float(pricing.concurrency_limit if concurrency_limit is None else concurrency_limit)
    vm_cost, hours, launches = _vm_billing(deployment, axis)
    run = _fluid if method == "fluid" else _events
    pinned = np.round(_per_second(deployment.warm, axis, list(lam.option)))
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


def _timeline(frame: pd.DataFrame, axis: _Axis, window_s: int) -> pd.DataFrame:
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


def _fluid(axis, dep, lam, slo_s, pricing, keep_alive_s, limit, seed, arrivals, samples, pinned, recorder=None) -> dict:
    T, r = axis.length, axis.requests
    vm = dep.vm_options.reset_index(drop=True)
    names = list(vm.option) + list(lam.option)
    share = _shares(dep, axis, names)
    counts = _vm_counts(dep, axis)
    rest = 1.0 - share.sum(axis=1)
    unrouted = r * np.where(rest > 1e-9, np.clip(rest, 0.0, 1.0), 0.0)  # shares summing to 1 − ε route everything
    violations = unrouted.copy()
    accuracy_sum = np.zeros(T)
    values, weights = [np.array([np.inf])], [np.array([violations.sum()])]
    overflow = np.zeros(T)
    for j, o in enumerate(vm.itertuples()):
        a = share[:, j] * r
        mu = counts[j] * o.throughput_rps
        cap = _overflow_cap(dep, axis, j, o, counts[j], slo_s)
        start, diverted = _backlog(a, mu, cap)
        a = a - diverted
        overflow += diverted
        busy, waits = _queue_samples(start, a, mu, samples)
        latency = o.latency_ms / 1000.0 + waits
        if recorder is not None:
            recorder.fluid_vm(o, axis.t0, a, busy, latency)
        w = np.repeat(a[busy, None] / samples, samples, axis=1)
        late = np.where(latency > slo_s + _TOL, w, 0.0).sum(axis=1)
        np.add.at(violations, busy, late)
        quiet = a.sum() - a[busy].sum()
        if o.latency_ms / 1000.0 > slo_s + _TOL:
            violations += np.where(np.isin(np.arange(T), busy), 0.0, a)
        values += [np.array([o.latency_ms / 1000.0]), latency.ravel()]
        weights += [np.array([quiet]), w.ravel()]
        accuracy_sum += a * o.accuracy
    lam_arrivals = share[:, len(vm):] * r[:, None]
    if dep.overflow:
        lam_arrivals[:, list(lam.option).index(dep.overflow)] += overflow
    lam_out = _fluid_lambda(lam_arrivals, lam, slo_s, pricing, keep_alive_s, limit, samples, pinned, recorder, axis.t0)
    violations += lam_out["violations"]
    accuracy_sum += lam_arrivals @ lam.accuracy.to_numpy(float)
    values += lam_out["values"]
    weights += lam_out["weights"]
    return {"requests": r, "violations": violations, "accuracy_sum": accuracy_sum, "unrouted": unrouted,
            "vm_capacity_rps": counts.T @ vm.throughput_rps.to_numpy(float) if len(vm) else np.zeros(T),
            "vms": counts.sum(axis=0) if len(vm) else np.zeros(T),
            "lambda_requests": lam_arrivals.sum(axis=1), "overflow_requests": overflow,
            "cold_starts": lam_out["cold"], "lambda_cost_usd": lam_out["cost"],
            "latency_values": np.concatenate(values), "latency_weights": np.concatenate(weights)}


def _cold_starts(arrivals: np.ndarray, duration: float, load: float, keep: int, pinned: np.ndarray) -> np.ndarray:
    """Cold-started requests per second of one function (fluid, one pass over the seconds).

    Ready instances serve ``ready / duration`` requests/s; every request beyond that starts a new instance,
    busy for load + duration (rounded to whole seconds) before it is ready. Instances idle longer than the
    keep-alive expire: the pool is capped at the most instances in use in the last ``keep`` seconds (or the
    pinned warm pool). So a burst pays a cold start per excess *request* while the new instances load.
    """
    T = len(arrivals)
    cold = np.zeros(T)
    if not np.any(arrivals > 0):
        return cold
    a, pins = arrivals.tolist(), pinned.tolist()
    lag = max(1, int(round(load + duration)))
    ready, n_loading = 0.0, 0.0
    loading: deque = deque()   # (second it is ready, instances)
    used: deque = deque()      # (second, instances in use), decreasing: front = max of the last keep seconds
    out = [0.0] * T
    for s in range(T):
        while loading and loading[0][0] <= s:
            n_loading -= loading[0][1]
            ready += loading.popleft()[1]
        while used and used[0][0] <= s - keep:
            used.popleft()
        ready = min(ready, max((used[0][1] if used else 0.0) - n_loading, 0.0))  # idle ones expired
        ready = max(ready, pins[s])
        x = a[s]
        if x * duration > ready + 1e-9:
            c = x - ready / duration
            out[s] = c
            loading.append((s + lag, c))
            n_loading += c
            u = ready + n_loading
        else:
            u = x * duration + n_loading
        if u > 0 or used:
            while used and used[-1][1] <= u:
                used.pop()
            used.append((s, u))
    cold[:] = out
    return cold


def _fluid_lambda(arr: np.ndarray, lam: pd.DataFrame, slo_s, pricing, keep_alive_s, limit, samples, pinned,
                  recorder=None, t0: int = 0) -> dict:
    T = arr.shape[0]
    out = {"violations": np.zeros(T), "cost": np.zeros(T), "cold": np.zeros(T), "values": [], "weights": []}
    if arr.shape[1] == 0:
        return out
    duration = lam.duration_ms.to_numpy(float) / 1000.0
    load = lam.load_time_ms.to_numpy(float) / 1000.0
    latency = lam.latency_ms.to_numpy(float) / 1000.0
    keep = max(1, int(round(keep_alive_s)))
    cold = np.column_stack([_cold_starts(arr[:, k], duration[k], load[k], keep, pinned[:, k])
                            for k in range(arr.shape[1])])
    # account concurrency limit: a pooled queue served at limit / (mean duration) requests per second
    total = arr.sum(axis=1)
    mean_duration = np.divide(arr @ duration, total, out=np.full(T, duration.mean()), where=total > 0)
    wait_busy, waits = np.zeros(0, int), np.zeros((0, samples))
    if np.any(arr @ duration > limit):
        start, _ = _backlog(total, limit / mean_duration, None)
        wait_busy, waits = _queue_samples(start, total, limit / mean_duration, samples)
    queued = np.zeros(T, bool)
    queued[wait_busy] = True
    for k in range(arr.shape[1]):
        a, c = arr[:, k], np.where(queued, 0.0, cold[:, k])  # a cold start while throttled is not counted twice
        warm_lat, cold_lat = latency[k], latency[k] + load[k]
        if recorder is not None:
            recorder.fluid_lambda(lam.iloc[k], t0, a, c, warm_lat, cold_lat, wait_busy, latency[k] + waits)
        calm = np.where(queued, 0.0, a)
        out["violations"] += (c if cold_lat > slo_s + _TOL else 0.0) + ((calm - c) if warm_lat > slo_s + _TOL else 0.0)
        out["values"] += [np.array([warm_lat, cold_lat])]
        out["weights"] += [np.array([(calm - c).sum(), c.sum()])]
        if wait_busy.size:
            lat = latency[k] + waits
            w = np.repeat(a[wait_busy, None] / samples, samples, axis=1)
            np.add.at(out["violations"], wait_busy, np.where(lat > slo_s + _TOL, w, 0.0).sum(axis=1))
            out["values"].append(lat.ravel())
            out["weights"].append(w.ravel())
        warm_cost = pricing.cost_per_request(lam.duration_ms.iloc[k], lam.memory_mb.iloc[k])
        cold_cost = pricing.cost_per_request(lam.duration_ms.iloc[k] + lam.load_time_ms.iloc[k], lam.memory_mb.iloc[k])
        out["cost"] += (a - c) * warm_cost + c * cold_cost
        out["cold"] += c
    return out


# --- discrete events -------------------------------------------------------------------------------------

def _arrival_times(axis: _Axis, rng: np.random.Generator, pattern: str) -> tuple[np.ndarray, np.ndarray]:
    """Request arrival times and their second index (fractional counts rounded at random)."""
    r = axis.requests
    n = np.floor(r).astype(np.int64)
    n += (rng.random(len(r)) < (r - n)).astype(np.int64)
    second = np.repeat(np.arange(len(r)), n)
    if pattern == "poisson":  # given the count, Poisson arrivals are uniform in the second
        offset = rng.random(second.size)
    else:
        first = np.repeat(np.cumsum(n) - n, n)
        offset = (np.arange(second.size) - first + 0.5) / np.repeat(np.maximum(n, 1), n)
    times = second + offset
    order = np.argsort(times, kind="stable")  # seconds are whole numbers, offsets in [0, 1): one float sort
    return times[order], second[order]


def _events(axis, dep, lam, slo_s, pricing, keep_alive_s, limit, seed, arrivals, samples, pinned, recorder=None) -> dict:
    rng = np.random.default_rng(seed)
    T = axis.length
    vm = dep.vm_options.reset_index(drop=True)
    names = list(vm.option) + list(lam.option)
    share = _shares(dep, axis, names)
    counts = _vm_counts(dep, axis)
    times, second = _arrival_times(axis, rng, arrivals)
    # option of each request: the inverse CDF of its second's shares at a low-discrepancy (even) or random point
    # routing: a weighted round robin spreads each option's share evenly over the requests (a low-discrepancy
    # sequence); a random router draws each request's option (its per-option counts are binomial)
    spread = dep.router == "weighted-round-robin" or arrivals == "even"
    u = (np.arange(times.size) * _GOLDEN) % 1.0 if spread else rng.random(times.size)
    cum = np.cumsum(share, axis=1)
    choice = np.zeros(times.size, dtype=np.int64)  # == len(names): unrouted
    for k in range(len(names)):  # column by column: a (requests × options) matrix would not fit a long trace
        choice += u >= cum[second, k]
    out = {k: np.zeros(T) for k in ("violations", "accuracy_sum", "lambda_requests", "overflow_requests",
                                    "cold_starts", "lambda_cost_usd", "unrouted")}
    lat_values: list[float] = []
    unrouted = second[choice == len(names)]
    np.add.at(out["violations"], unrouted, 1.0)
    np.add.at(out["unrouted"], unrouted, 1.0)
    lat_values += [math.inf] * unrouted.size
    lam_index = {name: k for k, name in enumerate(lam.option)}
    to_lambda: list[tuple[float, int]] = []
    for j, o in enumerate(vm.itertuples()):
        mine = times[choice == j]
        slots, hold = counts[j] * o.servers, o.servers / o.throughput_rps  # slot time that gives the throughput
        begun, away = fcfs_starts(mine, slots, hold, _overflow_cap(dep, axis, j, o, counts[j], slo_s))
        served, begun, diverted = mine[~away], begun[~away], mine[away]
        to_lambda += [(t, lam_index[dep.overflow]) for t in diverted.tolist()]
        lat = begun - served + o.latency_ms / 1000.0
        sec = np.minimum(served.astype(int), T - 1)
        np.add.at(out["violations"], sec, (lat > slo_s + _TOL).astype(float))
        if recorder is not None and served.size:
            recorder.events(o, "vm", axis.t0 + served, lat, np.zeros(lat.size, bool))
        np.add.at(out["accuracy_sum"], sec, o.accuracy)
        lat_values += lat.tolist()
        if diverted.size:
            np.add.at(out["overflow_requests"], np.minimum(diverted.astype(int), T - 1), 1.0)
    for k in range(len(lam)):
        for t in times[choice == len(vm) + k]:
            to_lambda.append((float(t), k))
    to_lambda.sort()
    lat_values += _lambda_events(to_lambda, lam, pricing, keep_alive_s, limit, slo_s, out, pinned, recorder, axis.t0)
    latency = np.array(lat_values) if lat_values else np.zeros(0)
    return {"requests": axis.requests, **out,
            "vm_capacity_rps": counts.T @ vm.throughput_rps.to_numpy(float) if len(vm) else np.zeros(T),
            "vms": counts.sum(axis=0) if len(vm) else np.zeros(T),
            "latency_values": latency, "latency_weights": np.ones(latency.size)}


def _overflow_cap(dep: Deployment, axis: _Axis, j: int, o, count: np.ndarray, slo_s: float) -> np.ndarray | None:
    """Per second, the queue (requests) of VM option ``j`` beyond which arrivals go to the overflow (None: no overflow)."""
    if not dep.overflow:
        return None
    if dep.overflow_queue is not None:
        return count * _per_second(dep.overflow_queue, axis, [o.option])[:, 0]
    return count * o.throughput_rps * max((slo_s - o.latency_ms / 1000.0) * dep.overflow_fraction, 0.0)


def _lambda_events(requests: list, lam: pd.DataFrame, pricing, keep_alive_s, limit, slo_s, out, pinned,
                   recorder=None, t0: int = 0) -> list[float]:
    """Lambda request by request: per-function warm pools (LIFO reuse, expiry after keep-alive), cold starts,
    the account concurrency limit (a request over it waits for the earliest running execution to end)."""
    duration = (lam.duration_ms.to_numpy(float) / 1000.0).tolist()
    load = (lam.load_time_ms.to_numpy(float) / 1000.0).tolist()
    latency = (lam.latency_ms.to_numpy(float) / 1000.0).tolist()
    accuracy = lam.accuracy.to_numpy(float).tolist()
    warm_cost = [pricing.cost_per_request(d, m) for d, m in zip(lam.duration_ms, lam.memory_mb)]
    cold_cost = [pricing.cost_per_request(d + l, m) for d, l, m in zip(lam.duration_ms, lam.load_time_ms, lam.memory_mb)]
    idle = [[0.0] * int(pinned[0, k]) if len(pinned) else [] for k in range(len(lam))]  # free-since, newest last
    active = [0] * len(lam)                   # per function: executions in flight
    pins = pinned.tolist()
    running: list[tuple[float, int]] = []     # (end, function) of executions in flight
    values, colds = [], []
    for t, k in requests:
        while running and running[0][0] <= t:
            end, f = heapq.heappop(running)
            idle[f].append(end)
            active[f] -= 1
        start = t
        if len(running) >= limit:  # throttled: wait for the earliest execution to end
            end, f = heapq.heappop(running)
            idle[f].append(end)
            active[f] -= 1
            start = end
        pool, keep = idle[k], int(pins[min(int(start), len(pins) - 1)][k]) if pins else 0
        while len(pool) + active[k] < keep:  # a ping warmed one more instance (its load is not a request's)
            pool.insert(0, start)
        while pool and pool[0] < start - keep_alive_s and len(pool) + active[k] > keep:
            pool.pop(0)
        cold = not pool
        if not cold:
            pool.pop()
        active[k] += 1
        busy_for = duration[k] + (load[k] if cold else 0.0)
        heapq.heappush(running, (start + busy_for, k))
        lat = start - t + latency[k] + (load[k] if cold else 0.0)
        s = int(t)
        out["violations"][s] += lat > slo_s + _TOL
        out["accuracy_sum"][s] += accuracy[k]
        out["lambda_requests"][s] += 1
        out["cold_starts"][s] += cold
        out["lambda_cost_usd"][s] += cold_cost[k] if cold else warm_cost[k]
        values.append(lat)
        colds.append(cold)
    if recorder is not None and requests:
        which = np.array([k for _, k in requests])
        times, lats, cold_flags = t0 + np.array([t for t, _ in requests]), np.array(values), np.array(colds, bool)
        for k in range(len(lam)):
            mine = which == k
            if mine.any():
                recorder.events(lam.iloc[k], "lambda", times[mine], lats[mine], cold_flags[mine])
    return values

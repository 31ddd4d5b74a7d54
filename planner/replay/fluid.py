"""The fluid replay: per-second arrivals spread evenly within each second, pooled FIFO queues per VM option
served at ``n(t) · throughput_rps`` with a backlog carried between seconds, Lambda cold starts per excess
request. Fast and exact for the fluid, but blind to requests bunching inside a second: never the verdict.
"""

from __future__ import annotations

from collections import deque

import numpy as np
import pandas as pd

from hetplan.planner.replay.deployment import TOL, overflow_cap, shares_per_second, vm_counts


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


def replay_fluid(axis, dep, lam, slo_s, pricing, keep_alive_s, limit, seed, arrivals, samples, pinned, recorder=None) -> dict:
    T, r = axis.length, axis.requests
    vm = dep.vm_options.reset_index(drop=True)
    names = list(vm.option) + list(lam.option)
    share = shares_per_second(dep, axis, names)
    counts = vm_counts(dep, axis)
    rest = 1.0 - share.sum(axis=1)
    unrouted = r * np.where(rest > 1e-9, np.clip(rest, 0.0, 1.0), 0.0)  # shares summing to 1 − ε route everything
    violations = unrouted.copy()
    accuracy_sum = np.zeros(T)
    values, weights = [np.array([np.inf])], [np.array([violations.sum()])]
    overflow = np.zeros(T)
    for j, o in enumerate(vm.itertuples()):
        a = share[:, j] * r
        mu = counts[j] * o.throughput_rps
        cap = overflow_cap(dep, axis, j, o, counts[j], slo_s)
        start, diverted = _backlog(a, mu, cap)
        a = a - diverted
        overflow += diverted
        busy, waits = _queue_samples(start, a, mu, samples)
        latency = o.latency_ms / 1000.0 + waits
        if recorder is not None:
            recorder.fluid_vm(o, axis.t0, a, busy, latency)
        w = np.repeat(a[busy, None] / samples, samples, axis=1)
        late = np.where(latency > slo_s + TOL, w, 0.0).sum(axis=1)
        np.add.at(violations, busy, late)
        quiet = a.sum() - a[busy].sum()
        if o.latency_ms / 1000.0 > slo_s + TOL:
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
        out["violations"] += (c if cold_lat > slo_s + TOL else 0.0) + ((calm - c) if warm_lat > slo_s + TOL else 0.0)
        out["values"] += [np.array([warm_lat, cold_lat])]
        out["weights"] += [np.array([(calm - c).sum(), c.sum()])]
        if wait_busy.size:
            lat = latency[k] + waits
            w = np.repeat(a[wait_busy, None] / samples, samples, axis=1)
            np.add.at(out["violations"], wait_busy, np.where(lat > slo_s + TOL, w, 0.0).sum(axis=1))
            out["values"].append(lat.ravel())
            out["weights"].append(w.ravel())
        warm_cost = pricing.cost_per_request(lam.duration_ms.iloc[k], lam.memory_mb.iloc[k])
        cold_cost = pricing.cost_per_request(lam.duration_ms.iloc[k] + lam.load_time_ms.iloc[k], lam.memory_mb.iloc[k])
        out["cost"] += (a - c) * warm_cost + c * cold_cost
        out["cold"] += c
    return out

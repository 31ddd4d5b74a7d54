"""The request-level replay (the verdict): arrivals inside each second from a seed, the router's choice per
request, per-slot deterministic service through the exact FCFS engine (diversion to the overflow included),
and Lambda request by request (warm pools, keep-alive expiry, cold starts, the concurrency limit).
"""

from __future__ import annotations

import heapq
import math

import numpy as np
import pandas as pd

from hetplan.planner.optimize.fcfs import fcfs_starts
from hetplan.planner.replay.deployment import TOL, Axis, overflow_cap, shares_per_second, vm_counts

_GOLDEN = (math.sqrt(5) - 1) / 2  # the weighted round robin's low-discrepancy sequence


def _arrival_times(axis: Axis, rng: np.random.Generator, pattern: str) -> tuple[np.ndarray, np.ndarray]:
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


def replay_events(axis, dep, lam, slo_s, pricing, keep_alive_s, limit, seed, arrivals, samples, pinned, recorder=None) -> dict:
    rng = np.random.default_rng(seed)
    T = axis.length
    vm = dep.vm_options.reset_index(drop=True)
    names = list(vm.option) + list(lam.option)
    share = shares_per_second(dep, axis, names)
    counts = vm_counts(dep, axis)
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
        begun, away = fcfs_starts(mine, slots, hold, overflow_cap(dep, axis, j, o, counts[j], slo_s))
        served, begun, diverted = mine[~away], begun[~away], mine[away]
        to_lambda += [(t, lam_index[dep.overflow]) for t in diverted.tolist()]
        lat = begun - served + o.latency_ms / 1000.0
        sec = np.minimum(served.astype(int), T - 1)
        np.add.at(out["violations"], sec, (lat > slo_s + TOL).astype(float))
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
        out["violations"][s] += lat > slo_s + TOL
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

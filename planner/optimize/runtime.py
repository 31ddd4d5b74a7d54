"""What a plan relies on at run time — stated in the plan, priced in its cost, replayed as written.

``runtime`` in the plan JSON (``PLAN_FORMAT.md``):

- ``router``: ``weighted-round-robin``: each window's shares are spread evenly over its requests (nginx,
  Envoy and HAProxy weighted round robin), so an option receives its share of every second;
- ``overflow``: ``{option, queue_fraction}`` or null: a VM pool's router sends a request to that Lambda
  option when the pool's queue holds ``queue_fraction × (SLO − latency) × throughput`` requests
  (``planner/optimize/overflow.py``); the MILP priced it;
- ``warm_pool``: instances of each Lambda option kept warm by pings in each window
  (``windows[].warm_pool``), so bursts start warm. Sized after the solve, at the window's peak second
  (of its Lambda share, plus the overflow of a request-level run, see ``add_runtime_costs``): the ``percentile`` quantile of a Poisson number of busy instances whose mean is the peak rate
  times the function's duration (an M/G/∞ pool by Little's law). The pings cost
  ``pool × ping price / (keep_alive / 2)`` per second (``warm_pool_cost_usd``);
- ``keep_alive_s`` and ``ping_ms``: the Lambda idle lifetime and the ping's billed duration.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from hetplan.planner.catalog import ServerlessPricing

KEEP_ALIVE_S = 600.0
PING_MS = 100.0  # as the replay bills a keep-warm ping (simulate.PING_MS)
ROUTER = "weighted-round-robin"
ERROR_POINTS = 9  # quantile midpoints of the past errors a forecast window's stated overflow averages over
MAX_REQUESTS_PER_RUN = 10_000_000  # requests one request-level run holds in memory (about 1 GB at its peak)


def runtime_meta(overflow_option: str | None, queue_fraction: float | None) -> dict:
    """The plan's ``runtime`` before the warm pool is sized."""
    overflow = None if overflow_option is None else {"option": overflow_option, "queue_fraction": queue_fraction}
    return {"router": ROUTER, "overflow": overflow, "warm_pool": "windows[].warm_pool",
            "keep_alive_s": KEEP_ALIVE_S, "ping_ms": PING_MS}


def add_runtime_costs(plan, seconds: np.ndarray, pricing: ServerlessPricing, percentile: float, slo_s: float,
                      headroom: np.ndarray | None = None, errors: list | None = None,
                      shapes: np.ndarray | None = None, peak_ratio: np.ndarray | None = None, seed: int = 0):
    """The plan with its overflow and warm pool as they will run, priced: per window ``overflow_rps``,
    ``overflow_cost_usd``, ``warm_pool`` and ``warm_pool_cost_usd``; costs and summary updated.

    The MILP priced the overflow with the per-second fluid, which cannot see the arrivals bunching inside
    a second; the stated figures come from a request-level run of the plan's VM pools on the planning
    load ``seconds`` (its expected requests per second: the trace's for the oracle, the central forecast
    otherwise), with Poisson arrivals inside each second, the weighted round robin and the overflow rule,
    through the exact FCFS engine (``planner/optimize/fcfs.py``).

    Forecast plans only (per window):
    - ``headroom``: the forecast's error margin; the warm pools are sized for the load raised by it (with
      overflow, all of what the forecast missed at the peak second may overflow);
    - ``errors``: the predictor's relative errors of the mean in its backtest before the window (actual /
      forecast − 1). Overflow grows faster than the load, so the stated overflow adds the fluid's mean
      over those errors and over the per-second ``shapes`` of the last observed windows (windows × shapes
      × seconds, mean 1), minus its value at the forecast itself (the last window's shape), with its sign
      (``_error_excess``);
    - ``peak_ratio``: the percentile of the past windows' peak-to-mean ratios; the warm pools also cover a
      peak second that high on the raised load, beyond what the VM pools serve (a spike no forecast sees).
    """
    from scipy.stats import poisson

    from hetplan.planner.optimize.plan import summarize

    options = plan.options.set_index("option")
    lam = options[options.platform == "lambda"]
    windows, a = plan.windows.copy(), plan.assignments
    T = len(windows)
    counts = np.nan_to_num(np.asarray(seconds, float))
    duration_s = (windows.end_s - windows.start_s).to_numpy(float)
    raise_by = np.zeros(T) if headroom is None else np.asarray(headroom, float)
    peak = counts.max(axis=1, initial=0.0)
    if peak_ratio is not None:  # forecast windows: a peak as high as the past ones, on the raised load
        from hetplan.planner.forecast.traces import observed_mean

        peak = np.maximum(peak, observed_mean(seconds) * np.asarray(peak_ratio, float))
    rate = pd.DataFrame(0.0, index=range(T), columns=lam.index)
    for row in a[a.platform == "lambda"].itertuples():
        rate.loc[row.window, row.option] = row.share * peak[row.window] * (1.0 + raise_by[row.window])
    star = (plan.meta.get("runtime") or {}).get("overflow")
    if star:
        per_second = overflow_requests(a, options, counts, star["queue_fraction"], slo_s, seed)
        total = per_second.sum(axis=1)
        if errors is not None and len(errors):
            excess = _error_excess(a, options, counts, star["queue_fraction"], slo_s, errors, shapes)
            total = np.maximum(total + excess, 0.0)
        price = float(lam.cost_per_request_usd[star["option"]])
        windows["overflow_rps"] = total / duration_s
        windows["overflow_cost_usd"] = total * price
        beyond = _beyond_pools(a, options, peak * (1.0 + raise_by))
        rate[star["option"]] += np.maximum(per_second.max(axis=1, initial=0.0) + raise_by * peak, beyond)
    duration = (lam.duration_ms.fillna(lam.latency_ms) / 1000.0).reindex(rate.columns)
    busy = rate.to_numpy() * duration.to_numpy()[None, :]
    pool = np.where(busy > 0, poisson.ppf(percentile, np.maximum(busy, 1e-12)), 0.0)
    ping = np.array([pricing.cost_per_request(PING_MS, m) for m in lam.memory_mb.reindex(rate.columns)])
    windows["headroom"] = raise_by
    windows["warm_pool"] = [{name: int(n) for name, n in zip(rate.columns, row) if n > 0} for row in pool]
    windows["warm_pool_cost_usd"] = pool @ ping * duration_s / (KEEP_ALIVE_S / 2.0)
    assigned = a.groupby("window").cost_usd.sum().reindex(range(T), fill_value=0.0).to_numpy()
    windows["cost_usd"] = assigned + windows.get("overflow_cost_usd", 0.0) + windows.warm_pool_cost_usd
    out = dataclasses.replace(plan, windows=windows)
    return dataclasses.replace(out, summary=summarize(out))


def _beyond_pools(a: pd.DataFrame, options: pd.DataFrame, peak: np.ndarray) -> np.ndarray:
    """Per window: what the VM pools cannot serve at a second of ``peak`` requests, split by their shares."""
    out = np.zeros(len(peak))
    for row in a[a.platform == "vm"].itertuples():
        routed = row.share * peak[row.window]
        out[row.window] += max(routed - row.count * options.loc[row.option].throughput_rps, 0.0)
    return out


def overflow_requests(a: pd.DataFrame, options: pd.DataFrame, counts: np.ndarray, queue_fraction: float,
                      slo_s: float, seed: int = 0) -> np.ndarray:
    """(windows × seconds) requests the VM pools overflow, request by request (see ``add_runtime_costs``).

    The run holds every request in memory (about 100 bytes each), so a load of more than
    ``MAX_REQUESTS_PER_RUN`` requests runs in parts of consecutive windows, each starting with empty queues
    (a backlog crossing a part's boundary is dropped: at most one window's drain per part). A single window
    beyond the limit is priced by the per-second fluid (``overflow.diverted_per_second``): at tens of
    thousands of requests a second, the bunching inside a second that the request-level run adds is small
    next to the second's own count."""
    T = counts.shape[0]
    per_window = np.nan_to_num(counts).sum(axis=1)
    out = np.zeros(counts.shape)
    start = 0
    while start < T:
        if per_window[start] > MAX_REQUESTS_PER_RUN:
            out[start] = _fluid_overflow(a[a.window == start].assign(window=0), options, counts[start:start + 1],
                                         queue_fraction, slo_s)[0]
            start += 1
            continue
        end, total = start + 1, per_window[start]
        while end < T and total + per_window[end] <= MAX_REQUESTS_PER_RUN:
            total, end = total + per_window[end], end + 1
        part = a[(a.window >= start) & (a.window < end)]
        out[start:end] = _request_level(part.assign(window=part.window - start), options, counts[start:end],
                                        queue_fraction, slo_s, seed + start)
        start = end
    return out


def _fluid_overflow(a: pd.DataFrame, options: pd.DataFrame, counts: np.ndarray, queue_fraction: float,
                    slo_s: float, scale: np.ndarray | float = 1.0) -> np.ndarray:
    """(windows × seconds) what the VM pools divert by the per-second fluid (the MILP's own recursion), with
    each window's load and routed rates multiplied by ``scale`` (one factor per window, or one for all)."""
    from hetplan.planner.optimize.overflow import diverted_per_second

    scale = np.broadcast_to(np.asarray(scale, float), (counts.shape[0],))
    out = np.zeros(counts.shape)
    for name, rows in a[a.platform == "vm"].groupby("option"):
        o = options.loc[name]
        n, routed = _per_window(rows, counts.shape[0])
        out += diverted_per_second(counts * scale[:, None], n * o.throughput_rps, routed * scale,
                                   max(slo_s - o.latency_ms / 1000.0, 0.0), queue_fraction)
    return out


def _request_level(a: pd.DataFrame, options: pd.DataFrame, counts: np.ndarray, queue_fraction: float,
                   slo_s: float, seed: int) -> np.ndarray:
    """:func:`overflow_requests` in one run: Poisson arrivals inside each second, the weighted round robin,
    the exact FCFS engine with the overflow cap."""
    from hetplan.planner.optimize.fcfs import fcfs_starts

    rng = np.random.default_rng(seed)
    T, W = counts.shape
    flat = counts.ravel()
    whole = np.floor(flat).astype(np.int64)
    whole += (rng.random(flat.size) < flat - whole).astype(np.int64)
    second = np.repeat(np.arange(flat.size), whole)
    times = np.sort(second + rng.random(second.size))
    second = times.astype(np.int64)
    window = second // W
    vm = a[a.platform == "vm"]
    names = sorted(set(vm.option))
    share = np.zeros((T, len(names)))
    for k, name in enumerate(names):
        rows = vm[vm.option == name]
        share[rows.window.to_numpy(), k] = rows.share.to_numpy(float)
    cum = np.cumsum(share, axis=1)
    pick = (np.arange(times.size) * ((5 ** 0.5 - 1) / 2)) % 1.0  # weighted round robin: a low-discrepancy spread
    choice = np.zeros(times.size, dtype=np.int64)
    for k in range(len(names)):
        choice += pick >= cum[window, k]
    out = np.zeros(flat.size)
    for k, name in enumerate(names):
        o = options.loc[name]
        n, _ = _per_window(vm[vm.option == name], T)
        slots = np.repeat(n * o.servers, W)
        cap = np.repeat(n * o.throughput_rps, W) * queue_fraction * max(slo_s - o.latency_ms / 1000.0, 0.0)
        _, away = fcfs_starts(times[choice == k], slots, o.servers / o.throughput_rps, cap)
        np.add.at(out, second[choice == k][away], 1.0)
    return out.reshape(T, W)


def _per_window(rows: pd.DataFrame, T: int) -> tuple[np.ndarray, np.ndarray]:
    """One VM option's assignments as per-window arrays: VM count and routed rate (0 where unused)."""
    n, routed = np.zeros(T), np.zeros(T)
    n[rows.window.to_numpy()] = rows["count"].to_numpy(float)
    routed[rows.window.to_numpy()] = rows.rate_rps.to_numpy(float)
    return n, routed


def _error_excess(a: pd.DataFrame, options: pd.DataFrame, counts: np.ndarray, queue_fraction: float, slo_s: float,
                  errors: list, shapes: np.ndarray | None = None) -> np.ndarray:
    """Per window, in requests: the fluid overflow expected over the forecast's past errors and past shapes,
    minus the fluid overflow at the forecast itself (``counts``: the last window's shape).

    The expectation is an equal-weight mean over the ``ERROR_POINTS`` quantile midpoints of the window's past
    relative errors, each applied to every past shape, the fluid evaluated at each point (no grid, so no
    interpolation error and no cap on how far an error reaches). The difference is kept with its sign: the last
    shape is one draw of the same shapes, calmer or burstier than their mean, and cutting the calmer case at
    zero would bias the statement upward. The caller keeps the window's total overflow at 0 or more."""
    T = counts.shape[0]
    mean = counts.mean(axis=1, keepdims=True)
    variants = ([np.nan_to_num(shapes[:, k, :counts.shape[1]]) * mean for k in range(shapes.shape[1])]
                if shapes is not None else [counts])
    scale = np.ones((T, ERROR_POINTS))
    midpoints = (np.arange(ERROR_POINTS) + 0.5) / ERROR_POINTS
    for t in range(min(T, len(errors))):
        past = np.asarray(errors[t], float)
        if past.size:
            scale[t] = np.maximum(1.0 + np.quantile(past, midpoints), 0.0)
    at_forecast = _fluid_overflow(a, options, counts, queue_fraction, slo_s).sum(axis=1)
    expected = sum(_fluid_overflow(a, options, load, queue_fraction, slo_s, scale[:, k]).sum(axis=1)
                   for load in variants for k in range(ERROR_POINTS))
    return expected / (ERROR_POINTS * len(variants)) - at_forecast

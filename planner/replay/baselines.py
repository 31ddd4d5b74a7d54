"""The baselines hetplan is compared with; each turns a :class:`Scenario` into a Deployment to replay, using
the scenario's tools (predictor, overflow, warm pool, router) wherever its design allows.

- ``vm-peak``:     VM-only, a static fleet for the trace's peak second (no Lambda by design);
- ``vm-reactive``: Spock-like: target-tracking autoscaling of one instance type (the cheapest model meeting
  the accuracy target), with Lambda taking the overflow and a warm pool when the tools include them;
- ``lambda-only``: every request on Lambda, the cheapest memory size meeting the SLO, warm pool from the tools;
- ``mark-like``:   MArk: predictive scaling of one model in one family (the cheapest mix covering the forecast
  per-second quantile, padded by ``headroom``), Lambda taking the overflow, warm pool from the tools.
planner/REPLAY.md gives their papers, rules and defaults.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pandas as pd

from hetplan.planner.optimize.overflow import OVERFLOW_FRACTION
from hetplan.planner.replay.deployment import VM_COLUMNS, Deployment
from hetplan.planner.replay.planned import warm_pool
from hetplan.planner.replay.reactive import with_reactive_scaling
from hetplan.planner.replay.rolling import configuration
from hetplan.planner.replay.scenario import (Scenario, accurate_lambda, boot_lead, concurrency, first_second,
                                             fleet_from_counts, lam_frame, last_second, pool_peaks, predicted,
                                             single_model_vm, vm_frame)


def one_step_forecasts(sc: Scenario, stats: pd.DataFrame | None = None) -> pd.DataFrame:
    """Each window forecast one step ahead with the scenario's predictor (as every predictive policy sees it)."""
    stats = sc.stats() if stats is None else stats
    return pd.concat([predicted(sc, stats, k, 1, sc.tools.predictor) for k in range(len(stats))], ignore_index=True)


def _pool(sc: Scenario, vm: pd.DataFrame, lam: pd.Series, counts: np.ndarray, shares: np.ndarray,
          forecast: pd.DataFrame, spill: str | None) -> pd.DataFrame:
    """The shared warm-pool rule (``planned.warm_pool`` at :func:`scenario.pool_peaks`) for per-window VM
    ``counts`` and ``shares`` (windows × VM options; the rest of each window goes to ``lam``)."""
    starts = forecast.start_s.to_numpy(float)
    count_frame = pd.DataFrame(counts, columns=list(vm.option)).assign(start_s=starts)
    share_frame = pd.DataFrame(shares, columns=list(vm.option)).assign(start_s=starts)
    share_frame[lam.option] = np.clip(1.0 - shares.sum(axis=1), 0.0, 1.0) if shares.size else 1.0
    return warm_pool(vm, lam_frame([lam]), count_frame, share_frame, pool_peaks(sc, forecast, boot_lead(sc)), spill,
                     concurrency(sc))


def vm_peak(sc: Scenario) -> Deployment:
    """Static VMs for the trace's peak per-second rate, at the SLO-safe capacity."""
    o = single_model_vm(sc)
    n = max(1, math.ceil(sc.trace.requests.max() / o.capacity_rps - 1e-9))
    t0 = first_second(sc)
    vms = pd.DataFrame({"option": [o.option] * n, "launch_s": float(t0 - o.boot_seconds), "stop_s": math.inf})
    return Deployment(vm_frame([o]), lam_frame([]), vms, pd.DataFrame({"start_s": [t0], o.option: [1.0]}),
                      name="vm-peak", router=sc.tools.router,
                      config=configuration(sc, "none (static at the trace's peak)", "peak second", o.instance_type,
                                           overflow=False, warm=False, reactive=False))


def vm_reactive(sc: Scenario, target_utilization: float = 0.6, period_s: int = 60, cooldown_s: int = 300,
                scale_in_periods: int = 15) -> Deployment:
    """Target tracking (EC2 Auto Scaling style) on the last period's mean rate per VM vs ``target_utilization``
    × throughput. Scale-out at once (pending VMs count); scale-in one step to the desired size once the
    desired size stayed lower for ``scale_in_periods`` periods and ``cooldown_s`` passed since the last change.
    With the tools' overflow, Lambda takes what the VMs cannot serve within the SLO (Spock)."""
    o = single_model_vm(sc)
    t0, t1 = first_second(sc), last_second(sc)
    rate = np.zeros(t1 - t0 + 1)
    rate[sc.trace.second.to_numpy() - t0] = sc.trace.requests.to_numpy()
    per_vm = target_utilization * o.throughput_rps
    desired_of = (lambda load: max(1, math.ceil(load / per_vm - 1e-9)))
    alive = [float(t0 - o.boot_seconds)] * desired_of(rate[:period_s].mean())  # warm start
    rows, last_change, low_streak = [], -math.inf, 0
    for t in range(t0 + period_s, t1 + 1, period_s):
        desired = desired_of(rate[t - t0 - period_s:t - t0].mean())  # the past period only
        last_change, low_streak = tracking_step(alive, desired, t, o.option, rows, last_change, low_streak,
                                                scale_in_periods, cooldown_s)
    rows += [(o.option, launch, math.inf) for launch in alive]
    vms = pd.DataFrame(rows, columns=["option", "launch_s", "stop_s"])
    spill = accurate_lambda(sc) if sc.tools.overflow and len(sc.options.lam) else None
    dep = Deployment(vm_frame([o]), lam_frame([spill] if spill is not None else []), vms,
                     pd.DataFrame({"start_s": [t0], o.option: [1.0]}), name="vm-reactive", router=sc.tools.router,
                     overflow=None if spill is None else spill.option, overflow_fraction=OVERFLOW_FRACTION,
                     config=configuration(sc, "none (reactive)", f"target utilization {target_utilization:g}",
                                          o.instance_type, overflow=spill is not None,
                                          warm=sc.tools.warm_pool and spill is not None,
                                          target_utilization=target_utilization, reactive="by design"))
    if spill is not None and sc.tools.warm_pool:
        stats = sc.stats()
        frame = stats.assign(peak_rps=0.0)  # reactive: no forecast, the pool covers the seconds seen
        starts = stats.start_s.to_numpy(float)
        alive = [((vms.launch_s + o.boot_seconds <= s) & (vms.stop_s > s)).sum() for s in starts]
        dep = replace(dep, warm=_pool(sc, vm_frame([o]), spill, np.asarray(alive, float)[:, None],
                                      np.ones((len(stats), 1)), frame, spill.option))
    return dep


def tracking_step(alive: list, desired: int, t: int, option: str, stopped: list, last_change: float, low_streak: int,
                  scale_in_periods: int, cooldown_s: int) -> tuple[float, int]:
    """One target-tracking decision at ``t`` on the launch times ``alive``: scale out at once; scale in to
    ``desired`` (newest first, appended to ``stopped``) after ``scale_in_periods`` low periods and ``cooldown_s``
    since the last change. Returns the new (last change, low streak)."""
    if desired > len(alive):
        alive += [float(t)] * (desired - len(alive))
        return t, 0
    if desired < len(alive):
        low_streak += 1
        if low_streak >= scale_in_periods and t - last_change >= cooldown_s:
            while len(alive) > desired:
                stopped.append((option, alive.pop(), float(t)))
            return t, 0
        return last_change, low_streak
    return last_change, 0


def lambda_only(sc: Scenario) -> Deployment:
    """Every request on one Lambda option: the cheapest meeting the SLO and the accuracy target; with the
    tools' warm pool, instances kept warm for each window's forecast (and seen) peak."""
    lam = accurate_lambda(sc)
    empty = pd.DataFrame(columns=["option", "launch_s", "stop_s"])
    dep = Deployment(pd.DataFrame(columns=VM_COLUMNS), lam_frame([lam]), empty,
                     pd.DataFrame({"start_s": [first_second(sc)], lam.option: [1.0]}), name="lambda-only",
                     router=sc.tools.router,
                     config=configuration(sc, sc.tools.predictor if sc.tools.warm_pool else "none", "none",
                                          "none", overflow=False, reactive=False))
    if sc.tools.warm_pool:
        forecast = one_step_forecasts(sc)
        none = pd.DataFrame(columns=VM_COLUMNS)
        dep = replace(dep, warm=_pool(sc, none, lam, np.zeros((len(forecast), 0)), np.zeros((len(forecast), 0)),
                                      forecast, None), forecast=forecast)
    return dep


def _cheapest_mix(capacity: np.ndarray, price: np.ndarray, need: float) -> np.ndarray:
    """Fewest dollars of VMs (sizes of one family) whose capacity covers ``need``: the largest cost-efficient
    size for the bulk, every smaller combination for the remainder (sizes are few, so enumerate)."""
    best, best_cost = np.zeros(len(capacity)), math.inf
    bulk = int(np.argmin(price / capacity))
    for n_bulk in range(int(need // capacity[bulk]) + 2):
        rest = max(0.0, need - n_bulk * capacity[bulk])
        for j in range(len(capacity)):
            n = math.ceil(rest / capacity[j] - 1e-9)
            mix = np.zeros(len(capacity))
            mix[bulk] += n_bulk
            mix[j] += n
            cost = mix @ price
            if cost < best_cost - 1e-12:
                best, best_cost = mix, cost
    return best


def mark_like(sc: Scenario, headroom: float = 0.0, forecast: pd.DataFrame | None = None,
              reactive: bool = False) -> Deployment:
    """Per window: the cheapest fleet of one family and one model covering the forecast per-second quantile
    (``q_rps``) raised by ``headroom`` (MArk's predict-then-pad; its knob), launched a boot delay ahead;
    Lambda takes what the VMs cannot serve within the SLO, with the tools' warm pool. ``forecast``: the
    one-step forecasts if already made (a sweep of ``headroom`` reuses them); ``reactive``: the scale-out
    layer of ``reactive.py`` under the fleet (a tool MArk's design may take)."""
    o = single_model_vm(sc)
    family = sc.options.vm[(sc.options.vm.model == o.model)
                           & (sc.options.vm.instance_type.str.split(".").str[0] == o.instance_type.split(".")[0])]
    family = family.sort_values("price_per_hour_usd").reset_index(drop=True)
    lam = accurate_lambda(sc)
    forecast = one_step_forecasts(sc) if forecast is None else forecast
    counts = np.array([_cheapest_mix(family.capacity_rps.to_numpy(), family.price_per_hour_usd.to_numpy(),
                                     float(q) * (1.0 + headroom)) for q in forecast.q_rps])
    starts = forecast.start_s.to_numpy(float)
    vms = fleet_from_counts(starts, counts, list(family.option), family.boot_seconds.to_numpy(), math.inf)
    capacity = counts * family.throughput_rps.to_numpy()[None, :]
    shares = np.divide(capacity, capacity.sum(axis=1, keepdims=True), out=np.zeros_like(capacity),
                       where=capacity.sum(axis=1, keepdims=True) > 0)
    routes = pd.DataFrame(shares, columns=list(family.option)).assign(**{lam.option: np.where(capacity.sum(axis=1) > 0, 0.0, 1.0)})
    routes.insert(0, "start_s", starts)
    dep = Deployment(vm_frame(list(family.itertuples(index=False))), lam_frame([lam]), vms, routes,
                     overflow=lam.option, name="mark-like", overflow_fraction=OVERFLOW_FRACTION,
                     router=sc.tools.router, forecast=forecast,
                     config=configuration(sc, sc.tools.predictor, f"pad +{100 * headroom:g}%",
                                          ",".join(family.instance_type), overflow=True, headroom_pad=headroom,
                                          reactive=reactive))
    if sc.tools.warm_pool:
        dep = replace(dep, warm=_pool(sc, family, lam, counts, shares, forecast, lam.option))
    if reactive:  # the scale-out tool, when its tuning takes it (compare.KNOBS)
        dep = with_reactive_scaling(sc.trace, dep, sc.targets.max_utilization)
    return dep

"""The baselines hetplan is compared with; each turns a :class:`Scenario` into a Deployment to replay.

- ``vm-reactive``: target-tracking autoscaling (one type, the cheapest model meeting the accuracy target);
- ``vm-peak``:     the same fleet held static at the trace's peak;
- ``lambda-only``: every request on Lambda, cheapest memory size meeting the SLO;
- ``mark-like``:   predict-then-pad VM scaling in one family, Lambda taking the overflow (MArk / Spock style).
planner/REPLAY.md gives their rules and defaults.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pandas as pd

from hetplan.planner.optimize.overflow import OVERFLOW_FRACTION
from hetplan.planner.replay.deployment import VM_COLUMNS, Deployment
from hetplan.planner.replay.planned import warm_pool
from hetplan.planner.replay.scenario import (Scenario, accurate_lambda, concurrency, first_second, fleet_from_counts,
                                             lam_frame, last_second, boot_lead, predicted, seen_peak, single_model_vm,
                                             vm_frame)


def vm_peak(sc: Scenario) -> Deployment:
    """Static VMs for the trace's peak per-second rate, at the SLO-safe capacity."""
    o = single_model_vm(sc)
    n = max(1, math.ceil(sc.trace.requests.max() / o.capacity_rps - 1e-9))
    t0 = first_second(sc)
    vms = pd.DataFrame({"option": [o.option] * n, "launch_s": float(t0 - o.boot_seconds), "stop_s": math.inf})
    return Deployment(vm_frame([o]), lam_frame([]), vms, pd.DataFrame({"start_s": [t0], o.option: [1.0]}), name="vm-peak")


def vm_reactive(sc: Scenario, target_utilization: float = 0.6, period_s: int = 60, cooldown_s: int = 300,
                scale_in_periods: int = 15) -> Deployment:
    """Target tracking (EC2 Auto Scaling style) on the last period's mean rate per VM vs ``target_utilization``
    × throughput. Scale-out at once (pending VMs count); scale-in one step to the desired size once the
    desired size stayed lower for ``scale_in_periods`` periods and ``cooldown_s`` passed since the last change."""
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
        if desired > len(alive):
            alive += [float(t)] * (desired - len(alive))
            last_change, low_streak = t, 0
        elif desired < len(alive):
            low_streak += 1
            if low_streak >= scale_in_periods and t - last_change >= cooldown_s:
                while len(alive) > desired:
                    rows.append((o.option, alive.pop(), float(t)))
                last_change, low_streak = t, 0
        else:
            low_streak = 0
    rows += [(o.option, launch, math.inf) for launch in alive]
    vms = pd.DataFrame(rows, columns=["option", "launch_s", "stop_s"])
    return Deployment(vm_frame([o]), lam_frame([]), vms, pd.DataFrame({"start_s": [t0], o.option: [1.0]}),
                      name="vm-reactive")


def lambda_only(sc: Scenario) -> Deployment:
    """Every request on one Lambda option: the cheapest meeting the SLO and the accuracy target."""
    lam = accurate_lambda(sc)
    empty = pd.DataFrame(columns=["option", "launch_s", "stop_s"])
    return Deployment(pd.DataFrame(columns=VM_COLUMNS), lam_frame([lam]), empty,
                      pd.DataFrame({"start_s": [first_second(sc)], lam.option: [1.0]}), name="lambda-only")


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


def mark_like(sc: Scenario, predictor: str = "peak-aware", warm: bool = False,
              warm_lookback_s: float = 86400) -> Deployment:
    """Per window: the cheapest fleet of one family and one model covering the padded forecast of q_rps
    (``peak-aware`` = predict-then-pad), launched a boot delay ahead; Lambda takes what the VMs cannot
    serve within the SLO. ``warm=True`` adds hetplan's warm pool (an ablation, not MArk's design)."""
    o = single_model_vm(sc)
    family = sc.options.vm[(sc.options.vm.model == o.model)
                           & (sc.options.vm.instance_type.str.split(".").str[0] == o.instance_type.split(".")[0])]
    family = family.sort_values("price_per_hour_usd").reset_index(drop=True)
    lam = accurate_lambda(sc)
    stats = sc.stats()
    counts = np.zeros((len(stats), len(family)))
    peaks = np.zeros(len(stats))
    for k in range(len(stats)):
        forecast = predicted(sc, stats, k, 1, predictor)
        need = float(forecast.q_rps.iloc[0])
        counts[k] = _cheapest_mix(family.capacity_rps.to_numpy(), family.price_per_hour_usd.to_numpy(), need)
        peaks[k] = max(float(forecast.peak_rps.iloc[0]), seen_peak(sc, float(stats.start_s.iloc[k]) - boot_lead(sc), warm_lookback_s))
    starts = stats.start_s.to_numpy(float)
    vms = fleet_from_counts(starts, counts, list(family.option), family.boot_seconds.to_numpy(), math.inf)
    capacity = counts * family.throughput_rps.to_numpy()[None, :]
    shares = np.divide(capacity, capacity.sum(axis=1, keepdims=True), out=np.zeros_like(capacity),
                       where=capacity.sum(axis=1, keepdims=True) > 0)
    routes = pd.DataFrame(shares, columns=list(family.option)).assign(**{lam.option: np.where(capacity.sum(axis=1) > 0, 0.0, 1.0)})
    routes.insert(0, "start_s", starts)
    dep = Deployment(vm_frame(list(family.itertuples(index=False))), lam_frame([lam]), vms, routes,
                     overflow=lam.option, name="mark-like", overflow_fraction=OVERFLOW_FRACTION)
    if warm:
        count_frame = pd.DataFrame(counts, columns=list(family.option)).assign(start_s=starts)
        dep = replace(dep, warm=warm_pool(family, lam_frame([lam]), count_frame, routes, peaks, lam.option,
                                          concurrency(sc)))
    return dep

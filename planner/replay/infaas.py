"""``infaas-like``: INFaaS (Romero et al., USENIX ATC 2021), model-less serving. At each decision it picks the
cheapest *model variant* (model × instance type) that meets the accuracy target and the SLO at the load it
currently sees, and scales it on a utilization threshold (its knob), reactively: no predictor by design.

Every ``period_s`` (60 s), from the last period's mean rate L only:
- the variant: argmin over VM options with accuracy ≥ target of price · ⌈L / (threshold · throughput)⌉;
- the same variant: scale out at once (pending VMs count); scale in after ``scale_in_periods`` low periods and
  ``cooldown_s`` since the last change (as ``vm-reactive``);
- another variant, cheapest for ``scale_in_periods`` periods in a row: launch its VMs now, move the traffic when
  they have booted, then stop the old ones (no gap in service, the overlap paid).
Lambda takes what the VMs cannot serve within the SLO, with a warm pool, when the tools include them.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pandas as pd

from hetplan.errors import HetplanError
from hetplan.planner.optimize.overflow import OVERFLOW_FRACTION
from hetplan.planner.replay.baselines import tracking_step
from hetplan.planner.replay.deployment import Deployment
from hetplan.planner.replay.planned import warm_pool
from hetplan.planner.replay.rolling import configuration
from hetplan.planner.replay.scenario import (Scenario, accurate_lambda, boot_lead, concurrency, first_second, lam_frame,
                                             last_second, pool_peaks, vm_frame)


def _variants(sc: Scenario) -> pd.DataFrame:
    vm = sc.options.vm
    ok = vm[vm.accuracy >= sc.accuracy_target - 1e-12].reset_index(drop=True)
    if ok.empty:
        raise HetplanError(f"no VM option reaches top-1 {sc.accuracy_target:.1%} on its own: lower the accuracy target")
    return ok


def _cheapest(variants: pd.DataFrame, load: float, threshold: float) -> tuple[int, int]:
    """(variant index, VMs) costing least per hour for ``load`` at ``threshold`` utilization; ties: the cheaper VM."""
    per_vm = threshold * variants.throughput_rps.to_numpy(float)
    counts = np.maximum(1, np.ceil(load / per_vm - 1e-9)).astype(int)
    cost = counts * variants.price_per_hour_usd.to_numpy(float)
    best = int(np.lexsort((variants.price_per_hour_usd.to_numpy(float), cost))[0])
    return best, int(counts[best])


def infaas_like(sc: Scenario, threshold: float = 0.6, period_s: int = 60, cooldown_s: int = 300,
                scale_in_periods: int = 15) -> Deployment:
    variants = _variants(sc)
    boot = variants.boot_seconds.to_numpy(float)
    t0, t1 = first_second(sc), last_second(sc)
    rate = np.zeros(t1 - t0 + 1)
    rate[sc.trace.second.to_numpy() - t0] = sc.trace.requests.to_numpy()
    current, n = _cheapest(variants, rate[:period_s].mean(), threshold)
    alive = [float(t0 - boot[current])] * n  # warm start, as vm-reactive
    rows, routes = [], [(float(t0), current)]
    last_change, low_streak, other, other_streak = -math.inf, 0, None, 0
    for t in range(t0 + period_s, t1 + 1, period_s):
        load = rate[t - t0 - period_s:t - t0].mean()  # the past period only
        best, _ = _cheapest(variants, load, threshold)
        other, other_streak = (best, other_streak + 1) if best == other else (best, 1)
        if best != current and other_streak >= scale_in_periods and t >= routes[-1][0]:
            desired = max(1, math.ceil(load / (threshold * variants.throughput_rps.iloc[best]) - 1e-9))
            ready = t + boot[best]
            rows += [(variants.option.iloc[current], launch, ready) for launch in alive]
            current, alive = best, [float(t)] * desired
            routes.append((ready, current))
            last_change, low_streak, other_streak = t, 0, 0
            continue
        desired = max(1, math.ceil(load / (threshold * variants.throughput_rps.iloc[current]) - 1e-9))
        last_change, low_streak = tracking_step(alive, desired, t, variants.option.iloc[current], rows, last_change,
                                                low_streak, scale_in_periods, cooldown_s)
    rows += [(variants.option.iloc[current], launch, math.inf) for launch in alive]
    vms = pd.DataFrame(rows, columns=["option", "launch_s", "stop_s"])
    used = variants[variants.option.isin(set(vms.option))].reset_index(drop=True)
    route_frame = pd.DataFrame([{"start_s": s, **{o: float(o == variants.option.iloc[j]) for o in used.option}}
                                for s, j in routes])
    spill = accurate_lambda(sc) if sc.tools.overflow and len(sc.options.lam) else None
    dep = Deployment(vm_frame(list(used.itertuples(index=False))), lam_frame([spill] if spill is not None else []), vms,
                     route_frame, name="infaas-like", router=sc.tools.router,
                     overflow=None if spill is None else spill.option, overflow_fraction=OVERFLOW_FRACTION,
                     config=configuration(sc, "none (reactive)", f"utilization threshold {threshold:g}",
                                          ",".join(sorted(set(used.instance_type))), overflow=spill is not None,
                                          warm=sc.tools.warm_pool and spill is not None, threshold=threshold,
                                          variants=",".join(used.option), reactive="by design"))
    if spill is not None and sc.tools.warm_pool:
        dep = replace(dep, warm=_warm(sc, used, vms, route_frame, spill))
    return dep


def _warm(sc: Scenario, used: pd.DataFrame, vms: pd.DataFrame, routes: pd.DataFrame, spill: pd.Series) -> pd.DataFrame:
    """The shared warm-pool rule for the VMs serving at each window start (reactive: the seconds seen, no forecast)."""
    stats = sc.stats()
    starts = stats.start_s.to_numpy(float)
    boot = dict(zip(used.option, used.boot_seconds))
    counts = np.array([[((vms.option == o) & (vms.launch_s + boot[o] <= s) & (vms.stop_s > s)).sum() for o in used.option]
                       for s in starts], float)
    row = np.searchsorted(routes.start_s.to_numpy(float), starts, side="right") - 1
    shares = routes[list(used.option)].to_numpy(float)[np.clip(row, 0, None)]
    count_frame = pd.DataFrame(counts, columns=list(used.option)).assign(start_s=starts)
    share_frame = pd.DataFrame(shares, columns=list(used.option)).assign(start_s=starts)
    share_frame[spill.option] = 0.0
    return warm_pool(used, lam_frame([spill]), count_frame, share_frame, pool_peaks(sc, stats.assign(peak_rps=0.0), boot_lead(sc)),
                     spill.option, concurrency(sc))

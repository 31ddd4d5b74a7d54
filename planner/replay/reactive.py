"""A reactive scale-out layer under a planned fleet (``Tools.reactive``): what a target-tracking autoscaler adds
between decisions when the load runs ahead of the plan.

Every ``period_s`` seconds, for each VM option, the load routed to it over the period just past (its share of
the arrivals) is compared with the capacity serving at that utilization target: the planned VMs plus the ones
this layer added, each at ``target_utilization × throughput_rps``. A shortfall launches the VMs that cover it
at once (they serve after their boot); added VMs stop, newest first, once the routed load has stayed below
what the planned VMs carry for ``scale_in_periods`` periods. The layer never stops a planned VM, so the plan
is a floor. It sees only arrivals before each evaluation, as ``vm-reactive`` does.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pandas as pd

from hetplan.planner.replay.deployment import Deployment, values_at


def with_reactive_scaling(trace: pd.DataFrame, dep: Deployment, target_utilization: float, period_s: int = 60,
                          scale_in_periods: int = 15) -> Deployment:
    """``dep`` with the VMs the layer launches (see the module docstring)."""
    vm = dep.vm_options.reset_index(drop=True)
    if vm.empty or trace.empty:
        return dep
    names = list(vm.option)
    t0, t1 = int(trace.second.iloc[0]), int(trace.second.iloc[-1])
    rate = np.zeros(t1 - t0 + 1)
    rate[trace.second.to_numpy(np.int64) - t0] = trace.requests.to_numpy(float)
    checks = np.arange(t0 + period_s, t1 + 1, period_s)
    if checks.size == 0:
        return dep
    share = values_at(dep.routes, names, checks - 1.0)  # the routing of the period just past
    boot = vm.boot_seconds.to_numpy(float)
    launch, stop = dep.vms.launch_s.to_numpy(float), dep.vms.stop_s.to_numpy(float)
    option = dep.vms.option.map({n: j for j, n in enumerate(names)}).to_numpy(int)
    per_vm = target_utilization * vm.throughput_rps.to_numpy(float)
    rows = []
    for j, name in enumerate(names):
        mine = option == j
        added: list[float] = []
        low = 0
        for k, t in enumerate(checks):
            load = rate[t - t0 - period_s:t - t0].mean() * share[k, j]
            planned = int(((launch[mine] + boot[j] <= t) & (stop[mine] > t)).sum())
            want = math.ceil(load / per_vm[j] - 1e-9) if per_vm[j] > 0 else 0
            if want > planned + len(added):
                added += [float(t)] * (want - planned - len(added))
                low = 0
            elif added and want <= planned:
                low += 1
                if low >= scale_in_periods:
                    rows += [(name, added.pop(), float(t)) for _ in range(len(added))]
                    low = 0
            else:
                low = 0
        rows += [(name, start, math.inf) for start in added]
    if not rows:
        return dep
    extra = pd.DataFrame(rows, columns=["option", "launch_s", "stop_s"])
    return replace(dep, vms=pd.concat([dep.vms, extra], ignore_index=True))

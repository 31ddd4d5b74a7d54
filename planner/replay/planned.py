"""Deployments from MILP plans: a plan file as written (``plan_deployment``), the per-window counts and
shares of a plan (``plan_windows``), the fleet and routes they make (``deployment_of``) and the warm-pool
rule every policy shares (``warm_pool``). The MILP policies themselves are in :mod:`.rolling`.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pandas as pd

from hetplan.errors import HetplanError, did_you_mean
from hetplan.planner.optimize.model import Limits, Windows
from hetplan.planner.optimize.options import Options, Targets
from hetplan.planner.optimize.overflow import OVERFLOW_FRACTION
from hetplan.planner.optimize.solve import solve_plan
from hetplan.planner.replay.deployment import VM_COLUMNS, Deployment
from hetplan.planner.replay.scenario import PlanFn, fleet_from_counts, lam_frame


def plan_windows(plan: dict) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """A PLAN_FORMAT.md dict as (vm options, lambda options, per-window counts, per-window shares);
    counts/shares have ``start_s``, ``end_s`` and one column per option."""
    options = pd.DataFrame(plan["options"])
    vm = options[options.platform == "vm"].reset_index(drop=True)
    lam = options[options.platform == "lambda"].reset_index(drop=True)
    rows_c, rows_s = [], []
    for w in plan["windows"]:
        base = {"start_s": float(w["start_s"]), "end_s": float(w["end_s"])}
        c, s = dict(base), dict(base)
        for a in w["assignments"]:
            if a["platform"] == "vm":
                c[a["option"]] = c.get(a["option"], 0) + int(a["count"])
            s[a["option"]] = s.get(a["option"], 0.0) + float(a.get("share") or 0.0)
        rows_c.append(c)
        rows_s.append(s)
    counts = pd.DataFrame(rows_c).reindex(columns=["start_s", "end_s", *vm.option]).fillna(0.0)
    shares = pd.DataFrame(rows_s).reindex(columns=["start_s", "end_s", *vm.option, *lam.option]).fillna(0.0)
    return vm, lam, counts, shares


def deployment_of(vm: pd.DataFrame, lam: pd.DataFrame, counts: pd.DataFrame, shares: pd.DataFrame,
                overflow: str | None, name: str, end_s: float = math.inf) -> Deployment:
    names = list(vm.option)
    vms = fleet_from_counts(counts.start_s.to_numpy(float), counts[names].to_numpy(float), names,
                            vm.boot_seconds.to_numpy(float), end_s)
    routes = shares.drop(columns="end_s")
    # after the last window nothing is routed (its requests count as unrouted violations)
    routes = pd.concat([routes, pd.DataFrame({"start_s": [float(shares.end_s.iloc[-1])]})], ignore_index=True).fillna(0.0)
    lam_opts = lam.copy()
    if "duration_ms" in lam_opts:
        lam_opts["duration_ms"] = lam_opts.duration_ms.fillna(lam_opts.latency_ms)
    return Deployment(vm[list(VM_COLUMNS)].reset_index(drop=True), lam_frame(lam_opts), vms, routes,
                      overflow=overflow, name=name, overflow_fraction=OVERFLOW_FRACTION)


def warm_pool(vm: pd.DataFrame, lam: pd.DataFrame, counts: pd.DataFrame, shares: pd.DataFrame, peak_rps: np.ndarray,
              overflow: str | None, limit: float) -> pd.DataFrame:
    """Lambda instances to keep warm per window: what each Lambda share needs at the window's peak rate, plus
    for the overflow function what the VMs cannot take at that peak (throughput, not the SLO-safe capacity),
    by Little's law; the total is capped at the concurrency limit."""
    duration = lam.set_index("option").duration_ms.fillna(lam.set_index("option").latency_ms) / 1000.0
    pool = pd.DataFrame({"start_s": shares.start_s.to_numpy(float)})
    vm_rate = counts[list(vm.option)].to_numpy(float) @ vm.throughput_rps.to_numpy(float)
    vm_share = shares[list(vm.option)].to_numpy(float).sum(axis=1)
    for name in lam.option:
        rate = shares[name].to_numpy(float) * peak_rps
        if name == overflow:
            rate = rate + np.maximum(vm_share * peak_rps - vm_rate, 0.0)
        pool[name] = np.ceil(rate * duration[name] - 1e-9)
    total = pool[list(lam.option)].sum(axis=1).to_numpy()
    scale = np.minimum(1.0, limit / np.maximum(total, 1.0))
    pool[list(lam.option)] = np.floor(pool[list(lam.option)].to_numpy() * scale[:, None])
    return pool


def plan_deployment(plan: dict, overflow: str | None = None, name: str = "plan", end_s: float = math.inf) -> Deployment:
    """The deployment a plan describes (PLAN_FORMAT.md semantics: counts per window, routing by share), with
    the runtime it states (``planner/optimize/runtime.py``: router, overflow, warm pool); ``overflow`` names an
    overflow option for a plan that states none. VMs still running after the last window stop at ``end_s``."""
    vm, lam, counts, shares = plan_windows(plan)
    runtime = plan.get("runtime") or {}
    stated = (runtime.get("overflow") or {}).get("option")
    overflow = overflow or stated
    if overflow is not None and overflow not in set(lam.option):
        raise HetplanError(f"overflow option '{overflow}' is not in the plan{did_you_mean(overflow, lam.option)}")
    dep = deployment_of(vm, lam, counts, shares, overflow, name, end_s)
    if not runtime:
        return dep
    pool = pd.DataFrame([{"start_s": float(w["start_s"]), **(w.get("warm_pool") or {})} for w in plan["windows"]])
    pool = pool.reindex(columns=["start_s", *lam.option]).fillna(0.0)
    fraction = (runtime.get("overflow") or {}).get("queue_fraction") if stated and overflow == stated else None
    return replace(dep, router=runtime.get("router", "random"), warm=pool,
                   overflow_fraction=dep.overflow_fraction if fraction is None else float(fraction))


def solver_plan_fn(time_limit_s: float = 10.0, gap: float = 0.02) -> PlanFn:
    """The planner's MILP as a plan function (``hetplan.planner.optimize.solve.solve_plan``)."""
    def plan_fn(windows: Windows, options: Options, targets: Targets, limits: Limits) -> dict:
        return solve_plan(windows, options, targets, limits, time_limit_s=time_limit_s, gap=gap).to_dict()
    return plan_fn

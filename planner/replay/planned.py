"""Deployments from MILP plans: a plan file as written (``plan_deployment``), and the MILP policies
``hetplan`` (rolling horizon on predicted windows, seeing only the past) and ``oracle`` (one plan on the true
windows). ``hetplan`` with feedback from the replayed past is :mod:`.feedback`.
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
from hetplan.planner.replay.scenario import (PlanFn, Scenario, accurate_lambda, boot_lead, concurrency, fleet_from_counts,
                                             lam_frame, limits_at, predicted, seen_peak, windows_of)


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


def hetplan_policy(sc: Scenario, plan_fn: PlanFn | None = None, predictor: str = "ewma", horizon: int = 12,
                   replan_every: int = 6, overflow: bool = True, warm: bool = True, warm_lookback_s: float = 86400,
                   warm_predictor: str = "peak-aware", name: str = "hetplan") -> Deployment:
    """Rolling horizon: every ``replan_every`` windows, forecast the next ``horizon`` windows from the past,
    plan them with the VMs then running as the initial fleet (decided a boot delay ahead), keep the first
    ``replan_every`` windows. ``overflow``: what the VMs cannot serve within the SLO goes to Lambda;
    ``warm``: keep warm the Lambda instances (:func:`warm_pool`) needed at the highest of the forecast peak,
    the padded forecast peak (``warm_predictor``) and the highest per-second rate of the last
    ``warm_lookback_s`` seconds: bursts recur and pings are cheap, so the pool is sized generously.
    The VM plan's predictor is unpadded (``ewma``): the overflow absorbs under-forecasts, padding only adds VMs."""
    plan_fn = plan_fn or solver_plan_fn()
    stats = sc.stats()
    lead = boot_lead(sc)
    counts_parts, share_parts, peaks, vm, lam = [], [], [], None, None
    initial: dict = {}
    for k in range(0, len(stats), replan_every):
        future = predicted(sc, stats, k, horizon, predictor)
        plan = plan_fn(windows_of(future), sc.options, sc.targets, limits_at(sc, initial, float(future.start_s.iloc[0]) - lead))
        vm, lam, counts, shares = plan_windows(plan)
        keep = min(replan_every, len(counts))
        counts_parts.append(counts.iloc[:keep])
        share_parts.append(shares.iloc[:keep])
        # the pool is a runtime knob: re-sized every window from what has been seen by then
        seen = [seen_peak(sc, float(start) - lead, warm_lookback_s) for start in future.start_s.iloc[:keep]]
        padded = predicted(sc, stats, k, keep, warm_predictor).peak_rps.to_numpy(float) if warm else 0.0
        peaks.append(np.maximum(np.maximum(future.peak_rps.to_numpy(float)[:keep], padded), seen))
        last = counts.iloc[keep - 1]
        initial = {name_: int(last[name_]) for name_ in vm.option if last[name_] > 0}
    counts = pd.concat(counts_parts, ignore_index=True).fillna(0.0)
    shares = pd.concat(share_parts, ignore_index=True).fillna(0.0)
    spill = accurate_lambda(sc).option if overflow and len(sc.options.lam) else None
    dep = deployment_of(vm, lam, counts, shares, spill, name)
    if warm:
        dep = replace(dep, warm=warm_pool(vm, lam, counts, shares, np.concatenate(peaks), spill, concurrency(sc)))
    return dep


def oracle_policy(sc: Scenario, plan_fn: PlanFn | None = None, overflow: bool = True, warm: bool = True,
                  name: str = "oracle") -> Deployment:
    """One plan over the true windows of the whole trace (perfect knowledge of the future), with the same
    runtime as ``hetplan`` (overflow, warm pool from the true peaks)."""
    plan_fn = plan_fn or solver_plan_fn(time_limit_s=60.0, gap=0.01)
    stats = sc.stats()
    plan = plan_fn(windows_of(stats), sc.options, sc.targets, limits_at(sc, {}, float(stats.start_s.iloc[0]) - boot_lead(sc)))
    spill = accurate_lambda(sc).option if overflow and len(sc.options.lam) else None
    dep = replace(plan_deployment(plan, spill), name=name)
    if warm:
        vm, lam, counts, shares = plan_windows(plan)
        peak = stats.set_index("start_s").peak_rps.reindex(shares.start_s.to_numpy()).fillna(0.0).to_numpy()
        dep = replace(dep, warm=warm_pool(vm, lam, counts, shares, peak, spill, concurrency(sc)))
    return dep

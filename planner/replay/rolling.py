"""The MILP policies: ``hetplan`` (a rolling horizon of re-plans from forecasts of the past, each made as
``hetplan solve`` makes a plan: :mod:`.chunks`) and ``oracle`` (one plan over the true per-second load of the
whole trace, by the same MILP, sizing and capacity model). Both take the scenario's tools: predictor,
overflow, warm pool and router; hetplan also the reactive scale-out layer (the oracle foresees the load). ``hetplan`` with feedback from the replayed past is :mod:`.feedback`.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd

from hetplan.planner.replay.chunks import Horizon
from hetplan.planner.replay.deployment import Deployment
from hetplan.planner.replay.planned import deployment_of, solver_plan_fn, warm_pool
from hetplan.planner.replay.reactive import with_reactive_scaling
from hetplan.planner.replay.scenario import PlanFn, Scenario, boot_lead, concurrency, pool_peaks


def configuration(sc: Scenario, predictor: str, headroom: str, instance_types: str, overflow: bool | None = None,
                  warm: bool | None = None, **knobs) -> dict:
    """What a policy's row states about its tools (``hetplan compare`` shows it and ``--json`` carries it)."""
    return {"predictor": predictor, "warm_pool": sc.tools.warm_pool if warm is None else warm,
            "overflow": sc.tools.overflow if overflow is None else overflow, "headroom": headroom,
            "instance_types": instance_types, "router": sc.tools.router, **knobs}


def assemble(sc: Scenario, chunks: list, keep: list[int], name: str, end_s: float = np.inf,
             reactive: bool = False) -> Deployment:
    """One deployment from the first ``keep[i]`` windows of each re-plan, with the shared warm pool and, with
    ``reactive``, the scale-out layer at the SLO's utilization cap (``reactive.py``)."""
    counts = pd.concat([c.counts.iloc[:n] for c, n in zip(chunks, keep)], ignore_index=True).fillna(0.0)
    shares = pd.concat([c.shares.iloc[:n] for c, n in zip(chunks, keep)], ignore_index=True).fillna(0.0)
    forecast = pd.concat([c.forecast.iloc[:n] for c, n in zip(chunks, keep)], ignore_index=True)
    vm = pd.concat([c.vm for c in chunks]).drop_duplicates("option").reset_index(drop=True)
    lam = pd.concat([c.lam for c in chunks]).drop_duplicates("option").reset_index(drop=True)
    counts = counts.reindex(columns=["start_s", "end_s", *vm.option]).fillna(0.0)
    shares = shares.reindex(columns=["start_s", "end_s", *vm.option, *lam.option]).fillna(0.0)
    spill = next((c.overflow for c in chunks if c.overflow), None)
    dep = deployment_of(vm, lam, counts, shares, spill, name, end_s)
    dep = replace(dep, router=sc.tools.router, forecast=forecast)
    if reactive:
        dep = with_reactive_scaling(sc.trace, dep, sc.targets.max_utilization)
    if sc.tools.warm_pool and len(lam):
        peaks = pool_peaks(sc, forecast, boot_lead(sc))
        dep = replace(dep, warm=warm_pool(vm, lam, counts, shares, peaks, spill, concurrency(sc)))
    return dep


def hetplan_policy(sc: Scenario, plan_fn: PlanFn | None = None, predictor: str | None = None, horizon: int = 12,
                   replan_every: int = 6, name: str = "hetplan") -> Deployment:
    """Rolling horizon: every ``replan_every`` windows, re-plan the next ``horizon`` windows (decided a boot
    lead ahead, from the fleet then running) and keep the first ``replan_every`` of them. ``predictor``
    overrides the tools' (an ablation)."""
    if predictor is not None:
        sc = replace(sc, tools=replace(sc.tools, predictor=predictor))
    stats = sc.stats()
    lead = boot_lead(sc)
    plan = Horizon(sc, stats)
    chunks, keep, initial = [], [], {}
    for k in range(0, len(stats), replan_every):
        chunk = plan.plan(k, horizon, sc.options, initial, lead, plan_fn)
        n = min(replan_every, len(chunk.counts))
        chunks.append(chunk)
        keep.append(n)
        last = chunk.counts.iloc[n - 1]
        initial = {o: int(last[o]) for o in chunk.vm.option if last[o] > 0}
    dep = assemble(sc, chunks, keep, name, reactive=sc.tools.reactive)
    return replace(dep, config=configuration(
        sc, sc.tools.predictor, f"p{100 * sc.targets.percentile:g} of past under-forecasts",
        "all", horizon=horizon, replan_every=replan_every, feedback=False, reactive=sc.tools.reactive))


def oracle_policy(sc: Scenario, plan_fn: PlanFn | None = None, name: str = "oracle") -> Deployment:
    """One plan over the true windows and per-second load of the whole trace: ``hetplan solve
    --predictor oracle`` on the scenario. Its warm pool is sized at the true peaks."""
    stats = sc.stats()
    truth = Horizon(replace(sc, tools=replace(sc.tools, predictor="oracle")), stats)
    chunk = truth.plan(0, len(stats), sc.options, {}, boot_lead(sc), plan_fn or solver_plan_fn(time_limit_s=60.0, gap=0.01))
    dep = assemble(sc, [chunk], [len(chunk.counts)], name)
    return replace(dep, config=configuration(sc, "oracle (the true load)", "none", "all", reactive=False))

"""``hetplan`` re-planning with feedback: before each re-plan the windows served since the last one are replayed
(with the scenario's drift) and their log corrects the profile the options are rebuilt from
(``catalog.observe.update_profile``). planner/FEEDBACK.md gives the rules and the measurements.
"""

from __future__ import annotations

import math
from dataclasses import replace

import pandas as pd

from hetplan.errors import HetplanError
from hetplan.planner import catalog
from hetplan.planner.catalog.observe import update_profile
from hetplan.planner.optimize.options import Options, build_options, prune_dominated
from hetplan.planner.optimize.overflow import OVERFLOW_FRACTION
from hetplan.planner.replay import planned, scenario
from hetplan.planner.replay.chunks import Horizon
from hetplan.planner.replay.drift import LogRecorder, router_queue
from hetplan.planner.replay.reactive import with_reactive_scaling
from hetplan.planner.replay.rolling import configuration
from hetplan.planner.replay.simulate import replay


def _sources(sc):
    """Profile, instances and models the scenario's options came from (the shipped ones if it does not say)."""
    profile = sc.profile if getattr(sc, "profile", None) is not None else catalog.load_profile()
    instances = sc.instances if getattr(sc, "instances", None) is not None else catalog.load_instances()
    models = sc.models if getattr(sc, "models", None) is not None else catalog.load_models()
    return profile, instances, models


def _restrict(options, vm_names, lam_names):
    """Options limited to the names the profile itself allows (feedback re-ranks and re-sizes them; it does not
    resurrect an option the profile rejected, whose true speed the drift is not defined against)."""
    return Options(vm=options.vm[options.vm.option.isin(vm_names)].reset_index(drop=True),
                   lam=options.lam[options.lam.option.isin(lam_names)].reset_index(drop=True),
                   rejected=options.rejected, pruned=options.pruned)


def hetplan_feedback_policy(sc, plan_fn=None, predictor: str | None = None, horizon: int = 12, replan_every: int = 6,
                            half_life_s: float = 3600.0, prior_weight: float = 100.0, fraction: float = 0.02,
                            name: str = "hetplan"):
    """``rolling.hetplan_policy`` with feedback: before each re-plan (decided a boot delay ahead), replay the
    seconds since the previous decision against the deployment so far, under the scenario's ``drift``, log a
    ``fraction`` of the requests, and rebuild the options from the profile corrected by every log so far
    (``half_life_s`` decay, ``prior_weight``). The replayed slice starts with an empty queue (an approximation:
    a backlog carried across a decision is not seen). The deployment keeps the profile's option figures: the
    final replay applies the drift to them, as it does for every policy. ``predictor`` overrides the tools'."""
    if predictor is not None:
        sc = replace(sc, tools=replace(sc.tools, predictor=predictor))
    profile, instances, models = _sources(sc)
    drift = tuple(getattr(sc, "drift", ()) or ())
    nominal = build_options(profile, instances, sc.pricing, models, sc.targets)  # unpruned: every option a plan may use
    stats = sc.stats()
    planner = Horizon(sc, stats)
    lead = scenario.boot_lead(sc)
    spill = scenario.accurate_lambda(sc).option if sc.tools.overflow and len(sc.options.lam) else None
    # feedback re-ranks within what the scenario allows (its models and instance types: an ablation's too)
    vm_names = list(nominal.vm.option[nominal.vm.model.isin(set(sc.options.vm.model) | set(sc.options.lam.model))
                                      & nominal.vm.instance_type.isin(set(sc.options.vm.instance_type))])
    lam_names = list(nominal.lam.option[nominal.lam.model.isin(set(sc.options.lam.model))])
    counts_parts, share_parts, pools, routers = [], [], [], []
    logs: list[pd.DataFrame] = []
    options, initial, observed_to = sc.options, {}, -math.inf
    for k in range(0, len(stats), replan_every):
        decided = float(stats.start_s.iloc[k]) - lead
        if counts_parts:
            log = _observe(sc, nominal, counts_parts, share_parts, spill, pools, routers, observed_to, decided, drift,
                           fraction)
            observed_to = decided
            if len(log):
                # observations ten half-lives old weigh < 0.1%: drop them so the log does not grow with the trace
                logs = [part for part in logs if part.timestamp.iloc[-1] >= decided - 10 * half_life_s] + [log]
                corrected, _ = update_profile(profile, pd.concat(logs, ignore_index=True), now=decided,
                                              half_life_s=half_life_s, prior_weight=prior_weight)
                options = _restrict(prune_dominated(build_options(corrected, instances, sc.pricing, models, sc.targets)),
                                    vm_names, lam_names)
        chunk = planner.plan(k, horizon, options, initial, lead, plan_fn)
        vm, lam, counts, shares = chunk.vm, chunk.lam, chunk.counts, chunk.shares
        keep = min(replan_every, len(counts))
        counts_parts.append(counts.iloc[:keep])
        share_parts.append(shares.iloc[:keep])
        queue = router_queue(vm, sc.targets.slo_s, OVERFLOW_FRACTION)  # the router follows the corrected figures
        routers.append(pd.DataFrame([queue.to_dict()] * keep).assign(start_s=counts.start_s.iloc[:keep].to_numpy()))
        if sc.tools.warm_pool:
            # sized with what the plan believed (its options), by the rule every policy shares
            peaks = scenario.pool_peaks(sc, chunk.forecast.iloc[:keep], lead)
            pools.append(planned.warm_pool(vm, lam, counts.iloc[:keep], shares.iloc[:keep], peaks, spill, scenario.concurrency(sc)))
        last = counts.iloc[keep - 1]
        initial = {n: int(last[n]) for n in vm.option if last[n] > 0}
    dep = _assemble(nominal, counts_parts, share_parts, pools, routers, spill, name)
    if sc.tools.reactive:
        dep = with_reactive_scaling(sc.trace, dep, sc.targets.max_utilization)
    return replace(dep, router=sc.tools.router, config=configuration(
        sc, sc.tools.predictor, f"p{100 * sc.targets.percentile:g} of past under-forecasts", "all",
        horizon=horizon, replan_every=replan_every, feedback=True, reactive=sc.tools.reactive))


def _assemble(nominal, counts_parts, share_parts, pools, routers, spill, name, end_s: float = math.inf):
    """One deployment from the chunks, over the profile's option figures (union of the options the plans used)."""
    counts = pd.concat(counts_parts, ignore_index=True).fillna(0.0)
    shares = pd.concat(share_parts, ignore_index=True).fillna(0.0)
    used_vm = [c for c in counts.columns if c not in ("start_s", "end_s")]
    used_lam = [c for c in shares.columns if c not in ("start_s", "end_s") and c not in used_vm]
    vm = nominal.vm[nominal.vm.option.isin(used_vm)].reset_index(drop=True)
    names = set(used_lam) | ({spill} if spill else set())
    lam = nominal.lam[nominal.lam.option.isin(names)].reset_index(drop=True)
    missing = (set(used_vm) - set(vm.option)) | (names - set(lam.option))
    if missing:
        raise HetplanError(f"a feedback plan used option '{sorted(missing)[0]}', which the profile does not allow")
    counts = counts.reindex(columns=["start_s", "end_s", *vm.option]).fillna(0.0)
    shares = shares.reindex(columns=["start_s", "end_s", *vm.option, *lam.option]).fillna(0.0)
    dep = planned.deployment_of(vm, lam, counts, shares, spill, name, end_s)
    if pools:
        pool = pd.concat(pools, ignore_index=True).reindex(columns=["start_s", *lam.option]).fillna(0.0)
        dep = replace(dep, warm=pool)
    if spill and routers:
        queue = pd.concat(routers, ignore_index=True).reindex(columns=["start_s", *vm.option]).fillna(0.0)
        dep = replace(dep, overflow_queue=queue)
    return dep


def _observe(sc, nominal, counts_parts, share_parts, spill, pools, routers, start, end, drift, fraction) -> pd.DataFrame:
    """The log of the seconds [start, end) served by the deployment decided so far (replayed with the drift)."""
    trace = sc.trace[(sc.trace.second >= start) & (sc.trace.second < end)]
    if trace.empty:
        return pd.DataFrame()
    dep = _assemble(nominal, counts_parts, share_parts, pools, routers, spill, "observed")
    if sc.tools.reactive:  # what served those seconds, the reactive layer included
        dep = with_reactive_scaling(sc.trace[sc.trace.second < end], dep, sc.targets.max_utilization)
    recorder = LogRecorder(fraction=fraction)
    replay(trace, dep, sc.targets.slo_s, sc.pricing, concurrency_limit=sc.concurrency_limit,
           default_load_time_ms=sc.default_load_time_ms, drift=drift, recorder=recorder, window_s=sc.window_s)
    return recorder.frame()

"""The compared serving policies: each turns (trace, options, SLO, accuracy target) into a Deployment to replay.

Baselines (planner/REPLAY.md gives their rules and defaults):
- ``vm-reactive``: target-tracking autoscaling (one type, the cheapest model meeting the accuracy target);
- ``vm-peak``:     the same fleet held static at the trace's peak;
- ``lambda-only``: every request on Lambda, cheapest memory size meeting the SLO;
- ``mark-like``:   predict-then-pad VM scaling in one family, Lambda taking the overflow (MArk / Spock style).
MILP policies: ``hetplan`` (rolling horizon on predicted windows, sees only the past, and re-plans with feedback
from the replayed past: planner/feedback.py), ``hetplan-no-feedback`` (the same without it) and ``oracle`` (one
plan on the true windows). Every policy starts warm: its first fleet is serving when the replay starts.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from hetplan.catalog import ServerlessPricing
from hetplan.errors import HetplanError, did_you_mean
from hetplan.planner.model import Limits, Windows
from hetplan.planner.options import Options, Targets, overflow_option
from hetplan.planner.overflow import OVERFLOW_FRACTION
from hetplan.planner.simulate import LAMBDA_COLUMNS, VM_COLUMNS, Deployment

BASELINES = ("vm-reactive", "vm-peak", "lambda-only", "mark-like")
# Overflow to Lambda once a request's wait would pass 3/4 of the wait budget (SLO − service latency): the margin
# covers the Poisson jitter inside a second that the fluid replay does not see (planner/REPLAY.md measures it).
PlanFn = Callable[[Windows, Options, Targets, Limits], dict]


@dataclass(frozen=True)
class Scenario:
    """What every policy gets: the trace, the usable options, the targets and the Lambda prices/limits."""

    trace: pd.DataFrame
    options: Options
    targets: Targets
    pricing: ServerlessPricing
    default_load_time_ms: float
    window_s: int = 300
    quantile: float = 0.95
    concurrency_limit: float | None = None
    # where the options came from (feedback rebuilds them) and the true-speed drift the replay applies
    profile: pd.DataFrame | None = None
    instances: pd.DataFrame | None = None
    models: pd.DataFrame | None = None
    drift: tuple = ()

    @property
    def accuracy_target(self) -> float:
        values = [a for a in (self.targets.min_accuracy, self.targets.mean_accuracy) if a is not None]
        return max(values) if values else 0.0

    def stats(self) -> pd.DataFrame:
        """The true per-window load (policies slice it to the past; only the oracle sees it whole)."""
        from hetplan.planner.traces import window_stats

        return window_stats(self.trace, self.window_s, self.quantile, gaps="interpolate")


def make_scenario(trace_path, slo_s: float, mean_accuracy: float | None = None, min_accuracy: float | None = None,
                  window_s: int = 300, profile=None, instances=None, serverless=None, models=None,
                  architecture: str = "x86_64", hours: float | None = None, drift: tuple = ()) -> Scenario:
    """A scenario from files (the shipped catalog by default), options pruned as the planner prunes them."""
    from hetplan import catalog
    from hetplan.planner.options import build_options, prune_dominated
    from hetplan.planner.traces import load_trace

    trace = load_trace(trace_path)
    if hours:
        trace = trace[trace.second < trace.second.iloc[0] + hours * 3600].reset_index(drop=True)
    prof = catalog.load_profile(profile)
    pricing = catalog.load_serverless(serverless, architecture)
    targets = Targets(slo_s=slo_s, min_accuracy=min_accuracy, mean_accuracy=mean_accuracy)
    inst, mods = catalog.load_instances(instances), catalog.load_models(models)
    options = prune_dominated(build_options(prof, inst, pricing, mods, targets))
    load_time = prof.load_time_ms.max()
    return Scenario(trace=trace, options=options, targets=targets, pricing=pricing, window_s=window_s,
                    default_load_time_ms=float(load_time) if pd.notna(load_time) else 0.0,
                    profile=prof, instances=inst, models=mods, drift=tuple(drift))


# --- choices shared by the baselines ---------------------------------------------------------------------

def single_model_vm(sc: Scenario) -> pd.Series:
    """The VM option of the baselines: the cheapest model (per SLO-safe capacity) meeting the accuracy target,
    on the smallest instance type within 5% of that model's best price per capacity (finer scaling steps)."""
    vm = sc.options.vm.assign(per_rps=lambda f: f.price_per_hour_usd / f.capacity_rps)
    ok = vm[vm.accuracy >= sc.accuracy_target - 1e-12]
    if ok.empty:
        raise HetplanError(f"no VM option reaches top-1 {sc.accuracy_target:.1%} on its own: lower the accuracy target")
    model = ok.loc[ok.per_rps.idxmin(), "model"]
    mine = ok[ok.model == model]
    near = mine[mine.per_rps <= mine.per_rps.min() * 1.05]
    return near.loc[near.price_per_hour_usd.idxmin()]


def accurate_lambda(sc: Scenario) -> pd.Series:
    """The cheapest Lambda option meeting the accuracy target (else the most accurate): lambda-only's
    option, and where the overflow of mark-like and hetplan goes."""
    return _accurate_lambda(sc.options.lam, sc.accuracy_target)


def accurate_lambda_of_plan(plan: dict) -> str:
    """:func:`accurate_lambda` among a plan's options, for its accuracy target."""
    lam = pd.DataFrame([o for o in plan["options"] if o["platform"] == "lambda"])
    targets = plan.get("targets", {})
    target = max([a for a in (targets.get("min_accuracy"), targets.get("mean_accuracy")) if a is not None], default=0.0)
    return str(_accurate_lambda(lam, target).option)


def _accurate_lambda(lam: pd.DataFrame, target: float) -> pd.Series:
    return overflow_option(lam, target)


def _vm_frame(rows) -> pd.DataFrame:
    return pd.DataFrame(rows)[list(VM_COLUMNS) + ["capacity_rps"]].reset_index(drop=True)


def _lam_frame(rows) -> pd.DataFrame:
    frame = pd.DataFrame(rows)
    return frame[list(LAMBDA_COLUMNS)].reset_index(drop=True) if len(frame) else pd.DataFrame(columns=LAMBDA_COLUMNS)


def _first_second(sc: Scenario) -> int:
    return int(sc.trace.second.iloc[0])


def _last_second(sc: Scenario) -> int:
    return int(sc.trace.second.iloc[-1])


def fleet_from_counts(starts: np.ndarray, counts: np.ndarray, names: list[str], boot: np.ndarray,
                      end_s: float) -> pd.DataFrame:
    """VM launches for per-period counts (periods × options) starting at ``starts``: a VM that serves from
    a period on is launched ``boot`` seconds before it; when the count drops, the newest VMs stop (LIFO)."""
    rows = []
    for j, name in enumerate(names):
        alive: list[float] = []
        for k, start in enumerate(starts):
            want = int(round(counts[k, j]))
            while len(alive) < want:
                alive.append(start - boot[j])
            while len(alive) > want:
                rows.append((name, alive.pop(), start))
        rows += [(name, launch, end_s) for launch in alive]
    return pd.DataFrame(rows, columns=["option", "launch_s", "stop_s"])


# --- baselines -------------------------------------------------------------------------------------------

def vm_peak(sc: Scenario) -> Deployment:
    """Static VMs for the trace's peak per-second rate, at the SLO-safe capacity."""
    o = single_model_vm(sc)
    n = max(1, math.ceil(sc.trace.requests.max() / o.capacity_rps - 1e-9))
    t0 = _first_second(sc)
    vms = pd.DataFrame({"option": [o.option] * n, "launch_s": float(t0 - o.boot_seconds), "stop_s": math.inf})
    return Deployment(_vm_frame([o]), _lam_frame([]), vms, pd.DataFrame({"start_s": [t0], o.option: [1.0]}), name="vm-peak")


def vm_reactive(sc: Scenario, target_utilization: float = 0.6, period_s: int = 60, cooldown_s: int = 300,
                scale_in_periods: int = 15) -> Deployment:
    """Target tracking (EC2 Auto Scaling style) on the last period's mean rate per VM vs ``target_utilization``
    × throughput. Scale-out at once (pending VMs count); scale-in one step to the desired size once the
    desired size stayed lower for ``scale_in_periods`` periods and ``cooldown_s`` passed since the last change."""
    o = single_model_vm(sc)
    t0, t1 = _first_second(sc), _last_second(sc)
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
    return Deployment(_vm_frame([o]), _lam_frame([]), vms, pd.DataFrame({"start_s": [t0], o.option: [1.0]}),
                      name="vm-reactive")


def lambda_only(sc: Scenario) -> Deployment:
    """Every request on one Lambda option: the cheapest meeting the SLO and the accuracy target."""
    lam = accurate_lambda(sc)
    empty = pd.DataFrame(columns=["option", "launch_s", "stop_s"])
    return Deployment(pd.DataFrame(columns=VM_COLUMNS), _lam_frame([lam]), empty,
                      pd.DataFrame({"start_s": [_first_second(sc)], lam.option: [1.0]}), name="lambda-only")


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


def _predicted(sc: Scenario, stats: pd.DataFrame, k: int, horizon: int, predictor: str) -> pd.DataFrame:
    """Windows k .. k+horizon-1 as forecast at their decision time (one window of lead for the boot delay):
    the predictor sees the complete windows before k-1 only. With under two past windows it falls back to
    the true first window (the warm start every policy gets)."""
    from hetplan.planner.predict import make_predictor

    future = stats.iloc[k:k + horizon].reset_index(drop=True)
    history = stats.iloc[:max(k - 1, 0)].copy()
    if len(history) < 2:
        out = stats.iloc[[0] * len(future)].reset_index(drop=True)
    else:
        model = make_predictor(predictor, truth=stats) if predictor == "oracle" else make_predictor(predictor)
        out = model.fit(history).predict(len(future) + 1).iloc[1:].reset_index(drop=True)
    out[["window", "start_s", "end_s"]] = future[["window", "start_s", "end_s"]].to_numpy()
    return out


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
        forecast = _predicted(sc, stats, k, 1, predictor)
        need = float(forecast.q_rps.iloc[0])
        counts[k] = _cheapest_mix(family.capacity_rps.to_numpy(), family.price_per_hour_usd.to_numpy(), need)
        peaks[k] = max(float(forecast.peak_rps.iloc[0]), _seen_peak(sc, float(stats.start_s.iloc[k]) - _lead(sc), warm_lookback_s))
    starts = stats.start_s.to_numpy(float)
    vms = fleet_from_counts(starts, counts, list(family.option), family.boot_seconds.to_numpy(), math.inf)
    capacity = counts * family.throughput_rps.to_numpy()[None, :]
    shares = np.divide(capacity, capacity.sum(axis=1, keepdims=True), out=np.zeros_like(capacity),
                       where=capacity.sum(axis=1, keepdims=True) > 0)
    routes = pd.DataFrame(shares, columns=list(family.option)).assign(**{lam.option: np.where(capacity.sum(axis=1) > 0, 0.0, 1.0)})
    routes.insert(0, "start_s", starts)
    dep = Deployment(_vm_frame(list(family.itertuples(index=False))), _lam_frame([lam]), vms, routes,
                     overflow=lam.option, name="mark-like", overflow_fraction=OVERFLOW_FRACTION)
    if warm:
        count_frame = pd.DataFrame(counts, columns=list(family.option)).assign(start_s=starts)
        dep = replace(dep, warm=warm_pool(family, _lam_frame([lam]), count_frame, routes, peaks, lam.option,
                                          _concurrency(sc)))
    return dep


def _seen_peak(sc: Scenario, decided: float, lookback_s: float) -> float:
    """The highest per-second rate in the ``lookback_s`` seconds before ``decided`` (0 with none seen)."""
    seen = sc.trace[(sc.trace.second < decided) & (sc.trace.second >= decided - lookback_s)].requests
    return float(seen.max()) if len(seen) else 0.0


# --- MILP policies ---------------------------------------------------------------------------------------

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


def _deployment(vm: pd.DataFrame, lam: pd.DataFrame, counts: pd.DataFrame, shares: pd.DataFrame,
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
    return Deployment(vm[list(VM_COLUMNS)].reset_index(drop=True), _lam_frame(lam_opts), vms, routes,
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
    the runtime it states (``planner/runtime.py``: router, overflow, warm pool); ``overflow`` names an
    overflow option for a plan that states none. VMs still running after the last window stop at ``end_s``."""
    vm, lam, counts, shares = plan_windows(plan)
    runtime = plan.get("runtime") or {}
    stated = (runtime.get("overflow") or {}).get("option")
    overflow = overflow or stated
    if overflow is not None and overflow not in set(lam.option):
        raise HetplanError(f"overflow option '{overflow}' is not in the plan{did_you_mean(overflow, lam.option)}")
    dep = _deployment(vm, lam, counts, shares, overflow, name, end_s)
    if not runtime:
        return dep
    pool = pd.DataFrame([{"start_s": float(w["start_s"]), **(w.get("warm_pool") or {})} for w in plan["windows"]])
    pool = pool.reindex(columns=["start_s", *lam.option]).fillna(0.0)
    fraction = (runtime.get("overflow") or {}).get("queue_fraction") if stated and overflow == stated else None
    return replace(dep, router=runtime.get("router", "random"), warm=pool,
                   overflow_fraction=dep.overflow_fraction if fraction is None else float(fraction))


def solver_plan_fn(time_limit_s: float = 10.0, gap: float = 0.02) -> PlanFn:
    """The planner's MILP as a plan function (``hetplan.planner.solve.solve_plan``)."""
    def plan_fn(windows: Windows, options: Options, targets: Targets, limits: Limits) -> dict:
        from hetplan.planner.solve import solve_plan

        return solve_plan(windows, options, targets, limits, time_limit_s=time_limit_s, gap=gap).to_dict()
    return plan_fn


def _concurrency(sc: Scenario) -> float:
    return float(sc.concurrency_limit if sc.concurrency_limit is not None else sc.pricing.concurrency_limit)


def _limits(sc: Scenario, initial: dict, now: float) -> Limits:
    return Limits(mean_accuracy=sc.targets.mean_accuracy, concurrency_limit=_concurrency(sc), initial_vms=initial,
                  horizon_start_s=now)


def _lead(sc: Scenario) -> float:
    return float(math.ceil(sc.options.vm.boot_seconds.max())) if len(sc.options.vm) else 0.0


def _windows_of(frame: pd.DataFrame) -> Windows:
    return Windows(start_s=frame.start_s.to_numpy(float), duration_s=(frame.end_s - frame.start_s).to_numpy(float),
                   demand_rps=frame.q_rps.to_numpy(float), mean_rps=frame.mean_rps.to_numpy(float))


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
    lead = _lead(sc)
    counts_parts, share_parts, peaks, vm, lam = [], [], [], None, None
    initial: dict = {}
    for k in range(0, len(stats), replan_every):
        future = _predicted(sc, stats, k, horizon, predictor)
        plan = plan_fn(_windows_of(future), sc.options, sc.targets, _limits(sc, initial, float(future.start_s.iloc[0]) - lead))
        vm, lam, counts, shares = plan_windows(plan)
        keep = min(replan_every, len(counts))
        counts_parts.append(counts.iloc[:keep])
        share_parts.append(shares.iloc[:keep])
        # the pool is a runtime knob: re-sized every window from what has been seen by then
        seen = [_seen_peak(sc, float(start) - lead, warm_lookback_s) for start in future.start_s.iloc[:keep]]
        padded = _predicted(sc, stats, k, keep, warm_predictor).peak_rps.to_numpy(float) if warm else 0.0
        peaks.append(np.maximum(np.maximum(future.peak_rps.to_numpy(float)[:keep], padded), seen))
        last = counts.iloc[keep - 1]
        initial = {name_: int(last[name_]) for name_ in vm.option if last[name_] > 0}
    counts = pd.concat(counts_parts, ignore_index=True).fillna(0.0)
    shares = pd.concat(share_parts, ignore_index=True).fillna(0.0)
    spill = accurate_lambda(sc).option if overflow and len(sc.options.lam) else None
    dep = _deployment(vm, lam, counts, shares, spill, name)
    if warm:
        dep = replace(dep, warm=warm_pool(vm, lam, counts, shares, np.concatenate(peaks), spill, _concurrency(sc)))
    return dep


def oracle_policy(sc: Scenario, plan_fn: PlanFn | None = None, overflow: bool = True, warm: bool = True,
                  name: str = "oracle") -> Deployment:
    """One plan over the true windows of the whole trace (perfect knowledge of the future), with the same
    runtime as ``hetplan`` (overflow, warm pool from the true peaks)."""
    plan_fn = plan_fn or solver_plan_fn(time_limit_s=60.0, gap=0.01)
    stats = sc.stats()
    plan = plan_fn(_windows_of(stats), sc.options, sc.targets, _limits(sc, {}, float(stats.start_s.iloc[0]) - _lead(sc)))
    spill = accurate_lambda(sc).option if overflow and len(sc.options.lam) else None
    dep = replace(plan_deployment(plan, spill), name=name)
    if warm:
        vm, lam, counts, shares = plan_windows(plan)
        peak = stats.set_index("start_s").peak_rps.reindex(shares.start_s.to_numpy()).fillna(0.0).to_numpy()
        dep = replace(dep, warm=warm_pool(vm, lam, counts, shares, peak, spill, _concurrency(sc)))
    return dep


def _hetplan_feedback(sc: Scenario, **params) -> Deployment:
    from hetplan.planner.feedback import hetplan_feedback_policy

    return hetplan_feedback_policy(sc, **params)


def _hetplan_no_feedback(sc: Scenario, **params) -> Deployment:
    return hetplan_policy(sc, **{"name": "hetplan-no-feedback", **params})


POLICIES: dict[str, Callable[..., Deployment]] = {
    "hetplan": _hetplan_feedback, "vm-reactive": vm_reactive, "vm-peak": vm_peak, "lambda-only": lambda_only,
    "mark-like": mark_like, "oracle": oracle_policy, "hetplan-no-feedback": _hetplan_no_feedback,
}
DEFAULT_POLICIES = ("hetplan", "vm-reactive", "vm-peak", "lambda-only", "mark-like", "oracle")


def make_deployment(name: str, sc: Scenario, **params) -> Deployment:
    if name not in POLICIES:
        raise HetplanError(f"unknown policy '{name}'{did_you_mean(name, POLICIES)}")
    return POLICIES[name](sc, **params)


def best_baseline(table: pd.DataFrame, allowed_violation_pct: float) -> str | None:
    """The cheapest baseline whose violations stay within what the SLO percentile allows (1% at p99);
    the baseline with the fewest violations when none does."""
    base = table[table.policy.isin(BASELINES) & table.cost_usd.notna()] if "cost_usd" in table else table.iloc[0:0]
    if base.empty:
        return None
    ok = base[base.violation_pct <= allowed_violation_pct + 1e-12]
    return str(ok.loc[ok.cost_usd.idxmin(), "policy"] if len(ok) else base.loc[base.violation_pct.idxmin(), "policy"])


def compare(sc: Scenario, policies: tuple[str, ...] = DEFAULT_POLICIES, params: dict | None = None,
            method: str = "fluid", keep_alive_s: float = 600.0) -> tuple[pd.DataFrame, dict]:
    """Replay every policy on the scenario's trace: one row per policy (Report fields plus ``cost_vs_best_pct``
    and ``violations_vs_best_pct``, relative to :func:`best_baseline`, named in ``table.attrs``; a policy
    that cannot run has only ``error``), and the replays by policy (for timelines and plots)."""
    from hetplan.planner.simulate import replay

    params = params or {}
    rows, replays = [], {}
    for name in policies:
        try:
            dep = make_deployment(name, sc, **params.get(name, {}))
        except HetplanError as exc:  # e.g. no Lambda option meets the SLO: the other policies still run
            rows.append({"policy": name, "error": str(exc)})
            continue
        result = replay(sc.trace, dep, sc.targets.slo_s, sc.pricing, keep_alive_s=keep_alive_s,
                        concurrency_limit=sc.concurrency_limit, default_load_time_ms=sc.default_load_time_ms,
                        method=method, window_s=sc.window_s, drift=sc.drift)
        replays[name] = result
        row = result.report.to_dict()
        row["vm_hours"] = sum(row["vm_hours"].values())
        rows.append(row)
    table = pd.DataFrame(rows)
    if "error" not in table:
        table["error"] = None
    best = best_baseline(table, 100 * (1 - sc.targets.percentile))
    if best is not None:
        ref = table.set_index("policy").loc[best]
        table["cost_vs_best_pct"] = 100 * (table.cost_usd / ref.cost_usd - 1)
        table["violations_vs_best_pct"] = (100 * (table.violation_pct / ref.violation_pct - 1)
                                           if ref.violation_pct > 0 else np.nan)
    table.attrs["best_baseline"] = best
    return table, replays

"""One call from files to plan: what ``hetplan solve`` does, callable without the CLI (sweeps, replay, tests)."""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass, field
from pathlib import Path

from hetplan.planner import catalog
from hetplan.planner.catalog.observe import profile_with_feedback
from hetplan.planner.catalog.schema import METHODS
from hetplan.errors import HetplanError, Infeasible, did_you_mean
from hetplan.planner.optimize.model import Limits, Windows
from hetplan.planner.optimize.options import Targets, build_options, map_local_shapes, prune_dominated
from hetplan.planner.optimize.plan import Plan

# Default accuracy target: a traffic-weighted mean top-1 of 70% rules out serving everything with the
# weakest models (caffenet 54.5%, squeezenet 55.4%) yet lets them carry part of the load, so the default
# plan exercises the model mix.
DEFAULT_MEAN_ACCURACY = 0.70


@dataclass(frozen=True)
class PlanRequest:
    slo_s: float
    percentile: float = 0.99
    min_accuracy: float | None = None
    mean_accuracy: float | None = None
    trace: Path = catalog.DEFAULT_TRACE
    window_s: float = 300.0
    quantile: float = 0.95     # the per-second quantile of the older "quantile" sizing (and of q_rps)
    sizing: str = "late-share"  # late-share: size for the requests the SLO counts (planner/optimize/sizing.py); quantile: the older rule
    overflow: bool = True      # routers send what would be late to Lambda, priced in the MILP (planner/optimize/overflow.py)
    gaps: str = "exclude"  # a window with no data is an error unless the user asks to interpolate
    hours: float | None = None
    load_scale: float = 1.0
    feedback: Path | None = None  # a request log: plan with the profile corrected by what it observed
    skip_bad_log_lines: bool = False
    predictor: str = "oracle"  # oracle: plan for the trace's own windows; else each window as predicted from the ones before
    profile: Path = catalog.DEFAULT_PROFILE
    instances: Path = catalog.DEFAULT_INSTANCES
    serverless: Path = catalog.DEFAULT_SERVERLESS
    models_catalog: Path = catalog.DEFAULT_MODELS
    lambda_architecture: str = "x86_64"
    local_as_family: str | None = None  # take local-Nvcpu profile rows as this family's N-vCPU size
    trust: tuple[str, ...] | None = None  # only profile rows of these methods (None: all four)
    models: tuple[str, ...] | None = None
    instance_types: tuple[str, ...] | None = None
    lambda_concurrency: int | None = None
    quotas: dict = field(default_factory=dict)
    budget_usd: float | None = None
    initial_vms: dict = field(default_factory=dict)
    max_utilization: float = 0.95
    lead_time_s: float = 600.0  # the plan is deployed this long before its first window (VMs can boot ahead)
    solver: str = "highs"
    time_limit_s: float = 60.0
    gap: float = 0.01

    def effective_mean_accuracy(self) -> float | None:
        if self.mean_accuracy is None and self.min_accuracy is None:
            return DEFAULT_MEAN_ACCURACY
        return self.mean_accuracy


def load_window_seconds(request: PlanRequest):
    """The planned windows' stats and their per-second requests (windows × seconds, NaN = not observed).

    With a forecasting predictor each planned window gets the forecast rates (the mean raised by the
    headroom of ``sizing.forecast_headroom``, recorded in the ``headroom`` column) and the per-second
    shape of the window before it, the last one observed when the forecast is made (at the central
    forecast: multiply by ``1 + headroom`` for the load the VMs are sized for).
    """
    from hetplan.planner.forecast.traces import load_trace, window_seconds, window_stats

    trace = load_trace(request.trace)
    if request.hours:
        trace = trace[trace.second < trace.second.iloc[0] + request.hours * 3600]
    stats = window_stats(trace, request.window_s, request.quantile, gaps=request.gaps)
    seconds = window_seconds(trace, request.window_s, gaps=request.gaps)
    stats["headroom"] = 0.0
    stats["central_rps"] = stats.mean_rps
    if request.predictor != "oracle":
        stats, seconds = predicted_windows(stats, seconds, request.predictor, request.percentile)
    for column in ("mean_rps", "peak_rps", "q_rps", "central_rps"):
        stats[column] = stats[column] * request.load_scale
    return stats, seconds * request.load_scale


def predicted_windows(stats, seconds, predictor: str, percentile: float = 0.99):
    """Each window's load as ``predictor`` forecasts it one step ahead from the windows before it only.

    The first windows are history (at least 12, a quarter of the trace at most) and are not planned. The
    headroom of window t is the ``percentile`` quantile of the predictor's relative under-forecasts of the
    mean on the windows before t (from the third window on); the rates are raised by it. The per-second
    requests returned are the *central* forecast (no headroom) in the shape of window t − 1: what the
    plan expects, while its VMs are sized for the raised rates.
    """
    import numpy as np

    from hetplan.planner.forecast.predict import rolling_forecasts
    from hetplan.planner.optimize.sizing import forecast_headroom, shaped_like

    history = min(max(12, len(stats) // 4), len(stats) - 1)
    backtest = rolling_forecasts(stats, [predictor], min_history=min(3, history))
    errors = backtest.set_index("window")
    forecasts = backtest[backtest.window >= stats.window.iloc[history]]
    planned = stats.set_index("window").loc[forecasts.window].reset_index()
    headroom = np.array([forecast_headroom(errors.loc[:w - 1, "actual_mean_rps"], errors.loc[:w - 1, "pred_mean_rps"],
                                           percentile) for w in forecasts.window])
    for column in ("mean_rps", "peak_rps", "q_rps"):
        planned[column] = forecasts[f"pred_{column}"].clip(lower=0).to_numpy() * (1.0 + headroom)
    planned["headroom"] = headroom
    planned["central_rps"] = planned.mean_rps / (1.0 + headroom)
    # the peak second of a window no forecast sees: the percentile of the past windows' peak-to-mean ratios
    ratios = (stats.peak_rps / stats.mean_rps.where(stats.mean_rps > 0)).to_numpy(float)
    planned["peak_ratio"] = [float(np.nanquantile(ratios[:k], percentile)) if np.isfinite(ratios[:k]).any() else 1.0
                             for k in stats.window.searchsorted(forecasts.window.to_numpy())]
    relative = (errors.actual_mean_rps / errors.pred_mean_rps.where(errors.pred_mean_rps > 0) - 1.0).dropna()
    planned.attrs["forecast_errors"] = [relative.loc[:w - 1].to_numpy(float) for w in forecasts.window]  # the past only
    rows = stats.window.searchsorted(forecasts.window.to_numpy())
    # the shapes of the last PAST_SHAPES observed windows before each planned one: how its seconds may look
    lags = np.clip(rows[:, None] - np.arange(1, PAST_SHAPES + 1)[None, :], 0, None)
    planned.attrs["past_shapes"] = shaped_like(seconds[lags.ravel()], np.ones(lags.size)).reshape(*lags.shape, -1)
    return planned, shaped_like(seconds[rows - 1], planned.mean_rps.to_numpy() / (1.0 + headroom))


SIZING_RULES = ("late-share", "quantile")
PAST_SHAPES = 12  # observed windows whose per-second shapes a forecast window's stated overflow averages over


def sized_windows(stats, seconds, options, targets: Targets, request: PlanRequest):
    """The MILP's windows, the options left after pruning, and the sizing rule as the plan records it.

    ``late-share`` routes each window's mean rate and gives every VM option a per-window capacity from
    ``sizing.window_capacity``; ``quantile`` routes the window's per-second quantile at each option's
    steady capacity (the older rule, kept to measure what the new one costs).
    """
    import numpy as np

    from hetplan.planner.optimize.sizing import SIZING_SHARE, SizingRule, window_capacity

    allowance = 1.0 - targets.percentile
    if request.sizing == "quantile":
        options = prune_dominated(options, quota_types=frozenset(request.quotas))
        rule = {"rule": "quantile", "quantile": request.quantile, "allowance": allowance}
        return Windows.from_frame(stats), options, rule
    if request.overflow and len(options.lam):  # overflow needs a Lambda option within the SLO; else VMs take the bursts
        return _overflow_windows(stats, seconds, options, targets, request)
    seconds = seconds * (1.0 + stats.headroom.to_numpy(float))[:, None]  # without overflow, VMs take the forecast error
    rule = SizingRule(allowance=allowance, target=SIZING_SHARE * allowance,
                      source="trace" if request.predictor == "oracle" else "history",
                      headroom=float(stats.headroom.max()) if len(stats) else 0.0,
                      headroom_rule="none (the windows are the trace's own)" if request.predictor == "oracle" else
                      f"per window: the p{targets.percentile * 100:g} of {request.predictor}'s relative "
                      "under-forecasts of the mean on the windows before it; the largest is shown")
    capacity = window_capacity(seconds, options.vm, targets.slo_s, rule.target, targets.max_utilization)
    pruned = prune_dominated(options, quota_types=frozenset(request.quotas), capacity=capacity)
    column = {name: k for k, name in enumerate(options.vm.option)}
    capacity = capacity[:, [column[name] for name in pruned.vm.option]] if len(pruned.vm) else np.zeros((len(stats), 0))
    return _windows(stats, stats.mean_rps, capacity), pruned, rule.to_dict()


def _windows(stats, demand, capacity, overflow_cuts=None) -> Windows:
    """The MILP's windows: ``demand`` is routed, the central forecast (``central_rps``) is what comes."""
    return Windows(start_s=stats.start_s.to_numpy(float), duration_s=(stats.end_s - stats.start_s).to_numpy(float),
                   demand_rps=demand.to_numpy(float), mean_rps=stats.central_rps.to_numpy(float),
                   capacity_rps=capacity, peak_rps=stats.peak_rps.to_numpy(float), overflow_cuts=overflow_cuts)


def _overflow_windows(stats, seconds, options, targets: Targets, request: PlanRequest):
    """Windows for a plan whose routers overflow to Lambda: VMs capped at their utilization cap, overflow cuts."""
    import numpy as np

    from hetplan.planner.optimize.overflow import OVERFLOW_FRACTION, overflow_cuts
    from hetplan.planner.optimize.options import overflow_option

    steady = options.vm.throughput_rps.to_numpy(float) * targets.max_utilization
    capacity = np.broadcast_to(steady[None, :], (len(stats), len(options.vm)))
    pruned = prune_dominated(options, quota_types=frozenset(request.quotas), capacity=capacity, no_slower=True)
    target = max([a for a in (targets.min_accuracy, targets.mean_accuracy) if a is not None], default=0.0)
    star = overflow_option(pruned.lam, target).option
    cuts = overflow_cuts(seconds, pruned.vm, targets.slo_s, OVERFLOW_FRACTION)
    capacity = np.broadcast_to(pruned.vm.throughput_rps.to_numpy(float)[None, :] * targets.max_utilization,
                               (len(stats), len(pruned.vm))).copy()
    # the central forecast: what the forecast misses overflows to the warm pool, sized with the headroom
    windows = _windows(stats, stats.central_rps, capacity, overflow_cuts=cuts)
    rule = {"rule": "overflow", "overflow_option": str(star), "queue_fraction": OVERFLOW_FRACTION,
            "allowance": 1.0 - targets.percentile,
            "seconds": "trace" if request.predictor == "oracle" else "history",
            "headroom": float(stats.headroom.max()) if len(stats) else 0.0}
    return windows, pruned, rule


def trusted_rows(profile, trust: tuple[str, ...] | None):
    """The profile rows whose ``method`` is in ``trust`` (``--trust``); all rows when ``trust`` is None."""
    if trust is None:
        return profile
    unknown = [m for m in trust if m not in METHODS]
    if unknown:
        raise HetplanError(f"--trust names the unknown method '{unknown[0]}'{did_you_mean(unknown[0], METHODS)}: "
                           f"use a comma-separated subset of {','.join(METHODS)}")
    kept = profile[profile.method.isin(trust)]
    if kept.empty:
        raise HetplanError(f"no profile row has a method in --trust {','.join(trust)}: the profile's methods are "
                           f"{', '.join(sorted(set(profile.method)))}")
    return kept.reset_index(drop=True)


@dataclass(frozen=True)
class PreparedPlan:
    """Everything a request's MILP needs, before it is solved (``make_plan``; the fleet prices and solves these)."""

    request: PlanRequest
    windows: Windows
    options: object  # options.Options
    targets: Targets
    limits: Limits
    meta: dict
    serverless: object
    stats: object
    seconds: object


def check_request(request: PlanRequest) -> None:
    """Every number of the request in its range (``hetplan.units``), named by its ``hetplan solve`` option."""
    from hetplan import units

    units.positive(request.slo_s, "--slo (s)", "0.2", bound=units.MAX_DURATION_S)
    units.percentile(request.percentile)
    for option, value in (("--min-accuracy", request.min_accuracy), ("--mean-accuracy", request.mean_accuracy)):
        if value is not None:
            units.fraction(value, option, "0.7")
    units.positive(request.window_s, "--window (s)", "300", bound=units.MAX_DURATION_S)
    units.fraction(request.quantile, "--quantile")
    units.fraction(request.max_utilization, "--max-utilization")
    units.positive(request.load_scale, "--load-scale")
    units.positive(request.time_limit_s, "--time-limit (s)", "60", bound=units.MAX_DURATION_S)
    units.in_range(request.lead_time_s, "lead time (s)", 0.0, units.MAX_DURATION_S, example="600")
    units.gap(request.gap)
    if request.hours is not None:
        units.hours(request.hours)
    if request.budget_usd is not None:
        units.money(request.budget_usd)
    if request.lambda_concurrency is not None:
        units.count(request.lambda_concurrency, "--lambda-concurrency", example="1000")
    for option, counts in (("--quota", request.quotas), ("--initial-vms", request.initial_vms)):
        for name, value in counts.items():
            units.count(value, f"{option} {name}")


def prepare_plan(request: PlanRequest, on_stage=None) -> PreparedPlan:
    """The request checked, the profile and trace read, the options built and the windows sized."""
    stage = on_stage or (lambda text: None)
    from hetplan.planner.optimize.solve import explain_options

    check_request(request)
    instances = catalog.load_instances(request.instances)
    serverless = catalog.load_serverless(request.serverless, request.lambda_architecture)
    models = catalog.load_models(request.models_catalog)
    profile_path = request.profile
    if request.feedback is not None:
        profile_path = profile_with_feedback(request.profile, request.feedback, skip_bad=request.skip_bad_log_lines)
    profile = catalog.load_profile(profile_path, instances)
    if request.local_as_family:
        profile = map_local_shapes(profile, instances, request.local_as_family)
    profile = trusted_rows(profile, request.trust)
    mean_accuracy = request.effective_mean_accuracy()
    targets = Targets(slo_s=request.slo_s, percentile=request.percentile, min_accuracy=request.min_accuracy,
                      mean_accuracy=mean_accuracy, models=request.models, instance_types=request.instance_types,
                      max_utilization=request.max_utilization)
    for name in request.quotas:
        if name not in instances.index:
            raise HetplanError(f"unknown instance type '{name}' in --quota{did_you_mean(name, instances.index)}")
    if request.sizing not in SIZING_RULES:
        raise HetplanError(f"unknown sizing rule '{request.sizing}'{did_you_mean(request.sizing, SIZING_RULES)}")
    stage("reading the trace")
    stats, seconds = load_window_seconds(request)
    stage("building options")
    # a batch no window's rate can fill never enters (batching.py); the rate the MILP routes is at most this
    highest = float(max(stats.mean_rps.max(), stats.central_rps.max())) if len(stats) else 0.0
    targets = dataclasses.replace(targets, max_rate_rps=highest)
    options = build_options(profile, instances, serverless, models, targets)
    explain_options(options, targets)  # nothing usable: say what to relax before the MILP
    stage("sizing the windows")
    windows, options, sizing = sized_windows(stats, seconds, options, targets, request)
    unknown = [name for name in request.initial_vms if name not in set(options.vm.option)]
    if unknown:
        raise HetplanError(f"--initial-vms names '{unknown[0]}', which is not a usable VM option{did_you_mean(unknown[0], options.vm.option)}")
    concurrency = request.lambda_concurrency if request.lambda_concurrency is not None else serverless.concurrency_limit
    horizon_start = float(windows.start_s[0]) - request.lead_time_s
    limits = Limits(mean_accuracy=mean_accuracy, concurrency_limit=concurrency, quotas=dict(request.quotas),
                    budget_usd=request.budget_usd, initial_vms=dict(request.initial_vms), horizon_start_s=horizon_start,
                    overflow_option=sizing.get("overflow_option"))
    meta = {
        "inputs": {name: {"path": str(path), "digest": catalog.file_digest(path)} for name, path in (
            ("profile", request.profile), ("instances", request.instances), ("serverless", request.serverless),
            ("models", request.models_catalog), ("trace", request.trace))
            + ((("feedback", request.feedback), ("corrected_profile", profile_path)) if request.feedback else ())},
        "targets": {"slo_ms": request.slo_s * 1000, "percentile": request.percentile,
                    "min_accuracy": request.min_accuracy, "mean_accuracy": mean_accuracy,
                    "max_utilization": request.max_utilization,
                    "models": list(request.models) if request.models else None,
                    "instance_types": list(request.instance_types) if request.instance_types else None,
                    "trust": list(request.trust) if request.trust else list(METHODS)},
        "load": {"window_s": request.window_s, "quantile": request.quantile, "predictor": request.predictor,
                 "sizing": sizing,
                 "windows": len(windows), "gaps": request.gaps, "load_scale": request.load_scale,
                 "hours": request.hours},
        "limits": {"lambda_concurrency": concurrency, "lambda_architecture": request.lambda_architecture,
                   "quotas": dict(request.quotas), "budget_usd": request.budget_usd,
                   "horizon_start_s": horizon_start},
    }
    if request.sizing != "quantile":  # the older rule stated no runtime (simulate then warns what it assumes)
        from hetplan.planner.optimize.runtime import runtime_meta

        meta["runtime"] = runtime_meta(sizing.get("overflow_option"), sizing.get("queue_fraction"))
    return PreparedPlan(request, windows, options, targets, limits, meta, serverless, stats, seconds)


def price_runtime(prepared: PreparedPlan, plan: Plan) -> Plan:
    """The plan with its runtime priced (warm pool, request-level overflow); plans of the older quantile rule as they are."""
    if prepared.request.sizing == "quantile":
        return plan
    from hetplan.planner.optimize.runtime import add_runtime_costs

    request, stats = prepared.request, prepared.stats
    peak_ratio = stats.peak_ratio.to_numpy(float) if "peak_ratio" in stats else None
    return add_runtime_costs(plan, seconds=prepared.seconds, pricing=prepared.serverless, percentile=request.percentile,
                             slo_s=request.slo_s, headroom=stats.headroom.to_numpy(float),
                             errors=stats.attrs.get("forecast_errors"), shapes=stats.attrs.get("past_shapes"),
                             peak_ratio=peak_ratio)


def make_plan(request: PlanRequest, on_stage=None) -> Plan:
    """The plan for ``request``: options from the profile, windows sized from the trace, the MILP solved, the
    runtime priced. ``on_stage(text)`` hears each stage as it starts (the CLI's progress bar)."""
    from hetplan.planner.optimize.solve import solve_plan

    stage = on_stage or (lambda text: None)
    prepared = prepare_plan(request, on_stage)
    limits = prepared.limits
    solve = functools.partial(solve_plan, prepared.windows, prepared.options, prepared.targets, solver=request.solver,
                              time_limit_s=request.time_limit_s, gap=request.gap, meta=prepared.meta)
    stage("solving the MILP")
    plan = solve(limits=limits)
    if request.sizing == "quantile":
        return plan
    add = functools.partial(price_runtime, prepared)
    stage("pricing the runtime")
    plan = add(plan)
    for _ in range(3):  # the runtime's priced extras (warm pool, request-level overflow) must fit the budget too
        total = plan.summary["total_cost_usd"]
        if request.budget_usd is None or total <= request.budget_usd * (1 + 1e-9):
            return plan
        margin = total - plan.meta["solver"]["objective_usd"]
        limits = dataclasses.replace(limits, budget_usd=request.budget_usd - max(margin, 0.0) * 1.05)
        plan = add(solve(limits=limits))
    raise Infeasible(f"no plan fits --budget ${request.budget_usd:g} once its warm pool and overflow are priced: "
                       f"the closest costs ${plan.summary['total_cost_usd']:.2f}; raise --budget to at least that")


def make_plan_with_feedback(request: PlanRequest, feedback, skip_bad: bool = False, **kw) -> Plan:
    """:func:`make_plan` on the request's profile corrected by the ``feedback`` log; ``kw`` are the
    correction's knobs (``catalog.observe.update_profile``: half-life, prior weight)."""
    corrected = profile_with_feedback(request.profile, feedback, skip_bad=skip_bad, **kw)
    return make_plan(dataclasses.replace(request, profile=corrected))

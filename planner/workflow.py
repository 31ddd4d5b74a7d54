"""One call from files to plan: what ``hetplan solve`` does, callable without the CLI (sweeps, replay, tests)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from hetplan import catalog
from hetplan.errors import HetplanError, did_you_mean
from hetplan.planner.model import Limits, Windows
from hetplan.planner.options import Targets, build_options, map_local_shapes, prune_dominated
from hetplan.planner.plan import Plan

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
    quantile: float = 0.95
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


def load_windows(request: PlanRequest):
    """Per-window load of the request's trace (window stats at the provisioning quantile)."""
    from hetplan.planner.traces import load_trace, window_stats

    trace = load_trace(request.trace)
    if request.hours:
        trace = trace[trace.second < trace.second.iloc[0] + request.hours * 3600]
    stats = window_stats(trace, request.window_s, request.quantile, gaps=request.gaps)
    if request.predictor != "oracle":
        stats = predicted_windows(stats, request.predictor)
    for column in ("mean_rps", "peak_rps", "q_rps"):
        stats[column] = stats[column] * request.load_scale
    return stats


def predicted_windows(stats, predictor: str):
    """Each window's load as ``predictor`` forecasts it one step ahead from the windows before it only.

    The first windows are history (at least 12, a quarter of the trace at most) and are not planned.
    """
    from hetplan.planner.predict import rolling_forecasts

    forecasts = rolling_forecasts(stats, [predictor], min_history=min(max(12, len(stats) // 4), len(stats) - 1))
    planned = stats.set_index("window").loc[forecasts.window].reset_index()
    for column in ("mean_rps", "peak_rps", "q_rps"):
        planned[column] = forecasts[f"pred_{column}"].clip(lower=0).to_numpy()
    return planned


def make_plan(request: PlanRequest) -> Plan:
    from hetplan.planner.solve import solve_plan

    if not 0 < request.quantile <= 1:
        raise HetplanError(f"--quantile {request.quantile:g} must be in (0, 1], e.g. 0.95")
    if not 0.5 <= request.percentile < 1:
        raise HetplanError(f"--percentile {request.percentile:g} must be in [0.5, 1), e.g. 0.99")
    instances = catalog.load_instances(request.instances)
    serverless = catalog.load_serverless(request.serverless, request.lambda_architecture)
    models = catalog.load_models(request.models_catalog)
    profile_path = request.profile
    if request.feedback is not None:
        from hetplan.planner.observe import profile_with_feedback

        profile_path = profile_with_feedback(request.profile, request.feedback, skip_bad=request.skip_bad_log_lines)
    profile = catalog.load_profile(profile_path)
    if request.local_as_family:
        profile = map_local_shapes(profile, instances, request.local_as_family)
    mean_accuracy = request.effective_mean_accuracy()
    targets = Targets(slo_s=request.slo_s, percentile=request.percentile, min_accuracy=request.min_accuracy,
                      mean_accuracy=mean_accuracy, models=request.models, instance_types=request.instance_types,
                      max_utilization=request.max_utilization)
    for name in request.quotas:
        if name not in instances.index:
            raise HetplanError(f"unknown instance type '{name}' in --quota{did_you_mean(name, instances.index)}")
    options = prune_dominated(build_options(profile, instances, serverless, models, targets),
                              quota_types=frozenset(request.quotas))
    unknown = [name for name in request.initial_vms if name not in set(options.vm.option)]
    if unknown:
        raise HetplanError(f"--initial-vms names '{unknown[0]}', which is not a usable VM option{did_you_mean(unknown[0], options.vm.option)}")
    stats = load_windows(request)
    windows = Windows.from_frame(stats)
    concurrency = request.lambda_concurrency if request.lambda_concurrency is not None else serverless.concurrency_limit
    horizon_start = float(windows.start_s[0]) - request.lead_time_s
    limits = Limits(mean_accuracy=mean_accuracy, concurrency_limit=concurrency, quotas=dict(request.quotas),
                    budget_usd=request.budget_usd, initial_vms=dict(request.initial_vms), horizon_start_s=horizon_start)
    meta = {
        "inputs": {name: {"path": str(path), "digest": catalog.file_digest(path)} for name, path in (
            ("profile", request.profile), ("instances", request.instances), ("serverless", request.serverless),
            ("models", request.models_catalog), ("trace", request.trace))
            + ((("feedback", request.feedback), ("corrected_profile", profile_path)) if request.feedback else ())},
        "targets": {"slo_ms": request.slo_s * 1000, "percentile": request.percentile,
                    "min_accuracy": request.min_accuracy, "mean_accuracy": mean_accuracy,
                    "max_utilization": request.max_utilization,
                    "models": list(request.models) if request.models else None,
                    "instance_types": list(request.instance_types) if request.instance_types else None},
        "load": {"window_s": request.window_s, "quantile": request.quantile, "predictor": request.predictor,
                 "windows": len(windows), "gaps": request.gaps, "load_scale": request.load_scale,
                 "hours": request.hours},
        "limits": {"lambda_concurrency": concurrency, "lambda_architecture": request.lambda_architecture,
                   "quotas": dict(request.quotas), "budget_usd": request.budget_usd,
                   "horizon_start_s": horizon_start},
    }
    return solve_plan(windows, options, targets, limits, solver=request.solver, time_limit_s=request.time_limit_s,
                      gap=request.gap, meta=meta)

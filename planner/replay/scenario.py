"""What every compared policy gets (:class:`Scenario`) and the choices they share: the baselines' VM option,
the overflow's Lambda option, forecasts made at decision time, and the fleet that follows per-window counts.

Every policy starts warm: its first fleet is serving when the replay starts (planner/REPLAY.md).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from hetplan.errors import HetplanError
from hetplan.planner import catalog
from hetplan.planner.forecast.predict import auto_backtest, make_predictor
from hetplan.planner.forecast.traces import load_trace, window_stats
from hetplan.planner.catalog.tables import ServerlessPricing
from hetplan.planner.optimize.model import Limits, Windows
from hetplan.planner.optimize.options import Options, Targets, build_options, overflow_option, prune_dominated
from hetplan.planner.replay.deployment import LAMBDA_COLUMNS, VM_COLUMNS

PlanFn = Callable[[Windows, Options, Targets, Limits], dict]
ROUTER = "weighted-round-robin"  # what plans state (optimize/runtime.py); every policy's router


@dataclass(frozen=True)
class Tools:
    """What every policy is handed, so that a difference in the table comes from the policy, not its tools:
    the load ``predictor`` (default ``auto``, chosen from the data at each decision), the Lambda ``warm_pool`` rule (:func:`pool_peaks` and
    ``planned.warm_pool``), ``overflow`` to Lambda of what a VM pool cannot serve within the SLO, and the
    router. A policy uses each tool wherever its design allows (planner/REPLAY.md says where)."""

    predictor: str = "auto"  # the candidate with the best one-step record so far (forecast/predict.py): read from the data
    warm_pool: bool = True
    overflow: bool = True
    warm_lookback_s: float = 86400.0  # the warm pool covers the highest second seen in the last day
    router: str = ROUTER
    reactive: bool = True  # a target-tracking scale-out layer under planned fleets (replay/reactive.py)


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
    tools: Tools = Tools()
    # per-scenario memo of work every policy repeats (the auto predictor's choices): not part of the scenario
    memo: dict = field(default_factory=dict, compare=False, repr=False)

    @property
    def accuracy_target(self) -> float:
        values = [a for a in (self.targets.min_accuracy, self.targets.mean_accuracy) if a is not None]
        return max(values) if values else 0.0

    def stats(self) -> pd.DataFrame:
        """The true per-window load (policies slice it to the past; only the oracle sees it whole)."""
        return window_stats(self.trace, self.window_s, self.quantile, gaps="interpolate")


def make_scenario(trace_path, slo_s: float, mean_accuracy: float | None = None, min_accuracy: float | None = None,
                  window_s: int = 300, profile=None, instances=None, serverless=None, models=None,
                  architecture: str = "x86_64", hours: float | None = None, drift: tuple = (),
                  tools: Tools = Tools()) -> Scenario:
    """A scenario from files (the shipped catalog by default), options pruned as the planner prunes them."""
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
                    profile=prof, instances=inst, models=mods, drift=tuple(drift), tools=tools)


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


def vm_frame(rows) -> pd.DataFrame:
    return pd.DataFrame(rows)[list(VM_COLUMNS) + ["capacity_rps"]].reset_index(drop=True)


def lam_frame(rows) -> pd.DataFrame:
    frame = pd.DataFrame(rows)
    return frame[list(LAMBDA_COLUMNS)].reset_index(drop=True) if len(frame) else pd.DataFrame(columns=LAMBDA_COLUMNS)


def first_second(sc: Scenario) -> int:
    return int(sc.trace.second.iloc[0])


def last_second(sc: Scenario) -> int:
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


def predicted(sc: Scenario, stats: pd.DataFrame, k: int, horizon: int, predictor: str) -> pd.DataFrame:
    """Windows k .. k+horizon-1 as forecast at their decision time (one window of lead for the boot delay):
    the predictor sees the complete windows before k-1 only. With under two past windows it falls back to
    the true first window (the warm start every policy gets)."""
    future = stats.iloc[k:k + horizon].reset_index(drop=True)
    history = stats.iloc[:max(k - 1, 0)].copy()
    if len(history) < 2:
        out = stats.iloc[[0] * len(future)].reset_index(drop=True)
    else:
        if predictor == "auto":  # the candidate auto would pick on this history, its choices made once per scenario
            predictor = auto_run(sc, stats)[0][len(history)]
        model = make_predictor(predictor, truth=stats) if predictor == "oracle" else make_predictor(predictor)
        out = model.fit(history).predict(len(future) + 1).iloc[1:].reset_index(drop=True)
    out[["window", "start_s", "end_s"]] = future[["window", "start_s", "end_s"]].to_numpy()
    return out


def auto_run(sc: Scenario, stats: pd.DataFrame):
    """``forecast.predict.auto_backtest`` of the scenario's windows, computed once per scenario."""
    key = ("auto", len(stats), float(stats.start_s.iloc[0]))
    if key not in sc.memo:
        sc.memo[key] = auto_backtest(stats.reset_index(drop=True))
    return sc.memo[key]


def seen_peak(sc: Scenario, decided: float, lookback_s: float) -> float:
    """The highest per-second rate in the ``lookback_s`` seconds before ``decided`` (0 with none seen)."""
    seen = sc.trace[(sc.trace.second < decided) & (sc.trace.second >= decided - lookback_s)].requests
    return float(seen.max()) if len(seen) else 0.0


def concurrency(sc: Scenario) -> float:
    return float(sc.concurrency_limit if sc.concurrency_limit is not None else sc.pricing.concurrency_limit)


def limits_at(sc: Scenario, initial: dict, now: float, overflow_option: str | None = None) -> Limits:
    return Limits(mean_accuracy=sc.targets.mean_accuracy, concurrency_limit=concurrency(sc), initial_vms=initial,
                  horizon_start_s=now, overflow_option=overflow_option)


def pool_peaks(sc: Scenario, forecast: pd.DataFrame, lead: float) -> np.ndarray:
    """Per forecast window, the peak second every policy's warm pool is sized for: the higher of the forecast
    peak and the highest second seen in ``tools.warm_lookback_s`` before the decision (a boot lead ahead)."""
    seen = [seen_peak(sc, float(start) - lead, sc.tools.warm_lookback_s) for start in forecast.start_s]
    return np.maximum(forecast.peak_rps.to_numpy(float), np.asarray(seen, float))


def boot_lead(sc: Scenario) -> float:
    return float(math.ceil(sc.options.vm.boot_seconds.max())) if len(sc.options.vm) else 0.0

"""One re-plan of a rolling horizon, made as ``hetplan solve`` makes a plan, from what is known at decision time.

A re-plan for windows k … k+h−1 is decided a boot lead before window k starts, so the last complete window
is k−2 (windows are at least as long as a boot). It:
1. forecasts the windows with the scenario's predictor (``scenario.predicted``; the oracle sees the truth);
2. raises them by the forecast's headroom: the ``percentile`` quantile of the predictor's one-step relative
   under-forecasts of the mean on the windows before the decision (``optimize.sizing.forecast_headroom``),
   as ``hetplan solve --predictor`` does;
3. gives each window per-second requests in the shape of the last complete window at the central forecast
   (``optimize.sizing.shaped_like``; the oracle gets the true seconds);
4. sizes the windows as the product does (``optimize.workflow.sized_windows``: overflow cuts with overflow,
   the late-share capacity without) and solves the MILP from the fleet then running.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from hetplan.planner.forecast.predict import rolling_forecasts
from hetplan.planner.forecast.traces import window_seconds
from hetplan.planner.optimize.sizing import forecast_headroom, shaped_like
from hetplan.planner.optimize.workflow import PlanRequest, sized_windows
from hetplan.planner.replay.planned import plan_windows, solver_plan_fn
from hetplan.planner.replay.scenario import PlanFn, Scenario, auto_run, limits_at, predicted


@dataclass(frozen=True)
class Chunk:
    """What one re-plan decided: the plan's options and per-window counts and shares, the forecast it used
    and the Lambda option its routers overflow to (None without overflow)."""

    vm: pd.DataFrame
    lam: pd.DataFrame
    counts: pd.DataFrame
    shares: pd.DataFrame
    forecast: pd.DataFrame
    overflow: str | None


class Horizon:
    """The per-second load, the forecast's one-step backtest and the sizing request of one scenario, computed
    once and sliced per re-plan (each slice sees only the windows before its decision)."""

    def __init__(self, sc: Scenario, stats: pd.DataFrame, overflow: bool | None = None):
        self.sc, self.stats = sc, stats.reset_index(drop=True)
        self.predictor = sc.tools.predictor
        self.seconds = window_seconds(sc.trace, sc.window_s, gaps="interpolate")[:len(self.stats)]
        self.overflow = sc.tools.overflow if overflow is None else overflow
        self.request = PlanRequest(slo_s=sc.targets.slo_s, percentile=sc.targets.percentile, sizing="late-share",
                                   overflow=self.overflow, predictor=self.predictor,
                                   max_utilization=sc.targets.max_utilization)
        if self.predictor == "oracle" or len(self.stats) < 4:
            self.errors = pd.DataFrame(columns=["actual_mean_rps", "pred_mean_rps"])
        else:
            steps = (auto_run(sc, self.stats)[1] if self.predictor == "auto"
                     else rolling_forecasts(self.stats, [self.predictor], min_history=3))
            self.errors = steps.set_index("window")

    def forecast(self, k: int, horizon: int) -> tuple[pd.DataFrame, np.ndarray]:
        """Windows k … k+horizon−1 as the re-plan sees them (rates raised by the headroom, ``central_rps`` the
        forecast itself) and their per-second requests at the central forecast."""
        if self.predictor == "oracle":  # perfect foresight: the true windows and seconds
            future = self.stats.iloc[k:k + horizon].reset_index(drop=True)
            future["headroom"] = 0.0
            future["central_rps"] = future.mean_rps
            return future, np.nan_to_num(self.seconds[k:k + len(future)])
        future = predicted(self.sc, self.stats, k, horizon, self.predictor)
        last = max(k - 2, 0)  # the last complete window a boot lead before window k
        past = self.errors[self.errors.index < self.stats.window.iloc[last]] if len(self.errors) else self.errors
        headroom = forecast_headroom(past.actual_mean_rps, past.pred_mean_rps, self.sc.targets.percentile) if len(past) else 0.0
        future["central_rps"] = future.mean_rps.clip(lower=0.0)
        for column in ("mean_rps", "peak_rps", "q_rps"):
            future[column] = future[column].clip(lower=0.0) * (1.0 + headroom)
        future["headroom"] = headroom
        shape = np.nan_to_num(self.seconds[[last] * len(future)])
        return future, shaped_like(shape, future.central_rps.to_numpy(float))

    def plan(self, k: int, horizon: int, options, initial: dict, lead: float, plan_fn: PlanFn | None = None) -> Chunk:
        """Re-plan windows k … k+horizon−1 with ``options`` from the fleet ``initial`` (see the module docstring)."""
        future, seconds = self.forecast(k, horizon)
        windows, pruned, rule = sized_windows(future, seconds, options, self.sc.targets, self.request)
        star = rule.get("overflow_option")
        limits = limits_at(self.sc, {n: c for n, c in initial.items() if n in set(pruned.vm.option)},
                           float(future.start_s.iloc[0]) - lead, overflow_option=star)
        plan = (plan_fn or solver_plan_fn())(windows, pruned, self.sc.targets, limits)
        vm, lam, counts, shares = plan_windows(plan)
        return Chunk(vm, lam, counts, shares, future, star)

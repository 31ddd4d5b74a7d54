"""Every policy on one scenario: the registry of policies by name, the best baseline, and the comparison table."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from hetplan.errors import HetplanError, did_you_mean
from hetplan.planner.replay.baselines import lambda_only, mark_like, vm_peak, vm_reactive
from hetplan.planner.replay.deployment import Deployment
from hetplan.planner.replay.feedback import hetplan_feedback_policy
from hetplan.planner.replay.rolling import hetplan_policy, oracle_policy
from hetplan.planner.replay.scenario import Scenario
from hetplan.planner.replay.simulate import replay


BASELINES = ("vm-reactive", "vm-peak", "lambda-only", "mark-like")


def _hetplan_feedback(sc: Scenario, **params) -> Deployment:
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
            method: str = "fluid", keep_alive_s: float = 600.0, on_policy=None) -> tuple[pd.DataFrame, dict]:
    """Replay every policy on the scenario's trace: one row per policy (Report fields plus ``cost_vs_best_pct``
    and ``violations_vs_best_pct``, relative to :func:`best_baseline`, named in ``table.attrs``; a policy
    that cannot run has only ``error``), and the replays by policy (for timelines and plots). ``on_policy(name)``
    hears each policy as it starts."""
    params = params or {}
    rows, replays = [], {}
    allowance_pct = 100 * (1 - sc.targets.percentile)
    for name in policies:
        if on_policy is not None:  # progress: the policy about to run
            on_policy(name)
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
        late = result.timeline.violation_pct.to_numpy(float)
        row["windows_over"] = int((late > allowance_pct + 1e-12).sum())
        row["windows"] = int(len(late))
        rows.append({**row, **{k: _cell(v) for k, v in dep.config.items()}})
    table = pd.DataFrame(rows)
    if "error" not in table:
        table["error"] = None
    best = best_baseline(table, allowance_pct)
    if best is not None:
        ref = table.set_index("policy").loc[best]
        table["cost_vs_best_pct"] = 100 * (table.cost_usd / ref.cost_usd - 1)
        table["violations_vs_best_pct"] = (100 * (table.violation_pct / ref.violation_pct - 1)
                                           if ref.violation_pct > 0 else np.nan)
    table.attrs["best_baseline"] = best
    return table, replays


def _cell(value):
    """A configuration value as a table cell (tuples and lists joined)."""
    return ",".join(map(str, value)) if isinstance(value, (list, tuple)) else value

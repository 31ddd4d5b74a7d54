"""Every policy on one scenario: the registry of policies by name, the best baseline, and the comparison table."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from hetplan.errors import HetplanError, did_you_mean
from hetplan.planner.replay.baselines import lambda_only, mark_like, one_step_forecasts, vm_peak, vm_reactive
from hetplan.planner.replay.deployment import Deployment
from hetplan.planner.replay.feedback import hetplan_feedback_policy
from hetplan.planner.replay.infaas import infaas_like
from hetplan.planner.replay.rolling import hetplan_policy, oracle_policy
from hetplan.planner.replay.scenario import Scenario
from hetplan.planner.replay.simulate import replay


BASELINES = ("vm-reactive", "vm-peak", "lambda-only", "mark-like", "infaas-like")


def _hetplan_feedback(sc: Scenario, **params) -> Deployment:
    return hetplan_feedback_policy(sc, **params)


def _hetplan_no_feedback(sc: Scenario, **params) -> Deployment:
    return hetplan_policy(sc, **{"name": "hetplan-no-feedback", **params})


POLICIES: dict[str, Callable[..., Deployment]] = {
    "hetplan": _hetplan_feedback, "vm-reactive": vm_reactive, "vm-peak": vm_peak, "lambda-only": lambda_only,
    "mark-like": mark_like, "infaas-like": infaas_like, "oracle": oracle_policy, "hetplan-no-feedback": _hetplan_no_feedback,
}
DEFAULT_POLICIES = ("hetplan", "vm-reactive", "vm-peak", "lambda-only", "mark-like", "infaas-like", "oracle")


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


# Each baseline's main knob and the values compare tries with ``tune``: the row reports the cheapest setting
# that meets the SLO (the late share within the percentile's allowance), or the lowest late share if none does.
# The ranges reach past where the SLO or the cost turns (a best setting at an end of its range would be suspect).
KNOBS = {"mark-like": ("headroom", (-0.5, -0.4, -0.3, -0.2, -0.1, 0.0, 0.1, 0.2, 0.4)),
         "vm-reactive": ("target_utilization", (0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1.0)),
         "infaas-like": ("threshold", (0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1.0))}


def compare(sc: Scenario, policies: tuple[str, ...] = DEFAULT_POLICIES, params: dict | None = None,
            method: str = "fluid", keep_alive_s: float = 600.0, on_policy=None,
            tune: bool = False) -> tuple[pd.DataFrame, dict]:
    """Replay every policy on the scenario's trace: one row per policy (Report fields, ``windows_over``, the
    policy's configuration, plus ``cost_vs_best_pct`` and ``violations_vs_best_pct`` relative to
    :func:`best_baseline`, named in ``table.attrs``; a policy that cannot run has only ``error``), and the
    replays by policy (for timelines and plots). ``tune``: each baseline of :data:`KNOBS` at its best setting
    (``tuned`` says which, of what). ``on_policy(name)`` hears each policy as it starts."""
    params = params or {}
    rows, replays = [], {}
    allowance_pct = 100 * (1 - sc.targets.percentile)
    for name in policies:
        if on_policy is not None:  # progress: the policy about to run
            on_policy(name)
        mine = params.get(name, {})
        try:
            if tune and name in KNOBS and KNOBS[name][0] not in mine:
                row, result = _tuned(name, sc, mine, allowance_pct, method, keep_alive_s)
            else:
                row, result = _run(name, sc, mine, allowance_pct, method, keep_alive_s)
        except HetplanError as exc:  # e.g. no Lambda option meets the SLO: the other policies still run
            rows.append({"policy": name, "error": str(exc)})
            continue
        replays[name] = result
        rows.append(row)
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


def _run(name: str, sc: Scenario, params: dict, allowance_pct: float, method: str, keep_alive_s: float):
    """One policy's deployment replayed: its row and the replay."""
    return replayed_row(sc, make_deployment(name, sc, **params), allowance_pct, method, keep_alive_s)


def replayed_row(sc: Scenario, dep: Deployment, allowance_pct: float, method: str, keep_alive_s: float):
    """``dep`` replayed on the scenario: its table row (the report, windows over the allowance, the policy's
    configuration) and the replay."""
    result = replay(sc.trace, dep, sc.targets.slo_s, sc.pricing, keep_alive_s=keep_alive_s,
                    concurrency_limit=sc.concurrency_limit, default_load_time_ms=sc.default_load_time_ms,
                    method=method, window_s=sc.window_s, drift=sc.drift)
    row = result.report.to_dict()
    row["vm_hours"] = sum(row["vm_hours"].values())
    late = result.timeline.violation_pct.to_numpy(float)
    row["windows_over"] = int((late > allowance_pct + 1e-12).sum())
    row["windows"] = int(len(late))
    return {**row, **{k: _cell(v) for k, v in dep.config.items()}}, result


def _tuned(name: str, sc: Scenario, params: dict, allowance_pct: float, method: str, keep_alive_s: float):
    """The baseline at its best setting of its knob (see :data:`KNOBS`)."""
    knob, values = KNOBS[name]
    if name == "mark-like":  # one forecast for every setting: the knob pads it
        params = {"forecast": one_step_forecasts(sc), **params}
    settings = [{knob: value} for value in values]
    if name == "mark-like" and sc.tools.reactive:  # the reactive layer is a tool MArk may take or leave
        settings += [{knob: value, "reactive": True} for value in values]
    runs = [(setting, *_run(name, sc, {**params, **setting}, allowance_pct, method, keep_alive_s)) for setting in settings]
    meets = [run for run in runs if run[1]["violation_pct"] <= allowance_pct + 1e-12]
    setting, row, result = (min(meets, key=lambda run: run[1]["cost_usd"]) if meets
                            else min(runs, key=lambda run: run[1]["violation_pct"]))
    chosen = f"{knob} {setting[knob]:g}" + (" with the reactive layer" if setting.get("reactive") else "")
    row["tuned"] = (f"{chosen}, the cheapest meeting the SLO" if meets else
                    f"{chosen}, the lowest late share (none meets the SLO)") + \
        f" of {', '.join(f'{v:g}' for v in values)}" + (" × reactive on/off" if len(settings) > len(values) else "")
    return row, result


def _cell(value):
    """A configuration value as a table cell (tuples and lists joined)."""
    return ",".join(map(str, value)) if isinstance(value, (list, tuple)) else value

"""Ablations: ``hetplan`` with one ingredient removed at a time, replayed like every policy, so the table says
where its savings (or its late requests) come from (``hetplan compare --ablation``).

| ablation | what is removed | how |
|---|---|---|
| ``model-mix`` | choosing among models | only the model the baselines use (the cheapest meeting the accuracy target alone) |
| ``instance-types`` | instance heterogeneity | only the instance type the baselines use |
| ``serverless`` | Lambda altogether: planned shares, overflow and warm pool | no Lambda option |
| ``overflow`` | the routers' overflow to Lambda | ``Tools(overflow=False)``: VMs sized for the bursts |
| ``warm-pool`` | the warm pool | ``Tools(warm_pool=False)`` |
| ``reactive`` | the scale-out layer under the plan | ``Tools(reactive=False)`` |
| ``predictor`` | the forecaster | ``naive``: the last complete window |
| ``feedback`` | re-planning on the corrected profile | ``hetplan-no-feedback`` |

The ``none`` row is hetplan itself (the same deployment as the ``hetplan`` row of ``compare``).
"""

from __future__ import annotations

from dataclasses import replace

import pandas as pd

from hetplan.errors import HetplanError, did_you_mean
from hetplan.planner.optimize.options import Options
from hetplan.planner.replay.feedback import hetplan_feedback_policy
from hetplan.planner.replay.rolling import hetplan_policy
from hetplan.planner.replay.scenario import Scenario, single_model_vm
from hetplan.planner.replay.compare import replayed_row

ABLATIONS = ("none", "model-mix", "instance-types", "serverless", "overflow", "warm-pool", "reactive", "predictor",
             "feedback")


def _only(sc: Scenario, vm_rows, lam_rows) -> Scenario:
    o = sc.options
    return replace(sc, options=Options(vm=o.vm[vm_rows].reset_index(drop=True), lam=o.lam[lam_rows].reset_index(drop=True),
                                       rejected=o.rejected, pruned=o.pruned))


def ablated(name: str, sc: Scenario, params: dict):
    """The deployment of hetplan without ``name`` (see the module docstring)."""
    base = single_model_vm(sc) if name in ("model-mix", "instance-types") else None
    if name == "model-mix":
        sc = _only(sc, sc.options.vm.model == base.model, sc.options.lam.model == base.model)
    elif name == "instance-types":
        sc = _only(sc, sc.options.vm.instance_type == base.instance_type, sc.options.lam.option.notna())
    elif name == "serverless":
        sc = _only(sc, sc.options.vm.option.notna(), sc.options.lam.option.isna())
    elif name == "overflow":
        sc = replace(sc, tools=replace(sc.tools, overflow=False))
    elif name == "warm-pool":
        sc = replace(sc, tools=replace(sc.tools, warm_pool=False))
    elif name == "reactive":
        sc = replace(sc, tools=replace(sc.tools, reactive=False))
    elif name == "predictor":
        sc = replace(sc, tools=replace(sc.tools, predictor="naive"))
    elif name not in ("none", "feedback"):
        raise HetplanError(f"unknown ablation '{name}'{did_you_mean(name, ABLATIONS)}")
    policy = hetplan_policy if name == "feedback" else hetplan_feedback_policy
    return policy(sc, **{**params, "name": "hetplan" if name == "none" else f"without {name}"})


def ablation_table(sc: Scenario, names: tuple[str, ...] = ABLATIONS, params: dict | None = None, method: str = "fluid",
                   keep_alive_s: float = 600.0, on_variant=None) -> pd.DataFrame:
    """One row per ablation: the replay's report, the row's configuration, and the change against ``none``
    (``cost_delta_pct``; ``late_delta_pp``: late requests, in percentage points)."""
    rows = []
    for name in names:
        if on_variant is not None:
            on_variant(name)
        try:
            dep = ablated(name, sc, params or {})
        except HetplanError as exc:  # e.g. the single model cannot reach the mean accuracy: say so in its row
            rows.append({"ablation": name, "error": str(exc)})
            continue
        row, _ = replayed_row(sc, dep, 100 * (1 - sc.targets.percentile), method, keep_alive_s)
        rows.append({"ablation": name, **row})
    table = pd.DataFrame(rows)
    if "error" not in table:
        table["error"] = None
    if "none" in set(table.ablation) and "cost_usd" in table:
        ref = table.set_index("ablation").loc["none"]
        table["cost_delta_pct"] = 100 * (table.cost_usd / ref.cost_usd - 1)
        table["late_delta_pp"] = table.violation_pct - ref.violation_pct
    return table

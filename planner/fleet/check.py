"""``hetplan validate fleet.json``: every service's plan re-checked on its own, and the shared limits re-checked
across the plans, window by window, from the plan files alone (not from the solver's coupling rows)."""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from hetplan.errors import HetplanError
from hetplan.planner.optimize.evaluate import Evaluation, evaluate
from hetplan.planner.optimize.evaluate_windows import Violation

RTOL = 1e-6


@dataclass
class FleetCheck:
    services: dict[str, Evaluation]
    shared: list[Violation]

    @property
    def ok(self) -> bool:
        return not self.shared and all(e.ok for e in self.services.values())


def read_summary(path) -> dict | None:
    """The fleet summary at ``path``, or None when the file is something else (a single plan)."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None  # the plan reader reports what is wrong with it
    if not isinstance(data, dict) or data.get("kind") != "hetplan.fleet":
        return None
    for key in ("services", "shared"):
        if key not in data:
            raise HetplanError(f"fleet summary '{path}' has no \"{key}\": regenerate it with hetplan solve --fleet")
    return data


def service_plans(path, summary: dict) -> dict[str, dict]:
    """Each service's plan, read through the one plan reader from beside the summary."""
    from hetplan.planner.optimize.plan import load_plan

    folder = Path(path).parent
    return {s["name"]: load_plan(folder / s["plan"]) for s in summary["services"]}


def check_fleet(path, summary: dict, instances=None) -> FleetCheck:
    from hetplan.planner import catalog

    plans = service_plans(path, summary)
    evaluations = {name: evaluate(plan) for name, plan in plans.items()}
    inst = catalog.load_instances(instances)
    vcpus, family = inst.vcpus.astype(float).to_dict(), inst.family.to_dict()
    shared = summary["shared"]
    concurrency, cpus, out = defaultdict(float), defaultdict(float), []
    for plan in plans.values():
        latency = {o["option"]: float(o["latency_ms"]) / 1000 for o in plan["options"]}
        for k, w in enumerate(plan["windows"]):
            for a in w["assignments"]:
                if a["platform"] == "lambda":
                    concurrency[k] += float(a["rate_rps"]) * latency[a["option"]]  # Little's law, as validate does
                else:
                    cpus[(k, family[a["instance_type"]])] += float(a["count"]) * vcpus[a["instance_type"]]
    limit = shared.get("lambda_concurrency")
    for k, used in sorted(concurrency.items()):
        if limit is not None and used > float(limit) * (1 + RTOL):
            out.append(Violation("shared-concurrency", k, None, f"the services need {used:.1f} concurrent Lambda "
                                                                f"executions together, above the account's {limit}"))
    for (k, fam), used in sorted(cpus.items()):
        quota = (shared.get("vcpu_quota") or {}).get(fam)
        if quota is not None and used > float(quota) * (1 + RTOL):
            out.append(Violation("shared-vcpus", k, None, f"the services run {used:g} vCPUs of {fam} together, above the quota {quota}"))
    budget = shared.get("budget_usd")
    spent = sum(float(p["solver"]["objective_usd"]) for p in plans.values())
    if budget is not None and spent > float(budget) * (1 + RTOL):
        out.append(Violation("shared-budget", None, None, f"the services' MILP costs add to ${spent:.4f}, above the budget ${budget:g}"))
    return FleetCheck(evaluations, out)

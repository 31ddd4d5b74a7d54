"""The independent evaluation of an overflow plan: its runtime costs (overflow, warm pool) are re-checked."""

from __future__ import annotations

import pytest

from hetplan.planner.optimize.evaluate import evaluate

from plan_edits import tampered


@pytest.fixture(scope="module")
def overflow_plan() -> dict:
    """The default (overflow) plan of 2 h of WITS."""
    import json

    from hetplan.planner.optimize.workflow import PlanRequest, make_plan

    return json.loads(make_plan(PlanRequest(slo_s=0.2, hours=2, time_limit_s=10, gap=0.05)).to_json())


def test_an_overflow_plan_passes_with_its_runtime_costs(overflow_plan):
    result = evaluate(overflow_plan)
    assert result.ok, [str(v) for v in result.violations]
    s = overflow_plan["summary"]
    assert result.total_cost_usd == pytest.approx(s["total_cost_usd"], rel=1e-9)
    assert s["overflow_cost_usd"] > 0 and s["warm_pool_cost_usd"] > 0
    assert result.lambda_cost_usd == pytest.approx(s["overflow_cost_usd"] + s["warm_pool_cost_usd"], rel=1e-9)


def test_tampered_overflow_and_warm_pool_costs_are_caught(overflow_plan):
    w = next(w for w in overflow_plan["windows"] if w["overflow_rps"] > 0 and w["warm_pool"])

    def cheaper_overflow(p):
        p["windows"][w["index"]]["overflow_rps"] *= 0.5
    assert "cost" in tampered(overflow_plan, cheaper_overflow).constraints

    def bigger_pool(p):
        pool = p["windows"][w["index"]]["warm_pool"]
        pool[next(iter(pool))] += 10
    assert "cost" in tampered(overflow_plan, bigger_pool).constraints

    def overflow_beyond_the_rate(p):
        a = next(a for a in p["windows"][w["index"]]["assignments"] if a["platform"] == "vm")
        a["overflow_rps"] = 2 * a["rate_rps"]
    assert "overflow-cap" in tampered(overflow_plan, overflow_beyond_the_rate).constraints
